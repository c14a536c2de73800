"""Delivery to the feed: exactly once, through crashes at every step, and faults."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy.exc import StatementError
from sqlmodel import Session, select

from bulletin.connectors.feed import ATOM, FeedConnector
from bulletin.errors import IllegalTransition
from bulletin.models import Delivery, DeliveryAttempt, Notice, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker, outgoing_post
from bulletin.publisher.delivery.states import TRANSITIONS, move
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from bulletin.states import DeliveryState
from tests.plugins.bulletin_app import Instance, feed_entry_id

TEXT = "Road closed: Main St between 1st and 2nd until 6 pm."


def approved_notice(
    instance: Instance,
    text: str = TEXT,
    *,
    publish_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> int:
    draft = NoticeDraft(
        category="road-closure",
        text=text,
        targets=("feed",),
        publish_at=publish_at,
        expires_at=expires_at,
    )
    notice = create_notice(
        instance.app.engine, instance.settings, instance.clock, draft, "dispatcher"
    )
    assert notice.id is not None
    approve_notice(instance.app.engine, instance.settings, instance.clock, notice.id, "chief")
    return notice.id


def worker(instance: Instance, owner: str) -> DeliveryWorker:
    app = instance.app
    return DeliveryWorker(app.engine, app.settings, app.clock, app.archiver, app.connector, owner)


def feed_ids(instance: Instance) -> list[str]:

    path = instance.settings.feed_path("feed")
    if not path.exists():
        return []
    root = SafeET.parse(path).getroot()
    return [e.findtext(f"{{{ATOM}}}id") or "" for e in root.findall(f"{{{ATOM}}}entry")]


def state_of(instance: Instance, notice_id: int) -> tuple[str, list[str], int]:
    with Session(instance.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        deliveries = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()
        records = session.exec(select(Record).where(Record.notice_id == notice_id)).all()
    return notice.state, [d.state for d in deliveries], len(records)


def test_approved_notice_is_published_and_archived(instance: Instance) -> None:
    """The due-scan publishes an approved notice to the feed and archives it once."""
    notice_id = approved_notice(instance)
    daemon = Daemon(instance.app)
    daemon.prepare()
    outcomes = daemon.dispatch_due()
    assert [o.state for o in outcomes] == ["published"]
    assert state_of(instance, notice_id) == ("published", ["published"], 1)
    assert feed_ids(instance) == [feed_entry_id(instance, notice_id)]
    assert daemon.dispatch_due() == []  # nothing left, nothing repeated


def test_future_notice_waits_for_its_time(instance: Instance) -> None:
    """A notice due in an hour is not published before then."""
    notice_id = approved_notice(instance, publish_at=instance.clock.now() + timedelta(hours=1))
    w = worker(instance, "a")
    assert w.claim() == []
    instance.clock.advance(timedelta(minutes=61))
    claims = w.claim()
    assert [w.run(c).state for c in claims] == ["published"]
    assert state_of(instance, notice_id)[0] == "published"


def test_crash_after_claim_before_publish(instance: Instance) -> None:
    """A worker that dies after claiming: the claim expires and another publishes once."""
    notice_id = approved_notice(instance)
    dead = worker(instance, "dead")
    assert len(dead.claim()) == 1  # and then it dies
    survivor = worker(instance, "survivor")
    assert survivor.claim() == []  # the lease still holds
    instance.clock.advance(timedelta(seconds=instance.settings.daemon.lease_seconds + 1))
    claims = survivor.claim()
    assert [c.reconcile for c in claims] == [True]
    assert survivor.run(claims[0]).state == "published"
    assert feed_ids(instance) == [feed_entry_id(instance, notice_id)]
    assert state_of(instance, notice_id) == ("published", ["published"], 1)


def test_crash_after_publish_before_commit(instance: Instance) -> None:
    """The platform got the post but the worker died before recording it: the next worker
    finds the post on the platform and does not post again."""
    notice_id = approved_notice(instance)
    dead = worker(instance, "dead")
    claim = dead.claim()[0]
    with Session(instance.app.engine) as session:
        delivery = session.get(Delivery, claim.delivery_id)
        notice = session.get(Notice, notice_id)
        assert delivery is not None and notice is not None
    FeedConnector.from_settings("feed", instance.settings, {}).publish(
        outgoing_post(notice, delivery)
    )  # the platform call succeeded; the process dies here
    instance.clock.advance(timedelta(seconds=instance.settings.daemon.lease_seconds + 1))
    survivor = worker(instance, "survivor")
    outcome = survivor.run(survivor.claim()[0])
    assert outcome.state == "published"
    assert feed_ids(instance) == [feed_entry_id(instance, notice_id)]
    assert state_of(instance, notice_id) == ("published", ["published"], 1)


def test_crash_after_commit_before_archive(instance: Instance) -> None:
    """Published and recorded but not archived: recovery at start archives it, once."""
    notice_id = approved_notice(instance)
    w = worker(instance, "a")
    claim = w.claim()[0]
    w.archive_published = lambda delivery_id: None  # type: ignore[method-assign]  # dies here
    assert w.run(claim).state == "published"
    assert state_of(instance, notice_id) == ("published", ["published"], 0)
    for _ in range(2):
        Daemon(instance.app).recover()
    assert state_of(instance, notice_id) == ("published", ["published"], 1)


def test_unwritable_feed_is_retried_later_not_lost(instance: Instance, tmp_path: Path) -> None:
    """A feed that cannot be written defers the delivery; once writable, it goes out."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file")
    account = instance.settings.accounts["feed"].model_copy(update={"path": blocker / "feed.xml"})
    instance.app.replace_settings(
        instance.settings.model_copy(update={"accounts": {"feed": account}})
    )
    notice_id = approved_notice(instance)
    w = worker(instance, "a")
    outcome = w.run(w.claim()[0])
    assert outcome.state == "pending"
    assert "cannot write" in outcome.detail
    assert outcome.deferred_until is not None
    blocker.unlink()
    blocker.mkdir()
    instance.clock.set(outcome.deferred_until + timedelta(seconds=1))
    assert [w.run(c).state for c in w.claim()] == ["published"]
    assert state_of(instance, notice_id)[0] == "published"


