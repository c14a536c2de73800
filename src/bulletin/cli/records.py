"""Records clerk commands: legal holds (hold ...) and records requests (request ...)."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from bulletin.archiver import holds, requests
from bulletin.cli import ID, LIMIT, Context, emit, json_option, pass_context
from bulletin.errors import UsageError
from bulletin.identity import resolve_actor
from bulletin.models import Hold, RecordsRequest
from bulletin.names import printable_text
from bulletin.timeparse import local_text

QUERY_HELP = (
    "Which records, in the language of `archive search`: from:DATE to:DATE account:NAME "
    "author:NAME thread:N (a record number, as hints print, or a platform id) "
    "kind:post|comment state:STATE series:NAME and words, e.g. "
    "'account:feed from:2026-11-01 to:2026-11-30 \"water main\"'."
)
EMPTY_HELP = "Accept a query that matches no archived record yet (holds later captures only)."


def register(group: click.Group) -> None:
    group.add_command(hold)
    group.add_command(request)


def _hold_json(h: Hold, count: int | None = None) -> dict[str, Any]:
    data = h.model_dump()
    data["query"] = holds.Query.from_json(h.query).describe()
    if count is not None:
        data["records"] = count
    return data


@click.group()
def hold() -> None:
    """Legal holds: keep every record matching a query until the hold is released."""


@hold.command("create")
@click.option("--name", required=True, help="A short name, e.g. 'Smith v. Town'.")
@click.option("--query", "query_text", required=True, help=QUERY_HELP)
@click.option("--reason", required=True, help="Why the records must be kept.")
@click.option("--allow-empty", is_flag=True, help=EMPTY_HELP)
@click.option("--as", "actor", default=None, help="Who places it (a clerk).")
@json_option
@pass_context
def hold_create(
    ctx: Context,
    name: str,
    query_text: str,
    reason: str,
    allow_empty: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Place a hold on every matching record, and on matching records captured later."""
    settings = ctx.settings
    ctx.warn_open_mode()
    who = resolve_actor(settings, actor, ctx.environ, "clerk")
    query = holds.parse_query(query_text)
    app = ctx.app
    engine = app.checked_engine()
    placed, count = holds.create_hold(
        engine,
        app.store,
        name=name,
        query=query,
        reason=reason,
        actor=who,
        now=app.clock.now(),
        time_zone=settings.agency.time_zone,
        allow_empty=allow_empty,
    )
    emit(
        as_json,
        _hold_json(placed, count),
        f"hold {placed.id} placed on {count} records ({name}); matching records captured "
        "from now on are held too",
    )


@hold.command("list")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@json_option
@pass_context
def hold_list(ctx: Context, include_released: bool, as_json: bool) -> None:
    """Open holds (and records requests' holds) with how many records each covers."""
    engine = ctx.app.checked_engine()
    rows = holds.list_holds(engine, include_released)
    tz = ctx.settings.agency.time_zone
    emit(
        as_json,
        {"holds": [_hold_json(h, n) for h, n in rows]},
        [
            f"{h.id:>4}  {h.state:<8} {n:>6} records  {local_text(h.created_at, tz)}  {h.name}"
            + (f"  [request {h.request_id}]" if h.request_id else "")
            + f"  {holds.Query.from_json(h.query).describe()}"
            for h, n in rows
        ]
        or ["no open holds"],
    )


@hold.command("show")
@click.argument("hold_id", type=ID)
@click.option(
    "--limit", type=LIMIT, default=50, show_default=True, help="Records to list (text output)."
)
@json_option
@pass_context
def hold_show(ctx: Context, hold_id: int, limit: int, as_json: bool) -> None:
    """One hold: its query, reason, state and the records it covers."""
    engine = ctx.app.checked_engine()
    found = holds.get_hold(engine, hold_id)
    records = holds.members(engine, hold_id)
    tz = ctx.settings.agency.time_zone
    lines = [
        f"hold {found.id}  {found.name}  ({found.state})",
        f"  query      {holds.Query.from_json(found.query).describe()}",
        f"  reason     {found.reason}",
        f"  placed     {local_text(found.created_at, tz)} by {found.created_by}",
    ]
    if found.request_id:
        lines.append(f"  request    {found.request_id}")
    if found.released_at:
        lines.append(
            f"  released   {local_text(found.released_at, tz)} by {found.released_by}: "
            f"{found.release_reason}"
        )
    lines.append(f"  records    {len(records)}")
    width = max([10, *(len(r.account) for r in records[:limit])])
    lines += [
        f"    {r.id:>6}  {r.account:<{width}} {r.kind:<7} {r.series:<18} "
        f"{printable_text(r.author or '-')}"
        for r in records[:limit]
    ]
    if len(records) > limit:
        lines.append(f"    … and {len(records) - limit} more (--json lists all)")
    emit(
        as_json,
        {**_hold_json(found, len(records)), "record_ids": [r.id for r in records]},
        lines,
    )


