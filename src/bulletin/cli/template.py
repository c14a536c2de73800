"""Approver and dispatcher commands for pre-approved templates: add, approve, list, show."""

from __future__ import annotations

from typing import Any

import click

from bulletin.app import templates
from bulletin.cli import Context, emit, json_option, on_behalf_options, pass_context
from bulletin.cli.notice import pairs
from bulletin.models import Template
from bulletin.publisher.templates import DEFAULT, VARIABLE_TYPES, parse_variables
from bulletin.timeparse import local_text


@click.group()
def template() -> None:
    """Templates an approver approves in advance, so a dispatcher can publish at once."""


@template.command("add")
@on_behalf_options
@click.argument("name")
@click.option("--category", required=True, help="Category slug of notices made from it.")
@click.option(
    "--text", required=True, help='The wording, with {placeholders}: "Road closed: {road}".'
)
@click.option(
    "--text-for",
    "text_for",
    multiple=True,
    metavar="ACCOUNT_OR_PLATFORM=TEXT",
    help="Other wording for one account or platform (repeatable).",
)
@click.option(
    "--text-in",
    "texts_in",
    multiple=True,
    metavar="LANG=TEXT",
    help='The wording in another language, same {placeholders}: es="Calle cerrada: {road}"; '
    "es/x=TEXT is its wording for one account or platform (repeatable).",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME:TYPE",
    help=f"Declare a placeholder and its type ({', '.join(VARIABLE_TYPES)}); repeatable.",
)
@click.option("--as", "actor", default=None, help="Who writes it (default: your own account).")
@json_option
@pass_context
def template_add(
    ctx: Context,
    name: str,
    category: str,
    text: str,
    text_for: tuple[str, ...],
    texts_in: tuple[str, ...],
    variables: tuple[str, ...],
    actor: str | None,
    as_json: bool,
) -> None:
    """Add a template, or a new version of it; a new version needs a new approval.

    Its --text is in the agency's first language; --text-in gives the others, filled in
    with the same variables (dates and times written the way each language writes them)."""
    ctx.warn_open_mode()
    added = templates.add(
        ctx.app,
        ctx.actor(actor),
        name,
        category,
        text,
        parse_variables(variables),
        pairs(text_for, "--text-for"),
        pairs(texts_in, "--text-in"),
    )
    emit(
        as_json,
        _template_json(added),
        f"template {added.name} v{added.version} added; an approver approves it with "
        f"`bulletin template approve {added.name}`",
    )


@template.command("approve")
@on_behalf_options
@click.argument("name")
@click.option("--by", "approver", default=None, help="Who approves (default: your own account).")
@json_option
@pass_context
def template_approve(ctx: Context, name: str, approver: str | None, as_json: bool) -> None:
    """Approve a template's newest version: notices made from it need no other approval."""
    ctx.warn_open_mode()
    approved = templates.approve(ctx.app, ctx.actor(approver), name)
    emit(
        as_json,
        _template_json(approved),
        f"template {approved.name} v{approved.version} approved by {approved.approved_by}",
    )


@template.command("list")
@json_option
@pass_context
def template_list(ctx: Context, as_json: bool) -> None:
    """Every template's newest version and whether it is approved."""
    rows = [_template_json(t) for t in templates.list_all(ctx.app)]
    emit(
        as_json,
        {"templates": rows},
        [
            f"{r['name']:<24} v{r['version']:<3} {r['category']:<20} "
            + (f"approved by {r['approved_by']}" if r["approved_by"] else "NOT APPROVED")
            for r in rows
        ]
        or ["no templates"],
    )


@template.command("show")
@click.argument("name")
@json_option
@pass_context
def template_show(ctx: Context, name: str, as_json: bool) -> None:
    """One template: its wording per platform, its variables and its approval."""
    shown = templates.show(ctx.app, name)
    data = _template_json(shown)
    tz = ctx.settings.agency.time_zone
    lines = [
        f"template {shown.name} v{shown.version}  {shown.category}",
        f"  written  {shown.created_by}, {local_text(shown.created_at, tz)}",
        f"  approved {shown.approved_by or 'NOT APPROVED'}, {local_text(shown.approved_at, tz)}",
        "  vars     " + (", ".join(f"{k}:{v}" for k, v in data["variables"].items()) or "none"),
        *[
            f"  text{'' if key == DEFAULT else ' for ' + key}: {body}"
            for key, body in data["bodies"].items()
        ],
        f"  sha256   {shown.content_sha256}",
    ]
    emit(as_json, data, lines)


def _template_json(t: Template) -> dict[str, Any]:
    return t.model_dump()
