"""The audit trail, as an administrator or records officer reads it: who did what, to which
object, when and why. Reading it on the command line needs no role; the console's search
(:func:`search_events`) is for :data:`AUDITORS` only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bulletin import audit
from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.config.site import Role
from bulletin.errors import UsageError
from bulletin.models import AuditEvent


@acts
def list_events(
    app: App, actor: Actor, about: str | None = None, action: str | None = None, limit: int = 50
) -> list[AuditEvent]:
    """The newest ``limit`` events, oldest first: ``about`` objects of a type (``notice``) or
    one object (``notice:12``), of ``action`` (``approved``), when given."""
    kind, _, ident = (about or "").partition(":")
    engine = app.checked_engine()
    if not about:
        return audit.events(engine, action=action, limit=limit)
    return audit.events(engine, object_type=kind, object_id=ident, action=action, limit=limit)


#: who reads the audit trail in the console
AUDITORS: tuple[Role, ...] = ("clerk", "records-officer", "admin")
#: the most events one page shows, and one CSV export holds
PAGE_EVENTS = 200
CSV_EVENTS = 10_000


@dataclass(frozen=True)
class Filter:
    """What the audit page asks for; empty strings and None filter nothing. ``since`` and
    ``until`` are days in the agency's time zone, both included."""

    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None


@acts
def search_events(
    app: App, actor: Actor, wanted: Filter, *, limit: int = PAGE_EVENTS
) -> list[AuditEvent]:
    """The newest ``limit`` events (at most :data:`CSV_EVENTS`) matching ``wanted``, newest
    first.

    :raises Refused: ``actor`` holds none of :data:`AUDITORS`.
    :raises UsageError: ``since`` is after ``until``.
    """
    require_any_role(app, actor, AUDITORS)
    if wanted.since and wanted.until and wanted.since > wanted.until:
        raise UsageError("the first day comes after the last day")
    zone = ZoneInfo(app.settings.agency.time_zone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), zone)

    return audit.search(
        app.checked_engine(),
        actor=wanted.actor,
        action=wanted.action,
        object_type=wanted.object_type,
        object_id=wanted.object_id,
        since=midnight(wanted.since) if wanted.since else None,
        before=midnight(wanted.until + timedelta(days=1)) if wanted.until else None,
        limit=max(1, min(limit, CSV_EVENTS)),
    )
