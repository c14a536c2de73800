"""Notices: drafting, with the checks that refuse bad input, cancellation, and finding them.

A draft is validated, planned per target and stored with its deliveries and its audit event
in one transaction; nothing is half-written. Review and approval: see
:mod:`bulletin.publisher.approval`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.archiver.store.base import WormStore
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError, about
from bulletin.identity import require_role
from bulletin.models import Account, Delivery, Notice, Template
from bulletin.publisher import announce, recurrence
from bulletin.publisher.delivery import refresh_notice_state
from bulletin.publisher.failures import NOTICE_STATES
from bulletin.publisher.languages import (
    LanguageVariant,
    account_languages,
    check_variants,
    normalise,
    primary_of,
    replies_in,
    store_variants,
)
from bulletin.publisher.media import PinnedImage, pin_images
from bulletin.publisher.texts import (
    THREAD_PLATFORMS,
    TargetText,
    check_link,
    check_text,
    check_variant_keys,
    limits,
    plan,
    variant_for,
)
from bulletin.states import DeliveryKind, DeliveryState, NoticeState
from bulletin.timeparse import local_text

# Runs in a new notice's transaction (see create_notice's ``within``).
StoredHook = Callable[[Session, Notice], None]
FINAL_NOTICE_STATES = set(NOTICE_STATES) - {NoticeState.DRAFT, NoticeState.APPROVED}


@dataclass(frozen=True)
class NoticeDraft:
    """What a dispatcher asks for."""

    category: str
    text: str
    targets: Sequence[str]
    title: str = ""
    link: str | None = None
    publish_at: datetime | None = None  # None: as soon as approved
    expires_at: datetime | None = None
    late_ok: bool = False
    variants: Mapping[str, str] = field(default_factory=dict)  # account or platform → text
    allow_thread: bool = False
    images: Sequence[tuple[str, str]] = ()  # (path, alt text): pinned when drafted
    # a recurrence rule (see :mod:`bulletin.publisher.recurrence`), ended by ``repeat_until``
    # or, explicitly, ``until_cancelled``
    recurrence: str | None = None
    repeat_until: datetime | None = None
    until_cancelled: bool = False
    date_line: bool = True  # each occurrence ends with its local date
    follow_up: str | None = None  # posted at expiry as a reply to each published post
    # each other language's follow-up is its variant's ``follow_up``, or given here by tag
    # (for a variant that comes from a template); one missing is refused unless
    # ``follow_up_partial``: that language's posts then get no follow-up
    follow_ups: Mapping[str, str] = field(default_factory=dict)
    follow_up_partial: bool = False
    # the primary's language (None: the agency's first) and the other language variants
    # (see :mod:`bulletin.publisher.languages`)
    lang: str | None = None
    languages: Sequence[LanguageVariant] = ()


def draft_languages(draft: NoticeDraft, settings: Settings) -> list[LanguageVariant]:
    """Every language variant of ``draft``, checked, the primary first.

    :raises UsageError: see :func:`bulletin.publisher.languages.check_variants`.
    """
    with about("lang"):
        primary = primary_of(settings, draft.lang)
    given: dict[str, str] = {}
    for lang, text in draft.follow_ups.items():
        with about("follow_ups", lang):
            given[normalise(settings, lang)] = text
    named = set()
    for n, v in enumerate(draft.languages):
        with about("languages", n, "lang"):
            named.add(normalise(settings, v.lang))
    for lang in given:
        if lang not in named:
            raise UsageError(
                f"a follow-up in {lang}: the notice has no {lang} text", field=("follow_ups", lang)
            )
    others = check_variants(
        settings,
        primary,
        [
            replace(v, follow_up=given.get(normalise(settings, v.lang), v.follow_up))
            for v in draft.languages
        ],
        len(draft.images),
        settings.publisher.max_text_length,
    )
    alts = [alt for _path, alt in draft.images]
    follow_up = draft.follow_up.strip() if draft.follow_up else None
    primary_variant = LanguageVariant(
        primary, draft.text.strip(), dict(draft.variants), alts, follow_up
    )
    return [primary_variant, *others]


def validate_draft(draft: NoticeDraft, settings: Settings, now: datetime) -> str:
    """Check a draft; returns its priority. Lengths per target: see :func:`plan_targets`.

    :raises UsageError: what is wrong, in one line.
    """
    categories = settings.publisher.categories
    if draft.category not in categories:
        raise UsageError(
            f"unknown category {draft.category!r} (known: {', '.join(sorted(categories))})"
        )
    text = draft.text.strip()
    if not text:
        raise UsageError("notice text is empty")
    _check_texts(draft)
    limit = settings.publisher.max_text_length
    for variant in [text, *draft.variants.values()]:
        if len(variant) > limit:
            raise UsageError(
                f"notice text is {len(variant)} characters, at most {limit} are allowed"
            )
    for path, _alt in draft.images:
        if not Path(path).is_file():
            raise UsageError(f"image {path} is not a readable file")
    if not draft.targets:
        raise UsageError("a notice needs at least one target account", remedy="target")
    for target in draft.targets:
        account = settings.accounts.get(target)
        if account is None:
            known = ", ".join(sorted(settings.accounts)) or "none configured"
            raise UsageError(f"unknown target account {target!r} (known: {known})")
        if not account.enabled:
            raise UsageError(f"target account {target!r} is disabled in the configuration")
        most = limits(account.platform).max_media
        if limits(account.platform).requires_media and not draft.images:
            raise UsageError(
                f"target account {target!r} ({account.platform}) needs an image with its alt "
                "text in every post; the notice has none"
            )
        if len(draft.images) > most:
            raise UsageError(
                f"target account {target!r} ({account.platform}) takes at most {most} "
                f"image{'s' if most != 1 else ''} in a post; the notice has {len(draft.images)}"
            )
    if len(set(draft.targets)) != len(draft.targets):
        raise UsageError("a target account is named twice")
    check_times(draft.publish_at, draft.expires_at, draft.late_ok, settings, now)
    _check_schedule(draft, settings)
    languages = draft_languages(draft, settings)
    langs = [v.lang for v in languages]
    check_follow_ups(draft, settings, languages)
    for n, target in enumerate(draft.targets):
        if not account_languages(settings, target, langs):
            posts = ", ".join(settings.accounts[target].languages)
            raise UsageError(
                f"target account {target!r} posts only {posts}; the notice is in "
                f"{', '.join(langs)}",
                field=("targets", n),
            )
    return categories[draft.category]


def check_follow_ups(
    draft: NoticeDraft,
    settings: Settings,
    languages: Sequence[LanguageVariant],
    missing_remedy: str = "follow-up-in",
) -> None:
    """Each language's follow-up: one per language when the notice has one (unless
    ``follow_up_partial``), none without the primary's, each fitting every target posting
    that language. A language missing its follow-up is refused with ``missing_remedy`` (how
    the caller's input gives one)."""
    others = [v for v in languages[1:] if v.follow_up]
    if draft.follow_up is None:
        if others:
            raise UsageError(
                f"the {others[0].lang} follow-up needs a follow-up in the primary language "
                f"({languages[0].lang}) too",
                field=("follow_up",),
            )
        return
    missing = [(n, v.lang) for n, v in enumerate(languages[1:]) if not v.follow_up]
    if missing and not draft.follow_up_partial:
        raise UsageError(
            f"the follow-up has no {', '.join(lang for _, lang in missing)} text",
            remedy=missing_remedy,
            field=("languages", missing[0][0], "follow_up"),
        )
    langs = [v.lang for v in languages]
    for n, variant in enumerate(languages[1:]):
        if not variant.follow_up:
            continue
        for target in draft.targets:
            if variant.lang not in account_languages(settings, target, langs):
                continue
            platform = settings.accounts[target].platform
            measured = plan(settings, target, platform, variant.follow_up, None, False)
            if not measured.fits:
                raise UsageError(
                    f"the {variant.lang} follow-up: {measured.too_long()}",
                    field=("languages", n, "follow_up"),
                )


def _check_texts(draft: NoticeDraft) -> None:
    """Every text the draft would publish: no character that no platform displays."""
    check_text("notice text", draft.text)
    check_text("the title", draft.title)
    for key, variant in draft.variants.items():
        check_text(f"the text for {key}", variant)
    if draft.link is not None:
        check_text("the link", draft.link)
        check_link(draft.link)
    for n, (path, alt) in enumerate(draft.images):
        with about("images", n, "alt"):
            check_text(f"the alt text of {Path(path).name}", alt)
    if draft.follow_up is not None:
        check_text("the follow-up", draft.follow_up)


def _check_schedule(draft: NoticeDraft, settings: Settings) -> None:
    if draft.recurrence is None:
        if draft.repeat_until is not None or draft.until_cancelled:
            raise UsageError(
                "an end time ends a recurrence: give a recurrence rule too", remedy="repeat"
            )
    else:
        if (draft.repeat_until is None) == (not draft.until_cancelled):
            raise UsageError(
                "a recurring notice needs an end: a last time, or to run until someone cancels it",
                remedy="until",
            )
        start = draft.publish_at
        if draft.repeat_until is not None and start is not None and draft.repeat_until < start:
            raise UsageError("the recurrence ends before its first occurrence")
    if draft.follow_up is not None:
        if not draft.follow_up.strip():
            raise UsageError("the follow-up's text is empty")
        check_follow_up_expiry(draft.expires_at)
        for target in draft.targets:
            platform = settings.accounts[target].platform
            measured = plan(settings, target, platform, draft.follow_up.strip(), None, False)
            if not measured.fits:
                raise UsageError(f"the follow-up: {measured.too_long()}")


def check_follow_up_expiry(expires_at: datetime | None, remedy: str | None = "expires") -> None:
    """A follow-up is posted at expiry: refused for a notice without one (``remedy``: how
    the caller's input gives an expiry, None when it cannot).

    :raises UsageError: ``expires_at`` is None.
    """
    if expires_at is None:
        raise UsageError(
            "a follow-up is posted at expiry: the notice needs an expiry", remedy=remedy
        )


def resolve_schedule(draft: NoticeDraft, settings: Settings, now: datetime) -> NoticeDraft:
    """A recurring draft with its rule normalised (``at`` filled in from ``--at``, to the
    minute) and its publish time set to the first occurrence: the first at or after the publish
    time (or ``now``) read to the minute, so ``--every day --at now`` starts today.

    :raises UsageError: a bad rule, no time of day, or no occurrence before the end.
    """
    if draft.recurrence is None:
        return draft
    zone = ZoneInfo(settings.agency.time_zone)
    rule = recurrence.parse_rule(draft.recurrence)
    start = draft.publish_at or now
    if rule.at is None:
        if draft.publish_at is None:
            raise UsageError(
                "a recurring notice needs its time of day: at=HH:MM in the rule, or a publish time",
                remedy="at",
            )
        local = draft.publish_at.astimezone(zone)
        rule = rule.with_at(local.time().replace(second=0, microsecond=0))
    # occurrences fall on whole minutes: the one in the minute of ``start`` is the first,
    # at ``start`` itself (never earlier than asked)
    minute = start.replace(second=0, microsecond=0)
    found = recurrence.occurrence_after(rule, start, zone, minute, inclusive=True)
    first = None if found is None else max(found, start)
    if first is None or (draft.repeat_until is not None and first > draft.repeat_until):
        raise UsageError(f"recurrence {rule.text()}: no occurrence before its end")
    if draft.expires_at is not None and first >= draft.expires_at:
        raise UsageError(f"recurrence {rule.text()}: the first occurrence is after the expiry")
    return replace(draft, recurrence=rule.text(), publish_at=first)


def plan_targets(draft: NoticeDraft, settings: Settings) -> list[TargetText]:
    """Each target's text in each language it posts (its variant), measured as its platform
    counts it; the primary's targets first (``lang`` "": the primary).

    :raises UsageError: a variant names no target, or a text is too long for its platform
        (with the count) and may not become a thread.
    """
    platforms = {t: settings.accounts[t].platform for t in draft.targets}
    languages = draft_languages(draft, settings)
    for variant in languages:
        check_variant_keys({k: v.strip() for k, v in variant.wording.items()}, platforms)
    zone = ZoneInfo(settings.agency.time_zone)
    langs = [v.lang for v in languages]

    def text_for(account: str, platform: str, variant: LanguageVariant) -> str:
        wording = {k: v.strip() for k, v in variant.wording.items()}
        text = variant_for(account, platform, variant.text, wording)
        if draft.recurrence and draft.date_line and draft.publish_at is not None:
            text = recurrence.with_date_line(text, draft.publish_at, zone)
        return text

    plans = [
        replace(
            plan(
                settings,
                account,
                platform,
                text_for(account, platform, variant),
                draft.link,
                draft.allow_thread,
            ),
            lang="" if index == 0 else variant.lang,
        )
        for index, variant in enumerate(languages)
        for account, platform in platforms.items()
        if variant.lang in account_languages(settings, account, langs)
    ]
    for target in plans:
        if not target.fits:
            threads = target.platform in THREAD_PLATFORMS
            hint = f"shorten it, give {target.platform} its own text" + (
                ", or post it as a numbered thread" if threads else ""
            )
            raise UsageError(
                f"{target.too_long()} ({hint})",
                remedy="variant-or-thread" if threads else "variant",
            )
    return plans


def check_times(
    publish_at: datetime | None,
    expires_at: datetime | None,
    late_ok: bool,
    settings: Settings,
    now: datetime,
) -> None:
    # times are entered in the agency's zone, so they are shown back in it
    zone = settings.agency.time_zone
    grace = settings.publisher.past_grace_minutes
    if publish_at is not None and publish_at < now - timedelta(minutes=grace) and not late_ok:
        raise UsageError(
            f"publish time {local_text(publish_at, zone)} is more than {grace} minutes in the past",
            remedy="late-ok",
        )
    if expires_at is not None:
        if expires_at <= now:
            raise UsageError(f"expiry {local_text(expires_at, zone)} is already past")
        if publish_at is not None and expires_at <= publish_at:
            raise UsageError("the notice would expire before it is published")


def create_notice(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    draft: NoticeDraft,
    author: str,
    store: WormStore | None = None,
    within: StoredHook | None = None,
) -> Notice:
    """Store a draft notice and one pending delivery per target account. Its images are
    copied into ``store`` first (see :func:`bulletin.publisher.media.pin_images`).
    ``within(session, notice)`` runs last in the notice's own transaction: what it writes is
    committed with the notice or not at all.

    :raises UsageError: a bad draft, or an image that is not an image file.
    """
    now = clock.now()
    draft = resolve_schedule(draft, settings, now)
    priority = validate_draft(draft, settings, now)
    plans = plan_targets(draft, settings)
    media = pin_draft_images(store, settings, draft, priority, now)
    with session_scope(engine) as session:
        notice = store_draft(session, settings, now, draft, author, priority, plans, media=media)
        announce.drafted(session, notice, now)
        if within is not None:
            within(session, notice)
    return notice


def pin_draft_images(
    store: WormStore | None, settings: Settings, draft: NoticeDraft, priority: str, now: datetime
) -> list[PinnedImage]:
    """The draft's images, stored in the archive (the store is needed only when it has some)."""
    if not draft.images:
        return []
    if store is None:
        raise ValueError("a draft with images needs the archive store")
    return pin_images(store, settings, draft.images, priority, now)


def store_draft(
    session: Session,
    settings: Settings,
    now: datetime,
    draft: NoticeDraft,
    author: str,
    priority: str,
    plans: Sequence[TargetText],
    template: Template | None = None,
    media: Sequence[PinnedImage] = (),
) -> Notice:
    """Add a validated draft, its deliveries (each with its own text) and the audit event;
    ``media`` are the draft's images as pinned (:func:`pin_draft_images`)."""
    if len(media) != len(draft.images):
        raise ValueError("a draft's images must be pinned before it is stored")
    _ensure_accounts(session, settings, draft.targets)
    images = [m.as_json() for m in media]
    languages = draft_languages(draft, settings)
    notice = Notice(
        lang=languages[0].lang,
        category=draft.category,
        priority=priority,
        title=draft.title.strip(),
        text=draft.text.strip(),
        link=draft.link,
        author=author,
        created_at=now,
        publish_at=draft.publish_at,
        expires_at=draft.expires_at,
        approvals_needed=settings.publisher.approvals_needed(draft.category),
        allow_thread=draft.allow_thread,
        variants=dict(draft.variants) or None,
        images=images or None,
        template_id=template.id if template else None,
        recurrence=draft.recurrence,
        repeat_until=draft.repeat_until,
        date_line=draft.date_line,
        follow_up=draft.follow_up.strip() if draft.follow_up else None,
    )
    session.add(notice)
    session.flush()
    assert notice.id is not None
    store_variants(session, notice.id, languages[1:])
    add_posts(
        session,
        settings,
        notice,
        [
            Delivery(
                notice_id=notice.id,
                account=target.account,
                text=target.text,
                parts=list(target.parts) or None,
                lang=target.lang or notice.lang,
            )
            for target in plans
        ],
    )
    audit.record_event(
        session,
        at=now,
        actor=author,
        action="drafted",
        object_type="notice",
        object_id=notice.id,
        category=draft.category,
        targets=list(draft.targets),
        cost_usd={t.label: round(t.cost, 3) for t in plans},
        template=f"{template.name} v{template.version}" if template else None,
        recurrence=draft.recurrence,
        repeat_until=draft.repeat_until.isoformat() if draft.repeat_until else None,
        follow_up=bool(draft.follow_up),
        images=[{"sha256": m.sha256, "size": m.size, "name": m.name} for m in media] or None,
        languages=[v.lang for v in languages] if len(languages) > 1 else None,
    )
    return notice


def add_posts(
    session: Session, settings: Settings, notice: Notice, posts: Sequence[Delivery]
) -> None:
    """Add the post deliveries of one occurrence: the primary language's first; each other
    language's post on an account that replies in its languages (``language_posts``) gets
    the primary's post there as its parent, so it goes out as a reply to it."""
    primaries = [d for d in posts if d.lang == notice.lang]
    for delivery in primaries:
        session.add(delivery)
    session.flush()
    parents = {d.account: d.id for d in primaries}
    for delivery in posts:
        if delivery.lang == notice.lang:
            continue
        if replies_in(settings, delivery.account):
            delivery.parent_id = parents.get(delivery.account)
        session.add(delivery)


@dataclass(frozen=True)
class CancelResult:
    """What a cancellation stopped, and what it was too late for (account → its state)."""

    notice: Notice
    cancelled: list[str]
    too_late: dict[str, str]

    def lines(self) -> list[str]:
        head = f"notice {self.notice.id}: {self.notice.state}"
        if self.cancelled:
            head += f"; cancelled for {', '.join(sorted(set(self.cancelled)))}"
        late = [
            f"  too late for {account}: {state}"
            + (
                " (it finishes on its own; retract it after)"
                if state == DeliveryState.IN_FLIGHT
                else ""
            )
            for account, state in sorted(self.too_late.items())
        ]
        return [head, *late]


def cancel_notice(
    engine: Engine,
    clock: Clock,
    notice_id: int,
    actor: str,
    reason: str,
    *,
    settings: Settings | None = None,
) -> CancelResult:
    """Cancel every post not yet attempted (pending or late) and every occurrence still to
    come. A delivery already in flight finishes on its own: the result says it was too late
    for that account.

    The notice's row lock serialises this with the due-scan; on PostgreSQL the delivery
    claim's row lock (SKIP LOCKED) does the rest: either the worker claimed it first (too
    late) or the cancellation did (it is never published).

    With ``settings`` whose ``[users]`` are configured, cancelling a notice that has a
    published post (occurrences to come, targets still pending) needs the approver role.

    :raises Refused: the notice is already final, or the actor may not cancel it.
    """
    if not reason.strip():
        raise UsageError("a cancellation needs a reason", remedy="reason")
    now = clock.now()
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        if notice.state in FINAL_NOTICE_STATES:
            raise Refused(f"notice {notice_id} is already {notice.state}")
        deliveries = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == DeliveryKind.POST)
            .with_for_update()
        ).all()
        if settings is not None and any(d.state == DeliveryState.PUBLISHED for d in deliveries):
            try:
                require_role(settings, actor, "approver", session)
            except Refused as e:
                raise Refused(f"{e}: cancelling a published notice needs an approver") from None
        cancelled: list[str] = []
        too_late: dict[str, str] = {}
        latest = max((d.occurrence for d in deliveries), default=1)
        for delivery in deliveries:
            if delivery.state in (DeliveryState.PENDING, DeliveryState.LATE):
                delivery.state = DeliveryState.CANCELLED
                delivery.last_error = f"cancelled by {actor}: {reason}"
                session.add(delivery)
                cancelled.append(delivery.account)
            elif delivery.occurrence == latest and delivery.state not in (DeliveryState.CANCELLED,):
                too_late[delivery.account] = delivery.state
        notice.closed_reason = reason
        notice.next_occurrence_at = None
        session.add(notice)
        session.flush()
        refresh_notice_state(session, notice_id, now)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="cancelled",
            object_type="notice",
            object_id=notice_id,
            reason=reason,
            cancelled=sorted(set(cancelled)),
            too_late=too_late or None,
        )
    return CancelResult(notice, cancelled, too_late)


def platform_of(session: Session, settings: Settings, account: str) -> str:
    configured = settings.accounts.get(account)
    if configured is not None:
        return configured.platform
    row = session.get(Account, account)
    if row is None:
        raise NotFound(f"unknown account {account!r}")
    return row.platform


def get_notice(session: Session, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice


def get_for_update(session: Session, notice_id: int) -> Notice:
    notice = session.exec(select(Notice).where(Notice.id == notice_id).with_for_update()).first()
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice


def _ensure_accounts(session: Session, settings: Settings, names: Sequence[str]) -> None:
    for name in names:
        if session.get(Account, name) is None:
            sync_account(session, settings, name)


def sync_account(session: Session, settings: Settings, name: str) -> Account:
    """Mirror one configured account into the database."""
    configured = settings.accounts[name]
    account = session.get(Account, name) or Account(name=name, platform=configured.platform)
    account.platform = configured.platform
    account.base_url = configured.base_url
    account.enabled = configured.enabled
    account.training = settings.is_sandbox(name)
    session.add(account)
    return account
