"""Dispatcher and approver commands: notice add, approve, cancel, list, show."""

from __future__ import annotations

from typing import Any

import click
from sqlmodel import Session, col, select

from bulletin.cli import Context, emit, json_option, pass_context
from bulletin.identity import resolve_actor
from bulletin.models import Delivery, Notice
from bulletin.publisher.notices import (
    NoticeDraft,
    approve_notice,
    cancel_notice,
    create_notice,
    get_notice,
)
from bulletin.timeparse import local_text, parse_when
from bulletin.waker import poke


def register(group: click.Group) -> None:
    group.add_command(notice)


@click.group()
def notice() -> None:
    """Queue, approve and follow public notices."""


@notice.command("add")
@click.option("--category", required=True, help="Category slug, e.g. road-closure.")
@click.option("--text", required=True, help="The notice as the public will read it.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    help="Account to publish to (repeat for several).",
)
@click.option("--title", default="", help="Headline (feed entries); derived from text if empty.")
@click.option("--link", default=None, help="A link to the agency's page about it.")
@click.option(
    "--at",
    "publish_at",
    default=None,
    help="When to publish: now (default), +30m, or a time in the agency's zone.",
)
@click.option("--expires", default=None, help="After this time it is never published.")
@click.option("--late-ok", is_flag=True, help="Allow a publish time more than 5 minutes past.")
@click.option("--as", "actor", default=None, help="Who is writing it (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_add(
    ctx: Context,
    category: str,
    text: str,
    targets: tuple[str, ...],
    title: str,
    link: str | None,
    publish_at: str | None,
    expires: str | None,
    late_ok: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Draft a notice; it is published once approved."""
    settings = ctx.settings
    ctx.warn_open_mode()
    author = resolve_actor(settings, actor, ctx.environ, "dispatcher")
    app = ctx.app
    engine = app.checked_engine()
    now = app.clock.now()
    tz = settings.agency.time_zone
    draft = NoticeDraft(
        category=category,
        text=text,
        targets=targets,
        title=title,
        link=link,
        publish_at=parse_when(publish_at, tz, now) if publish_at else None,
        expires_at=parse_when(expires, tz, now) if expires else None,
        late_ok=late_ok,
    )
    created = create_notice(engine, settings, app.clock, draft, author)
    emit(
        as_json,
        {"id": created.id, "state": created.state, "priority": created.priority},
        f"notice {created.id} drafted ({created.priority}); approve it with "
        f"`bulletin notice approve {created.id} --by NAME`",
    )


@notice.command("approve")
@click.argument("notice_id", type=int)
@click.option("--by", "approver", default=None, help="Who approves (default $BULLETIN_USER).")
@click.option("--late-ok", is_flag=True, help="Allow a publish time more than 5 minutes past.")
@json_option
@pass_context
def notice_approve(
    ctx: Context, notice_id: int, approver: str | None, late_ok: bool, as_json: bool
) -> None:
    """Approve a draft; the daemon publishes it at its time (at once if due)."""
    settings = ctx.settings
    ctx.warn_open_mode()
    name = resolve_actor(settings, approver, ctx.environ, "approver")
    app = ctx.app
    approved = approve_notice(
        app.checked_engine(), settings, app.clock, notice_id, name, late_ok=late_ok
    )
    woke = poke(settings.data_dir)
    when = (
        local_text(approved.publish_at, settings.agency.time_zone) if approved.publish_at else "now"
    )
    emit(
        as_json,
        {"id": approved.id, "state": approved.state, "daemon_notified": woke},
        f"notice {approved.id} approved by {name}; publishing {when}"
        + ("" if woke else " (no daemon is listening: start `bulletin daemon`)"),
    )


@notice.command("cancel")
@click.argument("notice_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who cancels (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_cancel(
    ctx: Context, notice_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Cancel every delivery of a notice that has not gone out yet."""
    settings = ctx.settings
    ctx.warn_open_mode()
    name = resolve_actor(settings, actor, ctx.environ)
    app = ctx.app
    cancelled = cancel_notice(app.checked_engine(), app.clock, notice_id, name, reason)
    emit(
        as_json,
        {"id": cancelled.id, "state": cancelled.state},
        f"notice {cancelled.id}: {cancelled.state}",
    )


@notice.command("list")
@click.option("--state", default=None, help="Only notices in this state.")
@click.option("--limit", default=50, show_default=True)
@json_option
@pass_context
def notice_list(ctx: Context, state: str | None, limit: int, as_json: bool) -> None:
    """Notices, newest first, with their delivery states."""
    engine = ctx.app.checked_engine()
    query = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if state:
        query = query.where(Notice.state == state)
    tz = ctx.settings.agency.time_zone
    rows: list[dict[str, Any]] = []
    with Session(engine) as session:
        for n in session.exec(query):
            deliveries = session.exec(select(Delivery).where(Delivery.notice_id == n.id)).all()
            rows.append({**_notice_json(n), "deliveries": {d.account: d.state for d in deliveries}})
    emit(
        as_json,
        {"notices": rows},
        [
            f"{r['id']:>5}  {r['state']:<20} {r['category']:<18} "
            f"{local_text(r['publish_at'], tz) if r['publish_at'] else 'on approval':<22} "
            + " ".join(f"{a}:{s}" for a, s in r["deliveries"].items())
            for r in rows
        ]
        or ["no notices"],
    )


@notice.command("show")
@click.argument("notice_id", type=int)
@json_option
@pass_context
def notice_show(ctx: Context, notice_id: int, as_json: bool) -> None:
    """One notice with every delivery, its attempts and its outcome."""
    engine = ctx.app.checked_engine()
    tz = ctx.settings.agency.time_zone
    with Session(engine) as session:
        n = get_notice(session, notice_id)
        deliveries = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()
    data = {
        **_notice_json(n),
        "deliveries": [
            {k: v for k, v in d.model_dump().items() if k != "raw_response"} for d in deliveries
        ],
    }
    lines = [
        f"notice {n.id}  {n.state}  {n.category} ({n.priority})",
        f"  author   {n.author}, {local_text(n.created_at, tz)}",
        f"  approved {n.approved_by or '-'}, {local_text(n.approved_at, tz)}",
        f"  publish  {local_text(n.publish_at, tz) if n.publish_at else 'on approval'}"
        f"   expires {local_text(n.expires_at, tz)}",
        f"  text     {n.text}",
    ]
    for d in deliveries:
        lines.append(
            f"  -> {d.account:<12} {d.state:<10} attempts {d.attempts}"
            + (f"  {d.remote_url or d.remote_id}" if d.remote_id else "")
            + (f"  ({d.last_error})" if d.last_error else "")
        )
    emit(as_json, data, lines)


def _notice_json(n: Notice) -> dict[str, Any]:
    return n.model_dump()
