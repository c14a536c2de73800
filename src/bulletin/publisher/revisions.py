"""Drafts that change before approval: an approver sends a draft back to its author with a
comment; the author edits it, which makes a new revision.

An approval names the revision it approved and counts only for that revision
(:func:`bulletin.publisher.approval.approvals_of`), so an edit starts the approvals over. A
draft sent back cannot be approved until its author has edited it. Each change commits
together with its audit event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from bulletin import audit
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import Refused, UsageError
from bulletin.models import Delivery, Notice
from bulletin.publisher.notices import get_for_update
from bulletin.publisher.schedule import occurrence_text
from bulletin.publisher.texts import THREAD_PLATFORMS, check_text
from bulletin.states import DeliveryKind, NoticeState

MAX_COMMENT = 2000


def send_back(engine: Engine, now: datetime, notice_id: int, actor: str, comment: str) -> Notice:
    """Send draft ``notice_id`` back to its author with ``comment`` (kept on the notice until
    the next edit, and in the audit trail).

    :raises Refused: not a draft, or the author sending back their own notice.
    :raises UsageError: an empty or overlong comment.
    """
    comment = comment.strip()
    if not comment:
        raise UsageError("say what the author should change (the comment is empty)")
    if len(comment) > MAX_COMMENT:
        raise UsageError(f"the comment is {len(comment)} characters; at most {MAX_COMMENT}")
    check_text("the comment", comment)
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        _require_draft(notice, "sent back")
        if actor == notice.author:
            raise Refused(f"{actor} wrote notice {notice_id}; edit it instead of sending it back")
        notice.sent_back = comment
        session.add(notice)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="sent-back",
            object_type="notice",
            object_id=notice_id,
            reason=comment,
            revision=notice.revision,
        )
        return notice


def edit(
    engine: Engine, settings: Settings, now: datetime, notice_id: int, actor: str, text: str
) -> Notice:
    """Give draft ``notice_id`` the new ``text`` (its author's action): a new revision, whose
    approvals start over; each target's text is measured again.

    :raises Refused: not a draft, or not its author.
    :raises UsageError: an empty, unchanged or too long text.
    """
    text = text.strip()
    if not text:
        raise UsageError("notice text is empty")
    check_text("notice text", text)
    limit = settings.publisher.max_text_length
    if len(text) > limit:
        raise UsageError(f"notice text is {len(text)} characters, at most {limit} are allowed")
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        _require_draft(notice, "edited")
        if actor != notice.author:
            raise Refused(f"only {notice.author}, who wrote notice {notice_id}, may edit it")
        if text == notice.text:
            raise UsageError(f"the text of notice {notice_id} is unchanged")
        notice.text = text
        notice.revision += 1
        notice.sent_back = None
        when = notice.publish_at or now
        for delivery in session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == DeliveryKind.POST)
            .where(Delivery.occurrence == 1)
        ):
            target = occurrence_text(
                session, settings, notice, delivery.account, when, delivery.lang
            )
            if not target.fits:
                threads = target.platform in THREAD_PLATFORMS and not notice.allow_thread
                raise UsageError(
                    f"{target.too_long()} (shorten it"
                    + (", or let it go out as a numbered thread" if threads else "")
                    + ")"
                )
            delivery.text = target.text
            delivery.parts = list(target.parts) or None
            session.add(delivery)
        session.add(notice)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="edited",
            object_type="notice",
            object_id=notice_id,
            revision=notice.revision,
            text=text,
        )
        return notice


def _require_draft(notice: Notice, done: str) -> None:
    if notice.state != NoticeState.DRAFT:
        raise Refused(f"notice {notice.id} is {notice.state}; only a draft can be {done}")
