"""Dispatcher and approver commands: notice add, approve, cancel, list, show."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from sqlmodel import Session, col, select

from bulletin.cli import ID, LIMIT, Context, emit, json_option, pass_context, read_only
from bulletin.errors import UsageError
from bulletin.identity import resolve_actor
from bulletin.models import Delivery, DeliveryAttempt, Notice, Template
from bulletin.publisher.failures import NOTICE_STATES, delivery_label, state_condition
from bulletin.publisher.media import notice_images
from bulletin.publisher.notices import (
    NoticeDraft,
    Review,
    approve_notice,
    cancel_notice,
    create_notice,
    get_notice,
    review_notice,
)
from bulletin.publisher.recurrence import parse_every
from bulletin.publisher.templates import notice_from_template
from bulletin.service.waker import poke
from bulletin.timeparse import ambiguity, local_text, parse_until, parse_when


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
    help="When to publish: now (default), +30min, tomorrow 7am, or a time in the agency's zone.",
)
@click.option("--expires", default=None, help="After this time it is never published.")
@click.option("--late-ok", is_flag=True, help="Allow a publish time more than 5 minutes past.")
@click.option(
    "--repeat",
    "repeat",
    default=None,
    metavar="RULE",
    help='Publish on a recurrence, e.g. "weekly;byday=MO;at=09:00" '
    "(daily|weekly|monthly; interval, byday, bymonthday, at). Needs --until.",
)
@click.option(
    "--every",
    default=None,
    type=click.Choice(["day", "week", "month", "weekday"]),
    help="Short for --repeat daily|weekly|monthly (at the time of --at).",
)
@click.option(
    "--until",
    "until",
    default=None,
    help="Last time a recurrence may occur (agency zone; a date alone: to the end of that day), "
    "or 'cancelled' to run until cancelled.",
)
@click.option(
    "--no-date-line",
    is_flag=True,
    help="Do not end each occurrence with its date (X refuses identical repeated posts).",
)
@click.option(
    "--follow-up",
    "follow_up",
    default=None,
    help='Posted at expiry as a reply to each published post, e.g. "Mass Ave has reopened."',
)
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
    repeat: str | None,
    every: str | None,
    until: str | None,
    no_date_line: bool,
    follow_up: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Draft a notice; it is published once approved.

    With --template NAME and --var NAME=VALUE, a dispatcher fills in a template an approver
    approved in advance: the notice is approved at once and published without waiting.

    With --repeat RULE (or --every week) and --until TIME|cancelled, each occurrence is
    published on its own and ends with its local date. Times are in the agency's time zone;
    a time that happens twice (clocks go back) is the first of the two.
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
    if repeat and every:
        raise UsageError("give --repeat or --every, not both")
    app = ctx.app
    engine = app.checked_engine()
    now = app.clock.now()
    tz = settings.agency.time_zone
    for given in (publish_at, expires, until):
        note = ambiguity(given, tz, now) if given else None
        if note:
            click.echo(f"warning: {note}", err=True)
    rule = parse_every(every).text() if every else repeat
    until_cancelled = (until or "").strip().lower() == "cancelled"
    repeat_until = parse_until(until, tz, now) if until and not until_cancelled else None
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
        recurrence=rule,
        repeat_until=repeat_until,
        until_cancelled=until_cancelled,
        date_line=not no_date_line,
        follow_up=follow_up,
    )
    covered_by: str | None = None
    woke = False
    if template is not None:
        made = notice_from_template(
            engine,
            settings,
            app.clock,
            template,
            pairs(variables, "--var"),
            draft,
            author,
            store=app.store if draft.images else None,
        )
        created = made.notice
        if made.covered:
            covered_by = made.template.approved_by
            woke = poke(settings.data_dir)
    else:
        store = app.store if draft.images else None
        created = create_notice(engine, settings, app.clock, draft, author, store)
    with Session(engine) as session:
        review = review_notice(session, settings, created)
    payload = {
        "id": created.id,
        "state": created.state,
        "priority": created.priority,
        "approvals_needed": created.approvals_needed,
        "publish_at": created.publish_at,
        "recurrence": created.recurrence,
        "repeat_until": created.repeat_until,
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
    schedule_lines = []
    if created.recurrence:
        end = local_text(created.repeat_until, tz) if created.repeat_until else "cancelled"
        schedule_lines.append(
            f"  repeats  {created.recurrence}, first {local_text(created.publish_at, tz)}, "
            f"until {end}"
        )
    emit(as_json, payload, [head, *schedule_lines, *review_lines(review)])


@notice.command("approve")
@click.argument("notice_id", type=ID)
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
@click.argument("notice_id", type=ID)
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who cancels (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_cancel(
    ctx: Context, notice_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Cancel every post of a notice that has not gone out yet, and occurrences to come.

    A post already in flight finishes on its own: the answer says it was too late for that
    account (retract it afterwards).
    """
    settings = ctx.settings
    ctx.warn_open_mode()
    name = resolve_actor(settings, actor, ctx.environ)
    app = ctx.app
    result = cancel_notice(
        app.checked_engine(), app.clock, notice_id, name, reason, settings=settings
    )
    emit(
        as_json,
        {
            "id": result.notice.id,
            "state": result.notice.state,
            "cancelled": sorted(set(result.cancelled)),
            "too_late": result.too_late,
        },
        result.lines(),
    )


