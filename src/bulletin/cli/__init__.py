"""The command line: one group, subcommands by noun. Errors print one line, never a traceback.

Exit codes: 0 done, 1 refused or failed, 2 usage or configuration error, 70 an internal error
(a bug; the traceback is in the log), 141 stdout was closed early (``| head``).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from bulletin import __version__
from bulletin.clock import Clock, SystemClock
from bulletin.errors import BulletinError

if TYPE_CHECKING:  # imported where used, so `bulletin --help` loads none of them
    from bulletin.app import Actor, App
    from bulletin.config import Settings
    from bulletin.identity import Kernel

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
    "approve-template": " (an approver runs `bulletin template approve NAME`)",
    "as": " (leave out --as/--by and BULLETIN_USER; an admin acts for someone else with "
    '--on-behalf-of NAME --reason "..."; see `bulletin user list`)',
    "as-given": " with --as NAME (or set BULLETIN_USER)",
    "os-user": " (an admin maps it: `bulletin user add NAME --os-user LOGIN`, or os_user in "
    "[users.NAME] before `bulletin init`)",
    "at": " (give --at)",
    "follow-up-in": " (--follow-up-in LANG=TEXT for each language, or --follow-up-partial to "
    "leave those posts without one)",
    "follow-up-in-languages": " (a follow_up for each language in --languages-file, or "
    "--follow-up-partial to leave those posts without one)",
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
    "text-in": " (give --text-in LANG=TEXT for each, or --publish-partial)",
    "until": " (give --until TIME, or --until cancelled)",
    "var": " (give --var NAME=VALUE)",
    "variant": " (--text-for PLATFORM=TEXT gives it its own text)",
    "event": " (give --event TYPE, repeated for more)",
    "scope": " (give --scope SCOPE, repeatable)",
    "variant-or-thread": " (--text-for PLATFORM=TEXT gives it its own text; --allow-thread "
    "posts it as a numbered thread)",
}


def error_line(e: BulletinError) -> str:
    """The one line printed for ``e``: its message and, when it has one, this door's remedy."""
    return f"bulletin: error: {e}{REMEDIES.get(e.remedy or '', '')}"


@dataclass(frozen=True)
class InProcess:
    """What a caller running the command line in-process may give it, as click's ``obj``:
    the clock every command reads and the :class:`~bulletin.identity.Kernel` that says who
    runs it (a bare :class:`Clock` is taken as the clock alone). The daemon running a
    command for a client (:mod:`bulletin.service.commands`) gives the client's environment
    and working directory too: then ``$BULLETIN_CONFIG`` is read from ``environ``, relative
    paths are taken from ``cwd``, and this process's own are not looked at."""

    clock: Clock | None = None
    kernel: Kernel | None = None
    environ: Mapping[str, str] | None = None
    cwd: Path | None = None
    engines: Callable[[bool], Any] | None = None  # an engine by read_only: App.engines


@dataclass
class Context:
    """What every command receives: the configuration source and, lazily, the app (on
    ``clock``, else the wall clock). Who runs it comes from ``kernel`` (else the real one);
    ``on_behalf_of`` and ``on_behalf_reason`` are what ``--on-behalf-of`` and ``--reason``
    gave (:func:`on_behalf_options`)."""

    config_path: str | None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None  # what relative paths of the configuration are relative to
    engines: Callable[[bool], Any] | None = None  # an engine by read_only: App.engines
    clock: Clock | None = None
    kernel: Kernel | None = None
    on_behalf_of: str | None = None
    on_behalf_reason: str | None = None
    reason_for_behalf_only: bool = False  # the command's --reason is only for --on-behalf-of
    _settings: Settings | None = None
    _app: App | None = None
    _warned: bool = False
    read_only: bool = False  # set by @read_only commands before the app is built

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from bulletin.config import load_settings

            warnings: list[str] = []
            self._settings = load_settings(
                self.config_path, self.environ, cwd=self.cwd, warnings=warnings
            )
            for line in warnings:
                click.echo(f"bulletin: warning: {line}", err=True)
        return self._settings

    @property
    def app(self) -> App:
        if self._app is None:
            from bulletin.app import App

            self._app = App(
                self.settings,
                self.environ,
                self.clock or SystemClock(),
                read_only=self.read_only,
                check_schema_once=True,  # one command, one schema
                engines=self.engines,
            )
        return self._app

    def os_user(self) -> str:
        """The OS user running this command (:func:`bulletin.identity.invoking_os_user`):
        sudo's word is taken from root and from the data directory's owner, the service's
        user that ``sudo -u bulletin`` runs as."""
        from bulletin.identity import SystemKernel, invoking_os_user

        kernel = self.kernel or SystemKernel()
        return invoking_os_user(kernel, self.environ, service_path=self.settings.data_dir)

    def actor(self, explicit: str | None = None) -> Actor:
        """Who runs this command: with accounts, the OS user's account (``explicit``,
        ``--as``/``--by``, and ``BULLETIN_USER`` may only name it); in open mode ``explicit``,
        else ``BULLETIN_USER``, else the OS user (see :func:`bulletin.identity.resolve_actor`).
        With ``--on-behalf-of``, that account acting for another
        (:func:`bulletin.app.users.act_for`). Roles are the application layer's to check."""
        from bulletin.app import Actor, users
        from bulletin.identity import resolve_actor

        acting = resolve_actor(
            self.settings,
            explicit,
            self.environ,
            db=users.directory(self.app),
            login=self.os_user(),
        )
        host = socket.gethostname()
        actor = Actor(acting.name, "as-given" if acting.as_given else "os-user", host)
        if self.on_behalf_of is None:
            if self.reason_for_behalf_only:
                raise click.UsageError("--reason is for acting --on-behalf-of someone")
            return actor
        return users.act_for(self.app, actor, self.on_behalf_of, self.on_behalf_reason or "")

    def reader(self) -> Actor:
        """Who runs a command that only reads: :meth:`actor` when a name can be found, else
        an anonymous reader (reading needs no name and no role)."""
        from bulletin.app import Actor

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


