"""What an approver reviews of a template: its newest version beside the version approved
before it, as a line diff (category, variables and each wording), and the list of templates
with where each stands. Approving is :func:`bulletin.app.templates.approve`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bulletin.app.actor import Actor, acts
from bulletin.app.board import READERS, require_any_role
from bulletin.app.context import App
from bulletin.errors import NotFound
from bulletin.models import Template
from bulletin.publisher import templates


@dataclass(frozen=True)
class TemplateReview:
    """The newest version of a template, the newest approved version (None: never
    approved; the newest itself when it is approved) and the diff from that one to the
    newest (``-``/``+``/`` `` prefixed lines; empty when they are the same)."""

    newest: Template
    approved: Template | None
    diff: list[str]


def as_lines(t: Template) -> list[str]:
    """A template version as the lines its diff compares."""
    lines = [f"category: {t.category}"]
    lines += [f"variable {k}: {v}" for k, v in sorted(t.variables.items())]
    for key in ["default", *sorted(k for k in t.bodies if k != "default")]:
        if key in t.bodies:
            lines.append(f"[{'text' if key == 'default' else 'text for ' + key}]")
            lines += t.bodies[key].splitlines() or [""]
    return lines


@acts
def review(app: App, actor: Actor, name: str) -> TemplateReview:
    """Template ``name`` for review.

    :raises Refused: ``actor`` may not see notices. :raises NotFound: no such template.
    """
    require_any_role(app, actor, READERS)
    with Session(app.checked_engine()) as session:
        versions = list(
            session.exec(
                select(Template).where(Template.name == name).order_by(col(Template.version).desc())
            )
        )
    if not versions:
        raise NotFound(f"no template {name!r}")
    newest = versions[0]
    approved = next((v for v in versions if v.approved_by), None)
    diff: list[str] = []
    if approved is not None and approved.version != newest.version:
        diff = [
            line
            for line in difflib.unified_diff(
                as_lines(approved),
                as_lines(newest),
                f"version {approved.version}",
                f"version {newest.version}",
                lineterm="",
                n=2,
            )
        ][2:]
    return TemplateReview(newest, approved, diff)


@acts
def listing(app: App, actor: Actor) -> list[Template]:
    """Every template's newest version. :raises Refused: ``actor`` may not see notices."""
    require_any_role(app, actor, READERS)
    return templates.list_templates(app.checked_engine())