@notice.command("correct")
@click.argument("notice_id", type=ID)
@click.option("--text", required=True, help='The correction, e.g. "Main St, not Maple St."')
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who corrects (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_correct(
    ctx: Context, notice_id: int, text: str, reason: str, actor: str | None, as_json: bool
) -> None:
    """Post a correction in the thread of every published post of a notice.

    No platform here edits a published post through its API, so the correction is a reply
    ("Correction: ...") on X and Facebook, and a new entry linking the first in the feed.
    """
    from bulletin.publisher.amend import correct_notice

    settings = ctx.settings
    ctx.warn_open_mode()
    name = resolve_actor(settings, actor, ctx.environ, "approver")
    app = ctx.app
    result = correct_notice(
        app.checked_engine(), settings, app.clock.now(), notice_id, text, reason, name
    )
    woke = poke(settings.data_dir)
    emit(
        as_json,
        {
            "id": notice_id,
            "queued": result.queued,
            "in_flight": result.in_flight,
            "daemon_notified": woke,
        },
        result.lines("correction"),
    )


@notice.command("retract")
@click.argument("notice_id", type=ID)
@click.option("--reason", required=True, help="Why (kept in the audit trail, not posted).")
@click.option(
    "--delete",
    is_flag=True,
    help="Delete the posts where the platform allows (the feed leaves a tombstone); "
    "elsewhere a retraction reply is posted. Takes no --text.",
)
@click.option(
    "--text",
    default=None,
    help='The retraction reply (default "This notice has been withdrawn."); not with --delete.',
)
@click.option(
    "--template",
    default=None,
    help="An approved template whose text is the retraction reply (how a dispatcher retracts).",
)
@click.option("--as", "actor", default=None, help="Who retracts (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_retract(
    ctx: Context,
    notice_id: int,
    reason: str,
    delete: bool,
    text: str | None,
    template: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Withdraw a notice everywhere: cancel what has not gone out, stop its occurrences, and
    delete (--delete) or answer with a retraction reply each published post. The notice is
    then retracted (`notice list --state retracted`).

    A published notice is retracted by an approver (the reply's text is checked by the
    content policy), or by a dispatcher with --template, an approved template's text."""
    from bulletin.publisher.amend import retract_notice

    settings = ctx.settings
    ctx.warn_open_mode()
    name = resolve_actor(settings, actor, ctx.environ)
    app = ctx.app
    result = retract_notice(
        app.checked_engine(),
        settings,
        app.clock.now(),
        notice_id,
        reason,
        name,
        delete,
        text,
        template=template,
    )
    woke = poke(settings.data_dir)
    emit(
        as_json,
        {
            "id": notice_id,
            "queued": result.queued,
            "cancelled": result.cancelled,
            "in_flight": result.in_flight,
            "daemon_notified": woke,
        },
        result.lines("deletion" if delete else "retraction"),
    )


@notice.command("ack")
@click.argument("notice_id", type=ID)
@click.option("--reason", default="", help="What was done about it (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who has seen it (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_ack(ctx: Context, notice_id: int, reason: str, actor: str | None, as_json: bool) -> None:
    """Acknowledge a notice's failed deliveries: `status --check` and the metrics stop asking
    for a person about them (a later failure asks again)."""
    from bulletin.publisher.failures import acknowledge

    ctx.warn_open_mode()
    name = resolve_actor(ctx.settings, actor, ctx.environ)
    app = ctx.app
    count = acknowledge(app.checked_engine(), app.clock.now(), notice_id, name, reason)
    emit(
        as_json,
        {"id": notice_id, "acknowledged": count},
        f"notice {notice_id}: {count} failed deliver{'y' if count == 1 else 'ies'} "
        f"acknowledged by {name}",
    )


@notice.command("late")
@click.argument("notice_id", type=ID, required=False)
@click.option("--publish", "decision", flag_value="publish", help="Publish its late posts now.")
@click.option("--cancel", "decision", flag_value="cancel", help="Cancel its late posts.")
@click.option("--reason", default=None, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who decides (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_late(
    ctx: Context,
    notice_id: int | None,
    decision: str | None,
    reason: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """List routine notices whose time passed while no daemon ran, or decide one of them.

    Without ID: the list. With ID and --publish or --cancel: the decision (publishing needs
    the approver role).
    """
    from bulletin.publisher.schedule import decide_late, late_notices, late_summary

    settings = ctx.settings
    app = ctx.app
    engine = app.checked_engine()
    tz = settings.agency.time_zone
    if notice_id is None:
        if decision:
            raise UsageError("--publish/--cancel need the notice ID")
        with Session(engine) as session:
            late = late_notices(session)
        emit(
            as_json,
            {
                "late": [
                    {
                        "id": n.notice_id,
                        "category": n.category,
                        "due_at": n.due_at,
                        "accounts": n.accounts,
                        "occurrence": n.occurrence,
                        "text": n.text,
                    }
                    for n in late
                ]
            },
            late_summary(late, tz) or ["no late notices"],
        )
        return
    if decision is None:
        raise UsageError("say --publish or --cancel")
    ctx.warn_open_mode()
    name = resolve_actor(
        settings, actor, ctx.environ, "approver" if decision == "publish" else None
    )
    accounts = decide_late(
        engine, settings, app.clock.now(), notice_id, decision == "publish", name, reason
    )
    woke = poke(settings.data_dir) if decision == "publish" else False
    verb = "publishing now" if decision == "publish" else "cancelled"
    emit(
        as_json,
        {"id": notice_id, "decision": decision, "accounts": accounts, "daemon_notified": woke},
        f"notice {notice_id}: {verb} for {', '.join(accounts)}",
    )


@notice.command("list")
@click.option(
    "--state",
    default=None,
    metavar="STATE",
    help=f"Only notices in this state: {', '.join(NOTICE_STATES)}. "
    "failed finds every notice with a failed delivery (partially-published ones too).",
)
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@json_option
@pass_context
@read_only
def notice_list(ctx: Context, state: str | None, limit: int, as_json: bool) -> None:
    """Notices, newest first: what is due next, in flight, late, published, failed and why."""
    query = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if state:
        query = query.where(state_condition(state))
    engine = ctx.app.checked_engine()
    tz = ctx.settings.agency.time_zone
    rows: list[dict[str, Any]] = []
    with Session(engine) as session:
        for n in session.exec(query):
            deliveries = session.exec(
                select(Delivery).where(Delivery.notice_id == n.id).order_by(col(Delivery.id))
            ).all()
            latest = max((d.occurrence for d in deliveries if d.kind == "post"), default=1)
            current = [d for d in deliveries if d.kind != "post" or d.occurrence == latest]
            waiting = [
                d.due_at for d in deliveries if d.state in ("pending", "uncertain") and d.due_at
            ]
            rows.append(
                {
                    **_notice_json(n),
                    "deliveries": {delivery_label(d): d.state for d in current},
                    "problems": {
                        delivery_label(d): d.last_error
                        for d in current
                        if d.state in ("failed", "uncertain", "late") and d.last_error
                    },
                    "next_due": min(
                        [*waiting, *([n.next_occurrence_at] if n.next_occurrence_at else [])],
                        default=None,
                    ),
                }
            )
    lines: list[str] = []
    for r in rows:
        when = local_text(r["next_due"], tz) if r["next_due"] else "-"
        lines.append(
            f"{r['id']:>5}  {r['state']:<20} {r['category']:<18} next {when:<22} "
            + " ".join(f"{a}:{s}" for a, s in r["deliveries"].items())
            + (f"  [repeats {r['recurrence']}]" if r["recurrence"] else "")
        )
        lines += [f"         {a}: {why}" for a, why in r["problems"].items()]
    emit(as_json, {"notices": rows}, lines or ["no notices"])


@notice.command("show")
@click.argument("notice_id", type=ID)
@json_option
@pass_context
@read_only
def notice_show(ctx: Context, notice_id: int, as_json: bool) -> None:
    """One notice with every delivery, its attempts and its outcome."""
    engine = ctx.app.checked_engine()
    tz = ctx.settings.agency.time_zone
    with Session(engine) as session:
        n = get_notice(session, notice_id)
        deliveries = session.exec(
            select(Delivery).where(Delivery.notice_id == notice_id).order_by(col(Delivery.id))
        ).all()
        review = review_notice(session, ctx.settings, n)
        template = session.get(Template, n.template_id) if n.template_id else None
        attempts: dict[int, list[DeliveryAttempt]] = {}
        for a in session.exec(
            select(DeliveryAttempt)
            .where(col(DeliveryAttempt.delivery_id).in_([d.id for d in deliveries]))
            .order_by(col(DeliveryAttempt.id))
        ):
            attempts.setdefault(a.delivery_id, []).append(a)
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
    images = notice_images(n)
    data = {
        **_notice_json(n),
        "media": [i.as_json() for i in images],
        "deliveries": [
            {k: v for k, v in d.model_dump().items() if k != "raw_response"}
            | {"attempt_log": [a.model_dump() for a in attempts.get(d.id or 0, [])]}
            for d in deliveries
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
        *(
            [
                f"  repeats  {n.recurrence} until "
                + (local_text(n.repeat_until, tz) if n.repeat_until else "cancelled")
                + f"; {n.occurrences} made, next "
                + (local_text(n.next_occurrence_at, tz) if n.next_occurrence_at else "-")
            ]
            if n.recurrence
            else []
        ),
        *([f"  follow-up at expiry: {n.follow_up}"] if n.follow_up else []),
        f"  text     {n.text}",
        *[
            f"  image {k}  {i.name}  {i.mime_type or '?'}, {i.size:,} bytes, "
            + (f"sha256 {i.sha256}" if i.sha256 else "not archived (drafted before pinning)")
            + f"\n           alt: {i.alt or '(none)'}"
            for k, i in enumerate(images, start=1)
        ],
        *[
            f"  text for {d.account}: {d.text}"
            for d in deliveries
            if d.kind == "post" and d.occurrence == 1 and d.text and d.text != n.text
        ],
        *review_lines(review),
    ]
    for d in deliveries:
        lines.append(
            f"  -> {delivery_label(d):<16} {d.state:<10} due {local_text(d.due_at, tz)}"
            f"  attempts {d.attempts}"
            + (f"  {d.remote_url or d.remote_id}" if d.remote_id else "")
            + (f"  ({d.last_error})" if d.last_error else "")
        )
        if d.kind != "post" and d.text:
            lines.append(f"       text: {d.text}")
        for a in attempts.get(d.id or 0, []):
            lines.append(
                f"       try {local_text(a.started_at, tz)} -> "
                f"{local_text(a.finished_at, tz) if a.finished_at else '...'}"
                f"  {a.outcome or 'in progress'}"
                + (f": {a.error}" if a.error and a.outcome != "published" else "")
            )
    emit(as_json, data, lines)


def _notice_json(n: Notice) -> dict[str, Any]:
    return n.model_dump()
