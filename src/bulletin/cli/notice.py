"""Dispatcher and approver commands: notice add, approve, send-back, edit, cancel, list,
show."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bulletin.app import notice_queries, notices
from bulletin.cli import (
    ID,
    LIMIT,
    Context,
    F,
    emit,
    json_option,
    on_behalf_options,
    pass_context,
    read_only,
)
from bulletin.cli.notice_views import (
    NO_DAEMON,
    drafted_output,
    list_lines,
    row_json,
    view_json,
    view_lines,
)
from bulletin.errors import UsageError
from bulletin.publisher.failures import NOTICE_STATES
from bulletin.publisher.notices import NoticeDraft
from bulletin.publisher.recurrence import parse_every
from bulletin.publisher.schedule import late_summary
from bulletin.states import NoticeState
from bulletin.timeparse import ambiguity, local_text, parse_until, parse_when

if TYPE_CHECKING:
    from bulletin.publisher.languages import LanguageVariant


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


def language_variants(
    texts_in: Sequence[str], alts_in: Sequence[str], path: str | None
) -> list[LanguageVariant]:
    """The other languages of ``notice add``: ``--text-in LANG=TEXT`` with ``--alt-in
    LANG=ALT`` (in image order), and the variants of ``--languages-file``.

    :raises UsageError: a malformed item or file, or a language given twice.
    """
    from bulletin.publisher.languages import LanguageVariant

    texts = pairs(texts_in, "--text-in")
    alts: dict[str, list[str]] = {}
    for item in alts_in:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in texts:
            raise UsageError(f"--alt-in {item!r}: expected LANG=ALT for a language of --text-in")
        alts.setdefault(key.strip(), []).append(value)
    variants = [LanguageVariant(k, v, {}, alts.get(k, [])) for k, v in texts.items()]
    if path is not None:
        variants.extend(_variants_file(path))
    return variants


def _variants_file(path: str) -> list[LanguageVariant]:
    import json

    from bulletin.publisher.languages import LanguageVariant

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"--languages-file {path}: {e}") from None
    if not isinstance(data, list):
        raise UsageError(f"--languages-file {path}: expected a JSON list of languages")
    found = []
    for item in data:
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("lang"), str)
            and isinstance(item.get("text"), str)
            and isinstance(item.get("text_for", {}), dict)
            and all(isinstance(v, str) for v in item.get("text_for", {}).values())
            and isinstance(item.get("alts", []), list)
            and all(isinstance(a, str) for a in item.get("alts", []))
            and isinstance(item.get("follow_up", ""), str)
        )
        if not ok:
            raise UsageError(
                f"--languages-file {path}: each language is "
                '{"lang": TAG, "text": TEXT, "text_for": {...}, "alts": [...], '
                '"follow_up": TEXT}'
            )
        found.append(
            LanguageVariant(
                item["lang"],
                item["text"],
                dict(item.get("text_for", {})),
                item.get("alts", []),
                item.get("follow_up"),
            )
        )
    return found


@notice.command("add")
@on_behalf_options
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
    "--lang",
    "lang",
    default=None,
    metavar="TAG",
    help="The language of --text (BCP 47, e.g. en; default: the agency's first language).",
)
@click.option(
    "--text-in",
    "texts_in",
    multiple=True,
    metavar="LANG=TEXT",
    help='The notice in another language, e.g. es="Calle cerrada..." (repeatable).',
)
@click.option(
    "--alt-in",
    "alts_in",
    multiple=True,
    metavar="LANG=ALT",
    help="Alt text of each --image in another language, in image order (repeatable).",
)
@click.option(
    "--languages-file",
    "languages_file",
    default=None,
    type=click.Path(dir_okay=False),
    help='Other languages as JSON: [{"lang": "es", "text": "...", "text_for": {"x": "..."}, '
    '"alts": ["..."], "follow_up": "..."}].',
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
@click.option(
    "--follow-up-in",
    "follow_ups_in",
    multiple=True,
    metavar="LANG=TEXT",
    help="The follow-up in another language of the notice (--text-in or the template's), "
    "replying to that language's posts (repeatable; each language needs one when --follow-up "
    "is given).",
)
@click.option(
    "--follow-up-partial",
    is_flag=True,
    help="Let a language without --follow-up-in go without a follow-up at expiry.",
)
@click.option("--as", "actor", default=None, help="Who is writing it (default: your own account).")
@json_option
@pass_context
def notice_add(
    ctx: Context,
    category: str | None,
    text: str | None,
    text_for: tuple[str, ...],
    lang: str | None,
    texts_in: tuple[str, ...],
    alts_in: tuple[str, ...],
    languages_file: str | None,
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
    follow_ups_in: tuple[str, ...],
    follow_up_partial: bool,
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
    ctx.warn_open_mode()
    author = ctx.actor(actor)
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
    now = ctx.app.clock.now()
    tz = ctx.settings.agency.time_zone
    for given in (publish_at, expires, until):
        note = ambiguity(given, tz, now) if given else None
        if note:
            click.echo(f"warning: {note}", err=True)
    until_cancelled = (until or "").strip().lower() == "cancelled"
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
        recurrence=parse_every(every).text() if every else repeat,
        repeat_until=parse_until(until, tz, now) if until and not until_cancelled else None,
        until_cancelled=until_cancelled,
        date_line=not no_date_line,
        follow_up=follow_up,
        follow_ups=pairs(follow_ups_in, "--follow-up-in"),
        follow_up_partial=follow_up_partial,
        lang=lang,
        languages=language_variants(texts_in, alts_in, languages_file),
    )
    values = pairs(variables, "--var") if template is not None else None
    made = notices.draft(ctx.app, author, draft, template=template, values=values)
    payload, lines = drafted_output(made, ctx.settings.agency.time_zone)
    emit(as_json, payload, lines)


@notice.command("approve")
@on_behalf_options
@click.argument("notice_id", type=ID)
@click.option("--by", "approver", default=None, help="Who approves (default: your own account).")
@click.option("--late-ok", is_flag=True, help="Allow a publish time more than 5 minutes past.")
@click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="RULE",
    help="Approve although content-policy RULE objects (needs --reason; repeatable).",
)
@click.option("--reason", default=None, help="Why the override is right (kept in the audit).")
@click.option(
    "--publish-partial",
    is_flag=True,
    help="Let each language go on its own: a language that fails does not hold back the others.",
)
@json_option
@pass_context
def notice_approve(
    ctx: Context,
    notice_id: int,
    approver: str | None,
    late_ok: bool,
    overrides: tuple[str, ...],
    reason: str | None,
    publish_partial: bool,
    as_json: bool,
) -> None:
    """Approve a draft; the daemon publishes it at its time (at once if due).

    The content-policy rules run first; a finding refuses the approval unless you override
    that rule with --override RULE --reason "...". A category may need several approvals.
    """
    ctx.warn_open_mode()
    who = ctx.actor(approver)
    done = notices.approve(
        ctx.app,
        who,
        notice_id,
        late_ok=late_ok,
        overrides=overrides,
        reason=reason,
        publish_partial=publish_partial,
    )
    approved = done.notice
    if approved.state != NoticeState.APPROVED:
        emit(
            as_json,
            {
                "id": approved.id,
                "state": approved.state,
                "approvals": done.approvals,
                "approvals_needed": approved.approvals_needed,
            },
            f"notice {approved.id}: approval {done.approvals} of {approved.approvals_needed} "
            f"recorded ({who.name}); it needs another approver",
        )
        return
    tz = ctx.settings.agency.time_zone
    when = local_text(approved.publish_at, tz) if approved.publish_at else "now"
    emit(
        as_json,
        {"id": approved.id, "state": approved.state, "daemon_notified": done.woke},
        f"notice {approved.id} approved by {approved.approved_by}; publishing {when}"
        + ("" if done.woke else NO_DAEMON),
    )


@notice.command("send-back")
@click.argument("notice_id", type=ID)
@click.option("--comment", required=True, help="What the author should change.")
@click.option("--by", "approver", default=None, help="Who sends it back (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_send_back(
    ctx: Context, notice_id: int, comment: str, approver: str | None, as_json: bool
) -> None:
    """Send a draft back to its author with a comment; it waits for the author's edit
    (`bulletin notice edit ID --text ...`) before anyone may approve it."""
    ctx.warn_open_mode()
    done = notices.send_back(ctx.app, ctx.actor(approver), notice_id, comment)
    emit(
        as_json,
        {"id": done.id, "state": done.state, "revision": done.revision, "comment": comment},
        f"notice {done.id} sent back to {done.author}",
    )


@notice.command("edit")
@click.argument("notice_id", type=ID)
@click.option("--text", required=True, help="The notice's new text.")
@click.option(
    "--languages-file",
    "languages_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="The notice's other languages anew, as notice add --languages-file takes them: "
    "one it does not have is added, one left out is dropped.",
)
@click.option(
    "--follow-up",
    "follow_up",
    default=None,
    help="The follow-up's new text in the primary language, or a follow-up for a draft "
    "without one (posted at expiry; other languages' are in --languages-file).",
)
@click.option(
    "--no-follow-up",
    "no_follow_up",
    is_flag=True,
    help="Remove the follow-up, in every language: nothing is posted at expiry.",
)
@click.option(
    "--follow-up-partial",
    "follow_up_partial",
    is_flag=True,
    help="Let a language without a follow-up go without one at expiry.",
)
@click.option("--as", "actor", default=None, help="Who edits (default $BULLETIN_USER).")
@json_option
@pass_context
def notice_edit(
    ctx: Context,
    notice_id: int,
    text: str,
    languages_file: str | None,
    follow_up: str | None,
    no_follow_up: bool,
    follow_up_partial: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Give your draft new text (and, with --languages-file, its other languages anew,
    adding or dropping one; with --follow-up, its follow-up's text, or a follow-up it did
    not have; with --no-follow-up, none): a new revision, whose approvals start over."""
    ctx.warn_open_mode()
    if no_follow_up and follow_up is not None:
        raise UsageError("--follow-up and --no-follow-up: give one")
    languages = _variants_file(languages_file) if languages_file is not None else None
    done = notices.edit(
        ctx.app,
        ctx.actor(actor),
        notice_id,
        text,
        languages,
        follow_up,
        remove_follow_up=no_follow_up,
        follow_up_partial=follow_up_partial,
    )
    emit(
        as_json,
        {"id": done.id, "state": done.state, "revision": done.revision},
        f"notice {done.id}: revision {done.revision} saved; it needs approval again",
    )


