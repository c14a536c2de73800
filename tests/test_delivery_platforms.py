"""Delivery to X and Facebook through the sandbox: faults never double or lose a post."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict, Unpack

import pytest
from sqlmodel import Session, col, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import Delivery, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import running
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts
from tests.test_daemon_process import wait_until

ACCOUNT_KEYS = {"x": "x", "facebook": "facebook"}


@pytest.fixture
def platforms(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with sandbox X and Facebook accounts, fast retries, on each database."""
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url))
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


class DraftOptions(TypedDict, total=False):
    """What the tests here set of a :class:`NoticeDraft` beyond its category, text, targets."""

    publish_at: datetime
    expires_at: datetime
    recurrence: str
    until_cancelled: bool
    follow_up: str


def approve(
    inst: Instance,
    text: str,
    *targets: str,
    category: str = "traffic",
    **options: Unpack[DraftOptions],
) -> int:
    draft = NoticeDraft(category, text, targets, **options)
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher")
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
    return notice.id or 0


def worker(inst: Instance, owner: str = "w") -> DeliveryWorker:
    app = inst.app
    return DeliveryWorker(app.engine, app.settings, app.clock, app.archiver, app.connector, owner)


def drain(inst: Instance, w: DeliveryWorker, rounds: int = 20) -> None:
    for _ in range(rounds):
        claims = w.claim()
        if not claims:
            inst.clock.advance(timedelta(seconds=30))
            continue
        for claim in claims:
            w.run(claim)


def deliveries(inst: Instance) -> list[Delivery]:
    with Session(inst.app.engine) as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.id))))


def created_posts(control: Control) -> int:
    counts = control.get("received")["accounts"]
    return sum(int(c.get("created", 0)) for c in counts.values())


def test_publish_to_x_and_facebook_and_archive(platforms: Instance, control: Control) -> None:
    """One notice reaches both platforms once and each post is archived as training."""
    approve(platforms, "Route 2 eastbound closed at exit 53 until 4 pm.", "x", "facebook")
    drain(platforms, worker(platforms))
    assert [d.state for d in deliveries(platforms)] == ["published", "published"]
    assert created_posts(control) == 2
    with Session(platforms.app.engine) as session:
        records = session.exec(select(Record)).all()
    assert sorted(r.platform for r in records) == ["facebook", "x"]
    assert all(r.training for r in records)


def test_timeout_after_the_post_was_made_is_reconciled(
    platforms: Instance, control: Control
) -> None:
    """The platform commits the post but the answer times out and the platform cannot be
    checked at once: the delivery stays uncertain until it can be, then is found there;
    never a second post."""
    control.fault("timeout", r"/2/tweets$", method="POST", count=10, seconds=1.5)
    control.fault("error", r"/2/users/.*/tweets$", method="GET", count=1000, status=503)
    approve(platforms, "Water main break: Elm St closed.", "x")
    w = worker(platforms)
    first = w.run(w.claim()[0])
    assert first.state == "uncertain"
    platforms.clock.advance(timedelta(seconds=5))
    again = w.run(w.claim()[0])  # the check itself fails: still uncertain, nothing posted
    assert again.state == "uncertain"
    assert created_posts(control) == 1
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    drain(platforms, w)
    assert [d.state for d in deliveries(platforms)] == ["published"]
    assert created_posts(control) == 1


def test_long_rate_limit_is_stored_not_waited(platforms: Instance, control: Control) -> None:
    """A 429 that resets in an hour defers the delivery to an hour from now on the instance's
    clock (X's reset counted from X's own Date, whatever the calendar); the worker does not
    sleep."""
    control.fault("rate_limit", r"/2/tweets$", method="POST", count=1, seconds=3600)
    approve(platforms, "Snow emergency parking ban tonight.", "x")
    w = worker(platforms)
    outcome = w.run(w.claim()[0])
    assert outcome.state == "pending"
    assert outcome.deferred_until is not None
    wait = outcome.deferred_until - platforms.clock.now()
    assert timedelta(minutes=50) < wait < timedelta(minutes=70)
    assert w.claim() == []
    platforms.clock.set(outcome.deferred_until + timedelta(seconds=1))
    drain(platforms, w)
    assert [d.state for d in deliveries(platforms)] == ["published"]
    assert created_posts(control) == 1


