"""Drafts that change before approval: an approver sends a draft back to its author with a
comment; the author edits it, which makes a new revision.

An approval names the revision it approved and counts only for that revision
(:func:`bulletin.publisher.approval.approvals_of`), so an edit starts the approvals over. A
draft sent back cannot be approved until its author has edited it. Each change commits
together with its audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import FieldPath, Refused, UsageError, about
from bulletin.models import Delivery, Notice, NoticeLanguage
from bulletin.publisher.delivery.states import move
from bulletin.publisher.languages import (
    LanguageVariant,
    account_languages,
    check_variants,
    replies_in,
)
from bulletin.publisher.notices import (
    NoticeDraft,
    check_follow_up_expiry,
    check_follow_ups,
    get_for_update,
    platform_of,
)
from bulletin.publisher.schedule import occurrence_text
from bulletin.publisher.texts import THREAD_PLATFORMS, check_text, plan
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

MAX_COMMENT = 2000


def send_back(engine: Engine, now: datetime, notice_id: int, actor: str, comment: str) -> Notice:
    """Send draft ``notice_id`` back to its author with ``comment`` (kept on the notice until
    the next edit, and in the audit trail).

    :raises Refused: not a draft, or the author sending back their own notice.
    :raises UsageError: an empty or overlong comment.
    """
    comment = comment.strip()
    if not comment:
        raise UsageError("say what the author should change (the comment is empty)")
    if len(comment) > MAX_COMMENT:
        raise UsageError(f"the comment is {len(comment)} characters; at most {MAX_COMMENT}")
    check_text("the comment", comment)
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        _require_draft(notice, "sent back")
        if actor == notice.author:
            raise Refused(f"{actor} wrote notice {notice_id}; edit it instead of sending it back")
        notice.sent_back = comment
        session.add(notice)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="sent-back",
            object_type="notice",
            object_id=notice_id,
            reason=comment,
            revision=notice.revision,
        )
        return notice


def edit(
    engine: Engine,
    settings: Settings,
    now: datetime,
    notice_id: int,
    actor: str,
    text: str,
    languages: Sequence[LanguageVariant] | None = None,
    follow_up: str | None = None,
    *,
    remove_follow_up: bool = False,
    follow_up_partial: bool = False,
) -> Notice:
    """Give draft ``notice_id`` the new ``text`` (its author's action), with ``languages``
    its other languages anew, adding or dropping one (see :func:`_relanguage`), and with
    ``follow_up`` its follow-up's new text in the primary language, added when it has none
    (None: as it is); ``remove_follow_up`` removes its follow-up in every language. A new
    revision, whose approvals start over; each target's text is measured again.

    A follow-up added follows the drafting rules (:func:`check_follow_ups`): the notice needs
    an expiry, and each other language a follow-up (in ``languages``, or already given)
    unless ``follow_up_partial`` (or the notice already leaves a language without one). The
    follow-ups are queued at expiry from what the notice then has
    (:func:`bulletin.publisher.schedule.make_follow_ups`), so an added one is posted and a
    removed one is not.

    :raises Refused: not a draft, not its author, or a language added or dropped while a
        post of it is published.
    :raises UsageError: an empty, unchanged or too long text, languages as
        :func:`_relanguage` says, a follow-up empty, too long for a target or added to a
        notice without an expiry (``field`` ``("follow_up",)``), a language missing its
        follow-up (``("languages", N, "follow_up")``), or ``remove_follow_up`` with a
        follow-up or for a notice without one (``("remove_follow_up",)``).
    """
    text = text.strip()
    with about("text"):
        if not text:
            raise UsageError("notice text is empty")
        check_text("notice text", text)
        limit = settings.publisher.max_text_length
        if len(text) > limit:
            raise UsageError(f"notice text is {len(text)} characters, at most {limit} are allowed")
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        _require_draft(notice, "edited")
        if actor != notice.author:
            raise Refused(f"only {notice.author}, who wrote notice {notice_id}, may edit it")
        had = notice.follow_up
        rows = session.exec(
            select(NoticeLanguage)
            .where(NoticeLanguage.notice_id == notice_id)
            .order_by(col(NoticeLanguage.position))
        ).all()
        # a notice that already leaves a language without a follow-up may go on doing so
        partial = follow_up_partial or (had is not None and any(r.follow_up is None for r in rows))
        if remove_follow_up:
            with about("remove_follow_up"):
                if follow_up is not None:
                    raise UsageError("give the follow-up's new text or remove it, not both")
                if had is None:
                    raise UsageError(f"notice {notice_id} has no follow-up to remove")
            for n, variant in enumerate(languages or ()):
                if variant.follow_up is not None:
                    raise UsageError(
                        "the follow-up is removed in every language; the languages give "
                        f"one in {variant.lang}",
                        field=("languages", n, "follow_up"),
                    )
            new_follow_up = None
        elif follow_up is not None:
            new_follow_up = _checked_follow_up(session, settings, notice, follow_up)
        else:
            new_follow_up = had
        follow_up_changed = new_follow_up != had
        notice.follow_up = new_follow_up
        removed = []
        if languages is None and (remove_follow_up or follow_up is not None):
            removed = _refollow(session, settings, notice, rows, partial)
        done = (
            _relanguage(session, settings, notice, languages, partial)
            if languages is not None
            else Relanguaged()
        )
        if text == notice.text and not done.changed and not done.dropped and not follow_up_changed:
            raise UsageError(f"the text of notice {notice_id} is unchanged")
        notice.text = text
        notice.revision += 1
        notice.sent_back = None
        when = notice.publish_at or now
        for delivery in session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == DeliveryKind.POST)
            .where(Delivery.occurrence == 1)
            .where(Delivery.live())
        ):
            target = occurrence_text(
                session, settings, notice, delivery.account, when, delivery.lang
            )
            if not target.fits:
                threads = target.platform in THREAD_PLATFORMS and not notice.allow_thread
                raise UsageError(
                    f"{target.too_long()} (shorten it"
                    + (", or let it go out as a numbered thread" if threads else "")
                    + ")",
                    field=_field_of(session, notice, delivery, target.platform, done.tags),
                )
            delivery.text = target.text
            delivery.parts = list(target.parts) or None
            session.add(delivery)
        session.add(notice)
        detail: dict[str, Any] = {"text": text}
        if follow_up_changed and new_follow_up is not None:
            detail["follow_up"] = new_follow_up
            if had is None:
                detail["follow_up_added"] = True
        elif follow_up_changed:
            # the languages whose follow-up the edit removed, the primary first
            detail["follow_up_removed"] = [notice.lang, *removed, *done.unfollowed]
        if done.changed:
            detail["languages"] = done.changed  # tag → its new text, of those that changed
        if done.dropped:
            detail["dropped"] = done.dropped
            detail["cancelled"] = done.cancelled  # the dropped languages' posts (ids)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="edited",
            object_type="notice",
            object_id=notice_id,
            revision=notice.revision,
            **detail,
        )
        return notice


def _checked_follow_up(session: Session, settings: Settings, notice: Notice, follow_up: str) -> str:
    """``follow_up`` as the primary language's follow-up of ``notice`` (stripped), checked
    as a draft's is: not empty, shown by every platform, fitting each target account, and
    the notice has an expiry to post it at.

    :raises UsageError: it does not; ``field`` is ``("follow_up",)``.
    """
    with about("follow_up"):
        given = follow_up.strip()
        if not given:
            raise UsageError("the follow-up's text is empty")
        check_text("the follow-up", given)
        check_follow_up_expiry(notice.expires_at, remedy=None)
        for target in _targets(session, notice):
            platform = platform_of(session, settings, target)
            measured = plan(settings, target, platform, given, None, False)
            if not measured.fits:
                raise UsageError(f"the follow-up: {measured.too_long()}")
    return given


def _targets(session: Session, notice: Notice) -> list[str]:
    """The accounts ``notice`` posts to (those of its live posts), sorted."""
    accounts = session.exec(
        select(Delivery.account)
        .where(Delivery.notice_id == notice.id)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(Delivery.live())
    ).all()
    return sorted(set(accounts))


def _refollow(
    session: Session,
    settings: Settings,
    notice: Notice,
    rows: Sequence[NoticeLanguage],
    partial: bool,
) -> list[str]:
    """After an edit gave ``notice`` a follow-up or removed it, its other languages
    (``rows``, kept as they are) checked against it by the drafting rules
    (:func:`check_follow_ups`); a removed follow-up is removed in each of them too.

    Returns the languages whose follow-up was removed.

    :raises UsageError: a language without its follow-up, unless ``partial``.
    """
    removed = []
    if notice.follow_up is None:
        for row in rows:
            if row.follow_up is not None:
                row.follow_up = None
                session.add(row)
                removed.append(row.lang)
    variants = [
        LanguageVariant(r.lang, r.text, dict(r.wording or {}), list(r.alts or []), r.follow_up)
        for r in rows
    ]
    primary = LanguageVariant(notice.lang, notice.text, {}, [], notice.follow_up)
    as_drafted = NoticeDraft(
        category=notice.category,
        text=notice.text,
        targets=_targets(session, notice),
        follow_up=notice.follow_up,
        follow_up_partial=partial,
    )
    check_follow_ups(as_drafted, settings, [primary, *variants], "follow-up-in-languages")
    return removed


def _field_of(
    session: Session, notice: Notice, delivery: Delivery, platform: str, tags: Sequence[str]
) -> FieldPath | None:
    """The edit's input that gives ``delivery`` its text: the primary's text, or the
    ``n``th given language's text or wording for its account (or platform); None when the
    edit did not give it (``tags``: the given languages in order)."""
    account, lang = delivery.account, delivery.lang
    if not lang or lang == notice.lang:
        wording = notice.variants or {}
        return None if account in wording or platform in wording else ("text",)
    if lang not in tags:
        return None
    n = tags.index(lang)
    row = session.exec(
        select(NoticeLanguage)
        .where(NoticeLanguage.notice_id == notice.id)
        .where(NoticeLanguage.lang == lang)
    ).one()
    for key in (account, platform):
        if (row.wording or {}).get(key):
            return ("languages", n, "wording", key)
    return ("languages", n, "text")


@dataclass(frozen=True)
class Relanguaged:
    """What an edit did to a draft's other languages: the new text of each one that changed
    or was added (by tag), the tags given in their order (standard form), those dropped,
    the ids of the dropped languages' posts (cancelled), and those kept whose follow-up
    the edit removed (unfollowed)."""

    changed: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    unfollowed: list[str] = field(default_factory=list)  # kept, their follow-up removed


def _relanguage(
    session: Session,
    settings: Settings,
    notice: Notice,
    languages: Sequence[LanguageVariant],
    partial: bool,
) -> Relanguaged:
    """Give ``notice``'s other languages the texts, wording, alt texts and follow-ups of
    ``languages``, checked as a draft's are (:func:`check_variants`, the follow-up rules
    against the notice's follow-up as edited; ``partial``: a language may go without one):
    ``languages`` are its other languages from now on, in order; one it does not have is
    added (a post on each of its target accounts posting it), one left out is dropped: its
    posts end ``cancelled`` ("language X dropped by edit"), marked ``dropped_in`` the
    notice's next revision, and are never deleted (their ids are never handed out again;
    a language added again gets new posts).

    :raises Refused: a language added or dropped while a post of the notice is published.
    :raises UsageError: as a draft's languages are refused, or a language dropped that a
        target account posts only; ``field`` names it (``("languages", N, ...)``).
    """
    notice_id = notice.id
    assert notice_id is not None
    rows = {
        r.lang: r
        for r in session.exec(
            select(NoticeLanguage).where(NoticeLanguage.notice_id == notice_id)
        ).all()
    }
    limit = settings.publisher.max_text_length
    images = len(notice.images or [])
    checked = check_variants(settings, notice.lang, languages, images, limit)
    tags = [v.lang for v in checked]
    added = [v for v in checked if v.lang not in rows]
    dropped = [lang for lang in rows if lang not in tags]
    deliveries = session.exec(
        select(Delivery).where(Delivery.notice_id == notice.id).where(Delivery.live())
    ).all()
    targets = sorted({d.account for d in deliveries})
    if added or dropped:
        out = [d for d in deliveries if d.state == DeliveryState.PUBLISHED]
        if out:
            raise Refused(
                f"notice {notice.id} has a published post ({out[0].account}); its languages "
                "can no longer be added or dropped"
            )
        langs = [notice.lang, *tags]
        for account in targets:
            if not account_languages(settings, account, langs):
                raise UsageError(
                    f"target account {account!r} posts only "
                    f"{', '.join(settings.accounts[account].languages)}; the notice would be "
                    f"in {', '.join(langs)}",
                    field=("languages",),
                )
    primary = LanguageVariant(notice.lang, notice.text, {}, [], notice.follow_up)
    as_drafted = NoticeDraft(
        category=notice.category,
        text=notice.text,
        targets=targets,
        follow_up=notice.follow_up,
        follow_up_partial=partial,
    )
    check_follow_ups(as_drafted, settings, [primary, *checked], "follow-up-in-languages")
    unfollowed = [
        v.lang for v in checked if v.follow_up is None and v.lang in rows and rows[v.lang].follow_up
    ]
    for lang in dropped:
        session.delete(rows.pop(lang))
    cancelled = []
    for d in deliveries:
        if d.lang in dropped:
            move(d, DeliveryState.CANCELLED)
            d.dropped_in = notice.revision + 1
            d.due_at = None
            d.last_error = f"language {d.lang} dropped by edit"
            session.add(d)
            assert d.id is not None
            cancelled.append(d.id)
    session.flush()
    changed = {}
    for position, variant in enumerate(checked, start=1):
        row = rows.get(variant.lang) or NoticeLanguage(
            notice_id=notice_id, lang=variant.lang, text=""
        )
        new = (variant.text, dict(variant.wording) or None, list(variant.alts) or None)
        if (row.text, row.wording, row.alts, row.follow_up) != (*new, variant.follow_up):
            row.text, row.wording, row.alts = new
            row.follow_up = variant.follow_up
            changed[variant.lang] = variant.text
        row.position = position
        session.add(row)
    primaries = [
        d
        for d in deliveries
        if (d.lang or notice.lang) == notice.lang and d.kind == DeliveryKind.POST
    ]
    parents = {d.account: d.id for d in primaries}
    langs = [notice.lang, *tags]
    for variant in added:
        for account in targets:
            if variant.lang in account_languages(settings, account, langs):
                session.add(
                    Delivery(
                        notice_id=notice_id,
                        account=account,
                        lang=variant.lang,
                        parent_id=parents.get(account) if replies_in(settings, account) else None,
                    )
                )
    session.flush()
    return Relanguaged(changed, tags, dropped, cancelled, unfollowed)


def _require_draft(notice: Notice, done: str) -> None:
    if notice.state != NoticeState.DRAFT:
        raise Refused(f"notice {notice.id} is {notice.state}; only a draft can be {done}")
