"""After publishing, beside correct and retract (:mod:`bulletin.app.notices`): post an update
now, as a reply to every published post of a notice; send failed posts again."""

from __future__ import annotations

from collections.abc import Mapping

from bulletin.app import outbox
from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.app.notices import Amended, LateDecision
from bulletin.identity import require_role
from bulletin.publisher.retry import retry_failed
from bulletin.publisher.updates import update_notice


@acts
def post_update(
    app: App,
    actor: Actor,
    notice_id: int,
    text: str,
    *,
    texts: Mapping[str, str] | None = None,
    partial: bool = False,
) -> Amended:
    """Queue an update as a reply, due now, to every published post of the notice, each in
    its post's language (``text`` in the primary, ``texts`` tag → text in the others;
    ``partial``: a language without its text gets no reply), an approver's action: it is
    new public text; see :func:`bulletin.publisher.updates.update_notice`.

    :raises Refused: not an approver, nothing published, or a blocking content-policy rule.
    :raises UsageError: an empty text, a language without its text, or a text too long for
        a platform.
    """
    require_role(app.settings, actor.name, "approver", app.checked_engine())
    with outbox.collect() as wakes:
        result = update_notice(
            app.checked_engine(),
            app.settings,
            app.clock.now(),
            notice_id,
            text,
            actor.name,
            texts,
            partial,
        )
    return Amended(result, bool(wakes.sent))


@acts
def retry(app: App, actor: Actor, notice_id: int) -> LateDecision:
    """Send a failed or partially published notice's failed posts again (a dispatcher's or
    an approver's action: the text was approved); see
    :func:`bulletin.publisher.retry.retry_failed`. ``publish`` is always true.

    :raises Refused: neither role, or nothing to retry (see there).
    """
    require_any_role(app, actor, ("dispatcher", "approver"))
    with outbox.collect() as wakes:
        accounts = retry_failed(app.checked_engine(), app.clock.now(), notice_id, actor.name)
    return LateDecision(notice_id, True, accounts, bool(wakes.sent))
