"""Administrator commands: init, config check, daemon, account list, audit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import click

from bulletin.app.admin import initialise
from bulletin.app.audit import list_events
from bulletin.app.users import FirstAdmin, open_console
from bulletin.cli import LIMIT, Context, emit, json_option, pass_context, read_only
from bulletin.config.render import Note, to_toml
from bulletin.db import masked_url
from bulletin.errors import UsageError
from bulletin.names import printable
from bulletin.timeparse import local_text

SECRET_HINTS = ("secret", "token", "password", "key")


@click.command()
@click.option(
    "--first-admin",
    is_flag=True,
    help="Also print the web console's address and, while no account exists (or the first "
    "admin has set no password yet), a one-time link that signs in the first admin.",
)
@json_option
@pass_context
def init(ctx: Context, first_admin: bool, as_json: bool) -> None:
    """Create or upgrade the data directory, database and archive (safe to run again)."""
    reader = ctx.reader()
    done = initialise(ctx.app, reader)
    database = masked_url(done.database_url)
    payload: dict[str, Any] = {
        "data_dir": str(done.data_dir),
        "database": database,
        "schema": done.schema,
        "store": done.store,
        "accounts": done.accounts,
    }
    lines = [
        f"data directory  {done.data_dir}",
        f"database        {database} (schema {done.schema})",
        f"archive         {done.store} store",
        f"accounts        {', '.join(done.accounts) or 'none'}",
        "ready: start the daemon with `bulletin daemon`",
    ]
    if first_admin:
        opened = open_console(ctx.app, reader, os_user=ctx.os_user())
        payload["console"] = opened.console
        payload["first_admin"] = _first_admin_json(opened)
        lines += _first_admin_lines(ctx, opened)
    emit(as_json, payload, lines)


def _first_admin_lines(ctx: Context, opened: FirstAdmin) -> list[str]:
    lines = [f"Console: {opened.console}"]
    link = opened.link
    if link is None:
        return lines
    until = local_text(link.expires_at, ctx.settings.agency.time_zone)
    if opened.state == "renewed":
        lines.append(
            f"The first admin, {link.name!r}, has not set a password yet: a new one-time "
            f"link (earlier links no longer work), until {until}:"
        )
    else:
        lines.append(
            f"Sign in as the first admin, {link.name!r}: set its password once through "
            f"this link, until {until}:"
        )
    return [*lines, link.url]


def _first_admin_json(opened: FirstAdmin) -> dict[str, Any]:
    link = opened.link
    return {
        "state": opened.state,
        "name": link.name if link is not None else None,
        "url": link.url if link is not None else None,
        "expires_at": link.expires_at.isoformat() if link is not None else None,
    }


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.option(
    "--toml",
    "as_toml",
    is_flag=True,
    help="Print only the effective configuration, as TOML a file can start from.",
)
@json_option
@pass_context
def config_check(ctx: Context, as_toml: bool, as_json: bool) -> None:
    """Validate the configuration and print it (TOML, or JSON) with secrets masked."""
    settings = ctx.settings
    dump = settings.model_dump(mode="json", exclude={"source"})
    if as_json:
        dump["database"]["url"] = masked_url(settings.database_url)
        emit(True, _mask(dump, ctx.environ) | {"source": settings.source}, "")
        return
    if settings.database.url:
        dump["database"]["url"] = masked_url(settings.database.url)
    if not as_toml:
        click.echo(f"# configuration from {settings.source}: valid")
    note = _env_note(ctx.environ, masked_url(settings.database_url))
    click.echo(to_toml(_mask(dump, ctx.environ, names=True), note), nl=False)


@config.command("example")
def config_example() -> None:
    """Print a complete, commented configuration file to start from: the embedded defaults
    (bulletin config example > bulletin.toml)."""
    text = resources.files("bulletin.config").joinpath("defaults.toml").read_text("utf-8")
    click.echo(text, nl=False)


@click.command()
@click.option("--once", is_flag=True, help="Run everything due now, sweep once, then exit.")
@click.option(
    "--max-wait",
    default=5.0,
    show_default=True,
    type=float,
    help="With --once: seconds to wait inline for work that becomes due soon.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format", default="text", show_default=True, type=click.Choice(["text", "json"])
)
@json_option
@pass_context
def daemon(
    ctx: Context, once: bool, max_wait: float, log_level: str, log_format: str, as_json: bool
) -> None:
    """Run the service: publish what is due, capture, verify. SIGTERM stops, SIGHUP reloads."""
    from bulletin.logs import configure
    from bulletin.service.daemon import Daemon

    configure(log_level, log_format)
    service = Daemon(ctx.app, ctx.config_path)
    if not once:
        service.serve()
        return
    report = service.run_once(max_wait)
    tz = ctx.settings.agency.time_zone
    lines = [f"notice {o.delivery_id}: {o.state} {o.detail}".rstrip() for o in report.outcomes]
    lines += [
        f"deferred: notice {n} to {a} at {local_text(due, tz)}" + (f" ({why})" if why else "")
        for n, a, due, why in report.deferred
    ]
    lines += [f"captured {count} new records from {name}" for name, count in report.swept.items()]
    emit(
        as_json,
        {
            "outcomes": [o.__dict__ for o in report.outcomes],
            "deferred": [
                {"notice": n, "account": a, "due_at": due, "reason": why}
                for n, a, due, why in report.deferred
            ],
            "captured": report.swept,
        },
        lines or ["nothing was due"],
    )


@click.group()
def account() -> None:
    """Platform accounts."""


@account.command("list")
@json_option
@pass_context
def account_list(ctx: Context, as_json: bool) -> None:
    """List the configured accounts."""
    accounts = ctx.settings.accounts
    rows = [
        {"name": name, "platform": a.platform, "base_url": a.base_url, "enabled": a.enabled}
        for name, a in sorted(accounts.items())
    ]
    emit(
        as_json,
        {"accounts": rows},
        [
            f"{r['name']:<16} {r['platform']:<9} {r['base_url'] or '(platform)'}"
            + ("" if r["enabled"] else "  disabled")
            for r in rows
        ]
        or ["no accounts configured"],
    )


@account.command("check")
@click.argument("name")
@json_option
@pass_context
def account_check(ctx: Context, name: str, as_json: bool) -> None:
    """Try an account's credentials and permissions; say what works and what is missing."""
    connector = ctx.app.connector(name)
    lines = connector.check()
    if ctx.settings.accounts[name].platform == "facebook":
        from bulletin.app.facebook_webhooks import subscription_line

        lines.append(subscription_line(ctx.app, name))
    limits = connector.limits()
    ok = all(line.ok for line in lines)
    emit(
        as_json,
        {
            "account": name,
            "ok": ok,
            "checks": [line.__dict__ for line in lines],
            "limits": limits.__dict__,
        },
        [
            f"{'ok ' if line.ok else 'NO '} {line.what}"
            + (f": {line.detail}" if line.detail else "")
            for line in lines
        ]
        + [
            f"limits: {limits.max_length} characters"
            + (" (weighted as X counts)" if limits.counts_weighted else "")
            + (
                f", replies visible {limits.lookback_days} days back"
                if limits.lookback_days
                else ""
            )
        ],
    )
    if not ok:
        raise SystemExit(1)