@notice.command("cancel")
@on_behalf_options
@click.argument("notice_id", type=ID)
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who cancels (default: your own account).")
@json_option
@pass_context
def notice_cancel(
    ctx: Context, notice_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Cancel every post of a notice that has not gone out yet, and occurrences to come.

    A post already in flight finishes on its own: the answer says it was too late for that
    account (retract it afterwards).
    """
    ctx.warn_open_mode()
    result = notices.cancel(ctx.app, ctx.actor(actor), notice_id, reason)
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


def reply_language_options(f: F) -> F:
    """``--text-in LANG=TEXT`` (repeatable) and ``--publish-partial`` of a reply."""
    f = click.option(
        "--publish-partial",
        "partial",
        is_flag=True,
        help="Leave the posts of a language without --text-in text without this reply.",
    )(f)
    return click.option(
        "--text-in",
        "texts_in",
        multiple=True,
        metavar="LANG=TEXT",
        help="The text in another language of the notice, for its posts (repeatable; each "
        "language of the notice needs one).",
    )(f)


@notice.command("correct")
@on_behalf_options
@click.argument("notice_id", type=ID)
@click.option("--text", required=True, help='The correction, e.g. "Main St, not Maple St."')
@reply_language_options
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who corrects (default: your own account).")
@json_option
@pass_context
def notice_correct(
    ctx: Context,
    notice_id: int,
    text: str,
    texts_in: tuple[str, ...],
    partial: bool,
    reason: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Post a correction in the thread of every published post of a notice.

    No platform here edits a published post through its API, so the correction is a reply
    ("Correction: ...") on X and Facebook, and a new entry linking the first in the feed.
    A notice in several languages takes the correction in each (--text-in es=...): each
    post gets it in its own language.
    """
    ctx.warn_open_mode()
    done = notices.correct(
        ctx.app,
        ctx.actor(actor),
        notice_id,
        text,
        reason,
        texts=pairs(texts_in, "--text-in"),
        partial=partial,
    )
    _emit_queued(as_json, notice_id, done, "correction")


def _emit_queued(as_json: bool, notice_id: int, done: notices.Amended, what: str) -> None:
    """What a correction or update queued, as JSON or as lines."""
    emit(
        as_json,
        {
            "id": notice_id,
            "queued": done.amendment.queued,
            "labels": done.amendment.queued_labels(),
            "left": done.amendment.left,
            "in_flight": done.amendment.in_flight,
            "daemon_notified": done.woke,
        },
        done.amendment.lines(what),
    )


@notice.command("update")
@on_behalf_options
@click.argument("notice_id", type=ID)
@click.option("--text", required=True, help='The news, e.g. "Mass Ave has reopened."')
@reply_language_options
@click.option("--as", "actor", default=None, help="Who posts it (default: your own account).")
@json_option
@pass_context
def notice_update(
    ctx: Context,
    notice_id: int,
    text: str,
    texts_in: tuple[str, ...],
    partial: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Post an update now, as a reply to every published post of a notice (the feed: a new
    entry linking the first); the category's content policy applies to its text. A notice
    in several languages takes the update in each (--text-in es=...)."""
    from bulletin.app import updates

    ctx.warn_open_mode()
    done = updates.post_update(
        ctx.app,
        ctx.actor(actor),
        notice_id,
        text,
        texts=pairs(texts_in, "--text-in"),
        partial=partial,
    )
    _emit_queued(as_json, notice_id, done, "update")


@notice.command("retry")
@on_behalf_options
@click.argument("notice_id", type=ID)
@click.option("--as", "actor", default=None, help="Who retries (default: your own account).")
@json_option
@pass_context
def notice_retry(ctx: Context, notice_id: int, actor: str | None, as_json: bool) -> None:
    """Send a failed or partially published notice's failed posts again, now."""
    from bulletin.app import updates

    ctx.warn_open_mode()
    done = updates.retry(ctx.app, ctx.actor(actor), notice_id)
    line = f"notice {notice_id}: sent again to {', '.join(done.accounts)}"
    emit(
        as_json,
        {"id": notice_id, "accounts": done.accounts, "daemon_notified": done.woke},
        [line + ("" if done.woke else f" ({NO_DAEMON})")],
    )


@notice.command("retract")
@on_behalf_options
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
    help='The retraction reply (default "This notice has been withdrawn.", in the language '
    "of each post); not with --delete.",
)
@click.option(
    "--text-in",
    "texts_in",
    multiple=True,
    metavar="LANG=TEXT",
    help="The reply in another language of the notice (repeatable; a language without one "
    "gets the standard sentence in that language).",
)
@click.option(
    "--template",
    default=None,
    help="An approved template whose text is the retraction reply (how a dispatcher retracts).",
)
@click.option("--as", "actor", default=None, help="Who retracts (default: your own account).")
@json_option
@pass_context
def notice_retract(
    ctx: Context,
    notice_id: int,
    reason: str,
    delete: bool,
    text: str | None,
    texts_in: tuple[str, ...],
    template: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Withdraw a notice everywhere: cancel what has not gone out, stop its occurrences, and
    delete (--delete) or answer with a retraction reply each published post. The notice is
    then retracted (`notice list --state retracted`).

    Each post is answered in its own language: --text (or the template's) in the notice's
    primary language, --text-in es=... in another; without one, the standard sentence in
    that language ("Este aviso ha sido retirado.").

    A published notice is retracted by an approver (the reply's text is checked by the
    content policy), or by a dispatcher with --template, an approved template's text."""
    ctx.warn_open_mode()
    done = notices.retract(
        ctx.app,
        ctx.actor(actor),
        notice_id,
        reason,
        delete=delete,
        text=text,
        template=template,
        texts=pairs(texts_in, "--text-in"),
    )
    emit(
        as_json,
        {
            "id": notice_id,
            "queued": done.amendment.queued,
            "cancelled": done.amendment.cancelled,
            "in_flight": done.amendment.in_flight,
            "daemon_notified": done.woke,
        },
        done.amendment.lines("deletion" if delete else "retraction"),
    )


@notice.command("ack")
@on_behalf_options
@click.argument("notice_id", type=ID)
@click.option("--reason", default="", help="What was done about it (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who has seen it (default: your own account).")
@json_option
@pass_context
def notice_ack(ctx: Context, notice_id: int, reason: str, actor: str | None, as_json: bool) -> None:
    """Acknowledge a notice's failed deliveries: `status --check` and the metrics stop asking
    for a person about them (a later failure asks again)."""
    ctx.warn_open_mode()
    who = ctx.actor(actor)
    count = notices.acknowledge(ctx.app, who, notice_id, reason)
    emit(
        as_json,
        {"id": notice_id, "acknowledged": count},
        f"notice {notice_id}: {count} failed deliver{'y' if count == 1 else 'ies'} "
        f"acknowledged by {who.name}",
    )


@notice.command("late")
@on_behalf_options
@click.argument("notice_id", type=ID, required=False)
@click.option("--publish", "decision", flag_value="publish", help="Publish its late posts now.")
@click.option("--cancel", "decision", flag_value="cancel", help="Cancel its late posts.")
@click.option("--reason", default=None, help="Why (kept in the audit trail).")
@click.option("--as", "actor", default=None, help="Who decides (default: your own account).")
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
    if notice_id is None:
        if decision:
            raise UsageError("--publish/--cancel need the notice ID")
        late = notice_queries.waiting_for_decision(ctx.app)
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
            late_summary(late, ctx.settings.agency.time_zone) or ["no late notices"],
        )
        return
    if decision is None:
        raise UsageError("say --publish or --cancel")
    ctx.warn_open_mode()
    done = notices.decide_late(ctx.app, ctx.actor(actor), notice_id, decision == "publish", reason)
    verb = "publishing now" if done.publish else "cancelled"
    emit(
        as_json,
        {
            "id": notice_id,
            "decision": decision,
            "accounts": done.accounts,
            "daemon_notified": done.woke,
        },
        f"notice {notice_id}: {verb} for {', '.join(done.accounts)}",
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
    rows = [row_json(r) for r in notice_queries.list_notices(ctx.app, state, limit)]
    emit(as_json, {"notices": rows}, list_lines(rows, ctx.settings.agency.time_zone))


@notice.command("show")
@click.argument("notice_id", type=ID)
@json_option
@pass_context
@read_only
def notice_show(ctx: Context, notice_id: int, as_json: bool) -> None:
    """One notice with every delivery, its attempts and its outcome."""
    view = notice_queries.show_notice(ctx.app, notice_id)
    emit(as_json, view_json(view), view_lines(view, ctx.settings.agency.time_zone))
