"""Legal holds, as a records clerk places, lists, shows and releases them.

Placing and releasing need the clerk role; anyone may read. Queries are given in the one
query language of ``archive search`` (:func:`bulletin.archiver.search.parse_query`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.archiver import holds
from bulletin.identity import require_role
from bulletin.models import Hold, Record


@dataclass(frozen=True)
class HoldView:
    """A hold and how many records it covers; where listed, ``members`` are those records,
    oldest first."""

    hold: Hold
    records: int
    members: list[Record] = field(default_factory=list)

    @property
    def query(self) -> str:
        """The hold's scope, in the query language."""
        return holds.Query.from_json(self.hold.query).describe()


@acts
def place_hold(
    app: App, actor: Actor, *, name: str, query: str, reason: str, allow_empty: bool = False
) -> HoldView:
    """Hold every record matching ``query`` now, and those captured later while it is open.

    :raises Refused: ``actor`` is not a clerk; the query matches nothing (remedy
        ``allow-empty``).
    :raises UsageError: a query that does not parse or cannot be evaluated; no name or reason.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
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
    return HoldView(placed, count)


@acts
def list_holds(app: App, actor: Actor, *, include_released: bool = False) -> list[HoldView]:
    """Open holds (with ``include_released``, all), newest first; any user may list them."""
    rows = holds.list_holds(app.checked_engine(), include_released)
    return [HoldView(h, n) for h, n in rows]


@acts
def show_hold(app: App, actor: Actor, hold_id: int) -> HoldView:
    """One hold and its records; any user may look.

    :raises NotFound: no such hold.
    """
    engine = app.checked_engine()
    found = holds.get_hold(engine, hold_id)
    records = holds.members(engine, hold_id)
    return HoldView(found, len(records), records)


@acts
def release_hold(app: App, actor: Actor, hold_id: int, *, reason: str) -> int:
    """Release a hold; records leave legal hold when nothing else covers them. Returns how
    many did.

    :raises Refused: ``actor`` is not a clerk; the hold is released or a request's.
    :raises NotFound: no such hold.
    :raises UsageError: no reason.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    engine, now = app.checked_engine(), app.clock.now()
    return holds.release_hold(
        engine, app.store, hold_id, reason=reason, actor=actor.name, now=now, settings=app.settings
    )
