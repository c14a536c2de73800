"""The command line: one group, subcommands by noun. Errors print one line, never a traceback.

Exit codes: 0 done, 1 refused or failed, 2 usage or configuration error, 70 an internal error
(a bug; the traceback is in the log), 141 stdout was closed early (``| head``).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import click

from bulletin import __version__
from bulletin.app import Actor, App, users
from bulletin.clock import Clock, SystemClock
from bulletin.config import Settings, load_settings
from bulletin.errors import BulletinError
from bulletin.identity import resolve_actor

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
PRIVATE_UMASK = 0o027  # files 0640, directories 0750 (deploy/bulletin.service sets the same)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`

# Every id argument: a positive number both databases store (ids are PostgreSQL integers);
# every --limit option: a positive int64 (what LIMIT takes).
ID = click.IntRange(1, 2**31 - 1)
LIMIT = click.IntRange(1, 2**63 - 1)

# How the command line says an error's remedy (BulletinError.remedy): appended to its message.
# The application layer names no flag; this door does.
REMEDIES: dict[str, str] = {
    "text-for": " (--text-for NAME=TEXT: NAME is a target account or its platform)",
    # records: holds, requests, redactions, moderation, the archive index
    "allow-empty": " (check it with `bulletin archive search`; use --allow-empty to hold only "
    "records captured later)",
    "description": " (--description)",
    "name": " (--name)",
    "replace": "; use --replace to rebuild it from the store",
    "requester": " (--requester)",
    "span-or-match": ": --span START:END or --match TEXT",
    "another-out": " (give another --out)",
    "lower-bates-start": "; give a lower --bates-start",
    "no-bates-start": " (leave out --bates-start)",
    "propagate-or-counsel": (
        " (`bulletin redact propagate REDACTION`, or export the counsel production with --counsel)"
    ),
    "request-or-query": ": give --request ID or --query '...'",
    "resume": " (re-run with --resume)",
    # notices, templates and who acts
    "approve-template": " (an approver runs `bulletin template approve NAME --by NAME`)",
    "as": " with --as NAME (or set BULLETIN_USER)",
    "at": " (give --at)",
    "declare-var": " (add --var NAME:TYPE)",
    "expires": " (give --expires too)",
    "late-ok": " (use --late-ok to publish it now anyway)",
    "override": ' (approve with --override RULE --reason "...")',
    "reason": " (give --reason)",
    "role": " (give --role ROLE, repeatable)",
    "totp-code": " (the six digits the authenticator app shows now)",
    "repeat": " (--until needs --repeat or --every)",
    "target": " (give --target ACCOUNT)",
    "text": " (give --text)",
    "until": " (give --until TIME, or --until cancelled)",
    "var": " (give --var NAME=VALUE)",
    "variant": " (--text-for PLATFORM=TEXT gives it its own text)",
    "event": " (give --event TYPE, repeated for more)",
    "variant-or-thread": " (--text-for PLATFORM=TEXT gives it its own text; --allow-thread "
    "posts it as a numbered thread)",
}


def error_line(e: BulletinError) -> str:
    """The one line printed for ``e``: its message and, when it has one, this door's remedy."""
    return f"bulletin: error: {e}{REMEDIES.get(e.remedy or '', '')}"


@dataclass
class Context:
    """What every command receives: the configuration source and, lazily, the app (on
    ``clock``, else the wall clock)."""

    config_path: str | None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Clock | None = None
    _settings: Settings | None = None
    _app: App | None = None
    _warned: bool = False
    read_only: bool = False  # set by @read_only commands before the app is built

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            warnings: list[str] = []
            self._settings = load_settings(self.config_path, self.environ, warnings=warnings)
            for line in warnings:
                click.echo(f"bulletin: warning: {line}", err=True)
        return self._settings

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = App(
                self.settings,
                self.environ,
                self.clock or SystemClock(),
                read_only=self.read_only,
            )
        return self._app

    def actor(self, explicit: str | None = None) -> Actor:
        """Who runs this command: ``explicit`` (``--as``/``--by``), else ``BULLETIN_USER``, else
        the login name mapped through ``os_user`` (see :func:`bulletin.identity.resolve_actor`).
        Roles are the application layer's to check."""
        name = resolve_actor(self.settings, explicit, self.environ, db=users.directory(self.app))
        given = bool(explicit or self.environ.get("BULLETIN_USER"))
        return Actor(name, "as-given" if given else "os-user", socket.gethostname())

    def reader(self) -> Actor:
        """Who runs a command that only reads: :meth:`actor` when a name can be found, else
        an anonymous reader (reading needs no name and no role)."""
        try:
            return self.actor()
        except BulletinError:
            return Actor("", "os-user", socket.gethostname())

    def warn_open_mode(self) -> None:
        if self.settings.open_mode and not self._warned:
            self._warned = True
            click.echo(
                "bulletin: warning: no [users] configured; names are recorded as given and "
                "roles are not enforced",
                err=True,
            )

    def close(self) -> None:
        """Close the app once; a second call does nothing."""
        app, self._app = self._app, None
        if app is not None:
            app.close()


