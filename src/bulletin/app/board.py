"""What the console shows about notices, and to whom: the board (what is due, in flight,
published, failed, late), one notice with its audit trail, and the approval queue.

Notices are seen by the roles in :data:`READERS` (a ``reader`` sees, and does nothing else);
a clerk, whose work is records requests, does not see drafts here. The command line's
``notice list``/``show`` (:mod:`bulletin.app.notice_queries`) is the operator's and reads
without a role.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, or_, select

from bulletin.app import notice_queries
from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.config.site import Role
from bulletin.errors import Refused
from bulletin.identity import require_role
from bulletin.models import AuditEvent, Delivery, Notice
from bulletin.publisher.failures import delivery_label
from bulletin.publisher.schedule import LateNotice
from bulletin.states import NoticeState

#: the roles that may see notices (the board, a notice, the approval queue)
READERS: tuple[Role, ...] = ("reader", "dispatcher", "approver", "admin")
AUDIT_LINES = 200


def require_any_role(app: App, actor: Actor, roles: tuple[Role, ...]) -> None:
    """``actor`` exists, is not disabled and holds one of ``roles`` (open mode: anyone).

    :raises Refused: unknown, disabled, or none of the roles.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, None, engine)
    for role in roles:
        try:
            require_role(app.settings, actor.name, role, engine)
            return
        except Refused:
            continue
    raise Refused(f"user {actor.name!r} holds none of the roles {', '.join(roles)}")


@dataclass(frozen=True)
class DeliveryLine:
    """One delivery as the board shows it: its label, state, post link, and why it needs a
    person (failed, uncertain, late)."""

    label: str
    state: str
    url: str | None
    problem: str | None


@dataclass(frozen=True)
class BoardRow:
    """One notice of the board with its current deliveries and when it is due next."""

    row: notice_queries.NoticeRow
    deliveries: list[DeliveryLine]


@dataclass(frozen=True)
class Board:
    """The board: notices newest first, and the notices whose time passed while no daemon
    ran (waiting for a decision)."""

    rows: list[BoardRow]
    late: list[LateNotice]


@dataclass(frozen=True)
class TrailLine:
    """One audit event about a notice (``about``: ``notice``) or one of its deliveries
    (``about``: the delivery's label)."""

    event: AuditEvent
    about: str


@dataclass(frozen=True)
class NoticePage:
    """One notice in full and its audit trail (its deliveries' events too), oldest first."""

    view: notice_queries.NoticeView
    trail: list[TrailLine]


@acts
def board(app: App, actor: Actor, state: str | None = None, limit: int = 50) -> Board:
    """The board, ``state`` only when given (see :func:`notice_queries.list_notices`).

    :raises Refused: ``actor`` may not see notices. :raises UsageError: an unknown state.
    """
    require_any_role(app, actor, READERS)
    rows = notice_queries.list_notices(app, state, limit)
    links = _post_links(app, [r.notice.id for r in rows if r.notice.id is not None])
    shown = [
        BoardRow(
            row,
            [
                DeliveryLine(label, st, links.get((row.notice.id, label)), row.problems.get(label))
                for label, st in row.deliveries.items()
            ],
        )
        for row in rows
    ]
    return Board(shown, notice_queries.waiting_for_decision(app))


def _post_links(app: App, notice_ids: list[int]) -> dict[tuple[int | None, str], str]:
    """(notice id, delivery label) → the published post's address, in one query."""
    query = (
        select(Delivery, Notice.lang)
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(col(Delivery.notice_id).in_(notice_ids))
        .where(col(Delivery.remote_url).is_not(None))
    )
    with Session(app.checked_engine()) as session:
        return {
            (d.notice_id, delivery_label(d, lang)): d.remote_url or ""
            for d, lang in session.exec(query)
        }


@acts
def notice_page(app: App, actor: Actor, notice_id: int) -> NoticePage:
    """One notice with every delivery, approval and audit event about it.

    :raises Refused: ``actor`` may not see notices. :raises NotFound: no such notice.
    """
    require_any_role(app, actor, READERS)
    view = notice_queries.show_notice(app, notice_id)
    labels = {str(d.id): delivery_label(d, view.notice.lang) for d in view.deliveries}
    about_notice = (col(AuditEvent.object_type) == "notice") & (
        col(AuditEvent.object_id) == str(notice_id)
    )
    about_deliveries = (col(AuditEvent.object_type) == "delivery") & (
        col(AuditEvent.object_id).in_(list(labels))
    )
    query = (
        select(AuditEvent)
        .where(or_(about_notice, about_deliveries))
        .order_by(col(AuditEvent.id).desc())
        .limit(AUDIT_LINES)
    )
    with Session(app.checked_engine()) as session:
        events = list(reversed(session.exec(query).all()))
    trail = [
        TrailLine(e, labels.get(e.object_id, "notice") if e.object_type == "delivery" else "notice")
        for e in events
    ]
    return NoticePage(view, trail)


@acts
def approval_queue(app: App, actor: Actor, limit: int = 50) -> list[notice_queries.NoticeView]:
    """The drafts waiting for an approval, oldest first, each with its review (per-target
    text, length, cost, policy findings).

    :raises Refused: ``actor`` may not see notices.
    """
    require_any_role(app, actor, READERS)
    drafts = notice_queries.list_notices(app, NoticeState.DRAFT, limit)
    return [
        notice_queries.show_notice(app, r.notice.id)
        for r in reversed(drafts)
        if r.notice.id is not None
    ]