def test_expired_while_waiting_is_failed_with_reason(instance: Instance) -> None:
    """A delivery whose notice expired before it could go out is failed, never published."""
    notice_id = approved_notice(
        instance,
        publish_at=instance.clock.now() + timedelta(minutes=10),
        expires_at=instance.clock.now() + timedelta(minutes=20),
    )
    instance.clock.advance(timedelta(minutes=30))
    w = worker(instance, "a")
    assert w.claim() == []  # nothing to try: it is failed without an attempt
    assert state_of(instance, notice_id) == ("failed", ["failed"], 0)
    assert feed_ids(instance) == []


def test_two_workers_never_publish_the_same_delivery(instance: Instance) -> None:
    """Claims are exclusive: two workers claiming in turn split the work without overlap."""
    ids = [approved_notice(instance, text=f"{TEXT} ({i})") for i in range(6)]
    a, b = worker(instance, "a"), worker(instance, "b")
    claimed = [c.delivery_id for c in a.claim(limit=3)] + [c.delivery_id for c in b.claim(limit=10)]
    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == len(ids)


def test_archive_failure_after_publish_is_retried_by_the_next_scan(instance: Instance) -> None:
    """The store fails once right after a publish: the delivery stays published (never lost),
    its archiving waits in the database (shown by status) and the next scan archives it."""
    from bulletin.service.status import gather

    notice_id = approved_notice(instance)
    blocker = instance.settings.archive_path / "sha256"  # where objects go, made a regular file
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    daemon = Daemon(instance.app)
    daemon.prepare()
    outcomes = daemon.dispatch_due()
    assert [o.state for o in outcomes] == ["published"]
    assert state_of(instance, notice_id) == ("published", ["published"], 0)
    waiting = gather(instance.app, 5)
    assert waiting.archive_waiting == 1
    assert waiting.archive_error  # the reason, until it is archived
    blocker.unlink()  # the store heals
    assert daemon.dispatch_due() == []  # not due yet: nothing archived, nothing published again
    assert state_of(instance, notice_id)[2] == 0
    instance.clock.advance(timedelta(seconds=20))
    assert Daemon(instance.app).dispatch_due() == []  # a restarted daemon's first scan
    assert state_of(instance, notice_id) == ("published", ["published"], 1)
    assert gather(instance.app, 5).archive_waiting == 0
    assert feed_ids(instance) == [feed_entry_id(instance, notice_id)]


def test_a_deferred_attempt_keeps_the_connectors_code(instance: Instance, tmp_path: Path) -> None:
    """Given a feed that cannot be written, when its delivery is tried, then the attempt
    keeps the connector's error code with the reason."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file")
    account = instance.settings.accounts["feed"].model_copy(update={"path": blocker / "feed.xml"})
    instance.app.replace_settings(
        instance.settings.model_copy(update={"accounts": {"feed": account}})
    )
    approved_notice(instance)
    w = worker(instance, "a")
    outcome = w.run(w.claim()[0])
    with Session(instance.app.engine) as session:
        [attempt] = session.exec(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == outcome.delivery_id)
        ).all()
    assert (attempt.outcome, attempt.error) == ("pending", f"[io-error] {outcome.detail}")


def test_the_state_machine_refuses_an_illegal_move() -> None:
    """A published delivery cannot go back to pending: the move is refused, naming both
    states, and the delivery is unchanged; a legal move is made."""
    published = Delivery(id=7, notice_id=1, account="feed", state=DeliveryState.PUBLISHED)
    with pytest.raises(IllegalTransition, match="delivery 7 cannot go from published to pending"):
        move(published, DeliveryState.PENDING)
    assert published.state == "published"
    waiting = Delivery(id=8, notice_id=1, account="feed")
    move(waiting, DeliveryState.IN_FLIGHT)
    assert waiting.state == "in-flight"
    assert set(TRANSITIONS) == set(DeliveryState)


def test_a_misspelt_state_never_reaches_the_database(instance: Instance) -> None:
    """A state that is not a DeliveryState is refused when written."""
    notice_id = approved_notice(instance)
    with Session(instance.app.engine) as session:
        row = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).one()
        assert row.state is DeliveryState.PENDING
        row.state = "publised"
        session.add(row)
        with pytest.raises(StatementError, match="'publised' is not a valid DeliveryState"):
            session.commit()