def _keep_on_behalf(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    obj = ctx.find_object(Context)
    if obj is not None and value is not None:
        if param.name == "on_behalf_of":
            obj.on_behalf_of = value
        else:
            obj.on_behalf_reason = value
            obj.reason_for_behalf_only = param.name == "behalf_reason"
    return value


def on_behalf_options(func: F) -> F:
    """``--on-behalf-of NAME`` and the ``--reason TEXT`` it needs, kept on the
    :class:`Context` for :meth:`Context.actor`. A command with a ``--reason`` of its own
    shares it. Put it above the command's own options."""
    params: list[click.Parameter] = getattr(func, "__click_params__", [])
    own = next((p for p in params if p.name == "reason"), None)
    if own is None:
        func = click.option(
            "--reason",
            "behalf_reason",
            expose_value=False,
            callback=_keep_on_behalf,
            help="Why an admin acts on behalf of someone (needed with --on-behalf-of).",
        )(func)
    else:
        earlier = own.callback

        def both(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
            value = earlier(ctx, param, value) if earlier is not None else value
            return _keep_on_behalf(ctx, param, value)

        own.callback = both
    return click.option(
        "--on-behalf-of",
        "on_behalf_of",
        metavar="NAME",
        expose_value=False,
        callback=_keep_on_behalf,
        help="An admin acts for NAME, with --reason: audited as the admin's act for NAME.",
    )(func)


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


# Every command of `bulletin`, the one place a command or group is registered: its name (a
# subcommand of a group here: "GROUP NAME") -> ("module:attribute", its short help, the first
# sentence of its docstring, shown by `bulletin --help` without importing the module; a test
# checks they agree). A module is imported only when its command runs or its help is asked.
COMMANDS: dict[str, tuple[str, str]] = {
    "account": ("bulletin.cli.admin:account", "Platform accounts."),
    "archive": (
        "bulletin.cli.archive:archive",
        "The public record: archived posts and comments in write-once storage.",
    ),
    "audit": (
        "bulletin.cli.admin:audit",
        "List audit events: who did what, to which object, when and why.",
    ),
    "backup": (
        "bulletin.cli.admin:backup",
        "Copy the SQLite database, consistently, while the daemon runs (see docs/operations.md).",
    ),
    "cap": (
        "bulletin.cli.cap:cap",
        "Common Alerting Protocol 1.2: turn NWS, IPAWS and county alerts into notices.",
    ),
    "comment": (
        "bulletin.cli.comment:comment",
        "Moderate visitor comments; each is archived fresh from the platform first.",
    ),
    "config": ("bulletin.cli.admin:config", "Inspect the configuration."),
    "daemon": (
        "bulletin.cli.admin:daemon",
        "Run the service: publish what is due, capture, verify.",
    ),
    "export": (
        "bulletin.cli.export:export",
        "Produce every version of every matching post and comment (hidden, edited and deleted "
        "ones too) as a BagIt bundle: natives, text, Concordance DAT and CSV load files, Bates "
        "numbers, a manifest with ledger positions and a chain-of-custody report.",
    ),
    "hold": (
        "bulletin.cli.records:hold",
        "Legal holds: keep every record matching a query until the hold is released.",
    ),
    "init": (
        "bulletin.cli.admin:init",
        "Create or upgrade the data directory, database and archive (safe to run again).",
    ),
    "notice": ("bulletin.cli.notice:notice", "Queue, approve and follow public notices."),
    "notify": (
        "bulletin.cli.notify:notify",
        "Email notifications ([notify]): approvals, escalations, administrators' notices.",
    ),
    "portal": (
        "bulletin.cli.portal:portal",
        "Run the public archive portal (read-only, no sign-in) until SIGTERM.",
    ),
    "redact": (
        "bulletin.cli.redact:redact",
        "Withhold text of archived records from public productions, citing an exemption.",
    ),
    "request": (
        "bulletin.cli.records:request",
        "Public-records and litigation requests: deadlines, and a hold on their scope.",
    ),
    "restore": (
        "bulletin.cli.admin:restore",
        "Put a SQLite backup back, with the daemon stopped (see docs/operations.md): the "
        "current files are moved aside, deliveries due since are checked on their platforms "
        "before any post, and the archive index is rebuilt from the store.",
    ),
    "retention": (
        "bulletin.cli.retention:retention_group",
        "The retention schedule, and disposition: only by an approved batch, with a certificate.",
    ),
    "sandbox": (
        "bulletin.cli.sandbox:sandbox",
        "Run the sandbox platform server (X API v2 and Graph API subset) until SIGTERM.",
    ),
    "status": (
        "bulletin.cli.admin:status",
        "Live daemons and what they hold, deliveries by state, the archive and its backlog, "
        "free disk.",
    ),
    "template": (
        "bulletin.cli.template:template",
        "Templates an approver approves in advance, so a dispatcher can publish at once.",
    ),
    "token": (
        "bulletin.cli.token:token",
        "API tokens: programs (a CAD system, a script) acting through the HTTP API.",
    ),
    "user": (
        "bulletin.cli.user:user",
        "People who use Bulletin: their accounts, roles, passwords and second factors.",
    ),
    "web": ("bulletin.cli.web:web", "Run the web console (sign-in, sessions) until SIGTERM."),
    "webhook": (
        "bulletin.cli.webhook:webhook",
        "Signed outbound webhooks (Standard Webhooks): which events go where, and their log.",
    ),
}


class LazyGroup(BulletinGroup):
    """A :class:`BulletinGroup` whose commands are listed in a table (see :data:`COMMANDS`) and
    imported on first use: when one runs, its ``--help`` is asked or completion needs it. The
    group's own ``--help`` lists every command with the table's short help, importing none.
    A table entry "GROUP NAME" is added to GROUP's own commands when GROUP is loaded."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *(name for name in self.lazy if " " not in name)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy and " " not in cmd_name:
            self.add_command(self.load(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def load(self, path: str) -> click.Command:
        """Import the command the table names for ``path``, with the table's subcommands of
        it attached. Raises :class:`LookupError` for a table entry that names no command."""
        target = self.lazy[path][0]
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute, None)
        if not isinstance(command, click.Command):
            raise LookupError(f"{target} (the command `{path}`) is not a click command")
        depth = path.count(" ") + 1
        for sub in sorted(p for p in self.lazy if p.startswith(f"{path} ")):
            if sub.count(" ") == depth:
                if not isinstance(command, click.Group):
                    raise LookupError(f"{target} has subcommands in the table but is no group")
                command.add_command(self.load(sub), sub.rsplit(" ", 1)[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands with their short help, the table's for those not loaded yet."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name][1])
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in rows])


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BULLETIN_CONFIG",
    help="Configuration file (default: $BULLETIN_CONFIG, ./bulletin.toml, built-in defaults).",
)
@click.option(
    "--local",
    is_flag=True,
    expose_value=False,
    help="Run the command in this process, never through the running daemon.",
)
@click.version_option(__version__, prog_name="bulletin")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Bulletin publishes an agency's public notices to every platform exactly once and keeps
    the public record: every post and comment, in write-once storage."""
    # Run in-process, a caller may give the clock every command reads and who runs it:
    # invoke(..., obj=InProcess(clock, kernel)), or obj=clock.
    given = InProcess(ctx.obj) if isinstance(ctx.obj, Clock) else ctx.obj
    given = given if isinstance(given, InProcess) else InProcess()
    if given.environ is None:
        ctx.obj = Context(config_path, clock=given.clock, kernel=given.kernel)
        return
    if ctx.get_parameter_source("config_path") != click.core.ParameterSource.COMMANDLINE:
        config_path = given.environ.get("BULLETIN_CONFIG") or None  # the caller's, not ours
    ctx.obj = Context(
        config_path,
        environ=dict(given.environ),
        cwd=given.cwd,
        engines=given.engines,
        clock=given.clock,
        kernel=given.kernel,
    )


def main() -> None:
    """Console entry point. Files are created without access for others whatever the caller's
    umask (a stricter one is kept): the records are private, the service's group may read them.
    The few public outputs (the Atom feed) and private ones (productions) set their own modes."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
    cli(prog_name="bulletin")
