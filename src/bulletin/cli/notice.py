"""Dispatcher and approver commands: notice add, approve, cancel, list, show."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from sqlmodel import Session, col, select

from bulletin.cli import Context, emit, json_option, pass_context
from bulletin.errors import UsageError
from bulletin.identity import resolve_actor
from bulletin.models import Delivery, Notice, Template
from bulletin.publisher.notices import (
    NoticeDraft,
    Review,
    approve_notice,
    cancel_notice,
    create_notice,
    get_notice,
    review_notice,
)
from bulletin.publisher.templates import notice_from_template
from bulletin.timeparse import local_text, parse_when
from bulletin.waker import poke


def register(group: click.Group) -> None:
    group.add_command(notice)


@click.group()
def notice() -> None:
    """Queue, approve and follow public notices."""


def pairs(values: Sequence[str], option: str) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; :raises UsageError: an item without ``=``."""
    found: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected NAME=VALUE")
        if key.strip() in found:
            raise UsageError(f"{option} {key.strip()} is given twice")
        found[key.strip()] = value
    return found


def review_lines(review: Review) -> list[str]:
    """Cost per target, thread parts and policy findings, for people."""
    lines = [
        f"  cost     {t.account}: ${t.cost:.3f}"
        + (f" ({len(t.parts)} posts in a thread)" if t.parts else "")
        + f"  [{t.length}/{t.limit}]"
        for t in review.targets
    ]
    lines.append(f"  total    ${review.cost:.3f} (estimated)")
    for finding in review.findings:
        state = " (overridden)" if finding.rule in review.overridden else ""
        lines.append(f"  policy   {finding.line()}{state}")
    return lines


