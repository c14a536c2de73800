"""After publishing: corrections and retractions, per target, each an audited delivery.

No connector here can edit a published post through its API (X's API creates and deletes
posts but does not edit them; the Graph API's edit of a Page post is not used; the feed keeps
entries as published), so a correction is always posted as a reply in the post's thread
(the feed: a new entry linking the first). A retraction deletes the post where the platform
allows (X, Facebook; the feed removes the entry and leaves an RFC 6721 tombstone) when
asked to, and otherwise posts a retraction reply; a deletion takes no text of its own (a
deleted post takes its replies with it). A retracted notice stays ``retracted`` whatever its
posts do afterwards. Replies are published, reconciled and archived like any post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.config.settings import Settings
from bulletin.config.site import Role
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import Refused, UsageError
from bulletin.identity import require_role
from bulletin.models import Delivery, Notice
from bulletin.publisher import policy
from bulletin.publisher.languages import (
    CORRECTION_WORDS,
    RETRACTION_WORDS,
    languages_of,
    normalise,
    word_in,
)
from bulletin.publisher.notices import get_for_update, platform_of
from bulletin.publisher.texts import TargetText, check_text, plan
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

RETRACTING = (DeliveryKind.RETRACTION, DeliveryKind.DELETION)


@dataclass(frozen=True)
class Amendment:
    """What a correction or retraction queued, and what it stopped or could not reach."""

    notice_id: int
    queued: list[tuple[str, int]]  # (account, occurrence) of each reply or deletion
    cancelled: list[str]
    in_flight: list[str]
    # each of ``queued`` for people: ``feed``, ``feed[es]`` (a reply in a language other
    # than the notice's primary), ``feed (occurrence 2)``
    labels: list[str] = field(default_factory=list)
    # the posts left without a reply: their language had no text (chosen explicitly)
    left: list[str] = field(default_factory=list)

    def queued_labels(self) -> list[str]:
        """``labels``, or the accounts and occurrences of ``queued`` when none were given."""
        return self.labels or [a if o == 1 else f"{a} (occurrence {o})" for a, o in self.queued]

    def lines(self, what: str) -> list[str]:
        lines = [
            f"notice {self.notice_id}: {what} queued for "
            + (", ".join(self.queued_labels()) or "-")
        ]
        if self.left:
            lines.append(f"  left without it (no text in their language): {', '.join(self.left)}")
        if self.cancelled:
            lines.append(f"  cancelled before publishing: {', '.join(self.cancelled)}")
        if self.in_flight:
            lines.append(
                f"  in flight now, not covered: {', '.join(self.in_flight)} "
                "(run the command again once it has settled)"
            )
        return lines


@dataclass(frozen=True)
class Replies:
    """What :func:`queue_replies` queued."""

    revision: int
    queued: list[tuple[str, int]]  # (account, occurrence)
    labels: list[str]  # :func:`reply_label` of each of ``queued``
    in_flight: list[str]  # accounts whose post is in flight or uncertain (no reply yet)
    left: list[str]  # labels of the posts whose language has no text (no reply)


def reply_texts(
    settings: Settings,
    session: Session,
    notice: Notice,
    text: str,
    others: Mapping[str, str],
    what: str,
    partial: bool = False,
) -> dict[str, str]:
    """The text of a reply in each language of ``notice``: ``text`` in its primary,
    ``others`` (tag → text) in the others, each stripped.

    :raises UsageError: a tag that is not one of the notice's languages, an empty text, or
        a language of the notice without its text (unless ``partial``: its posts then get
        no reply).
    """
    langs = languages_of(session, notice)
    texts = _with_others(settings, notice, langs, {langs[0]: text.strip()}, others, what)
    missing = [lang for lang in langs if lang not in texts]
    if missing and not partial:
        raise UsageError(
            f"the {what} has no {', '.join(missing)} text: notice {notice.id} is in "
            f"{', '.join(langs)}, and each language's posts get the {what} in their own "
            f"language (or choose to leave the {', '.join(missing)} posts without it)",
            remedy="text-in",
        )
    return texts


def reply_label(parent: Delivery, primary: str) -> str:
    """A reply to ``parent`` for people: its account, its language in brackets when it is
    not the notice's ``primary`` (``feed[es]``, as ``bulletin notice show`` names posts),
    and its occurrence when not the first."""
    label = parent.account
    if parent.lang and parent.lang != primary:
        label += f"[{parent.lang}]"
    return label if parent.occurrence == 1 else f"{label} (occurrence {parent.occurrence})"


def _published_posts(session: Session, notice_id: int) -> tuple[list[Delivery], list[Delivery]]:
    """The notice's published posts not retracted yet, and every post delivery."""
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.notice_id == notice_id)
        .order_by(col(Delivery.id))
        .with_for_update()
    ).all()
    retracted = {d.parent_id for d in deliveries if d.kind in RETRACTING}
    posts = [d for d in deliveries if d.kind == DeliveryKind.POST]
    return [d for d in posts if d.state == DeliveryState.PUBLISHED and d.id not in retracted], posts


