"""The daemon as a real process: woken at once, SIGTERM, SIGHUP, SIGKILL, one per SQLite file."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from sqlmodel import Session, col, select

from bulletin.archiver.verify import verify
from bulletin.connectors.feed import ATOM
from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import CaptureSweep, CaptureThread, Delivery, Record
from tests.plugins.bulletin_app import Instance, feed_entry_id, make_instance
from tests.plugins.capture import comments, exactly_once, fb_post
from tests.plugins.daemon_process import DaemonProcess
from tests.plugins.environment import free_port
from tests.plugins.sandbox import Control, sandbox_accounts

pytestmark = pytest.mark.slow
MakeDaemon = Callable[[dict[str, str], Path], DaemonProcess]


def cli(inst: Instance, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bulletin", *args],
        env=inst.env(),
        cwd=inst.config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def add_and_approve(inst: Instance, text: str) -> int:
    out = cli(
        inst,
        "notice",
        "add",
        "--category",
        "traffic",
        "--text",
        text,
        "--target",
        "feed",
        "--as",
        "dispatcher",
        "--json",
    )
    notice_id = int(json.loads(out)["id"])
    cli(inst, "notice", "approve", str(notice_id), "--by", "approver")
    return notice_id


def add_and_approve_fast(inst: Instance, text: str) -> int:
    """The same as the CLI does (the approval wakes the daemon), without starting a process."""
    from bulletin.clock import SystemClock
    from bulletin.publisher.approval import approve_notice
    from bulletin.publisher.notices import NoticeDraft, create_notice

    clock = SystemClock()
    notice = create_notice(
        inst.app.engine, inst.settings, clock, NoticeDraft("traffic", text, ("feed",)), "d"
    )
    approve_notice(inst.app.engine, inst.settings, clock, notice.id or 0, "approver")
    return notice.id or 0


def feed_entry_ids(inst: Instance) -> list[str]:
    path = inst.settings.feed_path("feed")
    if not path.exists():
        return []
    return [
        e.findtext(f"{{{ATOM}}}id") or ""
        for e in SafeET.parse(path).getroot().findall(f"{{{ATOM}}}entry")
    ]


def wait_until(
    check: Callable[[], bool], timeout: float = 20.0, explain: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met in time: {explain()}")


def test_approval_wakes_the_daemon_and_sigterm_exits_0(
    sqlite_instance: Instance, daemon_process: MakeDaemon
) -> None:
    """A running daemon publishes an approved notice within seconds; SIGTERM stops it cleanly."""
    inst = sqlite_instance
    cli(inst, "init")
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    notice_id = add_and_approve(inst, "Main St closed for a parade until 2 pm.")
    wait_until(lambda: feed_entry_id(inst, notice_id) in feed_entry_ids(inst), 10)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "stopped" in daemon.log.read_text()


@pytest.mark.timeout(600)  # three processes started in turn: minutes on a loaded machine
def test_second_daemon_on_one_sqlite_file_is_refused(
    sqlite_instance: Instance, daemon_process: MakeDaemon
) -> None:
    """SQLite is single-instance: a second daemon says so and exits 1."""
    inst = sqlite_instance
    cli(inst, "init")
    daemon_process(inst.env(), inst.config.parent).start()
    second = subprocess.run(
        [sys.executable, "-m", "bulletin", "daemon"],
        env=inst.env(),
        cwd=inst.config.parent,
        capture_output=True,
        text=True,
        timeout=300,  # a refused daemon exits; a second one running would be killed here
        check=False,
    )
    assert second.returncode == 1
    assert "SQLite supports one daemon" in second.stderr


def test_sighup_with_a_bad_file_keeps_running(
    sqlite_instance: Instance, daemon_process: MakeDaemon
) -> None:
    """SIGHUP re-reads the file; a broken file is reported and the daemon keeps working."""
    inst = sqlite_instance
    cli(inst, "init")
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    good = inst.config.read_text()
    inst.config.write_text(good + "\n[agency\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reload refused")
    inst.config.write_text(good)
    notice_id = add_and_approve(inst, "Still working after a bad reload.")
    wait_until(lambda: feed_entry_id(inst, notice_id) in feed_entry_ids(inst), 10)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reloaded")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_systemd_notify_ready_and_stopping(
    sqlite_instance: Instance, daemon_process: MakeDaemon, tmp_path: Path
) -> None:
    """Under systemd (NOTIFY_SOCKET) the daemon reports READY=1, WATCHDOG=1 and STOPPING=1."""
    inst = sqlite_instance
    cli(inst, "init")
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(10)
    daemon = daemon_process(
        inst.env(NOTIFY_SOCKET=address, WATCHDOG_USEC="2000000"), inst.config.parent
    ).start()
    messages = [listener.recv(4096).decode() for _ in range(2)]
    assert any("READY=1" in m for m in messages)
    assert any("WATCHDOG=1" in m for m in messages)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    rest = []
    listener.settimeout(1)
    try:
        while True:
            rest.append(listener.recv(4096).decode())
    except TimeoutError:
        pass
    assert any("STOPPING=1" in m for m in rest)
    listener.close()


def test_kill_9_while_publishing_never_doubles_or_loses(
    sqlite_instance: Instance, daemon_process: MakeDaemon
) -> None:
    """SIGKILL the daemon at random moments while it publishes; after restarts every approved
    notice is in the feed exactly once and archived exactly once."""
    inst = sqlite_instance
    cli(inst, "init")
    rng = random.Random(7)
    approved: list[int] = []
    for round_ in range(6):
        daemon = daemon_process(inst.env(), inst.config.parent).start()
        for i in range(8):
            approved.append(add_and_approve_fast(inst, f"Detour on Route 2, update {round_}.{i}."))
            time.sleep(rng.uniform(0.0, 0.05))
        time.sleep(rng.uniform(0.0, 0.2))
        daemon.kill()
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    expected = {feed_entry_id(inst, n) for n in approved}
    wait_until(
        lambda: expected <= set(feed_entry_ids(inst)),
        30,
        lambda: f"missing {expected - set(feed_entry_ids(inst))}\n{daemon.log.read_text()[-3000:]}",
    )

    def archived_once() -> bool:
        with Session(inst.app.engine) as session:
            records = session.exec(select(Record).where(Record.kind == "post")).all()
            deliveries = session.exec(select(Delivery)).all()
        remote_ids = sorted(r.remote_id for r in records)
        published = sorted(d.remote_id or "" for d in deliveries)
        return (
            remote_ids == published
            and len(deliveries) == len(approved)
            and all(d.state == "published" and d.archived_record_id for d in deliveries)
        )

    def explain() -> str:
        with Session(inst.app.engine) as session:
            records = session.exec(select(Record).where(Record.kind == "post")).all()
            states = [(d.notice_id, d.state, d.last_error) for d in session.exec(select(Delivery))]
        return f"records {sorted(r.remote_id for r in records)}; deliveries {states}"

    wait_until(archived_once, 20, explain)
    ids = feed_entry_ids(inst)
    assert len(ids) == len(set(ids)) == len(approved)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "OK:" in cli(inst, "archive", "verify")


def test_kill_9_mid_capture_sweep_then_restart_loses_and_doubles_nothing(
    tmp_path: Path, sandbox: SandboxServer, control: Control, daemon_process: MakeDaemon
) -> None:
    """A daemon SIGKILLed while it sweeps a thread of 1,200 comments (the sandbox slows each
    page of 100; each page is stored before its cursor moves), then restarted: the new daemon
    resumes from the stored cursor, every comment is archived exactly once, no comment
    gains a second version, the cut-off sweep is marked interrupted and the ledger verifies."""
    total, per_page = 1200, 100
    inst = make_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        sandbox_accounts(
            sandbox.url, x_extra="enabled = false", facebook_extra="capture_interval = 1"
        )
        + f"\n[capture]\nbatch_items = {per_page}\n",
    )
    post = fb_post(sandbox)
    expected = comments(control, post, count=total)
    pages = total // per_page
    listing = rf"/{post}/comments"
    control.fault("delay", listing, seconds=0.15, count=1000)

    def comment_count() -> int:
        with Session(inst.app.engine) as session:
            return len(session.exec(select(Record.id).where(Record.kind == "comment")).all())

    def thread() -> CaptureThread:
        with Session(inst.app.engine) as session:
            row = session.get(CaptureThread, ("facebook", post))
        assert row is not None
        return row

    def pages_fetched() -> int:
        pending = [f for f in control.get("faults")["faults"] if f["kind"] == "delay"]
        return 1000 - (pending[0]["count"] if pending else 0)

    daemon = daemon_process(inst.env(), inst.config.parent).start()
    wait_until(lambda: comment_count() > 0, 20, daemon.log.read_text)
    daemon.kill()
    stored = comment_count()
    assert 0 < stored < total, "the kill did not land mid-sweep"
    assert thread().last_swept_at is None
    # From here on the listing runs at full speed; a zero delay only counts its pages.
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    control.fault("delay", listing, seconds=0, count=1000)

    daemon = daemon_process(inst.env(), inst.config.parent).start()
    wait_until(
        lambda: thread().last_swept_at is not None,
        30,
        lambda: f"{comment_count()} of {total} stored\n{daemon.log.read_text()[-3000:]}",
    )
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    exactly_once(inst, expected)
    with Session(inst.app.engine) as session:
        versions = session.exec(select(Record.version).where(Record.kind == "comment")).all()
        posts = session.exec(select(Record.remote_id).where(Record.kind == "post")).all()
        results = session.exec(
            select(CaptureSweep.result)
            .where(CaptureSweep.account == "facebook")
            .order_by(col(CaptureSweep.id))
        ).all()
    assert set(versions) == {1}
    assert posts == [post]
    assert results[0] == "interrupted" and set(results[1:]) == {"ok"}
    done = thread()
    assert (done.page_cursor, done.page_mode, done.page_newest) == (None, None, None)
    # Resumed from the stored cursor: the restart listed the pages not yet stored, plus at
    # most the one stored whose cursor the kill kept from being written; not the whole
    # thread again.
    assert pages_fetched() <= pages - stored // per_page + 1
    assert verify(inst.app.engine, inst.app.store).ok


def test_once_on_embedded_defaults_runs_the_sandbox_for_its_sweep(tmp_path: Path) -> None:
    """`bulletin daemon --once` in a fresh folder, no configuration: the sandbox accounts are
    swept against a sandbox started for the run and stopped after it (moved, with the
    accounts, to a free port through the environment)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env |= {
        "BULLETIN_SANDBOX__PORT": str(port),
        "BULLETIN_ACCOUNTS__SANDBOX-X__BASE_URL": url,
        "BULLETIN_ACCOUNTS__SANDBOX-FACEBOOK__BASE_URL": url,
        "BULLETIN_ACCOUNTS__SANDBOX-MASTODON__BASE_URL": url,
        "BULLETIN_ACCOUNTS__SANDBOX-BLUESKY__BASE_URL": url,
        "BULLETIN_ACCOUNTS__SANDBOX-THREADS__BASE_URL": url,
        "BULLETIN_ACCOUNTS__SANDBOX-INSTAGRAM__BASE_URL": url,
    }
    run = functools.partial(
        subprocess.run,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    bulletin = [sys.executable, "-m", "bulletin"]
    assert run([*bulletin, "init"]).returncode == 0
    once = run([*bulletin, "daemon", "--once"])
    assert once.returncode == 0, once.stderr
    assert "ConnectionError" not in once.stderr
    for account in (
        "sandbox-x",
        "sandbox-facebook",
        "sandbox-mastodon",
        "sandbox-bluesky",
        "sandbox-threads",
        "sandbox-instagram",
    ):
        assert f"account={account}" in once.stderr and "result=partial" not in once.stderr
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        raise AssertionError("the sandbox is still running after --once")