class BulletinGroup(click.Group):
    """Turns :class:`BulletinError` and a subcommand's usage error into one line on stderr and
    its exit code; a bug into one line, its traceback in the log and exit 70; a closed pipe
    (``| head``) into a quiet exit. An argument that is not valid UTF-8 is refused first."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for number, arg in enumerate(args, 1):
            bad = next((i for i, c in enumerate(arg) if "\ud800" <= c <= "\udfff"), None)
            if bad is not None:
                c = arg[bad]  # Python carries an undecodable byte b as U+DC00 + b
                what = f"byte 0x{ord(c) - 0xDC00:02x}" if c >= "\udc80" else f"U+{ord(c):04X}"
                click.echo(
                    f"bulletin: error: argument {number} is not valid UTF-8 "
                    f"({what} at character {bad + 1})",
                    err=True,
                )
                ctx.exit(2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            _close(ctx)
            return result
        except BulletinError as e:
            click.echo(error_line(e), err=True)
            sys.exit(e.exit_code)
        except click.UsageError as e:
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            click.echo(f"bulletin: error: {e.format_message()}{where}", err=True)
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            _quiet_broken_pipe()
        except Exception as e:  # a bug: one line for the user, the traceback in the log
            import structlog

            from bulletin import logs

            if not logs.configured():
                logs.configure("warning")
            structlog.get_logger("bulletin.cli").exception(
                "unexpected error", command=ctx.invoked_subcommand
            )
            click.echo(
                f"bulletin: error: unexpected {type(e).__name__}: {e} (please report this; "
                "the traceback is in the log)",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)
        finally:
            _close(ctx, quiet=True)


def _close(ctx: click.Context, quiet: bool = False) -> None:
    """Close the database and store once. Closing makes the last batch durable, so it can
    fail (a full disk): then one line and exit 1, unless the command already failed
    (``quiet``), whose own message stands."""
    obj = ctx.obj
    if not isinstance(obj, Context):
        return
    try:
        obj.close()
    except Exception as e:
        if quiet:
            return
        reason = str(e) if isinstance(e, BulletinError) else f"{type(e).__name__}: {e}"
        click.echo(f"bulletin: error: closing the database and archive store: {reason}", err=True)
        sys.exit(1)


def _quiet_broken_pipe() -> None:
    """The reader of stdout went away: send what is still buffered to /dev/null (so the
    flush at exit cannot fail again) and exit like a process killed by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_BROKEN_PIPE)


def json_option(func: F) -> F:
    """``--json``: print one JSON object instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def emit(as_json: bool, payload: dict[str, Any], text: str | list[str]) -> None:
    """Print ``payload`` as JSON or ``text`` for people."""
    if as_json:
        click.echo(json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True))
        return
    for line in [text] if isinstance(text, str) else text:
        click.echo(line)


pass_context = click.make_pass_decorator(Context)


def read_only(func: F) -> F:
    """A command that only reads: it opens a SQLite database read-only, so the members of the
    service's group can run it. Put it below ``@pass_context``."""

    @functools.wraps(func)
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        ctx.read_only = True
        return func(ctx, *args, **kwargs)

    return cast(F, wrapper)


@click.group(cls=BulletinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BULLETIN_CONFIG",
    help="Configuration file (default: $BULLETIN_CONFIG, ./bulletin.toml, built-in defaults).",
)
@click.version_option(__version__, prog_name="bulletin")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Bulletin publishes an agency's public notices to every platform exactly once and keeps
    the public record: every post and comment, in write-once storage."""
    # Run in-process, a caller may give the clock every command reads: invoke(..., obj=clock).
    ctx.obj = Context(config_path, clock=ctx.obj if isinstance(ctx.obj, Clock) else None)


def main() -> None:
    """Console entry point. Files are created without access for others whatever the caller's
    umask (a stricter one is kept): the records are private, the service's group may read them.
    The few public outputs (the Atom feed) and private ones (productions) set their own modes."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
    cli(prog_name="bulletin")


# The subcommand modules import the helpers above, so they are registered last.
from bulletin.cli import (  # noqa: E402
    admin,
    archive,
    comment,
    notice,
    records,
    redact,
    retention,
    sandbox,
    template,
    user,
    web,
)
from bulletin.cli import export as export_cli  # noqa: E402

for _module in (
    admin,
    archive,
    comment,
    notice,
    records,
    redact,
    retention,
    sandbox,
    template,
    user,
    web,
    export_cli,
):
    _module.register(cli)

from bulletin.cli import cap, webhook  # noqa: E402

cap.register(cli)
webhook.register(cli)

from bulletin.cli import portal  # noqa: E402

portal.register(cli)
