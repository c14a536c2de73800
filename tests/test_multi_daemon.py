"""Several daemons on one PostgreSQL database never post a notice twice."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import AuditEvent, DaemonInstance, Delivery, Record
from bulletin.publisher.notices import NoticeDraft, approve_notice, create_notice
from tests.plugins.bulletin_app import make_instance
from tests.plugins.sandbox import Control, sandbox_accounts
from tests.test_daemon_process import MakeDaemon, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_two_daemons_publish_200_notices_exactly_once(
    tmp_path: Path,
    pg_schema_url: str,
    sandbox: SandboxServer,
    control: Control,
    daemon_process: MakeDaemon,
) -> None:
    """Two daemon processes on one PostgreSQL schema, 200 notices to X and Facebook due within
    seconds: the sandbox receives each exactly once, and each is archived once."""
    inst = make_instance(
        tmp_path,
        pg_schema_url,
        "[daemon]\nlease_seconds = 30\n"
        + sandbox_accounts(
            sandbox.url,
            x_extra="capture_interval = 3600",
            facebook_extra="capture_interval = 3600",
        ),
    )
    control.settings(enforce_rate_limits=False)
    first = daemon_process(inst.env(), tmp_path).start()
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = daemon_process(inst.env(), second_dir).start()
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
