"""The delivery state machine: every allowed move in one table, one function to make a move.

Only :func:`move` changes a delivery's state in this package; it refuses a move the table
does not hold with :class:`~bulletin.errors.IllegalTransition`. Code elsewhere that still sets
``state`` itself makes only moves listed here. The notice's state follows its posts
(:func:`refresh_notice_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session, select

from bulletin import audit
from bulletin.errors import IllegalTransition
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import Delivery, Notice
from bulletin.publisher import announce
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

D = DeliveryState

#: state → the states a delivery may move to from it
TRANSITIONS: Mapping[DeliveryState, frozenset[DeliveryState]] = {
    # claimed; failed unclaimed when its notice expired; cancelled, or late, by a person
    D.PENDING: frozenset({D.IN_FLIGHT, D.FAILED, D.CANCELLED, D.LATE}),
    # claimed again once the platform can be asked
    D.UNCERTAIN: frozenset({D.IN_FLIGHT}),
    # released by a person (sent on, or cancelled)
    D.LATE: frozenset({D.PENDING, D.CANCELLED}),
    # an outcome of the attempt; in-flight again when its lease expired and another claims it
    D.IN_FLIGHT: frozenset(
        {D.IN_FLIGHT, D.PUBLISHED, D.FAILED, D.CANCELLED, D.DELETED, D.PENDING, D.UNCERTAIN}
    ),
    D.PUBLISHED: frozenset(),
    # sent again by a person (bulletin.publisher.retry)
    D.FAILED: frozenset({D.PENDING}),
    D.CANCELLED: frozenset(),
    D.DELETED: frozenset(),
}
#: waiting to be tried (again) once due
RETRY_STATES = (D.PENDING, D.UNCERTAIN)
#: nothing more happens on its own to a delivery in one of these (a person may retry a
#: failed one)
FINAL_STATES = frozenset({D.PUBLISHED, D.FAILED, D.CANCELLED, D.DELETED})
#: a notice whose posts may still go out
LIVE_NOTICE_STATES = (NoticeState.APPROVED, NoticeState.PARTIALLY_PUBLISHED)


def move(delivery: Delivery, to: DeliveryState) -> None:
    """Set ``delivery``'s state to ``to``; raises :class:`IllegalTransition` (and changes
    nothing) when the table does not allow that move from its present state."""
    now = DeliveryState(delivery.state)
    if to not in TRANSITIONS[now]:
        raise IllegalTransition(f"delivery {delivery.id} cannot go from {now} to {to}")
    delivery.state = to


def refresh_notice_state(session: Session, notice_id: int, now: datetime) -> None:
    """Set the notice's state from its posts once all of them are final (a recurring notice:
    once no occurrence is left to come). Replies and deletions do not change it, nor do the
    posts of a language an edit dropped (:meth:`Delivery.live`), nor does anything change a
    retracted notice."""
    notice = session.get(Notice, notice_id)
    if (
        notice is None
        or notice.next_occurrence_at is not None
        or notice.state == NoticeState.RETRACTED
    ):
        return
    states = [
        d.state
        for d in session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == DeliveryKind.POST)
            .where(Delivery.live())
        )
    ]
    if not states or any(s not in FINAL_STATES for s in states):
        return
    published = states.count(D.PUBLISHED)
    if published == len(states):
        new = NoticeState.PUBLISHED
    elif published:
        new = NoticeState.PARTIALLY_PUBLISHED
    elif all(s == D.CANCELLED for s in states):
        new = NoticeState.CANCELLED
    else:
        new = NoticeState.FAILED
    if new != notice.state:
        notice.state = new
        session.add(notice)
        audit.record_event(
            session,
            at=now,
            actor=SYSTEM_ACTOR,
            action=f"notice-{new}",
            object_type="notice",
            object_id=notice_id,
        )
        if new in (NoticeState.PUBLISHED, NoticeState.PARTIALLY_PUBLISHED):
            announce.published(session, notice, now)
