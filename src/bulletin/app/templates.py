"""Templates an approver approves in advance, so that a dispatcher's notice made from one is
published at once: add (a new version voids the approval), approve, list, show."""

from __future__ import annotations

from collections.abc import Mapping

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.identity import require_role
from bulletin.models import Template
from bulletin.publisher import templates


@acts
def add(
    app: App,
    actor: Actor,
    name: str,
    category: str,
    text: str,
    variables: Mapping[str, str],
    variants: Mapping[str, str] | None = None,
    languages: Mapping[str, str] | None = None,
) -> Template:
    """Store template ``name`` (or its next version): ``text`` with ``{placeholders}``, each
    declared in ``variables`` (name → type), other wording per account or platform, and
    the text in other languages (tag → text, ``es/x`` → Spanish wording for X).

    :raises UsageError: see :func:`bulletin.publisher.templates.add_template`.
    """
    require_role(app.settings, actor.name, None, app.checked_engine())
    return templates.add_template(
        app.checked_engine(),
        app.settings,
        app.clock,
        name,
        category,
        text,
        variables,
        actor.name,
        variants,
        languages,
    )


@acts
def approve(app: App, actor: Actor, name: str) -> Template:
    """Approve the newest version of ``name`` (an approver's action).

    :raises Refused: not an approver, already approved, self-approval, or a policy finding.
    """
    require_role(app.settings, actor.name, "approver", app.checked_engine())
    return templates.approve_template(
        app.checked_engine(), app.settings, app.clock, name, actor.name
    )


def list_all(app: App) -> list[Template]:
    """Every template's newest version."""
    return templates.list_templates(app.checked_engine())


def show(app: App, name: str) -> Template:
    """The newest version of ``name``. :raises NotFound: no such template."""
    return templates.get_template(app.checked_engine(), name)
