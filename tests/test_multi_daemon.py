"""Several daemons on one PostgreSQL database never post a notice twice."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.db import session_scope
from bulletin.errors import Refused
from bulletin.models import AuditEvent, DaemonInstance, Delivery, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.daemon_process import DaemonProcess
from tests.plugins.sandbox import Control, sandbox_accounts
from tests.test_daemon_process import MakeDaemon, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def sandbox_site(
    tmp_path: Path, pg_schema_url: str, sandbox: SandboxServer, lease: int
) -> Instance:
    """A Bulletin on PostgreSQL with sandbox X and Facebook accounts (no capture to speak of)."""
    return make_instance(
        tmp_path,
        pg_schema_url,
        f"[daemon]\nlease_seconds = {lease}\n"
        + sandbox_accounts(
            sandbox.url,
            x_extra="capture_interval = 3600",
            facebook_extra="capture_interval = 3600",
        ),
    )


def start_two(inst: Instance, tmp_path: Path, daemon_process: MakeDaemon) -> list[DaemonProcess]:
    """Two daemon processes on ``inst``, each in its own working directory."""
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    return [daemon_process(inst.env(), d).start() for d in (tmp_path, second_dir)]


@pytest.mark.timeout(300)  # two real daemons and 200 notices: minutes on a loaded machine
def test_two_daemons_publish_200_notices_exactly_once(
    tmp_path: Path,
    pg_schema_url: str,
    sandbox: SandboxServer,
    control: Control,
    daemon_process: MakeDaemon,
) -> None:
    """Two daemon processes on one PostgreSQL schema, 200 notices to X and Facebook due within
    seconds: the sandbox receives each exactly once, and each is archived once."""
    inst = sandbox_site(tmp_path, pg_schema_url, sandbox, lease=30)
    control.settings(enforce_rate_limits=False)
    first, second = start_two(inst, tmp_path, daemon_process)
    due = datetime.now(UTC) + timedelta(seconds=3)
    for i in range(200):
        notice = create_notice(
            inst.app.engine,
            inst.settings,
            inst.app.clock,
            NoticeDraft(
                "traffic", f"Detour {i}: use Route 4 northbound.", ("x", "facebook"), publish_at=due
            ),
            "dispatcher",
        )
        approve_notice(inst.app.engine, inst.settings, inst.app.clock, notice.id or 0, "chief")

    def all_published() -> bool:
        with Session(inst.app.engine) as session:
            states = [d.state for d in session.exec(select(Delivery))]
        return len(states) == 400 and all(s == "published" for s in states)

    wait_until(all_published, 120)
    received = control.get("received")["accounts"]
    assert sum(int(c.get("created", 0)) for c in received.values()) == 400
    with Session(inst.app.engine) as session:
        owners = {d.lease_owner for d in session.exec(select(Delivery))}
        live = session.exec(select(DaemonInstance)).all()
        wait_until(lambda: len(session.exec(select(Record)).all()) == 400, 30)
        records = session.exec(select(Record)).all()
    assert owners == {None}
    with Session(inst.app.engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "published")).all()
    publishers = {json.loads(e.detail or "{}")["daemon"] for e in events}
    assert len(events) == 400
    assert len(publishers) == 2, "both daemons should have taken a share"
    assert len(live) == 2
    assert len({(r.account, r.remote_id) for r in records}) == 400
    for daemon in (first, second):
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    inst.app.close()


def test_lease_is_renewed_while_a_slow_platform_answers(
    tmp_path: Path,
    pg_schema_url: str,
    sandbox: SandboxServer,
    control: Control,
    daemon_process: MakeDaemon,
) -> None:
    """X answers a post after 12 s while the lease is 5 s and a second daemon is scanning:
    the claim's lease is renewed, so the second daemon never takes the delivery: one post."""
    inst = sandbox_site(tmp_path, pg_schema_url, sandbox, lease=5)
    control.settings(enforce_rate_limits=False)
    control.fault("delay", r"^/2/tweets$", method="POST", seconds=12)
    daemons = start_two(inst, tmp_path, daemon_process)
    inst.clock.set(datetime.now(UTC))  # the daemons run on the wall clock
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.app.clock,
        NoticeDraft("traffic", "Detour: use Route 4 northbound.", ("x",)),
        "dispatcher",
    )
    approve_notice(inst.app.engine, inst.settings, inst.app.clock, notice.id or 0, "chief")

    def delivery() -> Delivery:
        with Session(inst.app.engine) as session:
            row = session.exec(select(Delivery)).one()
        return row

    wait_until(lambda: delivery().state == "published", 40)
    time.sleep(2)  # a second post, had there been one, would be on its way by now
    received = control.get("received")["accounts"]
    assert sum(int(c.get("create_requests", 0)) for c in received.values()) == 1
    assert sum(int(c.get("created", 0)) for c in received.values()) == 1
    assert delivery().attempts == 1
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    inst.app.close()


def test_a_daemon_on_a_second_host_with_local_files_is_refused(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """A live daemon on another host and a local archive store and feed here: the daemon
    refuses to start with one line naming the host and the files; once that daemon's heartbeat
    is stale, it starts."""
    inst = make_instance(tmp_path, pg_schema_url)
    now = inst.clock.now()
    with session_scope(inst.app.engine) as session:
        session.add(
            DaemonInstance(
                owner="records-2:4242:0f0f0f0f",
                host="records-2.example",
                pid=4242,
                version="0",
                started_at=now,
                heartbeat_at=now,
                local_paths=[],
            )
        )
    with pytest.raises(Refused) as refused:
        Daemon(inst.app).prepare()
    line = str(refused.value)
    assert "\n" not in line and "records-2.example" in line
    assert str(inst.settings.archive_path) in line
    assert str(inst.settings.feed_path("feed")) in line
    inst.clock.advance(timedelta(minutes=1))  # its heartbeat is a minute old: it stopped
    Daemon(inst.app).prepare()
    inst.app.close()
