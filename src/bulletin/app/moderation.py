"""Comment moderation, as a records clerk hides, unhides and deletes visitor comments: the
comment is archived fresh from its platform first, then acted on (see
:mod:`bulletin.archiver.moderation`). Needs the clerk role."""

from __future__ import annotations

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.app.records import get_record
from bulletin.archiver.moderation import Action, Moderated, moderate
from bulletin.identity import require_role


@acts
def moderate_comment(
    app: App, actor: Actor, record_id: int, action: Action, *, reason: str
) -> Moderated:
    """Archive the comment of record ``record_id`` fresh, then ``action`` it on its platform.

    :raises Refused: ``actor`` is not a clerk; not a comment; the platform cannot do it; the
        fresh capture failed (nothing was done); the comment is gone; no reason.
    :raises NotFound: no such record.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    record = get_record(app.checked_engine(), record_id)
    return moderate(
        app.archiver,
        app.connector(record.account),
        record_id,
        action,
        actor=actor.name,
        reason=reason,
    )
