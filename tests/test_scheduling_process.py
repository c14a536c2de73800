"""Scheduling with the daemon as a real process and the command line as people use it:
downtime (late routine notice, emergency at once), the decision, status, list and show."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.plugins.bulletin_app import Instance, feed_entry_id, make_instance
from tests.plugins.daemon_process import DaemonProcess
from tests.test_daemon_process import feed_entry_ids, wait_until

pytestmark = pytest.mark.slow
MakeDaemon = Callable[[dict[str, str], Path], DaemonProcess]


def cli(inst: Instance, *args: str, code: int = 0) -> str:
    """Run ``bulletin``; its output (stdout, then stderr, except with --json: stdout only)."""
    result = subprocess.run(
        [sys.executable, "-m", "bulletin", *args],
        env=inst.env(),
        cwd=inst.config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout if "--json" in args else result.stdout + result.stderr


def add(inst: Instance, category: str, text: str, *extra: str) -> int:
    out = cli(
        inst,
        "notice",
        "add",
        "--category",
        category,
        "--text",
        text,
        "--target",
        "feed",
        "--as",
        "dispatcher",
        "--json",
        *extra,
    )
    notice_id = int(json.loads(out)["id"])
    cli(inst, "notice", "approve", str(notice_id), "--by", "approver")
    return notice_id


def test_downtime_late_routine_waits_emergency_goes_out(
    tmp_path: Path, daemon_process: MakeDaemon
) -> None:
    """Both notices come due while no daemon runs; when it starts, the emergency one is
    published at once, the routine one is late: the daemon warns, status and `notice late`
    list it, and a person's --publish sends it."""
    inst = make_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        '\n[publisher]\nlate_grace = "1s"\n',
    )
    cli(inst, "init")
    routine = add(inst, "crime-prevention", "Lock your car.", "--at", "+2s")
    emergency = add(
        inst, "shelter-in-place", "Shelter in place: gas leak.", "--at", "+2s", "--expires", "+1h"
    )
    time.sleep(4.5)  # due at +2s, more than late_grace (1s) ago
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    daemon.wait_for_log("notices past their time wait for a decision")
    wait_until(lambda: feed_entry_id(inst, emergency) in feed_entry_ids(inst), 10)
    assert feed_entry_id(inst, routine) not in feed_entry_ids(inst)
    log = daemon.log.read_text()
    assert f"notice {routine} (crime-prevention)" in log
    status = cli(inst, "status")
    assert "late notices: 1 WAITING FOR A DECISION" in status
    listed = json.loads(cli(inst, "notice", "late", "--json"))
    assert [n["id"] for n in listed["late"]] == [routine]
    cli(inst, "notice", "late", str(routine), "--publish", "--as", "approver")
    wait_until(lambda: feed_entry_id(inst, routine) in feed_entry_ids(inst), 10)
    assert "late notices: 0" in cli(inst, "status")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    inst.app.close()


def test_notice_commands_for_schedule_and_amendments(sqlite_instance: Instance) -> None:
    """add --every/--until shows the series; correct and retract need a reason and refuse a
    notice with nothing published; list and show give the next time, states and attempts."""
    inst = sqlite_instance
    cli(inst, "init")
    out = cli(
        inst,
        "notice",
        "add",
        "--category",
        "crime-prevention",
        "--text",
        "Lock your car.",
        "--target",
        "feed",
        "--every",
        "week",
        "--at",
        "2031-01-06T09:00",
        "--until",
        "cancelled",
        "--as",
        "dispatcher",
    )
    assert "repeats  weekly;at=09:00, first 2031-01-06 09:00 EST, until cancelled" in out
    cli(
        inst,
        "notice",
        "add",
        "--category",
        "crime-prevention",
        "--text",
        "x",
        "--target",
        "feed",
        "--every",
        "week",
        "--at",
        "+1h",
        code=2,
    )
    cli(inst, "notice", "approve", "1", "--by", "approver")
    listed = cli(inst, "notice", "list")
    assert "next 2031-01-06 09:00 EST" in listed and "[repeats weekly;at=09:00]" in listed
    refused = cli(
        inst, "notice", "correct", "1", "--text", "y", "--reason", "z", "--as", "a", code=1
    )
    assert "nothing published to correct" in refused
    ambiguous = cli(
        inst,
        "notice",
        "add",
        "--category",
        "traffic",
        "--text",
        "Detour tonight.",
        "--target",
        "feed",
        "--at",
        "2031-11-02T01:30",
        "--as",
        "dispatcher",
    )
    assert "happens twice in America/New_York" in ambiguous
    cancelled = cli(inst, "notice", "cancel", "1", "--reason", "campaign ended", "--as", "sgt")
    assert "cancelled for feed" in cancelled
    shown = cli(inst, "notice", "show", "1")
    assert "repeats  weekly;at=09:00 until cancelled; 1 made, next -" in shown
    assert "feed             cancelled" in shown
