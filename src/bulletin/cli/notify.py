"""Notification commands: test (an administrator's)."""

from __future__ import annotations

import click

from bulletin.app.notify import send_test
from bulletin.cli import Context, emit, json_option, pass_context


@click.group()
def notify() -> None:
    """Email notifications ([notify]): approvals, escalations, administrators' notices."""


@notify.command("test")
@click.argument("address")
@json_option
@pass_context
def notify_test(ctx: Context, address: str, as_json: bool) -> None:
    """Send a test message to ADDRESS through the configured SMTP server."""
    outcome = send_test(ctx.app, ctx.actor(None), address)
    emit(as_json, {"id": outcome.id, "sent_to": list(outcome.recipients)},
         f"test message sent to {address}")  # fmt: skip
