"""Records requests, as a records clerk opens, lists, shows, extends and closes them.

Changing a request needs the clerk role; anyone may read. ``days_left`` counts business days
under the business-day rule (``[requests] business_days``), else calendar days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.archiver import holds, requests
from bulletin.identity import require_role
from bulletin.models import RecordsRequest


@dataclass(frozen=True)
class Rule:
    """The deadline rule in force: ``response_days`` (business days or not) in ``where``."""

    response_days: int
    business_days: bool
    where: str


@dataclass(frozen=True)
class RequestView:
    """A request, its query as text, the days left to its deadline and the records its hold
    covers (``None`` where not counted)."""

    request: RecordsRequest
    query: str
    days_left: int
    records: int | None = None


@dataclass(frozen=True)
class Opened:
    view: RequestView
    rule: Rule


@dataclass(frozen=True)
class Closed:
    view: RequestView
    left_hold: int


def _rule(app: App) -> Rule:
    rule = app.settings.requests
    where = rule.jurisdiction or app.settings.agency.jurisdiction
    return Rule(rule.response_days, rule.business_days, where)


def business_days(app: App) -> bool:
    """Whether deadlines count business days (else calendar days)."""
    return app.settings.requests.business_days


def _view(app: App, found: RecordsRequest, records: int | None = None) -> RequestView:
    query = holds.Query.from_json(found.query).describe()
    left = requests.days_left(app.settings, found, app.clock.now())
    return RequestView(found, query, left, records)


def open_request(
    app: App,
    actor: Actor,
    *,
    requester: str,
    received: date,
    description: str,
    query: str,
    litigation: bool = False,
    allow_empty: bool = False,
) -> Opened:
    """Record a request, compute its due date and hold every record in its scope.

    :raises Refused: ``actor`` is not a clerk; the query matches nothing (remedy
        ``allow-empty``).
    :raises UsageError: no requester or description, an implausible received date, a query
        that does not parse or cannot be evaluated.
    """
    require_role(app.settings, actor.name, "clerk")
    parsed = holds.parse_query(query)
    opened, count = requests.open_request(
        app.checked_engine(),
        app.store,
        app.settings,
        requester=requester,
        received=received,
        description=description,
        query=parsed,
        litigation=litigation,
        actor=actor.name,
        now=app.clock.now(),
        allow_empty=allow_empty,
    )
    return Opened(_view(app, opened, count), _rule(app))


def list_requests(app: App, actor: Actor, *, include_closed: bool = False) -> list[RequestView]:
    """Open requests (with ``include_closed``, all), the soonest due first."""
    rows = requests.list_requests(
        app.checked_engine(), app.settings, app.clock.now(), include_closed
    )
    return [_view(app, r.request) for r in rows]


def show_request(app: App, actor: Actor, request_id: int) -> RequestView:
    """One request, with how many records its hold covers.

    :raises NotFound: no such request.
    """
    engine = app.checked_engine()
    found = requests.get_request(engine, request_id)
    count = len(holds.members(engine, found.hold_id)) if found.hold_id else 0
    return _view(app, found, count)


def extend_request(
    app: App, actor: Actor, request_id: int, *, days: int, reason: str
) -> RequestView:
    """Extend a request's deadline by ``days``.

    :raises Refused: ``actor`` is not a clerk; the request is closed.
    :raises UsageError: ``days`` out of bounds, no reason.
    """
    require_role(app.settings, actor.name, "clerk")
    found = requests.extend_request(
        app.checked_engine(),
        app.store,
        app.settings,
        request_id,
        days=days,
        reason=reason,
        actor=actor.name,
        now=app.clock.now(),
    )
    return _view(app, found)


def close_request(app: App, actor: Actor, request_id: int, *, reason: str) -> Closed:
    """Close a request and release its hold (records another hold covers stay held).

    :raises Refused: ``actor`` is not a clerk; already closed.
    :raises NotFound: no such request.
    """
    require_role(app.settings, actor.name, "clerk")
    found, freed = requests.close_request(
        app.checked_engine(),
        app.store,
        app.settings,
        request_id,
        reason=reason,
        actor=actor.name,
        now=app.clock.now(),
    )
    return Closed(_view(app, found), freed)
