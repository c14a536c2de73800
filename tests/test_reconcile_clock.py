"""Reconciliation after an ambiguous publish does not depend on this host's clock: the post is
found by its text, and a duplicate refusal after an uncertain attempt finds the live post."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from structlog.testing import capture_logs

from bulletin.connectors.retry import RetryPolicy
from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import Delivery, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker
from bulletin.publisher.notices import NoticeDraft, create_notice
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.sandbox import FAST_TIMEOUT, Control, sandbox_accounts

# One try per call: the ambiguous outcome reaches the worker, which reconciles it later.
ONE_TRY = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05, jitter=0.01, budget=1.0)
CREATE_PATHS = {"x": r"^/2/tweets$", "facebook": r"/feed$"}


@pytest.fixture
def ahead(tmp_path: Path, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin on SQLite with sandbox X and Facebook accounts, one try per call."""
    inst = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", sandbox_accounts(sandbox.url)
    )
    # the app gives its connectors its own clock: the skew is measured against it
    inst.app.connector_options = {"retry": ONE_TRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


@pytest.mark.parametrize("account", ["x", "facebook"])
@pytest.mark.parametrize(
    "skew", [timedelta(seconds=90), timedelta(days=2)], ids=["90s ahead", "2 days ahead"]
)
def test_uncertain_post_is_found_whatever_the_host_clock(
    ahead: Instance, control: Control, account: str, skew: timedelta
) -> None:
    """The daemon's clock runs ahead of the platform's (the sandbox stamps posts with the
    real time); the platform makes the post but the answer is lost. The delivery is
    reconciled to that post (90 s: by its text; 2 days, beyond the look-up window: through
    the duplicate refusal of the retry), never posted twice nor marked failed, and archived;
    the skew is logged."""
    inst = ahead
    inst.clock.set(datetime.now(UTC) + skew)
    control.fault("timeout", CREATE_PATHS[account], method="POST", count=1, seconds=1.5)
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft("traffic", "Water main break: Elm St closed until 5 pm.", (account,)),
        "dispatcher",
    )
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
    app = inst.app
    worker = DeliveryWorker(app.engine, app.settings, app.clock, app.archiver, app.connector, "w")
    with capture_logs() as logged:
        assert worker.run(worker.claim()[0]).state == "uncertain"
        inst.clock.advance(timedelta(seconds=5))
        outcome = worker.run(worker.claim()[0])
    assert outcome.state == "published", outcome
    received = control.get("received")["accounts"].values()
    assert sum(int(counts.get("created", 0)) for counts in received) == 1
    with Session(app.engine) as session:
        delivery = session.exec(select(Delivery)).one()
        records = session.exec(select(Record).where(Record.kind == "post")).all()
    assert delivery.state == "published"
    assert [r.remote_id for r in records] == [delivery.remote_id]
    assert delivery.archived_record_id == records[0].id
    skews = [e for e in logged if e["event"] == "clock skew"]
    assert skews and skews[0]["account"] == account
    assert abs(skews[0]["seconds"] - skew.total_seconds()) < 10
