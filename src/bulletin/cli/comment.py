"""Moderation commands: comment hide, unhide, delete (archive first, then act)."""

from __future__ import annotations

import click

from bulletin.app.moderation import moderate_comment
from bulletin.archiver.moderation import Action
from bulletin.cli import ID, Context, emit, json_option, on_behalf_options, pass_context


@click.group()
def comment() -> None:
    """Moderate visitor comments; each is archived fresh from the platform first."""


def _moderate(
    ctx: Context, record_id: int, action: Action, reason: str, actor: str | None, as_json: bool
) -> None:
    ctx.warn_open_mode()
    acting = ctx.actor(actor)
    who = acting.name
    done = moderate_comment(ctx.app, acting, record_id, action, reason=reason)
    emit(
        as_json,
        {
            "id": done.action.id,
            "action": action,
            "captured_before": done.before.id,
            "comment_record": done.after.id,
            "state": done.after.state,
            "by": who,
            "reason": reason,
        },
        [
            f"archived comment {done.before.remote_id} first (record {done.before.id}), then "
            f"{action}: now {done.after.state} (record {done.after.id}); "
            f"recorded as moderation record {done.action.id} by {who}"
        ],
    )


_reason = click.option("--reason", required=True, help="Why (the policy ground), recorded.")
_as = click.option("--as", "actor", default=None, help="Who is acting (default: your own account).")


@comment.command("hide")
@on_behalf_options
@click.argument("record_id", type=ID)
@_reason
@_as
@json_option
@pass_context
def comment_hide(
    ctx: Context, record_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Hide a comment on its platform, after archiving it fresh."""
    _moderate(ctx, record_id, "hide", reason, actor, as_json)


@comment.command("unhide")
@on_behalf_options
@click.argument("record_id", type=ID)
@_reason
@_as
@json_option
@pass_context
def comment_unhide(
    ctx: Context, record_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Show a hidden comment again, after archiving it fresh."""
    _moderate(ctx, record_id, "unhide", reason, actor, as_json)


@comment.command("delete")
@on_behalf_options
@click.argument("record_id", type=ID)
@_reason
@_as
@json_option
@pass_context
def comment_delete(
    ctx: Context, record_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Delete a comment where the platform allows it, after archiving it fresh."""
    _moderate(ctx, record_id, "delete", reason, actor, as_json)
