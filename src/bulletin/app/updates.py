"""After publishing, beside correct and retract (:mod:`bulletin.app.notices`): post an update
now, as a reply to every published post of a notice."""

from __future__ import annotations

from bulletin.app import outbox
from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.app.notices import Amended
from bulletin.identity import require_role
from bulletin.publisher.updates import update_notice


@acts
def post_update(app: App, actor: Actor, notice_id: int, text: str) -> Amended:
    """Queue ``text`` as a reply, due now, to every published post of the notice (an
    approver's action: it is new public text); see
    :func:`bulletin.publisher.updates.update_notice`.

    :raises Refused: not an approver, nothing published, or a blocking content-policy rule.
    :raises UsageError: an empty text, or one too long for a platform.
    """
    require_role(app.settings, actor.name, "approver", app.checked_engine())
    with outbox.collect() as wakes:
        result = update_notice(
            app.checked_engine(), app.settings, app.clock.now(), notice_id, text, actor.name
        )
    return Amended(result, bool(wakes.sent))