def test_duplicate_and_expired_token_fail_with_reason(
    platforms: Instance, control: Control
) -> None:
    """A duplicate refusal and an expired token are final: failed with the reason, no retry."""
    control.fault("duplicate", r"/2/tweets$", method="POST", count=1)
    control.fault("expired_token", r"/feed$", method="POST", count=1)
    approve(platforms, "Lost dog found near the library.", "x", "facebook")
    drain(platforms, worker(platforms))
    states = [(d.account, d.state) for d in deliveries(platforms)]
    assert states == [("x", "failed"), ("facebook", "failed")]
    reasons = [d.last_error or "" for d in deliveries(platforms)]
    assert "duplicate" in reasons[0].lower()
    assert created_posts(control) == 0


def test_outage_keeps_emergency_trying_until_expiry(platforms: Instance, control: Control) -> None:
    """During a long outage an emergency notice keeps being retried until its expiry, then
    fails with the reason; it is never published after expiry."""
    control.fault("error", r"/2/tweets$", method="POST", count=10_000, status=503)
    approve(
        platforms,
        "Evacuate Zone A now.",
        "x",
        category="evacuation",
        expires_at=platforms.clock.now() + timedelta(hours=2),
    )
    w = worker(platforms)
    attempts = 0
    for _ in range(200):
        claims = w.claim()
        for claim in claims:
            attempts += 1
            w.run(claim)
        [d] = deliveries(platforms)
        if d.state == "failed":
            break
        platforms.clock.advance(timedelta(minutes=5))
    [d] = deliveries(platforms)
    assert d.state == "failed"
    assert attempts > 5
    assert created_posts(control) == 0


def test_account_check_through_the_cli(platforms: Instance, control: Control) -> None:
    """account check says what works; with an expired token it names the failure, exit 1."""

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("BULLETIN_")}
    ok = invoke(platforms, "account", "check", "x", env=env)
    assert ok.exit_code == 0, ok.output
    assert "ok  credentials" in ok.output and "7 days" in ok.output
    control.fault("expired_token", r"/me", count=20)
    bad = invoke(platforms, "account", "check", "facebook", env=env)
    assert bad.exit_code == 1
    assert "NO " in bad.output


def test_a_stuck_platform_never_delays_another_account(
    platforms: Instance, control: Control
) -> None:
    """X holds a post for 15 s; an emergency Facebook notice approved meanwhile is published
    while the X post is still in flight, and X is still published exactly once."""
    inst = platforms
    inst.app.connector_options = {"retry": FAST_RETRY}  # the default timeouts: X is slow
    control.fault("delay", r"^/2/tweets$", method="POST", seconds=15)

    def state(notice_id: int) -> str:
        return next(d.state for d in deliveries(inst) if d.notice_id == notice_id)

    with running(inst.app):
        routine = approve(inst, "Route 4 detour at the bridge until 6 pm.", "x")
        wait_until(lambda: not control.get("faults")["faults"], 20)  # X has the post, stalling
        emergency = approve(
            inst, "Shelter in place: gas leak on Main St.", "facebook", category="shelter-in-place"
        )
        wait_until(lambda: state(emergency) == "published", 12, lambda: state(emergency))
        assert state(routine) == "in-flight"
        wait_until(lambda: state(routine) == "published", 40, lambda: state(routine))
    counts = control.get("received")["accounts"]
    x_counts = next(c for key, c in counts.items() if key.startswith("x:"))
    assert (x_counts["create_requests"], x_counts["created"]) == (1, 1)
