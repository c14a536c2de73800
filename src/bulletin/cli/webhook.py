"""Webhook commands: add, list, remove, enable, log, test (an administrator's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from bulletin import logs
from bulletin.app.webhooks import (
    add_webhook,
    enable_webhook,
    list_webhooks,
    ping_webhook,
    remove_webhook,
    webhook_log,
)
from bulletin.cli import ID, LIMIT, Context, emit, json_option, on_behalf_options, pass_context
from bulletin.events import EVENT_TYPES, FORMATS
from bulletin.webhooks.registry import LogEntry, WebhookView


@click.group()
def webhook() -> None:
    """Signed outbound webhooks (Standard Webhooks): which events go where, and their log."""


_as = click.option("--as", "actor", default=None, help="Who is acting (default: your own account).")


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "-"


def _hook_json(w: WebhookView) -> dict[str, Any]:
    return {
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "format": w.format,
        "enabled": w.enabled,
        "failing_since": w.failing_since,
        "disabled_at": w.disabled_at,
        "created_by": w.created_by,
        "created_at": w.created_at,
    }


def _hook_line(w: WebhookView) -> str:
    state = "enabled" if w.enabled else f"DISABLED {_when(w.disabled_at)}"
    failing = f", failing since {_when(w.failing_since)}" if w.failing_since else ""
    return f"{w.id}  {w.url}  {w.format}  {state}{failing}  events: {', '.join(w.events)}"


def _entry_json(e: LogEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "webhook": e.webhook_id,
        "event": e.event,
        "event_id": e.event_id,
        "created_at": e.created_at,
        "state": e.state,
        "attempts": e.attempts,
        "last_status": e.last_status,
        "last_error": e.last_error,
        "next_attempt_at": e.next_attempt_at,
        "delivered_at": e.delivered_at,
        "failed_at": e.failed_at,
        "history": e.history,
    }


def _entry_line(e: LogEntry) -> str:
    tries = (
        ", ".join(str(a.get("status") or a.get("error") or "?") for a in e.history)
        or "not tried yet"
    )
    nxt = f", next {_when(e.next_attempt_at)}" if e.state in ("pending", "retrying") else ""
    return (
        f"{e.id}  webhook {e.webhook_id}  {e.event}  {_when(e.created_at)}  {e.state}  "
        f"{e.attempts} attempts: {tries}{nxt}"
    )


@webhook.command("add")
@on_behalf_options
@click.argument("url")
@click.option(
    "--event", "events", multiple=True, required=True, type=click.Choice(EVENT_TYPES),
    help="An event to send (repeat for more).",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="standard", show_default=True,
    help='Body: the standard envelope, or {"text": ...} for a Teams or Slack webhook.',
)  # fmt: skip
@_as
@json_option
@pass_context
def webhook_add(
    ctx: Context, url: str, events: tuple[str, ...], fmt: str, actor: str | None, as_json: bool
) -> None:
    """Add a webhook; prints its signing secret, this once only."""
    ctx.warn_open_mode()
    added = add_webhook(ctx.app, ctx.actor(actor), url, events, fmt)
    emit(
        as_json,
        {**_hook_json(added.webhook), "secret": added.secret},
        [
            f"webhook {added.webhook.id} added: {_hook_line(added.webhook)}",
            f"secret (shown only now; the receiver verifies signatures with it): {added.secret}",
        ],
    )


@webhook.command("list")
@on_behalf_options
@_as
@json_option
@pass_context
def webhook_list(ctx: Context, actor: str | None, as_json: bool) -> None:
    """Every webhook: URL (its host), events, format, enabled or why not. Never a secret."""
    hooks = list_webhooks(ctx.app, ctx.actor(actor))
    emit(
        as_json,
        {"webhooks": [_hook_json(w) for w in hooks]},
        [_hook_line(w) for w in hooks] or ["no webhooks"],
    )


@webhook.command("remove")
@on_behalf_options
@click.argument("webhook_id", type=ID)
@_as
@json_option
@pass_context
def webhook_remove(ctx: Context, webhook_id: int, actor: str | None, as_json: bool) -> None:
    """Remove a webhook and its delivery log."""
    gone = remove_webhook(ctx.app, ctx.actor(actor), webhook_id)
    emit(as_json, _hook_json(gone), f"webhook {gone.id} removed ({gone.url})")


@webhook.command("enable")
@on_behalf_options
@click.argument("webhook_id", type=ID)
@_as
@json_option
@pass_context
def webhook_enable(ctx: Context, webhook_id: int, actor: str | None, as_json: bool) -> None:
    """Enable a webhook disabled after failing; what waits for it is sent."""
    hook = enable_webhook(ctx.app, ctx.actor(actor), webhook_id)
    emit(as_json, _hook_json(hook), f"webhook {hook.id} enabled ({hook.url})")


@webhook.command("log")
@on_behalf_options
@click.argument("webhook_id", type=ID, required=False)
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="Newest N deliveries.")
@_as
@json_option
@pass_context
def webhook_log_cmd(
    ctx: Context, webhook_id: int | None, limit: int, actor: str | None, as_json: bool
) -> None:
    """The delivery log, newest first: attempts and their status codes or errors."""
    entries = webhook_log(ctx.app, ctx.actor(actor), webhook_id, limit)
    emit(
        as_json,
        {"deliveries": [_entry_json(e) for e in entries]},
        [_entry_line(e) for e in entries] or ["no deliveries"],
    )


@webhook.command("test")
@on_behalf_options
@click.argument("webhook_id", type=ID)
@_as
@json_option
@pass_context
def webhook_test(ctx: Context, webhook_id: int, actor: str | None, as_json: bool) -> None:
    """Send a ping event to a webhook now and show what it answered."""
    logs.configure("warning")  # the attempt's log line goes to stderr; stdout stays the answer
    entry = ping_webhook(ctx.app, ctx.actor(actor), webhook_id)
    emit(as_json, _entry_json(entry), _entry_line(entry))
    if entry.state != "delivered":
        raise SystemExit(1)
