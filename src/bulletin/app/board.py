"""What the console shows about notices, and to whom: the board (what is due, in flight,
published, failed, late), one notice with its audit trail, and the approval queue.

Notices are seen by the roles in :data:`READERS` (a ``reader`` sees, and does nothing else);
a clerk, whose work is records requests, does not see drafts here. The command line's
``notice list``/``show`` (:mod:`bulletin.app.notice_queries`) is the operator's and reads
without a role.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

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
    day: date | None = None,
) -> Board:
    """The board, narrowed to ``state``, ``category``, ``account``, ``text`` and the notices
    scheduled on ``day`` (in the agency's zone, as the week's calendar shows them) when given
    (see :func:`notice_queries.list_notices`).

    :raises Refused: ``actor`` may not see notices. :raises UsageError: an unknown state.
    """
    require_any_role(app, actor, READERS)
    between = local_day(app, day) if day is not None else None
    rows = notice_queries.list_notices(
        app,
        state,
        limit,
        category=category,
        account=account,
        text=text,
        due_between=between,
        occurring=_occurring(app, *between) if between else None,
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
    """One local day of the week: its first entries, earliest first, and how many more it
    holds beyond them (``more``; the board filtered to the day lists them)."""

    day: date
    entries: list[CalendarEntry]
    more: int = 0


#: the notice states whose scheduled posts the calendar shows
SCHEDULED = (NoticeState.DRAFT, NoticeState.APPROVED, NoticeState.PARTIALLY_PUBLISHED)
#: how many entries the calendar shows a day at most
PER_DAY = 25


def local_day(app: App, day: date) -> tuple[datetime, datetime]:
    """The UTC start and end of ``day`` in the agency's zone."""
    zone = ZoneInfo(app.settings.agency.time_zone)
    begin = datetime.combine(day, time(0), zone).astimezone(UTC)
    return begin, datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)