@account.command("subscribe")
@click.argument("name")
@click.option("--as", "actor", default=None, help="Who is acting (default $BULLETIN_USER).")
@json_option
@pass_context
def account_subscribe(ctx: Context, name: str, actor: str | None, as_json: bool) -> None:
    """Subscribe a Facebook Page to the app's webhooks (its feed: comments and posts), so
    that comments are captured as they happen; the sweeps go on as the safety net."""
    from bulletin.app.facebook_webhooks import subscribe_page

    done = subscribe_page(ctx.app, ctx.actor(actor), name)
    emit(
        as_json,
        {"account": name, "subscribed": done.subscribed, "fields": done.fields},
        [
            f"{name}: subscribed to {', '.join(done.fields)}"
            if done.subscribed
            else f"{name}: the Page does not report the feed subscription"
        ],
    )
    if not done.subscribed:
        raise SystemExit(1)


@click.command()
@click.option("--object", "object_ref", help="Only events of TYPE:ID, e.g. notice:12.")
@click.option("--action", help="Only this action (approved, published, captured...).")
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="Newest N events.")
@json_option
@pass_context
@read_only
def audit(
    ctx: Context, object_ref: str | None, action: str | None, limit: int, as_json: bool
) -> None:
    """List audit events: who did what, to which object, when and why."""
    events = list_events(ctx.app, ctx.reader(), object_ref, action, limit)
    tz = ctx.settings.agency.time_zone
    emit(
        as_json,
        {"events": [e.model_dump() for e in events]},
        [
            f"{local_text(e.at, tz)}  {_who(e.actor, e.detail):<12} {e.action:<12} "
            f"{e.object_type} {e.object_id}" + (f"  ({printable(e.reason)})" if e.reason else "")
            for e in events
        ]
        or ["no events"],
    )


