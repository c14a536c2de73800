"""CAP commands: import an alert (or a feed of them), poll the configured feeds, list what came
in."""

from __future__ import annotations

from typing import Any

import click

from bulletin import logs
from bulletin.app import cap as cap_app
from bulletin.cap.importer import ImportResult
from bulletin.cli import LIMIT, Context, emit, json_option, on_behalf_options, pass_context
from bulletin.states import NoticeState
from bulletin.timeparse import local_text


@click.group()
def cap() -> None:
    """Common Alerting Protocol 1.2: turn NWS, IPAWS and county alerts into notices."""


def _report(results: list[ImportResult], woke: bool, as_json: bool) -> None:
    woke = woke and any(r.approved for r in results)
    payload: dict[str, Any] = {
        "id": results[0].notice_id if len(results) == 1 else None,
        "alerts": [r.as_json() for r in results],
        "daemon_notified": woke,
    }
    lines = [r.line() for r in results] or ["no alerts"]
    if any(r.approved for r in results) and not woke:
        lines.append("(no daemon is listening: start `bulletin daemon` to publish)")
    drafts = [
        r.notice_id
        for r in results
        if r.notice_state == NoticeState.DRAFT and r.outcome != "duplicate"
    ]
    for notice_id in drafts:
        lines.append(f"approve with: bulletin notice approve {notice_id}")
    emit(as_json, payload, lines)
    if any(r.outcome == "error" for r in results):
        raise SystemExit(1)


@cap.command("import")
@on_behalf_options
@click.argument("source")
@click.option("--as", "actor", default=None, help="Who imports it (default: your own account).")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ACCOUNT",
    help="Account the notice goes to (repeatable; default: [cap] targets).",
)
@json_option
@pass_context
def cap_import(
    ctx: Context, source: str, actor: str | None, targets: tuple[str, ...], as_json: bool
) -> None:
    """Import a CAP 1.2 alert from FILE or URL (or every alert of an Atom feed of them).

    Each target gets the fullest text it allows: the whole alert where it fits, else the
    headline, area and instruction shortened for that platform, with a link to the alert.

    An Alert becomes a draft notice (published at once when an approved template in
    [cap.templates] covers its event); an Update supersedes the notice of the alert it
    references; a Cancel cancels what has not gone out. Exercises, tests and filtered or
    expired alerts are recorded as ignored, with the reason.
    """
    logs.configure("warning")  # details go to stderr; stdout stays one line or one object
    ctx.warn_open_mode()
    done = cap_app.import_alerts(ctx.app, ctx.actor(actor), source, targets)
    _report(done.results, done.woke, as_json)


@cap.command("poll")
@json_option
@pass_context
def cap_poll(ctx: Context, as_json: bool) -> None:
    """Import what is new in every [cap] feeds once (the daemon does it every poll_interval)."""
    logs.configure("warning")
    done = cap_app.poll(ctx.app)
    _report([r for r in done.results if r.outcome != "duplicate"], done.woke, as_json)


@cap.command("list")
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="How many, newest first.")
@json_option
@pass_context
def cap_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Alerts received, newest first: imported, ignored (and why), with their notices."""
    rows = cap_app.list_alerts(ctx.app, limit)
    tz = ctx.settings.agency.time_zone
    items = [r.model_dump(exclude={"raw"}) for r in rows]
    emit(
        as_json,
        {"alerts": items},
        [
            f"{r.id:>5}  {local_text(r.imported_at, tz):<22} {r.msg_type:<7} {r.status:<9} "
            f"{(r.event or '-')[:28]:<28} {r.outcome:<9} "
            + (f"notice {r.notice_id}" if r.notice_id else "")
            + (f" (earlier {r.previous_notice_id})" if r.previous_notice_id else "")
            + (f"  {r.reason}" if r.reason else "")
            for r in rows
        ]
        or ["no CAP alerts"],
    )
