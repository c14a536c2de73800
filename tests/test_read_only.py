"""The service's group may read: read commands open SQLite read-only (``mode=ro``), and a
write command without permission says whose job it is.

Root is not stopped by permission bits, so the group member is played by ``nobody`` with a
supplementary group, through ``setpriv``; the data directory is laid out as the systemd unit
leaves it (directory 0750, files 0640, owner and group). No user is created."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import bulletin
from bulletin.db import make_engine
from bulletin.publisher.notices import NoticeDraft, create_notice
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.environment import require

GROUP = 4242  # the service's group; it needs no name
NOBODY = 65534
READS = (
    ("status",),
    ("status", "--json"),
    ("notice", "list"),
    ("notice", "show", "1"),
    ("archive", "list"),
    ("archive", "search", "water"),
    ("audit",),
)


@pytest.fixture
def service_dir() -> Iterator[Path]:
    """A directory nobody can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="bulletin-ro-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def as_group_member(inst: Instance, *args: str) -> subprocess.CompletedProcess[str]:
    """``bulletin ARGS`` run by nobody, a member of the group only."""
    src = Path(bulletin.__file__).parent.parent
    env = inst.env(PYTHONPATH=str(src), HOME="/nonexistent", PYTHONDONTWRITEBYTECODE="1")
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={GROUP}"]
    return subprocess.run(
        [*setpriv, sys.executable, "-m", "bulletin", *args],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lay_out_like_the_unit(inst: Instance) -> None:
    """StateDirectoryMode=0750 and UMask=0027: the group may read, only the owner write."""
    for path in [inst.config.parent, inst.data_dir, *inst.data_dir.rglob("*")]:
        os.chown(path, -1, GROUP)
        path.chmod(0o750 if path.is_dir() else 0o640)
    inst.config.parent.chmod(0o755)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.timeout(600)  # eleven commands, each its own process: minutes on a loaded machine
def test_group_member_reads_and_is_told_who_writes(service_dir: Path) -> None:
    """With the daemon stopped and then with a writer holding the database open, a group
    member runs every read command; a write command is refused with the file and the owner,
    and nothing is written or left behind."""
    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "root and setpriv")
    db = service_dir / "data" / "bulletin.db"
    inst = make_instance(service_dir, f"sqlite:///{db}")
    text = "Water main break: Mass Ave closed at Waltham St."
    draft = NoticeDraft(category="road-closure", text=text, targets=("feed",))
    create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher1")
    inst.app.close()  # the last connection removes -wal and -shm, as when the daemon stops
    lay_out_like_the_unit(inst)
    before = digest(db)
    for args in READS:
        result = as_group_member(inst, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "readonly" not in result.stderr
    assert "Water main break" in as_group_member(inst, "notice", "show", "1").stdout
    refused = as_group_member(inst, "notice", "approve", "1", "--by", "chief")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"bulletin: error: cannot write the database {db}: permission denied; run as the root user"
    )
    assert digest(db) == before
    assert sorted(p.name for p in db.parent.glob("bulletin.db*")) == ["bulletin.db"]

    writer = make_engine(f"sqlite:///{db}")  # the daemon: -wal and -shm exist, 0640
    try:
        with writer.begin() as conn:
            conn.execute(sa.text("UPDATE notices SET text = :t WHERE id = 1"), {"t": "Reopened."})
        with writer.connect():
            lay_out_like_the_unit(inst)
            assert (db.parent / "bulletin.db-shm").exists()
            shown = as_group_member(inst, "notice", "show", "1")
            assert shown.returncode == 0, shown.stderr
            assert "Reopened." in shown.stdout  # read through the WAL, not the stale file
            assert as_group_member(inst, "status").returncode == 0
    finally:
        writer.dispose()


def test_read_only_engine_cannot_write(sqlite_instance: Instance) -> None:
    """Even for root, the read-only engine refuses a write and leaves the file as it was."""
    db = sqlite_instance.data_dir / "bulletin.db"
    sqlite_instance.app.close()
    before = digest(db)
    engine = make_engine(f"sqlite:///{db}", read_only=True)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM notices")).scalar() == 0
        with pytest.raises(sa.exc.OperationalError, match="readonly"), engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_events"))
    finally:
        engine.dispose()
    assert digest(db) == before
    assert not (db.parent / "bulletin.db-wal").exists()


def test_read_only_engine_reads_what_a_writer_opened_later_wrote(service_dir: Path) -> None:
    """A read-only engine made while no writer had the database open (so its connections
    read the file as it stood) reads through the WAL once a writer has it open: a daemon
    started after the engine was made is never read stale."""
    db = service_dir / "data" / "bulletin.db"
    inst = make_instance(service_dir, f"sqlite:///{db}")
    draft = NoticeDraft(category="road-closure", text="Water main break.", targets=("feed",))
    create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher1")
    inst.app.close()
    text = sa.text("SELECT text FROM notices WHERE id = 1")
    reader = make_engine(f"sqlite:///{db}", read_only=True)
    writer = make_engine(f"sqlite:///{db}")
    try:
        with reader.connect() as conn:  # pooled: the engine keeps it for the next use
            assert conn.execute(text).scalar() == "Water main break."
        with writer.begin() as conn:
            conn.execute(sa.text("UPDATE notices SET text = :t WHERE id = 1"), {"t": "Reopened."})
        with writer.connect():  # the daemon: -wal and -shm exist, the change is in the WAL
            with reader.connect() as conn:
                assert conn.execute(text).scalar() == "Reopened."
            fresh = make_engine(f"sqlite:///{db}", read_only=True)
            try:
                with fresh.connect() as conn:
                    assert conn.execute(text).scalar() == "Reopened."
            finally:
                fresh.dispose()
    finally:
        writer.dispose()
        reader.dispose()
