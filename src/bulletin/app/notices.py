"""The dispatcher's and the approver's actions on notices: draft, approve, cancel, correct,
retract, acknowledge failures, decide late posts.

Each takes the acting :class:`~bulletin.app.actor.Actor`, checks the role the action needs,
and returns what happened; an action that makes posts due says whether a daemon heard the
wake-up (:mod:`bulletin.app.outbox`). What to read: :mod:`bulletin.app.notice_queries`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bulletin.app import idempotency, outbox
from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.config.site import Role
from bulletin.errors import NotFound, Refused
from bulletin.identity import require_role
from bulletin.models import Notice, Template
from bulletin.publisher import amend, approval, failures, revisions, schedule
from bulletin.publisher.languages import LanguageVariant, variants_of
from bulletin.publisher.notices import (
    CancelResult,
    NoticeDraft,
    cancel_notice,
    create_notice,
    get_notice,
    validate_draft,
)
from bulletin.publisher.templates import list_templates, notice_from_template

#: who may cancel a notice's posts not gone out yet (a reader and a clerk only look)
NOTICE_CANCELLERS: tuple[Role, ...] = ("dispatcher", "approver", "admin")


@dataclass(frozen=True)
class Drafted:
    """A new notice and what its approver will see. Drafted from a template whose approval
    covers it (``covered_by``: that approver), it is approved already and ``woke`` says
    whether a daemon heard. ``languages``: its language variants, the primary first."""

    notice: Notice
    review: approval.Review
    template: str | None = None
    covered_by: str | None = None
    woke: bool = False
    replayed: bool = False  # made by an earlier request with the same idempotency key
    languages: list[LanguageVariant] = field(default_factory=list)


@dataclass(frozen=True)
class DraftChoices:
    """What a dispatcher may choose from: categories (slug → priority), the enabled target
    accounts (name → platform), the approved templates (their newest versions) and the
    agency's languages (the first is a notice's primary)."""

    categories: dict[str, str]
    accounts: dict[str, str]
    templates: list[Template] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Approved:
    """The notice after one approval: ``approvals`` of ``notice.approvals_needed`` recorded;
    once ``notice.state`` is approved, ``woke`` says whether a daemon heard."""

    notice: Notice
    approvals: int
    woke: bool = False


@dataclass(frozen=True)
class Amended:
    """A correction or retraction queued, and whether a daemon heard."""

    amendment: amend.Amendment
    woke: bool


@dataclass(frozen=True)
class LateDecision:
    """The accounts whose late posts were published now or cancelled."""

    notice_id: int
    publish: bool
    accounts: list[str]
    woke: bool


@acts
def draft(
    app: App,
    actor: Actor,
    notice: NoticeDraft,
    *,
    template: str | None = None,
    values: Mapping[str, str] | None = None,
    once: idempotency.Claim | None = None,
) -> Drafted:
    """Draft ``notice``; with ``template``, fill in that approved template with ``values``
    (its text and category replace the draft's), approved at once when its approval covers it.

    With ``once``, the notice is made once for its idempotency key: a request that repeats it
    gets the notice the first one made (``replayed``), also when both ran at the same time.

    :raises Refused: ``actor`` is not a dispatcher, or the template is not approved.
    :raises KeyReused: ``once``'s key came before with another request.
    :raises UsageError: a bad draft or variable.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    if once is None:
        return _draft(app, actor, notice, template, values, None)
    found = idempotency.earlier(app, once)
    if found is None:
        try:
            return _draft(app, actor, notice, template, values, once)
        except IntegrityError:
            found = idempotency.earlier(app, once)  # a concurrent request with the key won
            if found is None:
                raise
    if found.notice_id is None:
        raise NotFound(f"the notice of idempotency key {once.key!r} is gone")
    with Session(app.checked_engine()) as session:
        made = get_notice(session, found.notice_id)
        review = approval.review_notice(session, app.settings, made)
        languages = variants_of(session, made)
    return Drafted(made, review, template, made.approved_by, replayed=True, languages=languages)


def _draft(
    app: App,
    actor: Actor,
    notice: NoticeDraft,
    template: str | None,
    values: Mapping[str, str] | None,
    once: idempotency.Claim | None,
) -> Drafted:
    engine = app.checked_engine()
    store = app.store if notice.images else None
    covered_by: str | None = None
    within = None
    if once is not None:
        claim = once

        def within(session: Session, made: Notice) -> None:
            idempotency.remember(app, claim, session, made.id)

    with outbox.collect() as wakes:
        if template is not None:
            made = notice_from_template(
                engine,
                app.settings,
                app.clock,
                template,
                values or {},
                notice,
                actor.name,
                store=store,
                within=within,
            )
            created = made.notice
            covered_by = made.template.approved_by if made.covered else None
        else:
            created = create_notice(
                engine, app.settings, app.clock, notice, actor.name, store, within
            )
    with Session(engine) as session:
        review = approval.review_notice(session, app.settings, created)
        languages = variants_of(session, created)
    return Drafted(created, review, template, covered_by, bool(wakes.sent), languages=languages)


@acts
def draft_choices(app: App, actor: Actor) -> DraftChoices:
    """The categories and target accounts a new notice may have.

    :raises Refused: ``actor`` is not a dispatcher.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    settings = app.settings
    return DraftChoices(
        dict(settings.publisher.categories),
        {name: a.platform for name, a in settings.accounts.items() if a.enabled},
        [t for t in list_templates(app.checked_engine()) if t.approved_by],
        list(settings.agency.languages),
    )


@acts
def preview(app: App, actor: Actor, notice: NoticeDraft) -> approval.Review:
    """What ``notice`` would look like to its approver (each target's text, count, cost and
    the policy findings), without storing it.

    :raises Refused: ``actor`` is not a dispatcher. :raises UsageError: a bad draft.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    validate_draft(notice, app.settings, app.clock.now())
    return approval.review_draft(app.settings, notice)


@acts
def approve(
    app: App,
    actor: Actor,
    notice_id: int,
    *,
    late_ok: bool = False,
    overrides: Sequence[str] = (),
    reason: str | None = None,
    publish_partial: bool = False,
) -> Approved:
    """Record ``actor``'s approval (overriding content-policy ``overrides``, for ``reason``;
    with ``publish_partial``, a language variant that fails does not stop the others);
    see :func:`bulletin.publisher.approval.approve_notice`.

    :raises Refused: not an approver, or the approval is refused.
    :raises UsageError: an override without a reason or of an unknown rule.
    """
    require_role(app.settings, actor.name, "approver", app.checked_engine())
    engine = app.checked_engine()
    if actor.by:
        _two_hands(engine, actor, notice_id)
    with outbox.collect() as wakes:
        approved = approval.approve_notice(
            engine,
            app.settings,
            app.clock,
            notice_id,
            actor.name,
            late_ok=late_ok,
            overrides=overrides,
            reason=reason,
            publish_partial=publish_partial,
        )
    with Session(engine) as session:
        count = len(approval.approvals_of(session, notice_id, approved.revision))
    return Approved(approved, count, bool(wakes.sent))


def _two_hands(engine: Engine, actor: Actor, notice_id: int) -> None:
    """An admin approving on someone's behalf is still one of the two people: they may not
    approve a notice they wrote or approved themselves."""
    with Session(engine) as session:
        notice = session.get(Notice, notice_id)
        hands = {a.approver for a in approval.approvals_of(session, notice_id)}
    if notice is not None and actor.by in hands | {notice.author}:
        raise Refused(
            f"{actor.by} wrote or approved notice {notice_id} and may not approve it on "
            f"{actor.name}'s behalf"
        )


@acts
def send_back(app: App, actor: Actor, notice_id: int, comment: str) -> Notice:
    """Send a draft back to its author with ``comment`` (an approver's action); it waits for
    the author's edit before anyone may approve it.

    :raises Refused: not an approver, not a draft, or the author's own notice.
    :raises UsageError: an empty comment.
    """
    require_role(app.settings, actor.name, "approver", app.checked_engine())
    return revisions.send_back(
        app.checked_engine(), app.clock.now(), notice_id, actor.name, comment
    )


@acts
def edit(
    app: App,
    actor: Actor,
    notice_id: int,
    text: str,
    languages: Sequence[LanguageVariant] | None = None,
    follow_up: str | None = None,
    *,
    remove_follow_up: bool = False,
    follow_up_partial: bool = False,
) -> Notice:
    """Give a draft new text (its author's action, a dispatcher), with ``languages`` its
    other languages anew (one it does not have is added, one left out dropped, until a post
    of it is published), with ``follow_up`` its follow-up's new text in the primary
    language, added when it has none (None: as it is), or with ``remove_follow_up`` none in
    any language (``follow_up_partial``: a language may go without one): a new revision,
    recorded in the audit trail; approvals start over (see
    :func:`bulletin.publisher.revisions.edit`).

    :raises Refused: not a dispatcher, not a draft, not its author, or a language added or
        dropped while a post of it is published.
    :raises UsageError: an empty, unchanged or too long text, bad languages, a bad
        follow-up (or one added to a notice without an expiry, or a language left without
        one), or a follow-up removed that the notice does not have.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    return revisions.edit(
        app.checked_engine(),
        app.settings,
        app.clock.now(),
        notice_id,
        actor.name,
        text,
        languages,
        follow_up,
        remove_follow_up=remove_follow_up,
        follow_up_partial=follow_up_partial,
    )


@acts
def cancel(app: App, actor: Actor, notice_id: int, reason: str) -> CancelResult:
    """Cancel what has not gone out; see :func:`bulletin.publisher.notices.cancel_notice`
    (a dispatcher, approver or admin; a notice with a published post takes an approver).

    :raises Refused: a reader or clerk, or as :func:`cancel_notice` says.
    """
    require_any_role(app, actor, NOTICE_CANCELLERS)
    return cancel_notice(
        app.checked_engine(), app.clock, notice_id, actor.name, reason, settings=app.settings
    )


@acts
def correct(
    app: App,
    actor: Actor,
    notice_id: int,
    text: str,
    reason: str,
    *,
    texts: Mapping[str, str] | None = None,
    partial: bool = False,
) -> Amended:
    """Queue a correction as a reply to every published post, each in its post's language
    (``text`` in the primary, ``texts`` tag → text in the others; ``partial``: a language
    without its text gets no reply), an approver's action; see
    :func:`bulletin.publisher.amend.correct_notice`.

    :raises Refused: not an approver, or nothing is published.
    :raises UsageError: empty text or reason, a language without its text, or a text too
        long for a platform.
    """
    require_role(app.settings, actor.name, "approver", app.checked_engine())
    with outbox.collect() as wakes:
        result = amend.correct_notice(
            app.checked_engine(),
            app.settings,
            app.clock.now(),
            notice_id,
            text,
            reason,
            actor.name,
            texts,
            partial,
        )
    return Amended(result, bool(wakes.sent))


@acts
def retract(
    app: App,
    actor: Actor,
    notice_id: int,
    reason: str,
    *,
    delete: bool = False,
    text: str | None = None,
    template: str | None = None,
    texts: Mapping[str, str] | None = None,
) -> Amended:
    """Withdraw the notice everywhere; see :func:`bulletin.publisher.amend.retract_notice`
    (who may: an approver, or a dispatcher answering with an approved template's text).
    ``texts``: the reply in the notice's other languages (tag → text)."""
    engine, now = app.checked_engine(), app.clock.now()
    with outbox.collect() as wakes:
        result = amend.retract_notice(
            engine,
            app.settings,
            now,
            notice_id,
            reason,
            actor.name,
            delete,
            text,
            template,
            texts=texts,
        )
    return Amended(result, bool(wakes.sent))


@acts
def acknowledge(app: App, actor: Actor, notice_id: int, reason: str = "") -> int:
    """Record that ``actor`` has seen the notice's failed deliveries; returns how many."""
    return failures.acknowledge(
        app.checked_engine(), app.clock.now(), notice_id, actor.name, reason
    )


@acts
def decide_late(
    app: App, actor: Actor, notice_id: int, publish: bool, reason: str | None = None
) -> LateDecision:
    """Publish now (an approver's decision) or cancel the notice's late posts.

    :raises Refused: publishing without the approver role, cancelling as a reader or clerk,
        nothing late, or it expired.
    """
    if publish:
        require_role(app.settings, actor.name, "approver", app.checked_engine())
    else:
        require_any_role(app, actor, NOTICE_CANCELLERS)
    engine, now = app.checked_engine(), app.clock.now()
    with outbox.collect() as wakes:
        accounts = schedule.decide_late(
            engine, app.settings, now, notice_id, publish, actor.name, reason
        )
    return LateDecision(notice_id, publish, accounts, bool(wakes.sent))
