"""Records requests: a statutory deadline in business days, and a hold on the scope while open.

The due date is ``[requests] response_days`` business days after the day of receipt (weekends
and the public holidays of the jurisdiction skipped; see :mod:`bulletin.business_days`),
plus any extensions, each counted the same way. Opening a request places a hold on every record
its query matches (and on records captured later that match); closing it releases that hold,
and a record leaves legal hold only when no other open hold or request covers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import decisions, holds
from bulletin.archiver.store.base import WormStore
from bulletin.business_days import BusinessCalendar, due_date
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.events import record_events
from bulletin.models import RecordsRequest, RequestEntry

# No records request is older than the archive: an earlier received date is a typo (0001-01-01).
EARLIEST_RECEIVED = date(1990, 1, 1)
# A year of business days: a longer extension is a typo, and past a calendar's last day.
MAX_EXTENSION_DAYS = 260


def calendar_for(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(settings.requests.jurisdiction or settings.agency.jurisdiction)


def compute_due(settings: Settings, received: date, extension_days: int = 0) -> date:
    """The response deadline of a request received on ``received``."""
    rule = settings.requests
    return due_date(
        received,
        rule.response_days + extension_days,
        business_days=rule.business_days,
        calendar=calendar_for(settings) if rule.business_days else None,
    )


def today(settings: Settings, now: datetime) -> date:
    """The agency's date at ``now``."""
    return now.astimezone(ZoneInfo(settings.agency.time_zone)).date()


def days_left(settings: Settings, request: RecordsRequest, now: datetime) -> int:
    """Days (business days under the business-day rule) until the deadline; negative: overdue."""
    start = today(settings, now)
    if settings.requests.business_days:
        return calendar_for(settings).business_days_between(start, request.due_on)
    return (request.due_on - start).days


def open_request(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    *,
    requester: str,
    received: date,
    description: str,
    query: holds.Query,
    litigation: bool,
    actor: str,
    now: datetime,
    allow_empty: bool = False,
) -> tuple[RecordsRequest, int]:
    """Record a request, compute its deadline and hold its scope; returns it and how many
    records the hold covers.

    :raises UsageError: no requester or description, a received date in the future or before
        1990, or a query that cannot be evaluated.
    :raises Refused: the query matches no archived record and ``allow_empty`` is false.
    """
    if not requester.strip():
        raise UsageError("a request needs a requester", remedy="requester")
    if not description.strip():
        raise UsageError("a request needs a description", remedy="description")
    if received > today(settings, now):
        raise UsageError(f"received date {received} is in the future")
    if received < EARLIEST_RECEIVED:
        raise UsageError(
            f"received date {received} is before {EARLIEST_RECEIVED.year}; "
            "give the date the request arrived"
        )
    holds.refuse_empty(engine, query, settings.agency.time_zone, "request", allow_empty=allow_empty)
    due = compute_due(settings, received)
    with session_scope(engine) as session:
        request = RecordsRequest(
            requester=requester,
            description=description,
            query=query.to_json(),
            litigation=litigation,
            received_on=received,
            due_on=due,
            opened_by=actor,
            opened_at=now,
        )
        session.add(request)
        session.flush()
        assert request.id is not None
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="request-opened",
            object_type="request",
            object_id=request.id,
            requester=requester,
            received=received.isoformat(),
            due=due.isoformat(),
            litigation=litigation,
            query=query.describe(),
        )
    assert request.id is not None
    kind = "litigation hold" if litigation else "records request"
    hold, count = holds.create_hold(
        engine,
        store,
        name=f"request {request.id}",
        query=query,
        reason=f"{kind} {request.id} from {requester}: {description}",
        actor=actor,
        now=now,
        time_zone=settings.agency.time_zone,
        request_id=request.id,
        allow_empty=True,
    )
    with session_scope(engine) as session:
        row = session.get(RecordsRequest, request.id)
        assert row is not None
        row.hold_id = hold.id
        session.add(row)
    request.hold_id = hold.id
    decisions.mirror_requests(engine, store, [request.id], now)
    return request, count


def get_request(engine: Engine, request_id: int) -> RecordsRequest:
    with Session(engine) as session:
        request = session.get(RecordsRequest, request_id)
    if request is None:
        raise NotFound(f"no records request {request_id}")
    return request


def extend_request(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    request_id: int,
    *,
    days: int,
    reason: str,
    actor: str,
    now: datetime,
) -> RecordsRequest:
    """Extend the deadline by ``days`` (business days under the business-day rule); the
    request as it now stands is mirrored into ``store``.

    :raises UsageError: ``days`` is not 1 to ``MAX_EXTENSION_DAYS``, or no reason is given.
    :raises Refused: the request is closed.
    """
    if days < 1:
        raise UsageError("an extension is at least one day")
    if days > MAX_EXTENSION_DAYS:
        raise UsageError(f"an extension is at most {MAX_EXTENSION_DAYS} business days")
    if not reason.strip():
        raise UsageError("an extension needs a reason", remedy="reason")
    with session_scope(engine) as session:
        request = session.get(RecordsRequest, request_id)
        if request is None:
            raise NotFound(f"no records request {request_id}")
        if request.state != "open":
            raise Refused(f"records request {request_id} is closed")
        before = request.due_on
        request.extension_days += days
        request.extension_reason = "; ".join(filter(None, [request.extension_reason, reason]))
        request.due_on = compute_due(settings, request.received_on, request.extension_days)
        session.add(request)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="request-extended",
            object_type="request",
            object_id=request_id,
            reason=reason,
            days=days,
            due_before=before.isoformat(),
            due=request.due_on.isoformat(),
        )
    decisions.mirror_requests(engine, store, [request_id], now)
    return request


