"""Records requests, as a records clerk opens, lists, shows, extends and closes them.

Changing a request needs the clerk role; anyone may read. ``days_left`` counts business days
under the business-day rule (``[requests] business_days``), else calendar days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.archiver import holds, requests
from bulletin.errors import UsageError
from bulletin.identity import require_role
from bulletin.models import RecordsRequest, RequestEntry


@dataclass(frozen=True)
class Rule:
    """The deadline rule in force: ``response_days`` after receipt, counted in business days
    or calendar days, in the jurisdiction ``where``."""

    response_days: int
    business_days: bool
    where: str

    @property
    def unit(self) -> str:
        return "business days" if self.business_days else "calendar days"


@dataclass(frozen=True)
class RequestView:
    """A request and the days left to its deadline; where counted, ``records`` its hold
    covers, and on closing how many records ``left_hold``."""

    request: RecordsRequest
    days_left: int
    records: int | None = None
    left_hold: int | None = None

    @property
    def query(self) -> str:
        """The request's scope, in the query language."""
        return holds.Query.from_json(self.request.query).describe()


def deadline_rule(app: App) -> Rule:
    """The rule due dates are computed by (``[requests]``)."""
    rule = app.settings.requests
    where = rule.jurisdiction or app.settings.agency.jurisdiction
    return Rule(rule.response_days, rule.business_days, where)


def _view(app: App, found: RecordsRequest, **counts: int) -> RequestView:
    return RequestView(found, requests.days_left(app.settings, found, app.clock.now()), **counts)


@acts
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
) -> RequestView:
    """Record a request, compute its due date and hold every record in its scope.

    :raises Refused: ``actor`` is not a clerk; the query matches nothing (remedy
        ``allow-empty``).
    :raises UsageError: no requester or description, an implausible received date, a query
        that does not parse or cannot be evaluated.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    parsed = holds.parse_query(query)
    opened, count = requests.open_request(
        app.checked_engine(),
        app.store,
        app.settings,
        query=parsed,
        requester=requester,
        description=description,
        received=received,
        now=app.clock.now(),
        litigation=litigation,
        allow_empty=allow_empty,
        actor=actor.name,
    )
    return _view(app, opened, records=count)


@acts
def list_requests(app: App, actor: Actor, *, include_closed: bool = False) -> list[RequestView]:
    """Open requests (with ``include_closed``, all), the soonest due first."""
    rows = requests.list_requests(
        app.checked_engine(), app.settings, app.clock.now(), include_closed
    )
    return [_view(app, r.request) for r in rows]


@acts
def show_request(app: App, actor: Actor, request_id: int) -> RequestView:
    """One request, with how many records its hold covers.

    :raises NotFound: no such request.
    """
    engine = app.checked_engine()
    found = requests.get_request(engine, request_id)
    count = len(holds.members(engine, found.hold_id)) if found.hold_id else 0
    return _view(app, found, records=count)


@acts
def extend_request(
    app: App, actor: Actor, request_id: int, *, days: int, reason: str
) -> RequestView:
    """Extend a request's deadline by ``days``.

    :raises Refused: ``actor`` is not a clerk; the request is closed.
    :raises UsageError: ``days`` out of bounds, no reason.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
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


@acts
def close_request(app: App, actor: Actor, request_id: int, *, reason: str) -> RequestView:
    """Close a request and release its hold (records another hold covers stay held).

    :raises Refused: ``actor`` is not a clerk; already closed.
    :raises NotFound: no such request.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    found, freed = requests.close_request(
        app.checked_engine(),
        app.store,
        app.settings,
        request_id,
        reason=reason,
        actor=actor.name,
        now=app.clock.now(),
    )
    return _view(app, found, left_hold=freed)


_AMOUNT = re.compile(r"(\d{1,7})(?:\.(\d{1,2}))?")


def fee_cents(given: str) -> int:
    """An amount typed as ``12`` or ``12.50`` in cents (:raises UsageError: anything else)."""
    found = _AMOUNT.fullmatch(given.strip().removeprefix("$"))
    if found is None:
        raise UsageError(f"the fee {given!r} is not an amount such as 12.50")
    whole, part = found.group(1), (found.group(2) or "0").ljust(2, "0")
    return int(whole) * 100 + int(part)


@acts
def add_note(app: App, actor: Actor, request_id: int, *, text: str) -> RequestEntry:
    """Record a correspondence note on request ``request_id``.

    :raises Refused: ``actor`` is not a clerk. :raises NotFound: no such request.
    :raises UsageError: no text.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    return requests.add_entry(
        app.checked_engine(),
        request_id,
        kind="note",
        text=text,
        actor=actor.name,
        now=app.clock.now(),
    )


@acts
def add_fee(
    app: App, actor: Actor, request_id: int, *, amount_cents: int, text: str
) -> RequestEntry:
    """Record a fee of ``amount_cents`` charged on request ``request_id``, for ``text``.

    :raises Refused: ``actor`` is not a clerk. :raises NotFound: no such request.
    :raises UsageError: no text; an amount out of bounds.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    return requests.add_entry(
        app.checked_engine(),
        request_id,
        kind="fee",
        text=text,
        actor=actor.name,
        now=app.clock.now(),
        amount_cents=amount_cents,
    )


@acts
def request_entries(app: App, actor: Actor, request_id: int) -> list[RequestEntry]:
    """The notes and fees of request ``request_id``, oldest first."""
    return requests.entries(app.checked_engine(), request_id)
