"""After publishing: an update, posted now as a reply to every published post of a notice
(the feed: a new entry linking the first), audited, published and archived like any reply.

An update is news ("Mass Ave has reopened"), not a fix: it carries no "Correction:" prefix,
and as new public text it meets the category's content policy (a blocking rule refuses it).
A follow-up (:mod:`bulletin.publisher.schedule`) is the same reply, prepared in advance and
posted at expiry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from bulletin import audit
from bulletin.config.settings import Settings
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import Refused, UsageError
from bulletin.publisher import policy
from bulletin.publisher.amend import Amendment, _check_fits, _published_posts, queue_replies
from bulletin.publisher.notices import get_for_update
from bulletin.publisher.texts import check_text
from bulletin.states import DeliveryKind


def update_notice(
    engine: Engine,
    settings: Settings,
    now: datetime,
    notice_id: int,
    text: str,
    actor: str,
) -> Amendment:
    """Queue ``text`` as a reply to every published post of the notice, due now.

    :raises UsageError: empty text, or a text too long for a platform.
    :raises Refused: nothing of the notice is published, or the text breaks a blocking
        content-policy rule of its category (each rule named, with the words that matched).
    """
    body = text.strip()
    if not body:
        raise UsageError("an update needs its text", remedy="text")
    check_text("the update", body)
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        published, posts = _published_posts(session, notice_id)
        if not published:
            raise Refused(
                f"notice {notice_id} has nothing published to update (it is {notice.state})"
            )
        targets = _check_fits(session, settings, [d.account for d in published], body)
        found = policy.blocking(
            policy.check(settings, policy.Subject(notice.category, targets, notice.link))
        )
        if found:
            raise Refused(
                f"the update breaks the content policy: {'; '.join(f.line() for f in found)}"
            )
        revision, queued, labels, in_flight = queue_replies(
            session, notice_id, published, posts, DeliveryKind.UPDATE, body, now
        )
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="update-queued",
            object_type="notice",
            object_id=notice_id,
            text=body,
            revision=revision,
            targets=[f"{a}#{o}" for a, o in queued],
        )
        wake_after_commit(session)
    return Amendment(notice_id, queued, [], in_flight, labels)
