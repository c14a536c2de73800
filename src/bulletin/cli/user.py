"""People's accounts: ``bulletin user add|list|disable|roles|reset|totp|set-password|
sign-out-everywhere``.

A password never goes on a command line: an admin's ``add`` or ``reset`` prints a one-time
link, and ``set-password`` reads the link and the password from a prompt (or stdin).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from bulletin.app import sessions, users
from bulletin.cli import Context, emit, json_option, on_behalf_options, pass_context, read_only
from bulletin.timeparse import local_text

ROLE = click.Choice(users.ROLES)


_ROLES = click.option(
    "--role", "roles", multiple=True, required=True, type=ROLE, help="A role it holds (repeatable)."
)
_NEW_ROLES = click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=ROLE,
    help="A role it is to hold (repeatable; replaces its roles).",
)


_AS = click.option(
    "--as", "actor", default=None, help="Who acts (an admin; default: your own account)."
)


def _by_an_admin(command: Callable[..., None]) -> Callable[..., None]:
    """NAME, ``--as`` and ``--json``; the command receives the context first."""
    return click.argument("name")(_AS(json_option(pass_context(command))))


@click.group()
def user() -> None:
    """People who use Bulletin: their accounts, roles, passwords and second factors."""


@user.command("add")
@on_behalf_options
@click.argument("name")
@_ROLES
@click.option("--os-user", default=None, metavar="LOGIN", help="The OS login that acts as it.")
@click.option("--email", default=None, metavar="ADDRESS", help="Where its notifications go.")
@_AS
@json_option
@pass_context
def user_add(
    ctx: Context,
    name: str,
    roles: tuple[str, ...],
    os_user: str | None,
    email: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Add an account and print its one-time set-password link (valid 24 hours)."""
    link = users.add(ctx.app, ctx.actor(actor), name, list(roles), os_user, email)
    _print_link(ctx, link, as_json, f"user {name} added ({', '.join(roles)})")


@user.command("list")
@json_option
@pass_context
@read_only
def user_list(ctx: Context, as_json: bool) -> None:
    """List the accounts: roles, OS login, whether disabled, password and second factor set."""
    found = users.list_users(ctx.app, ctx.reader())
    rows = [_user_json(u) for u in found]
    lines = [
        f"{u.name:<20} {','.join(u.roles) or '-':<30} {u.os_user or '-':<12} "
        f"{'disabled' if u.disabled else 'active':<8} "
        f"password {'set' if u.has_password else 'unset'}, totp {'on' if u.has_totp else 'off'}"
        for u in found
    ]
    emit(as_json, {"users": rows}, lines or ["no users"])


@user.command("disable")
@on_behalf_options
@_by_an_admin
def user_disable(ctx: Context, name: str, actor: str | None, as_json: bool) -> None:
    """Disable an account: it can no longer sign in or act; its links stop working."""
    shown = users.disable(ctx.app, ctx.actor(actor), name)
    emit(as_json, _user_json(shown), f"user {name} disabled")


@user.command("roles")
@on_behalf_options
@_NEW_ROLES
@_by_an_admin
def user_roles(
    ctx: Context, name: str, roles: tuple[str, ...], actor: str | None, as_json: bool
) -> None:
    """Give an account exactly the roles named."""
    shown = users.set_roles(ctx.app, ctx.actor(actor), name, list(roles))
    emit(as_json, _user_json(shown), f"user {name} now holds {', '.join(shown.roles)}")


@user.command("email")
@click.argument("name")
@click.argument("address")
@_AS
@json_option
@pass_context
def user_email(ctx: Context, name: str, address: str, actor: str | None, as_json: bool) -> None:
    """Set where NAME's notifications go ("" for nowhere)."""
    shown = users.set_email(ctx.app, ctx.actor(actor), name, address)
    emit(as_json, _user_json(shown), f"user {name}: notifications to {address or 'nobody'}")


@user.command("reset")
@on_behalf_options
@_by_an_admin
def user_reset(ctx: Context, name: str, actor: str | None, as_json: bool) -> None:
    """Clear an account's password and print a new one-time link; earlier links stop working."""
    link = users.reset(ctx.app, ctx.actor(actor), name)
    _print_link(ctx, link, as_json, f"user {name}'s password cleared")


@user.command("totp")
@on_behalf_options
@_by_an_admin
def user_totp(ctx: Context, name: str, actor: str | None, as_json: bool) -> None:
    """Enrol a TOTP second factor (RFC 6238) and print its otpauth:// URI, once: add it to an
    authenticator app. Enrolling again replaces the old one."""
    uri = users.enrol_totp(ctx.app, ctx.actor(actor), name)
    emit(
        as_json,
        {"name": name, "uri": uri},
        [f"second factor enrolled for {name}; add this to the authenticator app:", uri],
    )


@user.command("sign-out-everywhere")
@on_behalf_options
@_by_an_admin
def user_sign_out_everywhere(ctx: Context, name: str, actor: str | None, as_json: bool) -> None:
    """End every web session of an account (it must sign in again)."""
    ended = sessions.sign_out_everywhere(ctx.app, ctx.actor(actor), name)
    emit(as_json, {"name": name, "sessions": ended}, f"{ended} session(s) of {name} ended")


@user.command("set-password")
@click.argument("name")
@json_option
@pass_context
def user_set_password(ctx: Context, name: str, as_json: bool) -> None:
    """Set NAME's password with its one-time link; asks for the link and the password (at
    least 12 characters), or reads them from stdin, one a line."""
    tty = sys.stdin.isatty()
    given = click.prompt("Set-password link", err=True).strip()
    token = given.rstrip("/").rsplit("/", 1)[-1]
    password = click.prompt("New password", hide_input=True, confirmation_prompt=tty, err=True)
    done = users.set_password(ctx.app, token, password, name=name)
    emit(as_json, {"name": done}, f"password set for {done}")


def _print_link(ctx: Context, link: users.SetPasswordLink, as_json: bool, done: str) -> None:
    zone = ctx.settings.agency.time_zone
    emit(
        as_json,
        {"name": link.name, "url": link.url, "expires_at": link.expires_at.isoformat()},
        [
            f"{done}; send them this one-time link to set a password "
            f"(until {local_text(link.expires_at, zone)}):",
            link.url,
        ],
    )


def _user_json(shown: users.UserView) -> dict[str, Any]:
    return {
        "name": shown.name,
        "roles": shown.roles,
        "os_user": shown.os_user,
        "disabled": shown.disabled,
        "password_set": shown.has_password,
        "totp": shown.has_totp,
        "email": shown.email,
    }
