"""What the console shows about notices, and to whom: the board (what is due, in flight,
published, failed, late), one notice with its audit trail, and the approval queue.

Notices are seen by the roles in :data:`READERS` (a ``reader`` sees, and does nothing else);
a clerk, whose work is records requests, does not see drafts here. The command line's
``notice list``/``show`` (:mod:`bulletin.app.notice_queries`) is the operator's and reads
without a role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, and_, col, or_, select

from bulletin.app import notice_queries
from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.config.site import Role
from bulletin.errors import Refused
from bulletin.identity import require_role
from bulletin.models import AuditEvent, Delivery, Notice
from bulletin.publisher import schedule
from bulletin.publisher.failures import delivery_label
from bulletin.publisher.schedule import LateNotice
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

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
def board(
    app: App,
    actor: Actor,
    state: str | None = None,
    limit: int = 50,
    *,
    category: str | None = None,
    account: str | None = None,
    text: str | None = None,
) -> Board:
    """The board, narrowed to ``state``, ``category``, ``account`` and ``text`` when given
    (see :func:`notice_queries.list_notices`).

    :raises Refused: ``actor`` may not see notices. :raises UsageError: an unknown state.
    """
    require_any_role(app, actor, READERS)
    rows = notice_queries.list_notices(
        app, state, limit, category=category, account=account, text=text
    )
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


@dataclass(frozen=True)
class CalendarEntry:
    """One post due in the week: when (UTC), which notice, whether it is an occurrence of a
    recurring notice, and whether it still waits for its approval (a draft)."""

    at: datetime
    notice_id: int
    category: str
    title: str
    accounts: list[str]
    recurring: bool
    draft: bool


@dataclass(frozen=True)
class CalendarDay:
    """One local day of the week and its entries, earliest first."""

    day: date
    entries: list[CalendarEntry]


#: the notice states whose scheduled posts the calendar shows
SCHEDULED = (NoticeState.DRAFT, NoticeState.APPROVED, NoticeState.PARTIALLY_PUBLISHED)


@acts
def week(app: App, actor: Actor, start: date | None = None, days: int = 7) -> list[CalendarDay]:
    """The ``days`` local days from ``start`` (default: today in the agency's zone) with what
    is scheduled in them: approved posts still due, the occurrences of recurring notices (as
    the publisher computes them, in the agency's zone) and drafts' publish times.

    :raises Refused: ``actor`` may not see notices.
    """
    require_any_role(app, actor, READERS)
    zone = ZoneInfo(app.settings.agency.time_zone)
    first = start or app.clock.now().astimezone(zone).date()
    begin = datetime.combine(first, time(0), zone).astimezone(UTC)
    end = datetime.combine(first + timedelta(days=days), time(0), zone).astimezone(UTC)
    found: dict[tuple[int, datetime], CalendarEntry] = {}
    # only the notices that can have a time in the week: recurring ones, those published at a
    # time in it (drafts), and those with a post due in it; not every one scheduled
    due_in_week = (
        select(Delivery.notice_id)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(col(Delivery.state) == DeliveryState.PENDING)
        .where(col(Delivery.due_at) >= begin, col(Delivery.due_at) < end)
    )
    shown_ids = (
        select(Notice.id)
        .where(col(Notice.state).in_([s.value for s in SCHEDULED]))
        .where(
            or_(
                col(Notice.recurrence).is_not(None),
                and_(col(Notice.publish_at) >= begin, col(Notice.publish_at) < end),
                col(Notice.id).in_(due_in_week),
            )
        )
    )
    with Session(app.checked_engine()) as session:
        notices = session.exec(select(Notice).where(col(Notice.id).in_(shown_ids))).all()
        pending = session.exec(
            select(Delivery)
            .where(col(Delivery.notice_id).in_(shown_ids))
            .where(Delivery.kind == DeliveryKind.POST)
            .where(col(Delivery.state) == DeliveryState.PENDING)
        ).all()
    accounts: dict[int, set[str]] = {}
    due: dict[int, set[datetime]] = {}
    for d in pending:
        accounts.setdefault(d.notice_id, set()).add(d.account)
        if d.due_at is not None:
            due.setdefault(d.notice_id, set()).add(_utc(d.due_at))
    for n in notices:
        assert n.id is not None
        times = set(due.get(n.id, set()))
        if n.state == NoticeState.DRAFT and n.publish_at is not None:
            times.add(_utc(n.publish_at))
        if n.recurrence and n.publish_at is not None:
            times.add(_utc(n.publish_at))
            cursor = begin - timedelta(seconds=1)
            while (nxt := schedule.next_occurrence(n, app.settings, cursor)) and nxt < end:
                times.add(_utc(nxt))
                cursor = nxt
        for at in times:
            if begin <= at < end:
                found[(n.id, at)] = CalendarEntry(
                    at,
                    n.id,
                    n.category,
                    n.title or n.category,
                    sorted(accounts.get(n.id, set())),
                    bool(n.recurrence),
                    n.state == NoticeState.DRAFT,
                )
    shown = [CalendarDay(first + timedelta(days=i), []) for i in range(days)]
    for entry in sorted(found.values(), key=lambda e: (e.at, e.notice_id)):
        index = (entry.at.astimezone(zone).date() - first).days
        if 0 <= index < days:
            shown[index].entries.append(entry)
    return shown


def _utc(at: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives it back naive)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
