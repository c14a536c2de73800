"""Drafting, approving and cancelling notices: the rules that refuse bad input."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bulletin.errors import NotFound, Refused, UsageError
from bulletin.models import AuditEvent, Delivery, Notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, cancel_notice, create_notice
from tests.plugins.bulletin_app import Instance

TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."


def draft(**changes: object) -> NoticeDraft:
    base: dict[str, object] = {"category": "road-closure", "text": TEXT, "targets": ("feed",)}
    base.update(changes)
    return NoticeDraft(**base)  # type: ignore[arg-type]


def add(instance: Instance, **changes: object) -> Notice:
    return create_notice(
        instance.app.engine, instance.settings, instance.clock, draft(**changes), "dispatcher1"
    )


def test_draft_gets_priority_deliveries_and_audit(instance: Instance) -> None:
    """A draft takes its category's priority, one pending delivery per target, an audit event."""
    notice = add(instance)
    assert notice.state == "draft"
    assert notice.priority == "advisory"
    with Session(instance.app.engine) as session:
        deliveries = session.exec(select(Delivery)).all()
        events = session.exec(select(AuditEvent)).all()
    assert [(d.account, d.state, d.due_at) for d in deliveries] == [("feed", "pending", None)]
    assert [(e.actor, e.action, e.object_id) for e in events] == [
        ("dispatcher1", "drafted", str(notice.id))
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text": "   "}, "notice text is empty"),
        ({"text": "x" * 5001}, "5001 characters"),
        ({"category": "parade"}, "unknown category 'parade'"),
        ({"targets": ("myspace",)}, "unknown target account 'myspace'"),
        ({"targets": ()}, "at least one target"),
        ({"targets": ("feed", "feed")}, "named twice"),
    ],
)
def test_bad_drafts_are_refused_and_nothing_is_written(
    instance: Instance, changes: dict[str, object], message: str
) -> None:
    """Empty, over-long, unknown category or target: a clear error and no row written."""
    with pytest.raises(UsageError, match=message):
        add(instance, **changes)
    with Session(instance.app.engine) as session:
        assert session.exec(select(Notice)).all() == []
        assert session.exec(select(AuditEvent)).all() == []


def test_publish_time_in_the_past(instance: Instance) -> None:
    """Up to 5 minutes past is accepted; further past needs late_ok."""
    now = instance.clock.now()
    add(instance, publish_at=now - timedelta(minutes=4))
    with pytest.raises(UsageError, match="in the past"):
        add(instance, publish_at=now - timedelta(minutes=10))
    add(instance, publish_at=now - timedelta(minutes=10), late_ok=True)


def test_refused_times_are_shown_in_the_agency_zone(instance: Instance) -> None:
    """A publish time or expiry refused as past is named in the agency's zone, not UTC."""
    now = instance.clock.now()
    zone = ZoneInfo(instance.settings.agency.time_zone)
    past = now - timedelta(minutes=10)
    local = past.astimezone(zone).strftime("%H:%M %Z")
    assert past.astimezone(zone).utcoffset() != timedelta(0)
    with pytest.raises(UsageError, match=f"publish time .*{local}.* in the past") as caught:
        add(instance, publish_at=past)
    assert "+00:00" not in str(caught.value)
    with pytest.raises(UsageError, match=f"expiry .*{local} is already past"):
        add(instance, expires_at=past)


def test_expiry_rules(instance: Instance) -> None:
    """An expiry already past, or before the publish time, is refused."""
    now = instance.clock.now()
    with pytest.raises(UsageError, match="already past"):
        add(instance, expires_at=now - timedelta(minutes=1))
    with pytest.raises(UsageError, match="expire before it is published"):
        add(instance, publish_at=now + timedelta(hours=2), expires_at=now + timedelta(hours=1))


def test_approve_sets_due_time_and_refuses_twice(instance: Instance) -> None:
    """Approval makes deliveries due at the publish time; a second approval is refused."""
    at = instance.clock.now() + timedelta(hours=1)
    notice = add(instance, publish_at=at)
    assert notice.id is not None
    engine = instance.app.engine
    approved = approve_notice(engine, instance.settings, instance.clock, notice.id, "chief")
    assert (approved.state, approved.approved_by) == ("approved", "chief")
    with Session(engine) as session:
        assert [d.due_at for d in session.exec(select(Delivery))] == [at]
    with pytest.raises(Refused, match="already approved"):
        approve_notice(engine, instance.settings, instance.clock, notice.id, "deputy")


def test_approve_after_expiry_is_refused(instance: Instance) -> None:
    """A notice whose expiry passed while it waited for approval cannot be approved."""
    notice = add(instance, expires_at=instance.clock.now() + timedelta(minutes=30))
    instance.clock.advance(timedelta(hours=1))
    with pytest.raises(UsageError, match="already past"):
        approve_notice(instance.app.engine, instance.settings, instance.clock, notice.id or 0, "c")


def test_approving_a_cancelled_notice_is_refused(instance: Instance) -> None:
    """Cancel then approve: refused, and the audit trail holds the cancellation with reason."""
    notice = add(instance)
    engine = instance.app.engine
    cancelled = cancel_notice(engine, instance.clock, notice.id or 0, "sgt", "wrong street")
    assert cancelled.notice.state == "cancelled"
    with pytest.raises(Refused, match="cancelled"):
        approve_notice(engine, instance.settings, instance.clock, notice.id or 0, "chief")
    with Session(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "cancelled")).one()
    assert (event.actor, event.reason) == ("sgt", "wrong street")


def test_unknown_notice(instance: Instance) -> None:
    """Approving a notice that does not exist names it."""
    with pytest.raises(NotFound, match="no notice 99"):
        approve_notice(instance.app.engine, instance.settings, instance.clock, 99, "chief")


def test_self_approval_is_refused_with_users(tmp_path: object, db_url: str) -> None:
    """With [users] configured, an author may not approve their own notice."""
    from pathlib import Path

    from tests.plugins.bulletin_app import make_instance

    inst = make_instance(
        Path(str(tmp_path)),
        db_url,
        '\n[users.dana]\nroles = ["dispatcher", "approver"]\n',
    )
    try:
        notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft(), "dana")
        with pytest.raises(Refused, match="may not approve it"):
            approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "dana")
    finally:
        inst.app.close()
