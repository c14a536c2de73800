"""The audit trail, as an administrator or records officer reads it: who did what, to which
object, when and why. Reading it needs no role."""

from __future__ import annotations

from bulletin import audit
from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
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
