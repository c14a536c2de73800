"""Failed deliveries that a person has not seen yet, and finding notices by state.

A delivery that failed (a post, or a reply or deletion after it) needs a person: it shows in
``bulletin status --check``, the metrics and ``notice list --state failed`` until someone
acknowledges it (``bulletin notice ack ID``, an audit event on the notice) or it is older
than :data:`FAILED_WINDOW`. A post that failed on a notice later retracted counts as seen:
someone acted on that notice since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.clock import utc
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.models import AuditEvent, Delivery, Notice
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

#: every state a notice can be in (``expired`` is kept for notices of earlier versions)
NOTICE_STATES = tuple(NoticeState)
#: how long a failed delivery nobody acknowledged keeps asking for a person
FAILED_WINDOW = timedelta(days=7)
ACKNOWLEDGED = "failures-acknowledged"


@dataclass(frozen=True)
class FailedNotice:
    """A notice with failed deliveries nobody has acknowledged: ``label → reason``."""

    notice_id: int
    state: str
    failed: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One line for people: which deliveries failed and why."""
        return f"notice {self.notice_id} ({self.state}): delivery failed: " + "; ".join(
            f"{label}: {why}" for label, why in self.failed.items()
        )


def delivery_label(d: Delivery, primary: str = "") -> str:
    """``feed``, ``feed#3`` (occurrence 3), ``x/correction-1``, ``feed[es]`` (a language
    other than the notice's ``primary``, when given)..."""
    label = d.account + (f"[{d.lang}]" if primary and d.lang and d.lang != primary else "")
    label += f"#{d.occurrence}" if d.occurrence != 1 else ""
    if d.kind != DeliveryKind.POST:
        label += f"/{d.kind}" + (f"-{d.revision}" if d.revision else "")
    return label


def unseen_failures(session: Session, now: datetime) -> list[FailedNotice]:
    """Notices with a delivery that failed within :data:`FAILED_WINDOW` of ``now`` and was not
    acknowledged since, oldest notice first."""
    rows = session.exec(
        select(Delivery, Notice.state)
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(col(Delivery.state) == DeliveryState.FAILED)
        .where(col(Delivery.due_at) >= now - FAILED_WINDOW)
        .order_by(col(Delivery.notice_id), col(Delivery.id))
    ).all()
    if not rows:
        return []
    ids = sorted({str(d.notice_id) for d, _ in rows})
    acked: dict[int, datetime] = {
        int(object_id): utc(at)
        for object_id, at in session.exec(
            select(AuditEvent.object_id, sa.func.max(AuditEvent.at))
            .where(AuditEvent.object_type == "notice")
            .where(AuditEvent.action == ACKNOWLEDGED)
            .where(col(AuditEvent.object_id).in_(ids))
            .group_by(col(AuditEvent.object_id))
        ).all()
    }
    found: dict[int, FailedNotice] = {}
    for d, state in rows:
        seen = acked.get(d.notice_id)
        if seen is not None and d.due_at is not None and utc(d.due_at) <= seen:
            continue
        if d.kind == DeliveryKind.POST and state == NoticeState.RETRACTED:
            continue
        entry = found.setdefault(d.notice_id, FailedNotice(d.notice_id, state))
        entry.failed[delivery_label(d)] = d.last_error or "no reason recorded"
    return list(found.values())


def acknowledge(engine: Engine, now: datetime, notice_id: int, actor: str, reason: str) -> int:
    """Record that a person has seen the notice's failed deliveries; returns how many there
    were. Later failures of the notice ask again.

    :raises NotFound: no such notice. :raises Refused: none of its deliveries failed.
    """
    with session_scope(engine) as session:
        if session.get(Notice, notice_id) is None:
            raise NotFound(f"no notice {notice_id}")
        failed = session.exec(
            select(sa.func.count())
            .select_from(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(col(Delivery.state) == DeliveryState.FAILED)
        ).one()
        if not failed:
            raise Refused(f"notice {notice_id} has no failed delivery to acknowledge")
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action=ACKNOWLEDGED,
            object_type="notice",
            object_id=notice_id,
            reason=reason.strip() or None,
            failed=int(failed),
        )
    return int(failed)


def state_condition(state: str) -> ColumnElement[bool]:
    """The ``WHERE`` of ``notice list --state``. ``failed`` finds every notice with a failed
    delivery (partially published ones, and failed replies or deletions, too).

    :raises UsageError: an unknown state (the message lists the known ones).
    """
    if state not in NOTICE_STATES:
        raise UsageError(f"unknown notice state {state!r}; one of: {', '.join(NOTICE_STATES)}")
    if state != NoticeState.FAILED:
        return col(Notice.state) == state
    failed = select(Delivery.id).where(
        Delivery.notice_id == Notice.id, col(Delivery.state) == DeliveryState.FAILED
    )
    return sa.or_(col(Notice.state) == NoticeState.FAILED, failed.exists())
