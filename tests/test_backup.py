"""`bulletin backup`: a checked copy of the SQLite database, and restoring from it."""

from __future__ import annotations

import shutil
import sqlite3
import stat
import threading
from pathlib import Path

from click.testing import CliRunner

from bulletin.app import App
from bulletin.cli import cli
from bulletin.config import load_settings
from tests.plugins.bulletin_app import Instance
from tests.test_archive import comment


def run(inst: Instance, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(
        cli, ["--config", str(inst.config), *args], env={"BULLETIN_USER": ""}
    )
    assert result.exit_code == code, result.output
    return result.output


def test_restore_from_a_backup_then_rebuild_brings_every_record_back(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """Back up after 5 records, archive 5 more, lose the database, put the backup back:
    verify names what the store holds and the copy lacks; rebuild-index from the store makes
    all 10 whole again; the notices in the backup are there."""
    inst = sqlite_instance
    inst.app.archiver.archive([comment(i) for i in range(5)])
    out = run(inst, "backup", "--out", str(tmp_path))
    [copy] = tmp_path.glob("bulletin-*.db")
    assert f"backed up the database to {copy}" in out and "ledger head #5" in out
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    inst.app.archiver.archive([comment(i) for i in range(5, 10)])
    inst.app.close()
    database = inst.data_dir / "bulletin.db"
    for path in inst.data_dir.glob("bulletin.db*"):
        path.unlink()  # the disk that held the database is gone
    shutil.copy(copy, database)
    run(inst, "init")
    found = run(inst, "archive", "verify", code=1).splitlines()
    assert [line for line in found if line.startswith("problem:")] == [
        f"problem: ledger {seq}: mirror-without-row: the store's ledger mirror holds an "
        "entry the database lacks"
        for seq in range(6, 11)
    ]
    assert any("bulletin archive rebuild-index --replace" in line for line in found)
    run(inst, "archive", "rebuild-index", "--replace")
    assert "OK: 10 records" in run(inst, "archive", "verify")
    inst.app = App(load_settings(inst.config, environ={}), environ={}, clock=inst.clock)


def test_a_backup_taken_while_records_are_archived_is_whole(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """Captures go on while the backup runs: the copy passes SQLite's integrity check and its
    ledger has every entry up to its head, none missing."""
    inst = sqlite_instance
    inst.app.archiver.archive([comment(i) for i in range(50)])
    stop = threading.Event()

    def capture() -> None:
        n = 50
        while not stop.is_set():
            inst.app.archiver.archive([comment(n + i) for i in range(20)])
            n += 20

    writer = threading.Thread(target=capture)
    writer.start()
    try:
        copies = [tmp_path / f"b{i}.db" for i in range(3)]
        for copy in copies:
            run(inst, "backup", "--out", str(copy))
    finally:
        stop.set()
        writer.join()
    for copy in copies:
        conn = sqlite3.connect(copy)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        head, count = conn.execute("SELECT max(seq), count(*) FROM ledger").fetchone()
        assert head == count >= 50
        conn.close()


def test_a_backup_never_overwrites_and_postgresql_is_pointed_to_pg_dump(
    instance: Instance, tmp_path: Path
) -> None:
    """On PostgreSQL the command names pg_dump (and no password); on SQLite an existing file
    is refused and left as it was."""
    inst = instance
    if inst.app.engine.dialect.name == "postgresql":
        out = run(inst, "backup", "--out", str(tmp_path / "x.db"), code=2)
        assert "pg_dump" in out and len(out.strip().splitlines()) == 1
        assert not (tmp_path / "x.db").exists()
        return
    existing = tmp_path / "keep.db"
    existing.write_bytes(b"not a database")
    out = run(inst, "backup", "--out", str(existing), code=2)
    assert "already exists" in out and existing.read_bytes() == b"not a database"
    assert list(tmp_path.glob(".*partial")) == []
