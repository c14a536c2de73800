"""The outbox of outbound events: domain code records an event in the same transaction as the
change it describes (:func:`record_event`); the webhook sender (:mod:`bulletin.webhooks`) posts
it after the commit. A rollback takes the event with it, so nothing is ever sent for a change
that did not happen.

An event is written only when an enabled webhook subscribes to its type, together with one
:class:`WebhookDelivery` per such webhook (the delivery log): with no webhooks an event costs
one small read and leaves nothing behind to prune, and a webhook added later never receives
older events. Payloads are small JSON (ids, times, public links), never secrets and never the
text of a comment.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, Session, SQLModel, col, select

from bulletin.columns import JSONText
from bulletin.models import UTCDateTime

#: what a webhook may subscribe to
EVENT_TYPES = (
    "notice.drafted",
    "notice.approval_needed",
    "notice.published",
    "delivery.failed",
    "comment.captured",
    "request.due_soon",
    "hold.placed",
    "verify.problem",
)
#: sent only by ``webhook test``, to the one webhook tested
PING = "ping"
FORMATS = ("standard", "chat")


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Webhook(SQLModel, table=True):
    """An endpoint that receives the ``events`` it subscribes to, signed with ``secret``
    (``whsec_`` and base64, Standard Webhooks). ``failing_since`` is the first failed attempt
    since the last success; a webhook failing for a day is disabled (``disabled_at``)."""

    __tablename__ = "webhooks"
    # ids leave the database (the API and CLI name a webhook by it, the audit trail, the
    # ping payload): SQLite must never hand out one again after ``webhook remove``
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=Column(Text, nullable=False), repr=False)  # may hold a credential
    events: list[str] = Field(sa_column=Column(JSONText, nullable=False))
    secret: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    format: str = "standard"  # standard | chat ({"text": ...} for Teams and Slack)
    enabled: bool = True
    failing_since: datetime | None = _ts()
    disabled_at: datetime | None = _ts()
    created_by: str
    created_at: datetime = _ts(nullable=False)


class WebhookEvent(SQLModel, table=True):
    """One event as recorded: ``uid`` is the ``webhook-id`` every attempt carries."""

    __tablename__ = "webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(unique=True)
    type: str
    payload: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    created_at: datetime = _ts(nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """One event to one webhook: due at ``next_attempt_at`` (None once delivered or failed),
    with the last answer's status code or the last error."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "next_attempt_at"),
        # ids leave the database (``webhook test``, the delivery log): never handed out
        # twice, not even after pruning or ``webhook remove``
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="webhook_events.id", index=True)
    webhook_id: int = Field(foreign_key="webhooks.id", index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_attempt_at: datetime | None = _ts()
    # JSON: [{"at": ..., "status": ..., "error": ...}], the latest attempts (at most 20)
    history: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONText, nullable=True)
    )
    delivered_at: datetime | None = _ts()
    failed_at: datetime | None = _ts()


def new_uid() -> str:
    """A fresh message id (``msg_`` and 24 hex digits)."""
    return "msg_" + secrets.token_hex(12)


def subscribers(session: Session, event_type: str) -> list[Webhook]:
    """The enabled webhooks that receive ``event_type``."""
    hooks = session.exec(select(Webhook).where(col(Webhook.enabled).is_(True))).all()
    return [h for h in hooks if event_type in h.events]


def record_events(
    session: Session,
    event_type: str,
    payloads: Sequence[Mapping[str, Any]],
    *,
    at: datetime,
    to: Sequence[Webhook] | None = None,
) -> list[WebhookEvent]:
    """Record one event of ``event_type`` per payload in ``session``'s transaction, with a
    delivery due at ``at`` for each subscribed webhook (or each of ``to``); nothing when none
    subscribes. Returns the events recorded."""
    if event_type not in EVENT_TYPES and event_type != PING:
        raise ValueError(f"unknown event type {event_type!r}")
    hooks = subscribers(session, event_type) if to is None else list(to)
    if not hooks or not payloads:
        return []
    events = [
        WebhookEvent(uid=new_uid(), type=event_type, payload=dict(p), created_at=at)
        for p in payloads
    ]
    session.add_all(events)
    session.flush()
    for event in events:
        assert event.id is not None
        for hook in hooks:
            assert hook.id is not None
            session.add(WebhookDelivery(event_id=event.id, webhook_id=hook.id, next_attempt_at=at))
    return events


def record_event(
    session: Session, event_type: str, payload: Mapping[str, Any], *, at: datetime
) -> WebhookEvent | None:
    """:func:`record_events` for one payload; the event, or None when nobody subscribes."""
    events = record_events(session, event_type, [payload], at=at)
    return events[0] if events else None


def iso(when: datetime | None) -> str | None:
    """``when`` as ISO 8601 text for a payload."""
    return when.isoformat() if when is not None else None
