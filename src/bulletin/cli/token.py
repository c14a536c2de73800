"""API tokens for programs: ``bulletin token create|list|revoke``.

``create`` prints the token once; nothing shows it again (only its sha256 is kept).
"""

from __future__ import annotations

from typing import Any

import click

from bulletin.app import tokens
from bulletin.cli import Context, emit, json_option, pass_context, read_only
from bulletin.config.values import parse_duration
from bulletin.errors import UsageError
from bulletin.timeparse import local_text

SCOPE = click.Choice(tokens.SCOPES)
_AS = click.option("--as", "actor", default=None, help="Who acts (default $BULLETIN_USER).")


@click.group()
def token() -> None:
    """API tokens: programs (a CAD system, a script) acting through the HTTP API."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for (e.g. cad).")
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=SCOPE, help="A scope (repeatable)."
)
@click.option("--expires", default=None, metavar="SPAN", help="Lifetime, e.g. 90d (default none).")
@click.option(
    "--for", "account", default=None, metavar="ACCOUNT", help="Act as this account (an admin's)."
)
@_AS
@json_option
@pass_context
def token_create(
    ctx: Context,
    name: str,
    scopes: tuple[str, ...],
    expires: str | None,
    account: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Create a token and print it, this once: it acts as the account (yours, or --for) with
    that account's roles, limited to its scopes."""
    lifetime = None
    if expires is not None:
        try:
            lifetime = parse_duration(expires)
        except ValueError as e:
            raise UsageError(f"lifetime {expires!r} is not a span like 90d: {e}") from e
    made = tokens.create(
        ctx.app, ctx.actor(actor), name, list(scopes), expires_in=lifetime, account=account
    )
    view = made.view
    until = local_text(view.expires_at, ctx.settings.agency.time_zone) if view.expires_at else None
    emit(
        as_json,
        {**_token_json(view), "token": made.token},
        [
            f"token {view.name} created for {view.account} ({', '.join(view.scopes)}"
            f"{f', until {until}' if until else ', no expiry'}); it is shown this once:",
            made.token,
        ],
    )


@token.command("list")
@_AS
@json_option
@pass_context
@read_only
def token_list(ctx: Context, actor: str | None, as_json: bool) -> None:
    """List your tokens (an admin: everyone's): scopes, expiry, last use; never the token."""
    found = tokens.list_tokens(ctx.app, ctx.actor(actor))
    zone = ctx.settings.agency.time_zone

    def when(at: Any) -> str:
        return local_text(at, zone) if at else "-"

    lines = [
        f"{t.name:<16} {t.account:<16} {','.join(t.scopes):<40} "
        f"{'revoked ' + when(t.revoked_at) if t.revoked_at else 'expires ' + when(t.expires_at)}"
        f"  last used {when(t.last_used_at)}"
        for t in found
    ]
    emit(as_json, {"tokens": [_token_json(t) for t in found]}, lines or ["no tokens"])


@token.command("revoke")
@click.argument("name")
@_AS
@json_option
@pass_context
def token_revoke(ctx: Context, name: str, actor: str | None, as_json: bool) -> None:
    """Revoke a token: it authenticates nothing from now on."""
    view = tokens.revoke(ctx.app, ctx.actor(actor), name)
    emit(as_json, _token_json(view), f"token {name} of {view.account} revoked")


def _token_json(t: tokens.TokenView) -> dict[str, Any]:
    return {
        "name": t.name,
        "account": t.account,
        "scopes": t.scopes,
        "created_by": t.created_by,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
        "last_used_at": t.last_used_at,
    }
