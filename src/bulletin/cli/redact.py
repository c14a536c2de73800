"""Records clerk commands: redact add, list, remove, codes (text withheld from public
productions, with its legal ground; the archive itself never changes)."""

from __future__ import annotations

from typing import Any

import click

from bulletin.app import redactions
from bulletin.cli import ID, Context, emit, json_option, on_behalf_options, pass_context
from bulletin.errors import UsageError
from bulletin.models import Redaction
from bulletin.timeparse import local_text


def _json(r: Redaction) -> dict[str, Any]:
    return r.model_dump()


def parse_span(text: str) -> tuple[int, int]:
    """``--span START:END`` as two code-point offsets, ``START < END``.

    :raises UsageError: anything else.
    """
    start_text, sep, end_text = text.partition(":")
    try:
        if not sep:
            raise ValueError
        start, end = int(start_text), int(end_text)
    except ValueError:
        raise UsageError(
            f"--span {text!r} is not START:END (code-point offsets into the record's text, "
            "e.g. 10:24)"
        ) from None
    if start < 0 or end <= start:
        raise UsageError(f"--span {text!r}: START must be 0 or more and END greater than START")
    return start, end


@click.group()
def redact() -> None:
    """Withhold text of archived records from public productions, citing an exemption."""


@redact.command("add")
@on_behalf_options
@click.argument("record_id", type=ID)
@click.option(
    "--span",
    "spans",
    multiple=True,
    help="START:END, code-point offsets into the record's text (END excluded); repeatable. "
    "`bulletin archive show RECORD` prints the text.",
)
@click.option("--match", default=None, help="Withhold every occurrence of this exact text.")
@click.option("--exemption", "code", required=True, help="The exemption code (see `redact codes`).")
@click.option("--reason", required=True, help="Why this text is withheld, recorded in the log.")
@click.option(
    "--all-versions",
    is_flag=True,
    help="Withhold the same text in every other archived version of the item too.",
)
@click.option("--as", "actor", default=None, help="Who redacts (a clerk).")
@json_option
@pass_context
def redact_add(
    ctx: Context,
    record_id: int,
    spans: tuple[str, ...],
    match: str | None,
    code: str,
    reason: str,
    all_versions: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Mark text of one archived record (one version of a post or comment) to withhold."""
    ctx.warn_open_mode()
    parsed = [parse_span(s) for s in spans]
    if not parsed and match is None:
        raise UsageError("say what to withhold: --span START:END or --match TEXT")
    acting = ctx.actor(actor)
    who = acting.name
    done = redactions.add_redaction(
        ctx.app,
        acting,
        record_id,
        spans=parsed,
        match=match,
        code=code,
        reason=reason,
        all_versions=all_versions,
    )
    label = redactions.label_of(ctx.app, done.redactions[0].exemption) if done.redactions else code
    lines = [
        f"redaction {r.id}: record {r.record_id} characters {r.start}:{r.end} withheld under "
        f"{label}, by {who}"
        for r in done.redactions
    ]
    lines += [
        f"note: span {a}:{b} widened to {c}:{d} so that no character is split"
        for a, b, c, d in done.widened
    ]
    if done.unredacted_elsewhere:
        others = ", ".join(
            f"record {r.id} (version {r.version})" for r in done.unredacted_elsewhere
        )
        lines.append(
            f"warning: the same text stays unredacted in {others}; re-run with --all-versions "
            "to withhold it there too"
        )
    emit(
        as_json,
        {
            "redactions": [_json(r) for r in done.redactions],
            "widened": [list(w) for w in done.widened],
            "unredacted_elsewhere": [r.id for r in done.unredacted_elsewhere],
        },
        lines,
    )


@redact.command("propagate")
@on_behalf_options
@click.argument("redaction_id", type=ID)
@click.option("--as", "actor", default=None, help="Who redacts (a clerk).")
@json_option
@pass_context
def redact_propagate(ctx: Context, redaction_id: int, actor: str | None, as_json: bool) -> None:
    """Withhold a redaction's text in every other archived version of its item too (a
    version captured after the redaction was made, say), same exemption and reason."""
    ctx.warn_open_mode()
    acting = ctx.actor(actor)
    who = acting.name
    done = redactions.propagate_redaction(ctx.app, acting, redaction_id)
    emit(
        as_json,
        {"redactions": [_json(r) for r in done.redactions]},
        [
            f"redaction {r.id}: record {r.record_id} characters {r.start}:{r.end} withheld "
            f"(from redaction {redaction_id}), by {who}"
            for r in done.redactions
        ]
        or [f"redaction {redaction_id}'s text is withheld in every version already"],
    )


@redact.command("list")
@click.option("--record", "record_id", type=ID, default=None, help="Only this record's.")
@click.option("--all", "include_removed", is_flag=True, help="Include removed redactions.")
@json_option
@pass_context
def redact_list(ctx: Context, record_id: int | None, include_removed: bool, as_json: bool) -> None:
    """Redactions in force (with --all, removed ones too), oldest first."""
    rows = redactions.list_redactions(
        ctx.app, ctx.reader(), record_id=record_id, include_removed=include_removed
    )
    tz = ctx.settings.agency.time_zone
    lines = [
        f"{r.id:>5}  record {r.record_id:<7} {r.start}:{r.end:<6} "
        f"{redactions.label_of(ctx.app, r.exemption):<22} by {r.created_by} "
        f"{local_text(r.created_at, tz)}: {r.reason}"
        + (
            f"  [removed {local_text(r.removed_at, tz)} by {r.removed_by}: {r.removal_reason}]"
            if r.removed_at
            else ""
        )
        for r in rows
    ] or ["no redactions"]
    emit(as_json, {"redactions": [_json(r) for r in rows]}, lines)


@redact.command("remove")
@on_behalf_options
@click.argument("redaction_id", type=ID)
@click.option("--reason", required=True, help="Why the text is no longer withheld.")
@click.option("--as", "actor", default=None, help="Who removes it (a clerk).")
@json_option
@pass_context
def redact_remove(
    ctx: Context, redaction_id: int, reason: str, actor: str | None, as_json: bool
) -> None:
    """Take a redaction out of force (it stays on record, marked removed; audited)."""
    ctx.warn_open_mode()
    acting = ctx.actor(actor)
    who = acting.name
    removed = redactions.remove_redaction(ctx.app, acting, redaction_id, reason=reason)
    emit(
        as_json,
        _json(removed),
        f"redaction {removed.id} removed by {who}: record {removed.record_id} characters "
        f"{removed.start}:{removed.end} are no longer withheld from new productions",
    )


@redact.command("codes")
@json_option
@pass_context
def redact_codes(ctx: Context, as_json: bool) -> None:
    """The exemption codes a redaction may cite ([redaction] in the configuration)."""
    codes = redactions.exemption_codes(ctx.app, ctx.reader())
    emit(
        as_json,
        {"codes": {k: v.model_dump() for k, v in codes.items()}},
        [f"{k:<8} {v.label:<24} {v.description}" for k, v in codes.items()]
        or ["no exemption codes configured (see [redaction] in the configuration)"],
    )


@redact.command("show")
@click.argument("record_id", type=ID)
@json_option
@pass_context
def redact_show(ctx: Context, record_id: int, as_json: bool) -> None:
    """A record's text with the offsets of every word (for --span), its redactions in force,
    and the text as a public production will show it."""
    sheet = redactions.redaction_sheet(ctx.app, ctx.reader(), record_id)
    record, words, public = sheet.record, sheet.words, sheet.public_text
    lines = [
        f"record {record.id}  {record.kind} {record.remote_id} (version {record.version}), "
        f"{len(record.text)} characters",
        "words (START:END for --span):",
        *[f"  {start:>5}:{end:<5} {word}" for start, end, word in words],
        "redactions in force:" if sheet.redactions else "no redactions in force",
        *[
            f"  {r.id:>5}  {r.start}:{r.end}  {label}  ({r.reason})"
            for r, label in sheet.redactions
        ],
        "public copy:",
        f"  {public}",
    ]
    emit(
        as_json,
        {
            "record_id": record.id,
            "characters": len(record.text),
            "words": [{"start": s, "end": e, "text": w} for s, e, w in words],
            "redactions": [_json(r) for r, _ in sheet.redactions],
            "public_text": public,
        },
        lines,
    )
