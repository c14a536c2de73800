"""Legal holds, as a records clerk places, lists, shows and releases them.

Placing and releasing need the clerk role; anyone may read. Queries are given in the one
query language of ``archive search`` (:func:`bulletin.archiver.search.parse_query`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.archiver import holds
from bulletin.identity import require_role
from bulletin.models import Hold, Record


@dataclass(frozen=True)
class HoldView:
    """A hold, its query as text and how many records it covers."""

    hold: Hold
    query: str
    records: int


@dataclass(frozen=True)
class HoldDetail:
    """A hold and the records it covers, oldest first."""

    view: HoldView
    members: list[Record]


@dataclass(frozen=True)
class Released:
    """A released hold and how many records left legal hold with it."""

    hold_id: int
    left_hold: int


def _view(hold: Hold, records: int) -> HoldView:
    return HoldView(hold, holds.Query.from_json(hold.query).describe(), records)


def place_hold(
    app: App, actor: Actor, *, name: str, query: str, reason: str, allow_empty: bool = False
) -> HoldView:
    """Hold every record matching ``query`` now, and those captured later while it is open.

    :raises Refused: ``actor`` is not a clerk; the query matches nothing (remedy
        ``allow-empty``).
    :raises UsageError: a query that does not parse or cannot be evaluated; no name or reason.
    """
    require_role(app.settings, actor.name, "clerk")
    parsed = holds.parse_query(query)
    placed, count = holds.create_hold(
        app.checked_engine(),
        app.store,
        name=name,
        query=parsed,
        reason=reason,
        actor=actor.name,
        now=app.clock.now(),
        time_zone=app.settings.agency.time_zone,
        allow_empty=allow_empty,
    )
    return _view(placed, count)


def list_holds(app: App, actor: Actor, *, include_released: bool = False) -> list[HoldView]:
    """Open holds (with ``include_released``, all), newest first; any user may list them."""
    rows = holds.list_holds(app.checked_engine(), include_released)
    return [_view(h, n) for h, n in rows]


def show_hold(app: App, actor: Actor, hold_id: int) -> HoldDetail:
    """One hold and its records; any user may look.

    :raises NotFound: no such hold.
    """
    engine = app.checked_engine()
    found = holds.get_hold(engine, hold_id)
    records = holds.members(engine, hold_id)
    return HoldDetail(_view(found, len(records)), records)


def release_hold(app: App, actor: Actor, hold_id: int, *, reason: str) -> Released:
    """Release a hold; records leave legal hold when nothing else covers them.

    :raises Refused: ``actor`` is not a clerk; the hold is released or a request's.
    :raises NotFound: no such hold.
    :raises UsageError: no reason.
    """
    require_role(app.settings, actor.name, "clerk")
    freed = holds.release_hold(
        app.checked_engine(),
        app.store,
        hold_id,
        reason=reason,
        actor=actor.name,
        now=app.clock.now(),
        settings=app.settings,
    )
    return Released(hold_id, freed)