@acts
def week(
    app: App, actor: Actor, start: date | None = None, days: int = 7, per_day: int = PER_DAY
) -> list[CalendarDay]:
    """The ``days`` local days from ``start`` (default: today in the agency's zone) with what
    is scheduled in them: approved posts still due, the occurrences of recurring notices (as
    the publisher computes them, in the agency's zone) and drafts' publish times; at most
    ``per_day`` entries a day, the rest counted.

    However many the week holds, it reads two plain columns (notice, time) of each one-off
    post and draft in it, split into days by their times, and the few columns of the entries
    it shows; only recurring notices are read whole (the publisher computes their
    occurrences from the notice).

    :raises Refused: ``actor`` may not see notices.
    """
    require_any_role(app, actor, READERS)
    zone = ZoneInfo(app.settings.agency.time_zone)
    first = start or app.clock.now().astimezone(zone).date()
    bounds = [local_day(app, first + timedelta(days=i))[0] for i in range(days)]
    begin, end = bounds[0], local_day(app, first + timedelta(days=days - 1))[1]
    one_off = col(Notice.recurrence).is_(None)

    def day_of(at: Any) -> Any:
        """The index of the local day ``at`` falls on, in SQL."""
        return sa.case(*[(at < b, i - 1) for i, b in enumerate(bounds[1:], 1)], else_=days - 1)

    # one-off approved posts still due (a draft's posts get their time at approval), and
    # one-off drafts at their publish time: (time, notice id, local day), distinct
    due_posts = (
        sa.select(
            col(Delivery.due_at).label("at"),
            col(Delivery.notice_id).label("notice_id"),
            day_of(col(Delivery.due_at)).label("day"),
        )
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(col(Delivery.kind) == DeliveryKind.POST)
        .where(col(Delivery.state) == DeliveryState.PENDING)
        .where(col(Delivery.due_at) >= begin, col(Delivery.due_at) < end)
        .where(col(Notice.state).in_([NoticeState.APPROVED, NoticeState.PARTIALLY_PUBLISHED]))
        .where(one_off)
        .distinct()
        .subquery()
    )
    drafts = (
        sa.select(
            col(Notice.publish_at).label("at"),
            col(Notice.id).label("notice_id"),
            day_of(col(Notice.publish_at)).label("day"),
        )
        .where(col(Notice.state) == NoticeState.DRAFT)
        .where(one_off)
        .where(col(Notice.publish_at) >= begin, col(Notice.publish_at) < end)
        .subquery()
    )
    with Session(app.checked_engine()) as session:
        # the first ``per_day`` of each kind a day, and each day's total
        picked: list[list[tuple[datetime, int, bool]]] = [[] for _ in range(days)]
        totals = [0] * days
        for sub, draft in ((due_posts, False), (drafts, True)):
            for day, count in session.execute(
                sa.select(sub.c.day, sa.func.count()).group_by(sub.c.day)
            ):
                totals[int(day)] += int(count)
            rank = sa.func.row_number().over(
                partition_by=sub.c.day, order_by=(sub.c.at, sub.c.notice_id)
            )
            ranked = sa.select(sub.c.at, sub.c.notice_id, sub.c.day, rank.label("rank")).subquery()
            for at, notice_id, day in session.execute(
                sa.select(ranked.c.at, ranked.c.notice_id, ranked.c.day).where(
                    ranked.c.rank <= per_day
                )
            ):
                picked[int(day)].append((_utc(at), notice_id, draft))
        recurring = _recurring(session)
        wanted = {n for day in picked for _, n, _ in day} | {n.id for n in recurring}
        about: dict[int, tuple[str, str]] = {}
        for notice_id, category, title in session.execute(
            sa.select(col(Notice.id), col(Notice.category), col(Notice.title)).where(
                col(Notice.id).in_(wanted)
            )
        ):
            about[notice_id] = (category, title or category)
        accounts: dict[tuple[int, datetime | None], set[str]] = {}
        for notice_id, due_at, account in session.execute(
            sa.select(col(Delivery.notice_id), col(Delivery.due_at), col(Delivery.account))
            .where(col(Delivery.notice_id).in_(wanted))
            .where(col(Delivery.kind) == DeliveryKind.POST)
            .where(col(Delivery.state) == DeliveryState.PENDING)
        ):
            at = _utc(due_at) if due_at is not None else None
            accounts.setdefault((notice_id, at), set()).add(account)
            accounts.setdefault((notice_id, None), set()).add(account)
    entries: list[list[CalendarEntry]] = [[] for _ in range(days)]
    for i, day in enumerate(picked):
        for at, notice_id, draft in day:
            category, title = about[notice_id]
            targets = accounts.get((notice_id, None if draft else at), set())
            entries[i].append(
                CalendarEntry(at, notice_id, category, title, sorted(targets), False, draft)
            )
    for n in recurring:
        assert n.id is not None
        occurs = _occurrences(app, n, begin, end)
        occurs |= {at for (i, at) in accounts if i == n.id and at and begin <= at < end}
        for at in occurs:
            i = bisect_right(bounds, at) - 1
            targets = accounts.get((n.id, at)) or accounts.get((n.id, None), set())
            entries[i].append(
                CalendarEntry(
                    at,
                    n.id,
                    n.category,
                    n.title or n.category,
                    sorted(targets),
                    True,
                    n.state == NoticeState.DRAFT,
                )
            )
            totals[i] += 1
    shown = []
    for i in range(days):
        first_ones = sorted(entries[i], key=lambda e: (e.at, e.notice_id))[:per_day]
        shown.append(
            CalendarDay(first + timedelta(days=i), first_ones, totals[i] - len(first_ones))
        )
    return shown


def _recurring(session: Session) -> list[Notice]:
    """The recurring notices whose occurrences the calendar shows."""
    return list(
        session.exec(
            select(Notice)
            .where(col(Notice.state).in_([s.value for s in SCHEDULED]))
            .where(col(Notice.recurrence).is_not(None))
        ).all()
    )


def _occurrences(app: App, n: Notice, begin: datetime, end: datetime) -> set[datetime]:
    """The times recurring notice ``n`` falls on from ``begin`` to before ``end``, as the
    publisher computes them (its first publish time included)."""
    if n.publish_at is None:
        return set()
    times = {_utc(n.publish_at)}
    cursor = begin - timedelta(seconds=1)
    while (nxt := schedule.next_occurrence(n, app.settings, cursor)) and nxt < end:
        times.add(_utc(nxt))
        cursor = nxt
    return {at for at in times if begin <= at < end}


def _occurring(app: App, begin: datetime, end: datetime) -> list[int]:
    """The recurring notices with an occurrence from ``begin`` to before ``end``."""
    with Session(app.checked_engine()) as session:
        return [n.id for n in _recurring(session) if n.id and _occurrences(app, n, begin, end)]


def _utc(at: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives it back naive)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