@notice.command("add")
@click.option("--category", default=None, help="Category slug, e.g. road-closure.")
@click.option("--text", default=None, help="The notice as the public will read it.")
@click.option(
    "--text-for",
    "text_for",
    multiple=True,
    metavar="ACCOUNT_OR_PLATFORM=TEXT",
    help='Other wording for one account or platform, e.g. x="..." (repeatable).',
)
@click.option(
    "--allow-thread",
    is_flag=True,
    help="A text too long for X goes out as a numbered thread (1/3, 2/3...).",
)
@click.option("--template", "template", default=None, help="Fill in an approved template.")
@click.option(
    "--var", "variables", multiple=True, metavar="NAME=VALUE", help="A template variable."
)
@click.option("--image", "images", multiple=True, help="An image to attach (repeatable).")
@click.option("--alt", "alts", multiple=True, help="Alt text of each --image, in order.")
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
    category: str | None,
    text: str | None,
    text_for: tuple[str, ...],
    allow_thread: bool,
    template: str | None,
    variables: tuple[str, ...],
    images: tuple[str, ...],
    alts: tuple[str, ...],
    targets: tuple[str, ...],
    title: str,
    link: str | None,
    publish_at: str | None,
    expires: str | None,
    late_ok: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Draft a notice; it is published once approved.

    With --template NAME and --var NAME=VALUE, a dispatcher fills in a template an approver
    approved in advance: the notice is approved at once and published without waiting.
    """
    settings = ctx.settings
    ctx.warn_open_mode()
    author = resolve_actor(settings, actor, ctx.environ, "dispatcher")
    if template is None and (category is None or text is None):
        raise UsageError("a notice needs --category and --text (or --template NAME)")
    if template is not None and (category is not None or text is not None):
        raise UsageError("--template gives the text and category; leave out --text/--category")
    if variables and template is None:
        raise UsageError("--var is for --template")
    if len(alts) > len(images):
        raise UsageError("more --alt than --image")
    app = ctx.app
    engine = app.checked_engine()
    now = app.clock.now()
    tz = settings.agency.time_zone
    draft = NoticeDraft(
        category=category or "",
        text=text or "",
        targets=targets,
        title=title,
        link=link,
        publish_at=parse_when(publish_at, tz, now) if publish_at else None,
        expires_at=parse_when(expires, tz, now) if expires else None,
        late_ok=late_ok,
        variants=pairs(text_for, "--text-for"),
        allow_thread=allow_thread,
        images=[(p, alts[i] if i < len(alts) else "") for i, p in enumerate(images)],
    )
    covered_by: str | None = None
    woke = False
    if template is not None:
        made = notice_from_template(
            engine, settings, app.clock, template, pairs(variables, "--var"), draft, author
        )
        created = made.notice
        if made.covered:
            covered_by = made.template.approved_by
            woke = poke(settings.data_dir)
    else:
        created = create_notice(engine, settings, app.clock, draft, author)
    with Session(engine) as session:
        review = review_notice(session, settings, created)
    payload = {
        "id": created.id,
        "state": created.state,
        "priority": created.priority,
        "approvals_needed": created.approvals_needed,
        **review.as_json(),
    }
    if template is not None:
        payload |= {"template": template, "covered_by": covered_by, "daemon_notified": woke}
    if covered_by:
        head = (
            f"notice {created.id} approved through template {template} (approved by "
            f"{covered_by}); publishing now"
            + ("" if woke else " (no daemon is listening: start `bulletin daemon`)")
        )
    else:
        needs = created.approvals_needed
        head = (
            f"notice {created.id} drafted ({created.priority}); it needs {needs} "
            f"approval{'s' if needs > 1 else ''}: `bulletin notice approve {created.id} --by NAME`"
        )
        if template is not None:
            head += " (the template's approval does not cover it: see policy below)"
    emit(as_json, payload, [head, *review_lines(review)])


@notice.command("approve")
@click.argument("notice_id", type=int)
@click.option("--by", "approver", default=None, help="Who approves (default $BULLETIN_USER).")
@click.option("--late-ok", is_flag=True, help="Allow a publish time more than 5 minutes past.")
@click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="RULE",
    help="Approve although content-policy RULE objects (needs --reason; repeatable).",
)
@click.option("--reason", default=None, help="Why the override is right (kept in the audit).")
@json_option
@pass_context
def notice_approve(
    ctx: Context,
    notice_id: int,
    approver: str | None,
    late_ok: bool,
    overrides: tuple[str, ...],
    reason: str | None,
    as_json: bool,
) -> None:
    """Approve a draft; the daemon publishes it at its time (at once if due).

    The content-policy rules run first; a finding refuses the approval unless you override
    that rule with --override RULE --reason "...". A category may need several approvals.
    """
    settings = ctx.settings
    ctx.warn_open_mode()
    name = resolve_actor(settings, approver, ctx.environ, "approver")
    app = ctx.app
    approved = approve_notice(
        app.checked_engine(),
        settings,
        app.clock,
        notice_id,
        name,
        late_ok=late_ok,
        overrides=overrides,
        reason=reason,
    )
    if approved.state != "approved":
        with Session(app.engine) as session:
            count = len(review_notice(session, settings, approved).approvals)
        emit(
            as_json,
            {
                "id": approved.id,
                "state": approved.state,
                "approvals": count,
                "approvals_needed": approved.approvals_needed,
            },
            f"notice {approved.id}: approval {count} of {approved.approvals_needed} recorded "
            f"({name}); it needs another approver",
        )
        return
    woke = poke(settings.data_dir)
    when = (
        local_text(approved.publish_at, settings.agency.time_zone) if approved.publish_at else "now"
    )
    emit(
        as_json,
        {"id": approved.id, "state": approved.state, "daemon_notified": woke},
        f"notice {approved.id} approved by {approved.approved_by}; publishing {when}"
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
        review = review_notice(session, ctx.settings, n)
        template = session.get(Template, n.template_id) if n.template_id else None
    approvals = [
        {
            "approver": a.approver,
            "at": a.at,
            "via_template": f"{template.name} v{template.version}"
            if template and a.via_template_id == template.id
            else None,
            "overrides": json.loads(a.overrides) if a.overrides else [],
            "reason": a.reason,
        }
        for a in review.approvals
    ]
    data = {
        **_notice_json(n),
        "deliveries": [
            {k: v for k, v in d.model_dump().items() if k != "raw_response"} for d in deliveries
        ],
        "approvals": approvals,
        **review.as_json(),
    }
    lines = [
        f"notice {n.id}  {n.state}  {n.category} ({n.priority})",
        f"  author   {n.author}, {local_text(n.created_at, tz)}",
        f"  approved {n.approved_by or '-'}, {local_text(n.approved_at, tz)}"
        f"   ({len(approvals)} of {n.approvals_needed} approvals)",
        *[
            f"           {a['approver']}"
            + (f" through template {a['via_template']}" if a["via_template"] else "")
            + (f", overriding {', '.join(a['overrides'])}: {a['reason']}" if a["overrides"] else "")
            for a in approvals
        ],
        f"  publish  {local_text(n.publish_at, tz) if n.publish_at else 'on approval'}"
        f"   expires {local_text(n.expires_at, tz)}",
        f"  text     {n.text}",
        *[f"  text for {d.account}: {d.text}" for d in deliveries if d.text and d.text != n.text],
        *review_lines(review),
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