@hold.command("release")
@click.argument("hold_id", type=ID)
@click.option("--reason", required=True, help="Why the records need not be kept any more.")
@click.option("--as", "actor", default=None, help="Who releases it (a clerk).")
@json_option
@pass_context
def hold_release(ctx: Context, hold_id: int, reason: str, actor: str | None, as_json: bool) -> None:
    """Release a hold; records leave legal hold only when no other hold or request covers them."""
    settings = ctx.settings
    ctx.warn_open_mode()
    who = resolve_actor(settings, actor, ctx.environ, "clerk")
    app = ctx.app
    freed = holds.release_hold(
        app.checked_engine(),
        app.store,
        hold_id,
        reason=reason,
        actor=who,
        now=app.clock.now(),
        settings=settings,
    )
    emit(
        as_json,
        {"id": hold_id, "state": "released", "left_hold": freed},
        f"hold {hold_id} released; {freed} records left legal hold (their retention still applies)",
    )


# -- records requests ------------------------------------------------------------------------


def _request_json(r: RecordsRequest, days_left: int | None = None) -> dict[str, Any]:
    data = r.model_dump()
    data["query"] = holds.Query.from_json(r.query).describe()
    if days_left is not None:
        data["days_left"] = days_left
    return data


def _left(days: int, business: bool) -> str:
    unit = "business days" if business else "days"
    if days < 0:
        return f"OVERDUE by {-days} {unit}"
    if days == 0:
        return "due today"
    return f"{days} {unit} left"


@click.group()
def request() -> None:
    """Public-records and litigation requests: deadlines, and a hold on their scope."""


