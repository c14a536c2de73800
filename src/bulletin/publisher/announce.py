"""The notice events webhooks receive (see :mod:`bulletin.events`), each recorded in the
transaction of the change: drafted, approval needed, published, a delivery failed.

Payloads carry ids, states, times and the public links of published posts; never a notice's
text nor anything secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bulletin.events import iso, record_event
from bulletin.models import Delivery, Notice
from bulletin.notify import outbox
from bulletin.states import DeliveryKind, DeliveryState, NoticeState


def notice_payload(notice: Notice) -> dict[str, Any]:
    """A notice as an event's data."""
    return {
        "notice": notice.id,
        "state": str(notice.state),
        "category": notice.category,
        "priority": notice.priority,
        "title": notice.title,
        "author": notice.author,
        "created_at": iso(notice.created_at),
        "publish_at": iso(notice.publish_at),
        "expires_at": iso(notice.expires_at),
    }


def drafted(session: Session, notice: Notice, now: datetime) -> None:
    """``notice.drafted``, and ``notice.approval_needed`` when it waits for an approver
    (a draft a pre-approved template did not cover)."""
    record_event(session, "notice.drafted", notice_payload(notice), at=now)
    if notice.state == NoticeState.DRAFT:
        approval_needed(session, notice, 0, now)


def approval_needed(session: Session, notice: Notice, approvals: int, now: datetime) -> None:
    """``notice.approval_needed``: ``approvals`` of the ``approvals_needed`` are given."""
    payload = notice_payload(notice)
    payload.update(approvals=approvals, approvals_needed=notice.approvals_needed)
    record_event(session, "notice.approval_needed", payload, at=now)
    outbox.approval_needed(session, notice, approvals, now)


def published(session: Session, notice: Notice, now: datetime) -> None:
    """``notice.published`` (also when only some of its posts went out: see ``state``),
    with each published post's account and public link."""
    posts = session.exec(
        select(Delivery)
        .where(col(Delivery.notice_id) == notice.id)
        .where(col(Delivery.kind) == DeliveryKind.POST)
        .where(col(Delivery.state) == DeliveryState.PUBLISHED)
        .order_by(col(Delivery.id))
    ).all()
    payload = notice_payload(notice)
    payload["posts"] = [
        {
            "delivery": d.id,
            "account": d.account,
            "url": d.remote_url,
            "published_at": iso(d.published_at),
        }
        for d in posts
    ]
    record_event(session, "notice.published", payload, at=now)
    if notice.state != NoticeState.PUBLISHED:
        lines = [f"Notice #{notice.id} ({notice.category}, {notice.priority}) ended "
                 f"{notice.state}: {len(posts)} post(s) published."]  # fmt: skip
        subject = f"Notice #{notice.id} {notice.state}"
        outbox.admin(session, subject, lines, now, notice.id)


def delivery_failed(session: Session, delivery: Delivery, now: datetime) -> None:
    """``delivery.failed``: one notice to one account failed for good."""
    payload = {
        "delivery": delivery.id,
        "notice": delivery.notice_id,
        "account": delivery.account,
        "kind": str(delivery.kind),
        "occurrence": delivery.occurrence,
        "attempts": delivery.attempts,
        "reason": (delivery.last_error or "")[:200],
    }
    record_event(session, "delivery.failed", payload, at=now)
    lines = [
        f"Notice #{delivery.notice_id} to account {delivery.account} failed after "
        f"{delivery.attempts} attempt(s).",
        f"Reason: {payload['reason']}",
    ]
    outbox.admin(session, f"Delivery to {delivery.account} failed", lines, now,
                 delivery.notice_id)  # fmt: skip
