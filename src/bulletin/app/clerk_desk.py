"""What the records clerk's console lists of requests and holds: open records requests by due
date with their urgency, and open legal holds.

Only the roles in :data:`~bulletin.app.record_pages.CLERKS` see these lists, whichever door
asks; the command line's ``request list`` and ``hold list`` (:mod:`bulletin.app.requests`,
:mod:`bulletin.app.holds`) read without a role. Releasing a hold goes through
:func:`bulletin.app.holds.release_hold`, which needs the clerk role.
Before a request or hold is placed, :func:`preview_scope` shows what its scope matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo

from bulletin.app import holds, record_pages, requests
from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.app.record_pages import CLERKS, MAX_HITS
from bulletin.app.requests import RequestView, Rule
from bulletin.archiver import holds as archived_holds
from bulletin.errors import UsageError
from bulletin.models import RequestEntry

Urgency = Literal["overdue", "near", "ok"]


def urgency(days_left: int, warn_days: int) -> Urgency:
    """``overdue`` past the deadline, ``near`` within ``warn_days`` of it, else ``ok``."""
    if days_left < 0:
        return "overdue"
    return "near" if days_left <= warn_days else "ok"


@dataclass(frozen=True)
class DueRequest:
    """An open request, the days left to its deadline (counted by :attr:`Docket.rule`) and
    how urgent that is."""

    view: RequestView
    urgency: Urgency


@dataclass(frozen=True)
class Docket:
    """The open requests, soonest due first; the deadline rule and ``[requests] warn_days``
    they are weighed by."""

    requests: list[DueRequest]
    rule: Rule
    warn_days: int


@acts
def docket(app: App, actor: Actor) -> Docket:
    """The open records requests, soonest due first, each with its urgency.

    :raises Refused: ``actor`` holds none of :data:`~bulletin.app.record_pages.CLERKS`.
    """
    require_any_role(app, actor, CLERKS)
    warn = app.settings.requests.warn_days
    rows = requests.list_requests(app, actor)
    rows.sort(key=lambda v: (v.request.due_on, v.request.id or 0))
    lines = [DueRequest(v, urgency(v.days_left, warn)) for v in rows]
    return Docket(lines, requests.deadline_rule(app), warn)


@acts
def open_holds(app: App, actor: Actor) -> list[holds.HoldView]:
    """The open legal holds, newest first, with how many records each covers.

    :raises Refused: ``actor`` holds none of :data:`~bulletin.app.record_pages.CLERKS`.
    """
    require_any_role(app, actor, CLERKS)
    return holds.list_holds(app, actor)


@dataclass(frozen=True)
class ScopePreview:
    """What a scope in the query language matches now, before a request or hold is placed
    on it: the query as understood, how many archived records it matches, and the threads
    (account, thread id) of the newest :data:`~bulletin.app.record_pages.MAX_HITS` matching
    items (``more`` when there may be others)."""

    query: str
    records: int
    threads: list[tuple[str, str]]
    more: bool


@acts
def preview_scope(app: App, actor: Actor, text: str) -> ScopePreview:
    """What ``text`` would hold, found by the search of the records console; nothing is
    saved.

    :raises Refused: ``actor`` holds none of :data:`~bulletin.app.record_pages.CLERKS`.
    :raises UsageError: the query does not parse, is out of bounds or cannot be evaluated.
    """
    found = record_pages.find_records(app, actor, text, limit=MAX_HITS)
    try:
        count = archived_holds.count_matching(
            app.checked_engine(), found.query, app.settings.agency.time_zone
        )
    except archived_holds.UNEVALUABLE as e:
        raise UsageError(f"the database cannot evaluate the query: {first_line(e)}") from None
    threads: list[tuple[str, str]] = []
    for hit in found.hits:
        thread = (hit.record.account, hit.record.thread_id or hit.record.remote_id)
        if thread not in threads:
            threads.append(thread)
    return ScopePreview(found.query.describe(), count, threads, len(found.hits) >= MAX_HITS)


@dataclass(frozen=True)
class RequestPage:
    """One records request with its days left, the deadline rule, its hold, and its
    correspondence notes and fees (oldest first) with the fees' total in cents."""

    view: RequestView
    rule: Rule
    hold: holds.HoldView | None
    entries: list[RequestEntry]
    fees_cents: int


@acts
def request_page(app: App, actor: Actor, request_id: int) -> RequestPage:
    """Request ``request_id`` with its deadline and its hold.

    :raises Refused: ``actor`` holds none of :data:`~bulletin.app.record_pages.CLERKS`.
    :raises NotFound: no such request.
    """
    require_any_role(app, actor, CLERKS)
    view = requests.show_request(app, actor, request_id)
    found = view.request.hold_id
    hold = holds.show_hold(app, actor, found) if found is not None else None
    entries = requests.request_entries(app, actor, request_id)
    fees = sum(e.amount_cents or 0 for e in entries if e.kind == "fee")
    return RequestPage(view, requests.deadline_rule(app), hold, entries, fees)


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


@acts
def may_keep_records(app: App, actor: Actor) -> None:
    """Nothing, when ``actor`` may use the clerk's desk (before showing an empty form).

    :raises Refused: ``actor`` holds none of :data:`~bulletin.app.record_pages.CLERKS`.
    """
    require_any_role(app, actor, CLERKS)


def today(app: App) -> date:
    """Today's date in the agency's time zone (the default received date)."""
    return app.clock.now().astimezone(ZoneInfo(app.settings.agency.time_zone)).date()