def _check_fits(
    session: Session, settings: Settings, accounts: Sequence[str], text: str
) -> list[TargetText]:
    """Each account's text. :raises UsageError: it is too long for one of them."""
    targets = []
    for account in sorted(set(accounts)):
        target = plan(settings, account, platform_of(session, settings, account), text, None, False)
        if not target.fits:
            raise UsageError(target.too_long())
        targets.append(target)
    return targets


def queue_replies(
    session: Session,
    notice_id: int,
    published: Sequence[Delivery],
    posts: Sequence[Delivery],
    kind: DeliveryKind,
    bodies: Mapping[str, str],
    now: datetime,
) -> Replies:
    """Queue a ``kind`` reply, due ``now``, to each published post in its language's text
    (``bodies``: tag → text; a post in a language without one gets none), under the next
    revision of that kind."""
    notice = session.get(Notice, notice_id)
    primary = notice.lang if notice is not None else ""
    revision = 1 + (
        session.exec(
            select(sa.func.max(Delivery.revision))
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == kind)
        ).one()
        or 0
    )
    queued, labels, left = [], [], []
    for parent in published:
        body = bodies.get(parent.lang or primary)
        if body is None:
            left.append(reply_label(parent, primary))
            continue
        session.add(
            Delivery(
                notice_id=notice_id,
                account=parent.account,
                occurrence=parent.occurrence,
                kind=kind,
                revision=revision,
                parent_id=parent.id,
                lang=parent.lang,
                due_at=now,
                text=body,
            )
        )
        queued.append((parent.account, parent.occurrence))
        labels.append(reply_label(parent, primary))
    in_flight = [
        d.account for d in posts if d.state in (DeliveryState.IN_FLIGHT, DeliveryState.UNCERTAIN)
    ]
    return Replies(revision, queued, labels, in_flight, left)


def reply_targets(
    session: Session,
    settings: Settings,
    primary: str,
    published: Sequence[Delivery],
    bodies: Mapping[str, str],
) -> list[TargetText]:
    """Each (account, language) text of a reply to ``published`` (the primary's ``lang``
    "", as the content policy reads it).

    :raises UsageError: a text too long for its account.
    """
    targets = []
    for account, lang in sorted({(d.account, d.lang or primary) for d in published}):
        if lang not in bodies:
            continue
        platform = platform_of(session, settings, account)
        target = plan(settings, account, platform, bodies[lang], None, False)
        target = replace(target, lang="" if lang == primary else lang)
        if not target.fits:
            raise UsageError(target.too_long())
        targets.append(target)
    return targets


def _holds(settings: Settings, name: str, role: Role, session: Session) -> bool:
    """Whether ``name`` holds ``role`` (:func:`bulletin.identity.require_role`); everyone does
    in open mode."""
    try:
        require_role(settings, name, role, session)
    except Refused:
        return False
    return True


def _may_retract(
    settings: Settings, session: Session, actor: str, *, delete: bool, templated: bool
) -> None:
    """:raises Refused: ``actor`` may not retract a published notice this way: it takes an
    approver, or a dispatcher answering with an approved template's text."""
    if _holds(settings, actor, "approver", session):
        return
    if templated and not delete and _holds(settings, actor, "dispatcher", session):
        return
    raise Refused(
        f"user {actor!r} does not hold the approver role: retracting a published notice needs "
        "an approver (a dispatcher may answer it with an approved retraction template)"
    )