def _who(actor: str, detail: str | None) -> str:
    """An event's actor as printed: an admin acting on someone's behalf as ``ada for dana``
    (the reason is in ``--json``)."""
    shown = printable(actor)
    if detail and "on_behalf_of" in detail:
        behalf = json.loads(detail).get("on_behalf_of")
        shown += f" for {printable(str(behalf))}" if behalf else ""
    return shown


def _mask(value: Any, environ: Mapping[str, str], key: str = "", names: bool = False) -> Any:
    """Secrets replaced by ``***``. A ``*_env`` setting names a variable, which is safe to
    show: as it is when ``names``, else followed by whether it is set."""
    if isinstance(value, dict):
        return {k: _mask(v, environ, k, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, environ, names=names) for v in value]
    if isinstance(value, str) and value and any(h in key.lower() for h in SECRET_HINTS):
        if key.endswith("_env"):
            return value if names else f"{value} ({'set' if value in environ else 'not set'})"
        return "***"
    return value


def _env_note(environ: Mapping[str, str], database_url: str) -> Note:
    """TOML comments: after each ``*_env`` setting, whether its variable is set; after an
    empty database URL, the one in effect."""

    def note(path: tuple[str, ...], value: Any) -> str | None:
        if path == ("database", "url") and not value:
            return database_url
        if not path[-1].endswith("_env") or not value:
            return None
        return "set" if value in environ else "not set"

    return note


@click.command()
@click.option(
    "--check",
    is_flag=True,
    help="End with what needs a person, and exit 1 when anything does (for cron or a monitor).",
)
@json_option
@pass_context
@read_only
def status(ctx: Context, check: bool, as_json: bool) -> None:
    """Live daemons and what they hold, deliveries by state, the archive and its backlog,
    free disk."""
    from bulletin.archiver.requests import deadline_text
    from bulletin.archiver.status import capture_health
    from bulletin.publisher.schedule import late_summary
    from bulletin.service.instances import HEARTBEAT_SECONDS
    from bulletin.service.status import (
        bucket_problems,
        gather,
        problems,
        timestamp_backlog,
        timestamp_problems,
    )

    app = ctx.app
    app.checked_engine()
    tz = ctx.settings.agency.time_zone
    state = gather(app, HEARTBEAT_SECONDS)
    lines = [f"daemons running: {len(state.daemons)}"]
    lines += [
        f"  {d.host} pid {d.pid} v{d.version}  heartbeat {local_text(d.heartbeat_at, tz)}"
        f"  holding {state.held.get(d.owner, 0)} deliveries"
        for d in state.daemons
    ]
    next_due = local_text(state.next_due, tz) if state.next_due else "-"
    lines.append(
        "deliveries: "
        + (", ".join(f"{k} {v}" for k, v in sorted(state.deliveries.items())) or "none")
        + f"; due now {state.due_now}; next {next_due}"
    )
    lines.append(
        "notices: " + (", ".join(f"{k} {v}" for k, v in sorted(state.notices.items())) or "none")
    )
    if state.failed:
        lines.append(
            f"failed deliveries: {len(state.failed)} notices (bulletin notice ack ID once seen)"
        )
        lines += [f"  {f.line()}" for f in state.failed]
    lines.append(
        f"archive: {state.records} records, ledger head #{state.ledger_head}, "
        f"{state.store_backlog} objects waiting for the store"
    )
    if state.archive_waiting:
        lines.append(
            f"  {state.archive_waiting} published posts wait to be archived, retried by the "
            f"due-scan (last error: {state.archive_error or 'none'})"
        )
    lines.append(
        f"late notices: {len(state.late)}"
        + (
            " WAITING FOR A DECISION (bulletin notice late ID --publish|--cancel)"
            if state.late
            else ""
        )
    )
    lines += [f"  {line}" for line in late_summary(state.late, tz)]
    lines.append(
        f"records requests: {state.requests_open} open, {len(state.requests_near)} due within "
        f"{ctx.settings.requests.warn_days} days or overdue"
    )
    lines += [f"  {deadline_text(r, ctx.settings)}" for r in state.requests_near]
    lines += [f"disk: {d.text(state.warn_free_percent)}" for d in state.disks]
    lines.append("archive verify: " + ("last runs" if state.verify_runs else "no run recorded"))
    lines += [f"  {run.line()}" for run in state.verify_runs]
    if state.verify_runs and state.verify_runs[0].first_problems:
        lines += [f"    problem: {p}" for p in state.verify_runs[0].first_problems]
    payload = state.payload()
    stamps = timestamp_backlog(app)
    if stamps is not None:
        lines.append(
            f"time stamps: {stamps} checkpoints waiting"
            if isinstance(stamps, int)
            else f"time stamps: {stamps}"
        )
        payload["checkpoints_unstamped"] = stamps
    found: list[str] = []
    if check:
        now = app.clock.now()
        sweeps, _ = capture_health(app.engine, ctx.settings)
        found = problems(state, sweeps, now) + bucket_problems(app)
        found += timestamp_problems(app, now)
        payload["problems"] = found
        lines += [f"CHECK: {p}" for p in found] or ["CHECK: ok"]
    emit(as_json, payload, lines)
    if found:
        raise SystemExit(1)


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The backup file, or a directory to put bulletin-<UTC time>.db in.",
)
@json_option
@pass_context
def backup(ctx: Context, out: Path, as_json: bool) -> None:
    """Copy the SQLite database, consistently, while the daemon runs (see docs/operations.md)."""
    from bulletin.service.backup import backup_sqlite

    done = backup_sqlite(ctx.settings.database_url, out, ctx.app.clock.now())
    emit(
        as_json,
        {
            "path": str(done.path),
            "size": done.size,
            "ledger_head": done.ledger_head,
            "schema": done.schema,
        },
        [
            f"backed up the database to {done.path} ({done.size:,} bytes, schema "
            f"{done.schema or '?'}, ledger head #{done.ledger_head}); integrity check ok",
            "the archive store is the record of truth: copy it too (docs/operations.md)",
        ],
    )


