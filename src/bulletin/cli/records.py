"""Records clerk commands: legal holds (hold ...) and records requests (request ...)."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from bulletin.app import holds, requests
from bulletin.cli import ID, LIMIT, Context, emit, json_option, on_behalf_options, pass_context
from bulletin.errors import UsageError
from bulletin.names import printable_text
from bulletin.timeparse import local_text

QUERY_HELP = (
    "Which records, in the language of `archive search`: from:DATE to:DATE account:NAME "
    "author:NAME thread:N (a record number, as hints print, or a platform id) "
    "kind:post|comment state:STATE series:NAME and words, e.g. "
    "'account:feed from:2026-11-01 to:2026-11-30 \"water main\"'."
)
EMPTY_HELP = "Accept a query that matches no archived record yet (holds later captures only)."


def _hold_json(view: holds.HoldView) -> dict[str, Any]:
    return view.hold.model_dump() | {"query": view.query, "records": view.records}


@click.group()
def hold() -> None:
    """Legal holds: keep every record matching a query until the hold is released."""


@hold.command("create")
@on_behalf_options
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
    ctx.warn_open_mode()
    placed = holds.place_hold(
        ctx.app,
        ctx.actor(actor),
        name=name,
        query=query_text,
        reason=reason,
        allow_empty=allow_empty,
    )
    emit(
        as_json,
        _hold_json(placed),
        f"hold {placed.hold.id} placed on {placed.records} records ({name}); matching records "
        "captured from now on are held too",
    )


@hold.command("list")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@json_option
@pass_context
def hold_list(ctx: Context, include_released: bool, as_json: bool) -> None:
    """Open holds (and records requests' holds) with how many records each covers."""
    rows = holds.list_holds(ctx.app, ctx.reader(), include_released=include_released)
    tz = ctx.settings.agency.time_zone
    emit(
        as_json,
        {"holds": [_hold_json(v) for v in rows]},
        [
            f"{v.hold.id:>4}  {v.hold.state:<8} {v.records:>6} records  "
            f"{local_text(v.hold.created_at, tz)}  {v.hold.name}"
            + (f"  [request {v.hold.request_id}]" if v.hold.request_id else "")
            + f"  {v.query}"
            for v in rows
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
    detail = holds.show_hold(ctx.app, ctx.reader(), hold_id)
    found, records = detail.hold, detail.members
    tz = ctx.settings.agency.time_zone
    lines = [
        f"hold {found.id}  {found.name}  ({found.state})",
        f"  query      {detail.query}",
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
        {**_hold_json(detail), "record_ids": [r.id for r in records]},
        lines,
    )


@hold.command("release")
@on_behalf_options
@click.argument("hold_id", type=ID)
@click.option("--reason", required=True, help="Why the records need not be kept any more.")
@click.option("--as", "actor", default=None, help="Who releases it (a clerk).")
@json_option
@pass_context
def hold_release(ctx: Context, hold_id: int, reason: str, actor: str | None, as_json: bool) -> None:
    """Release a hold; records leave legal hold only when no other hold or request covers them."""
    ctx.warn_open_mode()
    freed = holds.release_hold(ctx.app, ctx.actor(actor), hold_id, reason=reason)
    emit(
        as_json,
        {"id": hold_id, "state": "released", "left_hold": freed},
        f"hold {hold_id} released; {freed} records left legal hold (their retention still applies)",
    )


# -- records requests ------------------------------------------------------------------------


def _request_json(view: requests.RequestView) -> dict[str, Any]:
    data = view.request.model_dump() | {"query": view.query}
    if view.left_hold is None:  # a closed request's JSON says what left legal hold instead
        data["days_left"] = view.days_left
    else:
        data["left_hold"] = view.left_hold
    if view.records is not None:
        data["records"] = view.records
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
@on_behalf_options
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
    ctx.warn_open_mode()
    who = ctx.actor(actor)
    try:
        received_on = date.fromisoformat(received)
    except ValueError:
        raise UsageError(f"--received {received!r} is not a date (YYYY-MM-DD)") from None
    opened = requests.open_request(
        ctx.app,
        who,
        requester=requester,
        received=received_on,
        description=description,
        query=query_text,
        litigation=litigation,
        allow_empty=allow_empty,
    )
    found, rule = opened.request, requests.deadline_rule(ctx.app)
    emit(
        as_json,
        _request_json(opened),
        [
            f"request {found.id} opened for {requester}: due {found.due_on} "
            f"({rule.response_days} {rule.unit} after receipt, {rule.where}; "
            f"{_left(opened.days_left, rule.business_days)})",
            f"hold {found.hold_id} placed on {opened.records} records while the request is open",
        ],
    )


@request.command("list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed requests.")
@json_option
@pass_context
def request_list(ctx: Context, include_closed: bool, as_json: bool) -> None:
    """Open requests, the soonest due first, with the days left."""
    rows = requests.list_requests(ctx.app, ctx.reader(), include_closed=include_closed)
    business = requests.deadline_rule(ctx.app).business_days
    emit(
        as_json,
        {"requests": [_request_json(r) for r in rows]},
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
    view = requests.show_request(ctx.app, ctx.reader(), request_id)
    business = requests.deadline_rule(ctx.app).business_days
    found, count = view.request, view.records
    tz = ctx.settings.agency.time_zone
    lines = [
        f"request {found.id}  {found.state}{'  [litigation]' if found.litigation else ''}",
        f"  requester   {found.requester}",
        f"  asked for   {found.description}",
        f"  query       {view.query}",
        f"  received    {found.received_on}",
        f"  due         {found.due_on}  ({_left(view.days_left, business)})",
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
    emit(as_json, _request_json(view), lines)


@request.command("extend")
@on_behalf_options
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
    ctx.warn_open_mode()
    view = requests.extend_request(ctx.app, ctx.actor(actor), request_id, days=days, reason=reason)
    emit(
        as_json,
        _request_json(view),
        f"request {request_id} now due {view.request.due_on} "
        f"({_left(view.days_left, requests.deadline_rule(ctx.app).business_days)})",
    )


@request.command("close")
@on_behalf_options
@click.argument("request_id", type=ID)
@click.option("--reason", required=True, help="How it was answered (or why it was closed).")
@click.option("--as", "actor", default=None, help="Who closes it (a clerk).")
@json_option
@pass_context
def request_close(
    ctx: Context, request_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Close a request and release its hold (records another hold covers stay held)."""
    ctx.warn_open_mode()
    done = requests.close_request(ctx.app, ctx.actor(actor), request_id, reason=reason)
    emit(
        as_json,
        _request_json(done),
        f"request {request_id} closed; its hold is released and {done.left_hold} records left "
        "legal hold",
    )
