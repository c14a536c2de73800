"""The audit trail, as an administrator or records officer reads it: who did what, to which
object, when and why. Reading it needs no role."""

from __future__ import annotations

from bulletin import audit
from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.models import AuditEvent


def list_events(
    app: App,
    actor: Actor,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """The newest ``limit`` events, oldest first: of objects of ``object_type`` (of the one
    ``object_id`` when given too), of ``action``."""
    return audit.events(
        app.checked_engine(),
        object_type=object_type,
        object_id=object_id,
        action=action,
        limit=limit,
    )
