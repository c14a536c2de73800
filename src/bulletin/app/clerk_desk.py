"""What the records clerk's console lists of requests and holds: open records requests by due
date with their urgency, and open legal holds.

Only the roles in :data:`~bulletin.app.record_pages.CLERKS` see these lists, whichever door
asks; the command line's ``request list`` and ``hold list`` (:mod:`bulletin.app.requests`,
:mod:`bulletin.app.holds`) read without a role. Releasing a hold goes through
:func:`bulletin.app.holds.release_hold`, which needs the clerk role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bulletin.app import holds, requests
from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.app.record_pages import CLERKS
from bulletin.app.requests import RequestView, Rule

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
