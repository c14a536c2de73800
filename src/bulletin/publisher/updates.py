"""After publishing: an update, posted now as a reply to every published post of a notice
(the feed: a new entry linking the first), audited, published and archived like any reply.

An update is news ("Mass Ave has reopened"), not a fix: it carries no "Correction:" prefix,
and as new public text it meets the category's content policy (a blocking rule refuses it).
A follow-up (:mod:`bulletin.publisher.schedule`) is the same reply, prepared in advance and
posted at expiry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.engine import Engine

from bulletin import audit
from bulletin.config.settings import Settings
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import Refused, UsageError
from bulletin.publisher import policy
from bulletin.publisher.amend import (
    Amendment,
    _published_posts,
    queue_replies,
    reply_targets,
    reply_texts,
)
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
    others: Mapping[str, str] | None = None,
    partial: bool = False,
) -> Amendment:
    """Queue an update as a reply, due now, to every published post of the notice, each in
    its post's language: ``text`` in the primary, ``others`` (tag → text) in the others
    (see :func:`~bulletin.publisher.amend.reply_texts`; with ``partial`` a language without
    its text gets no reply).

    :raises UsageError: empty text, a language missing, or a text too long for a platform.
    :raises Refused: nothing of the notice is published, or a text breaks a blocking
        content-policy rule of its category (each rule named, with the words that matched;
        word lists apply per language).
    """
    if not text.strip():
        raise UsageError("an update needs its text", remedy="text")
    check_text("the update", text.strip())
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        bodies = reply_texts(settings, session, notice, text, others or {}, "update", partial)
        published, posts = _published_posts(session, notice_id)
        if not published:
            raise Refused(
                f"notice {notice_id} has nothing published to update (it is {notice.state})"
            )
        targets = reply_targets(session, settings, notice.lang, published, bodies)
        subject = policy.Subject(notice.category, targets, notice.link, lang=notice.lang)
        found = policy.blocking(policy.check(settings, subject))
        if found:
            raise Refused(
                f"the update breaks the content policy: {'; '.join(f.line() for f in found)}"
            )
        done = queue_replies(session, notice_id, published, posts, DeliveryKind.UPDATE, bodies, now)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="update-queued",
            object_type="notice",
            object_id=notice_id,
            text=bodies[notice.lang],
            texts={k: v for k, v in bodies.items() if k != notice.lang} or None,
            revision=done.revision,
            targets=[f"{a}#{o}" for a, o in done.queued],
            left=done.left or None,
        )
        wake_after_commit(session)
    return Amendment(notice_id, done.queued, [], done.in_flight, done.labels, done.left)
