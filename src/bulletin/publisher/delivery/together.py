"""Variants published together (see :mod:`bulletin.publisher.languages` for the rule): a post
in a language other than the primary waits for the primary's posts of its occurrence, and a
variant whose post fails for good stops the other variants' posts not sent yet, unless the
approver chose ``publish_partial``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bulletin.models import Delivery, Notice, NoticeLanguage
from bulletin.publisher.delivery.states import move
from bulletin.states import DeliveryKind, DeliveryState

D = DeliveryState
_WAITING = (D.PENDING, D.IN_FLIGHT, D.UNCERTAIN, D.LATE)
_UNSENT = (D.PENDING, D.LATE)


@dataclass(frozen=True)
class Hold:
    """What a post must do before it goes out: ``wait`` until ``until`` (why), ``fail``
    (why), or go, as a post of its own when ``standalone`` (its parent was not published)."""

    wait: str = ""
    until: datetime | None = None
    fail: str = ""
    standalone: bool = False


def hold_for(session: Session, notice: Notice, delivery: Delivery, now: datetime) -> Hold:
    """Whether ``delivery`` (a post in a language other than the primary) may go now."""
    if delivery.kind != DeliveryKind.POST or delivery.lang in ("", notice.lang):
        return Hold()
    primaries = session.exec(
        select(Delivery)
        .where(Delivery.notice_id == notice.id)
        .where(Delivery.occurrence == delivery.occurrence)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(Delivery.lang == notice.lang)
        .order_by(col(Delivery.id))
    ).all()
    waiting = [d for d in primaries if d.state in _WAITING]
    if waiting:
        due = max((d.due_at for d in waiting if d.due_at is not None), default=now)
        return Hold(
            wait=f"waiting for the {notice.lang} post on "
            + ", ".join(sorted({d.account for d in waiting})),
            until=max(due, now + timedelta(seconds=1)),
        )
    parent = next((d for d in primaries if d.id == delivery.parent_id), None)
    parent_out = parent is None or parent.state == D.PUBLISHED
    any_out = not primaries or any(d.state == D.PUBLISHED for d in primaries)
    if not notice.publish_partial and not (parent_out and any_out):
        return Hold(
            fail=f"published together: the {notice.lang} post was not published "
            "(approve with publish-partial to let languages go on their own)"
        )
    return Hold(standalone=not parent_out)


def stop_siblings(session: Session, notice: Notice, failed: Delivery) -> list[Delivery]:
    """After ``failed`` (a post) failed for good: fail the posts of its occurrence in other
    languages that were not sent yet, naming it; none with ``publish_partial``. Returns them
    (their final state is to be audited)."""
    if failed.kind != DeliveryKind.POST or notice.publish_partial:
        return []
    siblings = session.exec(
        select(Delivery)
        .where(Delivery.notice_id == notice.id)
        .where(Delivery.occurrence == failed.occurrence)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(Delivery.lang != failed.lang)
        .where(col(Delivery.state).in_(_UNSENT))
        .with_for_update()
    ).all()
    for sibling in siblings:
        move(sibling, D.FAILED)
        sibling.last_error = (
            f"published together: the {failed.lang} post on {failed.account} failed"
        )
        session.add(sibling)
    return list(siblings)


def variant_alts(session: Session, notice: Notice, lang: str) -> list[str]:
    """The alt texts of ``notice``'s images in ``lang`` (empty: the primary's)."""
    if not lang or lang == notice.lang:
        return []
    row = session.exec(
        select(NoticeLanguage)
        .where(NoticeLanguage.notice_id == notice.id)
        .where(NoticeLanguage.lang == lang)
    ).first()
    return list(row.alts or []) if row is not None else []