def _refuse_blocked(settings: Settings, notice: Notice, targets: list[TargetText]) -> None:
    """:raises Refused: the text breaks a blocking content-policy rule of the notice's
    category (one line naming each rule)."""
    found = policy.blocking(
        policy.check(settings, policy.Subject(notice.category, targets, notice.link))
    )
    if found:
        raise Refused(
            f"the retraction text breaks the content policy: {'; '.join(f.line() for f in found)}"
        )


def retraction_texts(
    settings: Settings,
    session: Session,
    notice: Notice,
    text: str | None,
    others: Mapping[str, str],
) -> dict[str, str]:
    """The retraction reply in each language of ``notice``: ``text`` in its primary,
    ``others`` (tag → text) in the others, the standard sentence in a language given none.

    :raises UsageError: a tag that is not one of the notice's languages, a language given
        twice, or an empty text.
    """
    langs = languages_of(session, notice)
    primary = {langs[0]: text.strip()} if text is not None and text.strip() else {}
    given = _with_others(settings, notice, langs, primary, others, "retraction")
    return {lang: given.get(lang) or word_in(RETRACTION_WORDS, lang) for lang in langs}


def _with_others(
    settings: Settings,
    notice: Notice,
    langs: Sequence[str],
    texts: dict[str, str],
    others: Mapping[str, str],
    what: str,
) -> dict[str, str]:
    """``texts`` (language → text) with ``others`` (tag → text) added, each stripped and
    checked.

    :raises UsageError: a tag that is not one of ``langs``, a language given twice, or an
        empty text.
    """
    for tag, other in others.items():
        lang = normalise(settings, tag)
        if lang not in langs:
            raise UsageError(f"notice {notice.id} is not in {lang} (it is in {', '.join(langs)})")
        if lang in texts:
            raise UsageError(f"the {what} in {lang} is given twice")
        if not other.strip():
            raise UsageError(f"the {what} in {lang} is empty")
        check_text(f"the {what} in {lang}", other.strip())
        texts[lang] = other.strip()
    return texts


def correction_body(text: str, lang: str) -> str:
    """``text`` opened with the word for a correction in ``lang``, unless it opens with it
    (or with "Correction") already."""
    word = word_in(CORRECTION_WORDS, lang)
    opening = text.lower()
    if opening.startswith(word.rstrip(" :\uff1a").lower()) or opening.startswith("correction"):
        return text
    return word + text


def correct_notice(
    engine: Engine,
    settings: Settings,
    now: datetime,
    notice_id: int,
    text: str,
    reason: str,
    actor: str,
    others: Mapping[str, str] | None = None,
    partial: bool = False,
) -> Amendment:
    """Queue a correction as a reply to every published post of the notice, each in its
    post's language: ``text`` in the primary, ``others`` (tag → text) in the others (see
    :func:`reply_texts`; with ``partial`` a language without its text gets no reply).

    :raises UsageError: empty text or reason, a language missing, or a text too long for a
        platform.
    :raises Refused: nothing of the notice is published (cancel it instead).
    """
    if not text.strip():
        raise UsageError("a correction needs its text", remedy="text")
    if not reason.strip():
        raise UsageError(
            "a correction needs a reason (it is kept in the audit trail)", remedy="reason"
        )
    check_text("the correction", text.strip())
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        texts = reply_texts(settings, session, notice, text, others or {}, "correction", partial)
        bodies = {lang: correction_body(t, lang) for lang, t in texts.items()}
        published, posts = _published_posts(session, notice_id)
        if not published:
            raise Refused(
                f"notice {notice_id} has nothing published to correct (it is {notice.state}; "
                "cancel it and draft a new one)"
            )
        reply_targets(session, settings, notice.lang, published, bodies)
        done = queue_replies(
            session, notice_id, published, posts, DeliveryKind.CORRECTION, bodies, now
        )
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="correction-queued",
            object_type="notice",
            object_id=notice_id,
            reason=reason.strip(),
            text=bodies[notice.lang],
            texts={k: v for k, v in bodies.items() if k != notice.lang} or None,
            revision=done.revision,
            targets=[f"{a}#{o}" for a, o in done.queued],
            left=done.left or None,
            edited=False,  # no connector edits through its API: see the module docstring
        )
        wake_after_commit(session)
    return Amendment(notice_id, done.queued, [], done.in_flight, done.labels, done.left)