def close_request(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    request_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> tuple[RecordsRequest, int]:
    """Close a request and release its hold; returns it and how many records left legal hold.

    :raises Refused: already closed.
    """
    if not reason.strip():
        raise UsageError("closing a request needs a reason", remedy="reason")
    with session_scope(engine) as session:
        request = session.get(RecordsRequest, request_id)
        if request is None:
            raise NotFound(f"no records request {request_id}")
        if request.state != "open":
            raise Refused(f"records request {request_id} was already closed by {request.closed_by}")
        request.state = "closed"
        request.closed_by = actor
        request.closed_at = now
        request.close_reason = reason
        session.add(request)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="request-closed",
            object_type="request",
            object_id=request_id,
            reason=reason,
            late=today(settings, now) > request.due_on,
        )
    freed = 0
    if request.hold_id is not None:
        freed = holds.release_hold(
            engine,
            store,
            request.hold_id,
            reason=f"records request {request_id} closed: {reason}",
            actor=actor,
            now=now,
            settings=settings,
            by_request=True,
        )
    decisions.mirror_requests(engine, store, [request_id], now)
    return request, freed


@dataclass(frozen=True)
class RequestRow:
    request: RecordsRequest
    days_left: int


def list_requests(
    engine: Engine, settings: Settings, now: datetime, include_closed: bool = False
) -> list[RequestRow]:
    """Requests, the soonest due first."""
    with Session(engine) as session:
        stmt = select(RecordsRequest).order_by(col(RecordsRequest.due_on), col(RecordsRequest.id))
        if not include_closed:
            stmt = stmt.where(col(RecordsRequest.state) == "open")
        rows = session.exec(stmt).all()
    return [RequestRow(r, days_left(settings, r, now)) for r in rows]


def deadlines_near(engine: Engine, settings: Settings, now: datetime) -> list[RequestRow]:
    """Open requests due within ``[requests] warn_days`` days (business days under the
    business-day rule), or overdue; the soonest first."""
    return [
        row
        for row in list_requests(engine, settings, now)
        if row.days_left <= settings.requests.warn_days
    ]


def announce_deadlines(engine: Engine, rows: Sequence[RequestRow], now: datetime) -> None:
    """A ``request.due_soon`` event for each of ``rows`` (ids and dates, never the requester
    or the description)."""
    payloads = [
        {
            "request": r.request.id,
            "due_on": r.request.due_on.isoformat(),
            "days_left": r.days_left,
            "litigation": r.request.litigation,
        }
        for r in rows
    ]
    with session_scope(engine) as session:
        record_events(session, "request.due_soon", payloads, at=now)


def deadline_text(row: RequestRow, settings: Settings) -> str:
    """e.g. ``request 12 (Lexington Minuteman) due 2026-12-10: 2 business days left``."""
    unit = "business day" if settings.requests.business_days else "day"
    r = row.request
    n = abs(row.days_left)
    days = f"{n} {unit}{'' if n == 1 else 's'}"
    if row.days_left < 0:
        when = f"OVERDUE by {days}"
    elif row.days_left == 0:
        when = "due today"
    else:
        when = f"{days} left"
    return f"request {r.id} ({r.requester}) due {r.due_on.isoformat()}: {when}"


#: the largest fee one entry records, in cents
MAX_FEE_CENTS = 100_000_000


def add_entry(
    engine: Engine,
    request_id: int,
    *,
    kind: str,
    text: str,
    actor: str,
    now: datetime,
    amount_cents: int | None = None,
) -> RequestEntry:
    """Record a correspondence note (``kind`` ``note``) or a fee (``fee``, with
    ``amount_cents``) on request ``request_id``, audited.

    :raises NotFound: no such request.
    :raises UsageError: no text; a fee without an amount, or out of bounds.
    """
    if not text.strip():
        raise UsageError("say what the note or fee is", remedy="text")
    if kind == "fee" and (amount_cents is None or not 0 < amount_cents <= MAX_FEE_CENTS):
        raise UsageError("a fee is an amount above zero, at most 1,000,000.00")
    with Session(engine, expire_on_commit=False) as session:
        if session.get(RecordsRequest, request_id) is None:
            raise NotFound(f"no records request {request_id}")
        entry = RequestEntry(
            request_id=request_id,
            kind=kind,
            text=text.strip(),
            amount_cents=amount_cents if kind == "fee" else None,
            created_by=actor,
            created_at=now,
        )
        session.add(entry)
        session.flush()
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action=f"request-{kind}-added",
            object_type="request",
            object_id=request_id,
            entry=entry.id,
            amount_cents=entry.amount_cents,
        )
        session.commit()
        session.expunge(entry)
    return entry


def entries(engine: Engine, request_id: int) -> list[RequestEntry]:
    """The notes and fees of request ``request_id``, oldest first."""
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(RequestEntry)
                .where(RequestEntry.request_id == request_id)
                .order_by(col(RequestEntry.id))
            )
        )
        session.expunge_all()
    return rows