@click.command()
@click.argument("backup_file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--in-place",
    is_flag=True,
    help="The database was put back by other means (pg_restore): only settle deliveries and "
    "rebuild the archive index.",
)
@click.option("--as", "actor", default=None, help="Who restores (an admin).")
@json_option
@pass_context
def restore(
    ctx: Context, backup_file: Path | None, in_place: bool, actor: str | None, as_json: bool
) -> None:
    """Put a SQLite backup back, with the daemon stopped (see docs/operations.md): the current
    files are moved aside, deliveries due since are checked on their platforms before any
    post, and the archive index is rebuilt from the store."""
    from bulletin.identity import resolve_actor
    from bulletin.service.restore import restore_sqlite, settle_in_place

    if (backup_file is None) == (not in_place):
        raise UsageError("give a backup file, or --in-place after restoring by other means")
    settings = ctx.settings
    who = resolve_actor(settings, actor, ctx.environ, "admin", login=ctx.os_user()).name
    now = ctx.app.clock.now()
    lines: list[str] = []
    payload: dict[str, Any] = {}
    if backup_file is not None:
        done = restore_sqlite(settings, backup_file, who, now, ctx.environ)
        uncertain, rebuilt = done.uncertain, done.rebuilt
        payload = {
            "moved_aside": [str(p) for p in done.moved_aside],
            "restored": str(done.copy.path),
            "schema": done.schema,
            "ledger_head_in_backup": done.copy.ledger_head,
        }
        lines += [f"moved aside: {p}" for p in done.moved_aside]
        lines.append(
            f"restored {backup_file} into {done.copy.path} (schema {done.schema}; the "
            f"backup's ledger head #{done.copy.ledger_head})"
        )
    else:
        uncertain, rebuilt = settle_in_place(settings, who, now, ctx.environ)
    payload |= {
        "uncertain_deliveries": uncertain,
        "records": rebuilt.records,
        "entries": rebuilt.entries,
        "problems": rebuilt.problems,
    }
    lines += [
        f"rebuilt {rebuilt.records} records and {rebuilt.entries} ledger entries from the store",
        f"{uncertain} deliveries due since the backup will be looked for on their platforms "
        "before anything is posted",
        "notices drafted or approved after the backup was taken are not in it: compare "
        "`bulletin notice list` with the platforms",
        "next: bulletin archive verify, then start the daemon",
    ]
    lines += [f"problem: {p}" for p in rebuilt.problems]
    emit(as_json, payload, lines)
    if rebuilt.problems:
        raise SystemExit(1)
