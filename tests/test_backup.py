"""`bulletin backup`: a checked copy of the SQLite database, and restoring from it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bulletin.app import App
from bulletin.config import load_settings
from bulletin.connectors.sandbox import SandboxServer
from bulletin.locks import release_instance_lock, take_instance_lock
from bulletin.models import AuditEvent, Delivery
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from bulletin.service.restore import restore_sqlite, settle_in_place
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run
from tests.plugins.environment import require
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts
from tests.test_archive import comment


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


def approved(inst: Instance, text: str, publish_at: datetime | None = None) -> int:
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft("traffic", text, ("facebook",), publish_at=publish_at),
        "dispatcher",
    )
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "approver")
    return notice.id or 0


def page_posts(control: Control, text: str) -> int:
    """How many posts on the sandbox Page carry ``text``."""
    posts = control.get("state")["fb"]["posts"].values()
    return sum(1 for p in posts if str(p.get("message", "")).startswith(text))


@pytest.fixture
def page_site(tmp_path: Path, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin on SQLite with the sandbox Facebook Page, on the wall clock."""
    inst = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", sandbox_accounts(sandbox.url)
    )
    inst.clock.set(datetime.now(UTC))
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


@pytest.mark.parametrize("how", ["restore FILE", "copied by hand, then --in-place"])
def test_restore_posts_nothing_twice_and_brings_every_record_back(
    page_site: Instance, control: Control, tmp_path: Path, how: str
) -> None:
    """A notice published before the backup, one due later and published after it, and
    comments captured on both sides of it. After the database is lost and the backup restored:
    the later notice is found on the Page and recorded as published, not posted again; every
    comment is back; the old files were moved aside, not deleted; verify passes."""
    inst = page_site
    early = approved(inst, "Main St closed for a parade until 2 pm.")
    later = approved(inst, "Elm St closed tomorrow.", inst.clock.now() + timedelta(hours=1))
    Daemon(inst.app).run_once(max_wait=0)
    inst.app.archiver.archive([comment(i) for i in range(5)])
    copy = tmp_path / "nightly.db"
    run(inst, "backup", "--out", str(copy))
    inst.clock.advance(timedelta(hours=1, minutes=5))
    Daemon(inst.app).run_once(max_wait=0)  # the later notice goes out after the backup
    inst.app.archiver.archive([comment(i) for i in range(5, 10)])
    assert page_posts(control, "Elm St closed tomorrow.") == 1
    inst.app.close()

    if how == "restore FILE":
        done = restore_sqlite(inst.settings, copy, "admin1", inst.clock.now())
        assert done.uncertain == 1 and done.rebuilt.problems == []
        assert {p.name.split(".before-restore-")[0] for p in done.moved_aside} >= {"bulletin.db"}
        assert all(p.exists() for p in done.moved_aside)
    else:
        for path in inst.data_dir.glob("bulletin.db*"):
            path.unlink()
        shutil.copy(copy, inst.data_dir / "bulletin.db")
        uncertain, rebuilt = settle_in_place(inst.settings, "admin1", inst.clock.now())
        assert uncertain == 1 and rebuilt.problems == []
    inst.app = App(inst.settings, environ={}, clock=inst.clock)
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    Daemon(inst.app).run_once(max_wait=0)
    assert page_posts(control, "Elm St closed tomorrow.") == 1
    assert page_posts(control, "Main St closed for a parade") == 1
    with Session(inst.app.engine) as session:
        states = {d.notice_id: d.state for d in session.exec(select(Delivery))}
    assert states == {early: "published", later: "published"}
    assert "OK: 12 records" in run(inst, "archive", "verify")


def test_restore_refuses_while_a_daemon_runs_and_refuses_a_file_that_is_no_backup(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    inst = sqlite_instance
    copy = tmp_path / "b.db"
    run(inst, "backup", "--out", str(copy))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    out = run(inst, "restore", str(junk), "--as", "admin1", code=2)
    assert "is not a Bulletin database backup" in out
    held = take_instance_lock(inst.data_dir, "daemon")
    try:
        out = run(inst, "restore", str(copy), "--as", "admin1", code=1)
        assert "stop the daemon first" in out
    finally:
        release_instance_lock(held)
    assert (inst.data_dir / "bulletin.db").exists()
    assert list(inst.data_dir.glob("*.before-restore-*")) == []
    out = run(inst, "restore", str(copy), "--as", "admin1")
    assert "next: bulletin archive verify" in out


def test_a_restore_by_root_leaves_the_database_to_the_daemon_s_user(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """Run as root (as an administrator may), the restored file keeps the owner and group of
    the file it replaces, so the daemon's user can still open it."""
    require(os.geteuid() == 0, "root (to give a file to another user)")
    inst = sqlite_instance
    copy = tmp_path / "b.db"
    run(inst, "backup", "--out", str(copy))
    inst.app.close()
    database = inst.data_dir / "bulletin.db"
    os.chown(database, 65534, 65534)
    os.chmod(database, 0o640)
    restore_sqlite(inst.settings, copy, "admin1", inst.clock.now())
    info = database.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)


def test_a_restore_that_cannot_finish_puts_the_database_back(small_disk: Path) -> None:
    """The data directory's disk is too full for the copy: restore fails with one line, and
    the database it had moved aside is back in place, whole."""
    inst = make_instance(small_disk, f"sqlite:///{small_disk / 'data' / 'bulletin.db'}")
    inst.app.archiver.archive([comment(i) for i in range(3)])
    copy = small_disk.parent / "b.db"
    run(inst, "backup", "--out", str(copy))
    inst.app.close()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "ballast").write_bytes(b"\0" * max(0, free - 64 * 1024))
    out = run(inst, "restore", str(copy), "--as", "admin1", code=1)
    assert len(out.strip().splitlines()) == 1 and "disk is full" in out
    assert (inst.data_dir / "bulletin.db").exists()
    assert list(inst.data_dir.glob("*.before-restore-*")) == []
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert "OK: 3 records" in run(inst, "archive", "verify")  # room again: all as it was


def test_in_place_settles_a_database_put_back_by_other_means(instance: Instance) -> None:
    """On SQLite and PostgreSQL: a delivery due but not done becomes uncertain (looked for on
    its platform first), the step is audited, and the command needs a file or --in-place."""
    inst = instance
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft("traffic", "Main St closed.", ("feed",)),
        "dispatcher",
    )
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "approver")
    out = run(inst, "restore", "--as", "admin1", code=2)
    assert "--in-place" in out
    uncertain, rebuilt = settle_in_place(inst.settings, "admin1", inst.clock.now())
    assert uncertain == 1 and rebuilt.problems == []
    with Session(inst.app.engine) as session:
        [delivery] = session.exec(select(Delivery)).all()
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "restored")).all()
    assert delivery.state == "uncertain"
    assert [(e.actor, e.object_type) for e in events] == [("admin1", "database")]