def retract_notice(
    engine: Engine,
    settings: Settings,
    now: datetime,
    notice_id: int,
    reason: str,
    actor: str,
    delete: bool = False,
    text: str | None = None,
    template: str | None = None,
    fixed_text: bool = False,
    texts: Mapping[str, str] | None = None,
) -> Amendment:
    """Withdraw the notice everywhere: posts not yet made are cancelled, occurrences to come
    are stopped, each published post is deleted (``delete``, where the platform allows) or
    answered with a retraction reply, and the notice becomes ``retracted``.

    The reply to a post is in the post's language: ``text`` (or approved template
    ``template``'s text) for the notice's primary language, ``texts`` (tag → text) for its
    others; a language given no text gets the standard sentence in that language ("This
    notice has been withdrawn.", "Este aviso ha sido retirado.", …; English where none is
    known), so a withdrawal is never held back for want of a translation.

    With ``[users]`` configured, retracting a notice with a published post needs the approver
    role, except that a dispatcher may answer with an approved template's text, or with the
    product's own fixed ``text`` (``fixed_text``: a CAP Cancel's, configured with ``[cap]``).
    A reply's text must break no blocking content-policy rule of the notice's category.

    :raises UsageError: no reason, a text with ``delete`` (nobody would see it), a text
        with a template, or a ``texts`` language the notice is not in (or its primary).
    :raises Refused: nothing left to retract, a missing role, an unapproved template, or a
        text the content policy blocks.
    """
    if not reason.strip():
        raise UsageError(
            "a retraction needs a reason (it is kept in the audit trail)", remedy="reason"
        )
    if delete and (text is not None or template is not None or texts):
        raise UsageError(
            "a deletion posts no retraction text (a deleted post takes its replies with it): "
            "delete the posts, or answer them with the text, not both"
        )
    if template is not None and text is not None:
        raise UsageError("a template gives the retraction text; give the template or the text")
    if template is not None:
        from bulletin.publisher.templates import approved_template, render

        text = render(approved_template(engine, template), {})[0]
    if text is not None:
        check_text("the retraction", text.strip())
    kind = DeliveryKind.DELETION if delete else DeliveryKind.RETRACTION
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        bodies = retraction_texts(settings, session, notice, text, texts or {})
        published, posts = _published_posts(session, notice_id)
        cancelled = []
        for d in posts:
            if d.state in (DeliveryState.PENDING, DeliveryState.LATE):
                d.state = DeliveryState.CANCELLED
                d.last_error = f"retracted by {actor}: {reason.strip()}"
                session.add(d)
                cancelled.append(d.account)
        stopped = notice.next_occurrence_at is not None
        if not published and not cancelled and not stopped:
            raise Refused(f"notice {notice_id} has nothing left to retract")
        if published:
            preapproved = template is not None or fixed_text
            _may_retract(settings, session, actor, delete=delete, templated=preapproved)
            for lang, body in bodies.items():
                accounts = [d.account for d in published if (d.lang or notice.lang) == lang]
                targets = _check_fits(session, settings, accounts, body)
                if not delete:
                    _refuse_blocked(settings, notice, targets)
        notice.next_occurrence_at = None
        notice.closed_reason = reason.strip()
        notice.state = NoticeState.RETRACTED
        session.add(notice)
        queued = []
        for parent in published:
            session.add(
                Delivery(
                    notice_id=notice_id,
                    account=parent.account,
                    occurrence=parent.occurrence,
                    kind=kind,
                    parent_id=parent.id,
                    lang=parent.lang,
                    due_at=now,
                    text=bodies.get(parent.lang or notice.lang)
                    or word_in(RETRACTION_WORDS, parent.lang or notice.lang),
                )
            )
            queued.append((parent.account, parent.occurrence))
        in_flight = [
            d.account
            for d in posts
            if d.state in (DeliveryState.IN_FLIGHT, DeliveryState.UNCERTAIN)
        ]
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="retracted",
            object_type="notice",
            object_id=notice_id,
            reason=reason.strip(),
            delete=delete,
            targets=[f"{a}#{o}" for a, o in queued],
            cancelled=cancelled or None,
            in_flight=in_flight or None,
        )
        labels = [reply_label(p, notice.lang) for p in published]
        wake_after_commit(session)
    return Amendment(notice_id, queued, cancelled, in_flight, labels)
