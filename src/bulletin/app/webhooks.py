"""Outbound webhooks, as an administrator adds, lists, removes, enables and tests them, and
reads their delivery log. Every action needs the admin role: a webhook's URL may itself be a
credential (a chat webhook's is), and its secret signs what Bulletin says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.errors import Refused
from bulletin.identity import require_role
from bulletin.webhooks import registry
from bulletin.webhooks.registry import LogEntry, WebhookView
from bulletin.webhooks.send import Sender


@dataclass(frozen=True)
class NewWebhook:
    """A webhook just added and its signing secret, returned this once and never again."""

    webhook: WebhookView
    secret: str


def add_webhook(
    app: App, actor: Actor, url: str, events: Sequence[str], fmt: str = "standard"
) -> NewWebhook:
    """Add an enabled webhook receiving ``events``.

    :raises Refused: ``actor`` is not an admin.
    :raises UsageError: not an http(s) URL, no event or an unknown one, an unknown format.
    """
    require_role(app.settings, actor.name, "admin")
    view, secret = registry.add(
        app.checked_engine(),
        url=url,
        events=events,
        fmt=fmt,
        actor=actor.name,
        now=app.clock.now(),
    )
    return NewWebhook(view, secret)


def list_webhooks(app: App, actor: Actor) -> list[WebhookView]:
    """Every webhook (no secrets).

    :raises Refused: ``actor`` is not an admin."""
    require_role(app.settings, actor.name, "admin")
    return registry.list_all(app.checked_engine())


def remove_webhook(app: App, actor: Actor, webhook_id: int) -> WebhookView:
    """Remove a webhook and its delivery log.

    :raises Refused: ``actor`` is not an admin.
    :raises NotFound: no such webhook.
    """
    require_role(app.settings, actor.name, "admin")
    return registry.remove(app.checked_engine(), webhook_id, actor=actor.name, now=app.clock.now())


def enable_webhook(app: App, actor: Actor, webhook_id: int) -> WebhookView:
    """Enable a webhook disabled after failing.

    :raises Refused: ``actor`` is not an admin.
    :raises NotFound: no such webhook.
    """
    require_role(app.settings, actor.name, "admin")
    return registry.enable(app.checked_engine(), webhook_id, actor=actor.name, now=app.clock.now())


def webhook_log(
    app: App, actor: Actor, webhook_id: int | None = None, limit: int = 50
) -> list[LogEntry]:
    """The newest deliveries, of one webhook or all, newest first.

    :raises Refused: ``actor`` is not an admin.
    :raises NotFound: no such webhook.
    """
    require_role(app.settings, actor.name, "admin")
    return registry.log(app.checked_engine(), webhook_id, limit)


def ping_webhook(app: App, actor: Actor, webhook_id: int) -> LogEntry:
    """Send a ``ping`` event to one webhook now (even a disabled one) and return its log
    entry; a failed ping is retried like any delivery.

    :raises Refused: ``actor`` is not an admin; the ping could not be claimed.
    :raises NotFound: no such webhook.
    """
    require_role(app.settings, actor.name, "admin")
    engine = app.checked_engine()
    delivery = registry.ping(engine, webhook_id, actor=actor.name, now=app.clock.now())
    if Sender(engine, app.clock).send_one(delivery) is None:
        raise Refused(f"the ping to webhook {webhook_id} is being sent by a daemon")
    return registry.entry(engine, delivery)
