"""Webhook endpoints: add, list, remove, enable, the delivery log and a test ping.

The secret is made here and returned once, by :func:`add`; nothing else returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from bulletin import audit
from bulletin.db import session_scope
from bulletin.errors import NotFound, UsageError
from bulletin.events import (
    EVENT_TYPES,
    FORMATS,
    PING,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    record_events,
)
from bulletin.names import printable
from bulletin.webhooks.body import new_secret, shown_url


@dataclass(frozen=True)
class WebhookView:
    """A webhook as shown: its URL elided past the host, never its secret."""

    id: int
    url: str
    events: list[str]
    format: str
    enabled: bool
    failing_since: datetime | None
    disabled_at: datetime | None
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, hook: Webhook) -> WebhookView:
        assert hook.id is not None
        return cls(
            hook.id,
            shown_url(hook.url),
            list(hook.events),
            hook.format,
            hook.enabled,
            hook.failing_since,
            hook.disabled_at,
            hook.created_by,
            hook.created_at,
        )


@dataclass(frozen=True)
class LogEntry:
    """One delivery of the log."""

    id: int
    webhook_id: int
    event: str
    event_id: str
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    history: list[dict[str, object]]

    @property
    def state(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        if self.failed_at is not None:
            return "failed"
        return "pending" if self.attempts == 0 else "retrying"


def check_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host.

    :raises UsageError: any other URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        given = f"a {printable(parts.scheme)}: URL" if parts.scheme else "no URL scheme"
        raise UsageError(f"a webhook URL must be http:// or https:// with a host ({given})")
    return url


def add(
    engine: Engine, *, url: str, events: Sequence[str], fmt: str, actor: str, now: datetime
) -> tuple[WebhookView, str]:
    """A new enabled webhook and its secret (shown this once).

    :raises UsageError: a URL that is not http(s), no event or an unknown one, a bad format.
    """
    check_url(url)
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise UsageError(
            f"unknown event {unknown[0]!r}" if unknown else "a webhook needs at least one event",
            remedy="event",
        )
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (standard or chat)")
    secret = new_secret()
    with session_scope(engine) as session:
        hook = Webhook(
            url=url,
            events=list(dict.fromkeys(events)),
            secret=secret,
            format=fmt,
            created_by=actor,
            created_at=now,
        )
        session.add(hook)
        session.flush()
        assert hook.id is not None
        _audit(
            session,
            "webhook-added",
            hook.id,
            actor,
            now,
            url=shown_url(url),
            events=hook.events,
            format=fmt,
        )
        view = WebhookView.of(hook)
    return view, secret


def _audit(
    session: Session, action: str, webhook_id: int, actor: str, now: datetime, **detail: Any
) -> None:
    audit.record_event(
        session,
        at=now,
        actor=actor,
        action=action,
        object_type="webhook",
        object_id=webhook_id,
        **detail,
    )


def list_all(engine: Engine) -> list[WebhookView]:
    """Every webhook, oldest first."""
    with Session(engine) as session:
        rows = session.exec(select(Webhook).order_by(col(Webhook.id))).all()
        return [WebhookView.of(h) for h in rows]


def _get(session: Session, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return hook


def remove(engine: Engine, webhook_id: int, *, actor: str, now: datetime) -> WebhookView:
    """Delete a webhook and its delivery log.

    :raises NotFound: no such webhook.
    """
    with session_scope(engine) as session:
        hook = _get(session, webhook_id)
        view = WebhookView.of(hook)
        session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook_id))
        session.delete(hook)
        _drop_orphan_events(session)
        _audit(session, "webhook-removed", webhook_id, actor, now, url=view.url)
    return view


KEEP_LOG = timedelta(days=30)


def prune(engine: Engine, now: datetime, keep: timedelta = KEEP_LOG) -> int:
    """Forget deliveries finished (delivered or failed) over ``keep`` ago, and the events
    left without a delivery; returns how many deliveries went."""
    before = now - keep
    with session_scope(engine) as session:
        finished = sa.or_(
            col(WebhookDelivery.delivered_at) < before, col(WebhookDelivery.failed_at) < before
        )
        gone = session.execute(sa.delete(WebhookDelivery).where(finished)).rowcount  # type: ignore[attr-defined]
        _drop_orphan_events(session)
    return int(gone or 0)


def _drop_orphan_events(session: Session) -> None:
    session.flush()
    used = select(WebhookDelivery.event_id)
    session.execute(sa.delete(WebhookEvent).where(col(WebhookEvent.id).not_in(used)))


def enable(engine: Engine, webhook_id: int, *, actor: str, now: datetime) -> WebhookView:
    """Enable a webhook again (its failures are forgotten; what waits is sent).

    :raises NotFound: no such webhook.
    """
    with session_scope(engine) as session:
        hook = _get(session, webhook_id)
        hook.enabled = True
        hook.failing_since = None
        hook.disabled_at = None
        session.add(hook)
        _audit(session, "webhook-enabled", webhook_id, actor, now)
        return WebhookView.of(hook)


def ping(engine: Engine, webhook_id: int, *, actor: str, now: datetime) -> int:
    """Record a ``ping`` event for this webhook alone; returns its delivery's id.

    :raises NotFound: no such webhook.
    """
    with session_scope(engine) as session:
        hook = _get(session, webhook_id)
        payload = {"webhook": webhook_id, "by": actor, "at": now.isoformat()}
        (event,) = record_events(session, PING, [payload], at=now, to=[hook])
        delivery = session.exec(
            select(WebhookDelivery).where(col(WebhookDelivery.event_id) == event.id)
        ).one()
        assert delivery.id is not None
        return delivery.id


def log(engine: Engine, webhook_id: int | None = None, limit: int = 50) -> list[LogEntry]:
    """The newest deliveries (of one webhook), newest first.

    :raises NotFound: no such webhook.
    """
    return _entries(engine, webhook_id, None, limit)


def entry(engine: Engine, delivery_id: int) -> LogEntry:
    """One delivery of the log."""
    return _entries(engine, None, delivery_id, 1)[0]


def _entries(
    engine: Engine, webhook_id: int | None, delivery_id: int | None, limit: int
) -> list[LogEntry]:
    with Session(engine) as session:
        if webhook_id is not None:
            _get(session, webhook_id)
        query = (
            select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
            .order_by(col(WebhookDelivery.id).desc())
            .limit(limit)
        )
        if webhook_id is not None:
            query = query.where(col(WebhookDelivery.webhook_id) == webhook_id)
        if delivery_id is not None:
            query = query.where(col(WebhookDelivery.id) == delivery_id)
        return [
            LogEntry(
                d.id or 0,
                d.webhook_id,
                e.type,
                e.uid,
                e.created_at,
                d.attempts,
                d.last_status,
                d.last_error,
                d.next_attempt_at,
                d.delivered_at,
                d.failed_at,
                list(d.history or []),
            )
            for d, e in session.exec(query).all()
        ]


def disabled(engine: Engine) -> list[WebhookView]:
    """The webhooks disabled after failing (``bulletin status --check``)."""
    with Session(engine) as session:
        rows = session.exec(
            select(Webhook)
            .where(col(Webhook.enabled).is_(False))
            .where(col(Webhook.disabled_at).is_not(None))
            .order_by(col(Webhook.id))
        ).all()
        return [WebhookView.of(h) for h in rows]