@request.command("open")
@click.option("--requester", required=True, help="Who asked (name, organisation).")
@click.option("--received", required=True, help="Date received, YYYY-MM-DD (agency's date).")
@click.option("--description", required=True, help="What was asked for.")
@click.option("--query", "query_text", required=True, help=QUERY_HELP)
@click.option("--litigation", is_flag=True, help="A litigation (e-discovery) request.")
@click.option("--allow-empty", is_flag=True, help=EMPTY_HELP)
@click.option("--as", "actor", default=None, help="Who records it (a clerk).")
@json_option
@pass_context
def request_open(
    ctx: Context,
    requester: str,
    received: str,
    description: str,
    query_text: str,
    litigation: bool,
    allow_empty: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Record a request: compute its statutory due date and hold every record in its scope."""
    settings = ctx.settings
    ctx.warn_open_mode()
    who = resolve_actor(settings, actor, ctx.environ, "clerk")
    try:
        received_on = date.fromisoformat(received)
    except ValueError:
        raise UsageError(f"--received {received!r} is not a date (YYYY-MM-DD)") from None
    query = holds.parse_query(query_text)
    app = ctx.app
    now = app.clock.now()
    opened, count = requests.open_request(
        app.checked_engine(),
        app.store,
        settings,
        requester=requester,
        received=received_on,
        description=description,
        query=query,
        litigation=litigation,
        actor=who,
        now=now,
        allow_empty=allow_empty,
    )
    rule = settings.requests
    unit = "business days" if rule.business_days else "calendar days"
    where = rule.jurisdiction or settings.agency.jurisdiction
    left = requests.days_left(settings, opened, now)
    emit(
        as_json,
        {**_request_json(opened, left), "records": count},
        [
            f"request {opened.id} opened for {requester}: due {opened.due_on} "
            f"({rule.response_days} {unit} after receipt, {where}; "
            f"{_left(left, rule.business_days)})",
            f"hold {opened.hold_id} placed on {count} records while the request is open",
        ],
    )


@request.command("list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed requests.")
@json_option
@pass_context
def request_list(ctx: Context, include_closed: bool, as_json: bool) -> None:
    """Open requests, the soonest due first, with the days left."""
    settings = ctx.settings
    app = ctx.app
    rows = requests.list_requests(app.checked_engine(), settings, app.clock.now(), include_closed)
    business = settings.requests.business_days
    emit(
        as_json,
        {"requests": [_request_json(r.request, r.days_left) for r in rows]},
        [
            f"{r.request.id:>4}  due {r.request.due_on}  "
            f"{(_left(r.days_left, business) if r.request.state == 'open' else 'closed'):<24} "
            f"{'[litigation] ' if r.request.litigation else ''}{r.request.requester}: "
            f"{r.request.description}"
            for r in rows
        ]
        or ["no open records requests"],
    )


@request.command("show")
@click.argument("request_id", type=ID)
@json_option
@pass_context
def request_show(ctx: Context, request_id: int, as_json: bool) -> None:
    """One request: its deadline, extensions, scope and hold."""
    settings = ctx.settings
    app = ctx.app
    engine = app.checked_engine()
    found = requests.get_request(engine, request_id)
    left = requests.days_left(settings, found, app.clock.now())
    count = len(holds.members(engine, found.hold_id)) if found.hold_id else 0
    tz = settings.agency.time_zone
    lines = [
        f"request {found.id}  {found.state}{'  [litigation]' if found.litigation else ''}",
        f"  requester   {found.requester}",
        f"  asked for   {found.description}",
        f"  query       {holds.Query.from_json(found.query).describe()}",
        f"  received    {found.received_on}",
        f"  due         {found.due_on}  ({_left(left, settings.requests.business_days)})",
    ]
    if found.extension_days:
        lines.append(f"  extended    {found.extension_days} days: {found.extension_reason}")
    lines.append(f"  hold        {found.hold_id} on {count} records")
    lines.append(f"  opened      {local_text(found.opened_at, tz)} by {found.opened_by}")
    if found.closed_at:
        lines.append(
            f"  closed      {local_text(found.closed_at, tz)} by {found.closed_by}: "
            f"{found.close_reason}"
        )
    emit(as_json, {**_request_json(found, left), "records": count}, lines)


@request.command("extend")
@click.argument("request_id", type=ID)
@click.option("--days", type=int, required=True, help="How many more (business) days.")
@click.option("--reason", required=True, help="Why the extension is needed.")
@click.option("--as", "actor", default=None, help="Who extends it (a clerk).")
@json_option
@pass_context
def request_extend(
    ctx: Context, request_id: int, days: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Record an extension of a request's deadline."""
    settings = ctx.settings
    ctx.warn_open_mode()
    who = resolve_actor(settings, actor, ctx.environ, "clerk")
    app = ctx.app
    now = app.clock.now()
    found = requests.extend_request(
        app.checked_engine(),
        app.store,
        settings,
        request_id,
        days=days,
        reason=reason,
        actor=who,
        now=now,
    )
    left = requests.days_left(settings, found, now)
    emit(
        as_json,
        _request_json(found, left),
        f"request {request_id} now due {found.due_on} "
        f"({_left(left, settings.requests.business_days)})",
    )


@request.command("close")
@click.argument("request_id", type=ID)
@click.option("--reason", required=True, help="How it was answered (or why it was closed).")
@click.option("--as", "actor", default=None, help="Who closes it (a clerk).")
@json_option
@pass_context
def request_close(
    ctx: Context, request_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Close a request and release its hold (records another hold covers stay held)."""
    settings = ctx.settings
    ctx.warn_open_mode()
    who = resolve_actor(settings, actor, ctx.environ, "clerk")
    app = ctx.app
    found, freed = requests.close_request(
        app.checked_engine(),
        app.store,
        settings,
        request_id,
        reason=reason,
        actor=who,
        now=app.clock.now(),
    )
    emit(
        as_json,
        {**_request_json(found), "left_hold": freed},
        f"request {request_id} closed; its hold is released and {freed} records left legal hold",
    )
