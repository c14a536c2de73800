"""A person sends a notice's failed posts again: each failed post of its latest occurrence
goes back to pending, due now, and the notice (failed) is live again. The posts keep their
idempotency keys: a platform that did receive an attempt recognises it.

A retried post gets one more round of attempts: its routine give-up counts from its first
attempt, so a post that fails again is failed again rather than tried for hours.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bulletin import audit
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import Refused
from bulletin.models import Delivery
from bulletin.publisher.delivery.states import move
from bulletin.publisher.notices import get_for_update
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

RETRYABLE = (NoticeState.FAILED, NoticeState.PARTIALLY_PUBLISHED)


def retry_failed(engine: Engine, now: datetime, notice_id: int, actor: str) -> list[str]:
    """Send the notice's failed posts (of its latest occurrence) again, due now; returns
    their accounts.

    :raises NotFound: no such notice.
    :raises Refused: the notice is not failed or partially published, it has expired, or
        none of its posts failed.
    """
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        if notice.state not in RETRYABLE:
            raise Refused(
                f"notice {notice_id} is {notice.state}: only a failed or partially "
                "published notice's failed posts are sent again"
            )
        if notice.expires_at is not None and notice.expires_at <= now:
            raise Refused(f"notice {notice_id} has expired: it is not published any more")
        posts = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == DeliveryKind.POST)
            .order_by(col(Delivery.id))
            .with_for_update()
        ).all()
        latest = max((d.occurrence for d in posts), default=1)
        failed = [d for d in posts if d.occurrence == latest and d.state == DeliveryState.FAILED]
        if not failed:
            raise Refused(f"notice {notice_id} has no failed post to send again")
        for d in failed:
            move(d, DeliveryState.PENDING)
            d.due_at = now
            d.last_error = None
            session.add(d)
        if notice.state == NoticeState.FAILED:
            notice.state = NoticeState.APPROVED
            session.add(notice)
        accounts = sorted({d.account for d in failed})
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="retry-queued",
            object_type="notice",
            object_id=notice_id,
            accounts=accounts,
            occurrence=latest,
        )
        wake_after_commit(session)
    return accounts
