"""Notices: drafting, approval and cancellation, with the checks that refuse bad input.

Every change commits together with its audit event; nothing is half-written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.archiver.store.base import WormStore
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.identity import require_role
from bulletin.models import Account, Approval, Delivery, Notice, Template
from bulletin.publisher import policy, recurrence
from bulletin.publisher.delivery import refresh_notice_state
from bulletin.publisher.failures import NOTICE_STATES
from bulletin.publisher.media import PinnedImage, pin_images
from bulletin.publisher.media import notice_images as pinned_images
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
from bulletin.service.waker import NOTIFY_CHANNEL
from bulletin.timeparse import local_text

FINAL_NOTICE_STATES = set(NOTICE_STATES) - {"draft", "approved"}


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


@dataclass(frozen=True)
class Review:
    """What an approver sees: each target's text, length and cost, and the policy findings."""

    targets: list[TargetText]
    findings: list[policy.Finding]
    approvals: list[Approval]
    overridden: set[str]

    @property
    def blocking(self) -> list[policy.Finding]:
        return policy.blocking(self.findings, self.overridden)

    @property
    def cost(self) -> float:
        return sum(t.cost for t in self.targets)

    def as_json(self) -> dict[str, object]:
        return {
            "targets": [t.as_json() for t in self.targets],
            "cost_usd": {t.account: round(t.cost, 3) for t in self.targets}
            | {"total": round(self.cost, 3)},
            "policy": [f.as_json() for f in self.findings],
            "blocking": [f.rule for f in self.blocking],
            "overridden": sorted(self.overridden),
        }


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
        raise UsageError("a notice needs at least one --target account")
    for target in draft.targets:
        account = settings.accounts.get(target)
        if account is None:
            known = ", ".join(sorted(settings.accounts)) or "none configured"
            raise UsageError(f"unknown target account {target!r} (known: {known})")
        if not account.enabled:
            raise UsageError(f"target account {target!r} is disabled in the configuration")
        most = limits(account.platform).max_media
        if len(draft.images) > most:
            raise UsageError(
                f"target account {target!r} ({account.platform}) takes at most {most} "
                f"image{'s' if most != 1 else ''} in a post; the notice has {len(draft.images)}"
            )
    if len(set(draft.targets)) != len(draft.targets):
        raise UsageError("a target account is named twice")
    _check_times(draft.publish_at, draft.expires_at, draft.late_ok, settings, now)
    _check_schedule(draft, settings)
    return categories[draft.category]


def _check_texts(draft: NoticeDraft) -> None:
    """Every text the draft would publish: no character that no platform displays."""
    check_text("notice text", draft.text)
    check_text("the title", draft.title)
    for key, variant in draft.variants.items():
        check_text(f"the text for {key}", variant)
    if draft.link is not None:
        check_text("the link", draft.link)
        check_link(draft.link)
    for path, alt in draft.images:
        check_text(f"the alt text of {path}", alt)
    if draft.follow_up is not None:
        check_text("the follow-up", draft.follow_up)


def _check_schedule(draft: NoticeDraft, settings: Settings) -> None:
    if draft.recurrence is None:
        if draft.repeat_until is not None or draft.until_cancelled:
            raise UsageError("--until ends a recurrence: give --repeat or --every too")
    else:
        if (draft.repeat_until is None) == (not draft.until_cancelled):
            raise UsageError(
                "a recurring notice needs an end: --until TIME, or --until cancelled to run "
                "until someone cancels it"
            )
        start = draft.publish_at
        if draft.repeat_until is not None and start is not None and draft.repeat_until < start:
            raise UsageError("--until is before the first occurrence")
    if draft.follow_up is not None:
        if not draft.follow_up.strip():
            raise UsageError("--follow-up: the text is empty")
        if draft.expires_at is None:
            raise UsageError("--follow-up is posted at expiry: give --expires too")
        for target in draft.targets:
            platform = settings.accounts[target].platform
            measured = plan(settings, target, platform, draft.follow_up.strip(), None, False)
            if not measured.fits:
                raise UsageError(f"--follow-up: {measured.too_long()}")


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
                "a recurring notice needs its time of day: at=HH:MM in the rule, or --at"
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
    """Each target's text (its variant), measured as its platform counts it.

    :raises UsageError: a variant names no target, or a text is too long for its platform
        (with the count) and may not become a thread.
    """
    platforms = {t: settings.accounts[t].platform for t in draft.targets}
    variants = {k: v.strip() for k, v in draft.variants.items()}
    check_variant_keys(variants, platforms)
    zone = ZoneInfo(settings.agency.time_zone)

    def text_for(account: str, platform: str) -> str:
        text = variant_for(account, platform, draft.text.strip(), variants)
        if draft.recurrence and draft.date_line and draft.publish_at is not None:
            text = recurrence.with_date_line(text, draft.publish_at, zone)
        return text

    plans = [
        plan(
            settings,
            account,
            platform,
            text_for(account, platform),
            draft.link,
            draft.allow_thread,
        )
        for account, platform in platforms.items()
    ]
    for target in plans:
        if not target.fits:
            hint = f"shorten it or give --text-for {target.platform}=..."
            if target.platform in THREAD_PLATFORMS:
                hint += ", or --allow-thread to post it as a numbered thread"
            raise UsageError(f"{target.too_long()} ({hint})")
    return plans


def _check_times(
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
            f"publish time {local_text(publish_at, zone)} is more than {grace} minutes in the "
            "past (use --late-ok to publish it now anyway)"
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
) -> Notice:
    """Store a draft notice and one pending delivery per target account. Its images are
    copied into ``store`` first (see :func:`bulletin.publisher.media.pin_images`).

    :raises UsageError: a bad draft, or an image that is not an image file.
    """
    now = clock.now()
    draft = resolve_schedule(draft, settings, now)
    priority = validate_draft(draft, settings, now)
    plans = plan_targets(draft, settings)
    media = pin_draft_images(store, settings, draft, priority, now)
    with session_scope(engine) as session:
        notice = store_draft(session, settings, now, draft, author, priority, plans, media=media)
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
    notice = Notice(
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
        variants=json.dumps(dict(draft.variants), ensure_ascii=False) if draft.variants else None,
        images=json.dumps(images, ensure_ascii=False) if images else None,
        template_id=template.id if template else None,
        recurrence=draft.recurrence,
        repeat_until=draft.repeat_until,
        date_line=draft.date_line,
        follow_up=draft.follow_up.strip() if draft.follow_up else None,
    )
    session.add(notice)
    session.flush()
    assert notice.id is not None
    for target in plans:
        session.add(
            Delivery(
                notice_id=notice.id,
                account=target.account,
                text=target.text,
                parts=json.dumps(list(target.parts), ensure_ascii=False) if target.parts else None,
            )
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
        cost_usd={t.account: round(t.cost, 3) for t in plans},
        template=f"{template.name} v{template.version}" if template else None,
        recurrence=draft.recurrence,
        repeat_until=draft.repeat_until.isoformat() if draft.repeat_until else None,
        follow_up=bool(draft.follow_up),
        images=[{"sha256": m.sha256, "size": m.size, "name": m.name} for m in media] or None,
    )
    return notice


def review_notice(session: Session, settings: Settings, notice: Notice) -> Review:
    """Measure each delivery's text again and run the content-policy rules."""
    assert notice.id is not None
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.notice_id == notice.id)
        .where(Delivery.kind == "post")
        .where(Delivery.occurrence == 1)
    ).all()
    approvals = approvals_of(session, notice.id)
    targets = [
        plan(
            settings,
            d.account,
            platform_of(session, settings, d.account),
            d.text or notice.text,
            notice.link,
            notice.allow_thread,
        )
        for d in deliveries
    ]
    subject = policy.Subject(notice.category, targets, notice.link, notice_images(notice))
    overridden = {rule for a in approvals for rule in policy.parse_overrides(a.overrides)}
    return Review(targets, policy.check(settings, subject), approvals, overridden)


def notice_images(notice: Notice) -> list[dict[str, str]]:
    return [{"name": i.name, "alt": i.alt} for i in pinned_images(notice)]


def platform_of(session: Session, settings: Settings, account: str) -> str:
    configured = settings.accounts.get(account)
    if configured is not None:
        return configured.platform
    row = session.get(Account, account)
    if row is None:
        raise NotFound(f"unknown account {account!r}")
    return row.platform


def approve_notice(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    notice_id: int,
    approver: str,
    late_ok: bool = False,
    overrides: Sequence[str] = (),
    reason: str | None = None,
) -> Notice:
    """Record one approval; with all the approvals its category needs, the notice is approved
    and its deliveries become due at its publish time (or now).

    Before an approval counts, every target's text is measured again and the content-policy
    rules run; a blocking finding refuses the approval unless this approval (or an earlier
    one) overrides that rule, with a reason.

    :raises Refused: not a draft (already approved, cancelled...), a second approval by the
        same person, self-approval or a missing role with users, or a policy finding.
    :raises UsageError: an override without a reason, or of an unknown rule.
    """
    overrides = list(dict.fromkeys(overrides))
    check_overrides(settings, overrides, reason)
    require_role(settings, approver, "approver")
    now = clock.now()
    with session_scope(engine) as session:
        notice = _get_for_update(session, notice_id)
        if notice.state == "approved" or (notice.state == "draft" and notice.approved_by):
            raise Refused(
                f"notice {notice_id} is already approved: it has all "
                f"{notice.approvals_needed} approval(s) it needs ({notice.approved_by})"
            )
        if notice.state != "draft":
            raise Refused(f"notice {notice_id} is {notice.state}; only a draft can be approved")
        if not settings.open_mode and approver == notice.author:
            raise Refused(f"{approver} wrote notice {notice_id} and may not approve it")
        _check_times(
            notice.publish_at, notice.expires_at, late_ok or bool(notice.recurrence), settings, now
        )
        review = review_notice(session, settings, notice)
        names = [a.approver for a in review.approvals]
        if approver in names:
            raise Refused(
                f"{approver} already approved notice {notice_id}; approval "
                f"{len(names) + 1} of {notice.approvals_needed} must come from someone else"
            )
        blocked = policy.blocking(review.findings, review.overridden | set(overrides))
        if blocked:
            raise Refused(policy_refusal(notice_id, blocked))
        session.add(
            Approval(
                notice_id=notice_id,
                approver=approver,
                at=now,
                overrides=json.dumps(overrides) if overrides else None,
                reason=reason.strip() if overrides and reason else None,
            )
        )
        names.append(approver)
        complete = len(names) >= notice.approvals_needed
        audit.record_event(
            session,
            at=now,
            actor=approver,
            action="approved",
            object_type="notice",
            object_id=notice_id,
            approval=len(names),
            needed=notice.approvals_needed,
            cost_usd=round(review.cost, 3),
            due_at=max(notice.publish_at or now, now).isoformat() if complete else None,
            warnings=[f.rule for f in review.findings if f.severity != "block"] or None,
        )
        if overrides:
            audit.record_event(
                session,
                at=now,
                actor=approver,
                action="policy-overridden",
                object_type="notice",
                object_id=notice_id,
                reason=reason,
                rules=overrides,
                findings=[f.line() for f in review.findings if f.rule in overrides],
            )
        if complete:
            make_due(session, notice, ", ".join(names), now, settings)
        session.add(notice)
    return notice


def approvals_of(session: Session, notice_id: int) -> list[Approval]:
    return list(
        session.exec(
            select(Approval).where(Approval.notice_id == notice_id).order_by(Approval.id)  # type: ignore[arg-type]
        ).all()
    )


def check_overrides(settings: Settings, overrides: Sequence[str], reason: str | None) -> None:
    """:raises UsageError: an override without a reason or of an unknown rule.
    :raises Refused: a rule that cannot be overridden."""
    if not overrides:
        return
    if not (reason and reason.strip()):
        raise UsageError("an override needs --reason (it is kept in the audit trail)")
    known = policy.rule_ids(settings)
    for rule in overrides:
        if rule not in known:
            raise UsageError(
                f"unknown policy rule {rule!r} (rules: {', '.join(sorted(known)) or 'none'})"
            )
        if not known[rule].overridable:
            raise Refused(f"policy rule {rule!r} cannot be overridden: {known[rule].message}")


def policy_refusal(notice_id: int, blocked: Sequence[policy.Finding]) -> str:
    """One line naming each rule the notice breaks and how an approver may override it."""
    lines = "; ".join(f.line() for f in blocked)
    overridable = [f.rule for f in blocked if f.overridable]
    hint = (
        " (an approver may override: --override "
        + " --override ".join(dict.fromkeys(overridable))
        + ' --reason "..."'
        + ")"
        if overridable
        else ""
    )
    return f"notice {notice_id} breaks the content policy: {lines}{hint}"


def make_due(
    session: Session, notice: Notice, approved_by: str, now: datetime, settings: Settings
) -> None:
    """Approve ``notice``: its first deliveries become due at its publish time (or now).

    A recurring notice whose first occurrence passed before approval starts at the next one
    (its text's date line follows); the occurrence after that is made by the due-scan when
    its time comes (:func:`bulletin.publisher.schedule.make_occurrences`).
    """
    grace = timedelta(minutes=settings.publisher.past_grace_minutes)
    if notice.recurrence and notice.publish_at is not None and notice.publish_at < now - grace:
        first = next_occurrence(notice, settings, now - grace)
        if first is None:
            raise Refused(f"notice {notice.id}: its recurrence has no occurrence left")
        notice.publish_at = first
        for delivery in session.exec(select(Delivery).where(Delivery.notice_id == notice.id)):
            retext(session, settings, notice, delivery, first)
    due = max(notice.publish_at or now, now)
    notice.state = "approved"
    notice.approved_by = approved_by
    notice.approved_at = now
    for delivery in session.exec(select(Delivery).where(Delivery.notice_id == notice.id)).all():
        delivery.due_at = due
        session.add(delivery)
    if notice.recurrence and notice.publish_at is not None:
        notice.next_occurrence_at = next_occurrence(notice, settings, notice.publish_at)
    session.add(notice)
    if session.get_bind().dialect.name == "postgresql":
        # delivered at commit to every daemon's listener, on any host
        session.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))


def next_occurrence(notice: Notice, settings: Settings, after: datetime) -> datetime | None:
    """The recurring ``notice``'s first occurrence strictly after ``after`` (UTC), or None
    past its ``repeat_until`` or its expiry."""
    if not notice.recurrence or notice.publish_at is None:
        return None
    zone = ZoneInfo(settings.agency.time_zone)
    rule = recurrence.parse_rule(notice.recurrence)
    when = recurrence.occurrence_after(rule, notice.publish_at, zone, after)
    if when is None:
        return None
    if notice.repeat_until is not None and when > notice.repeat_until:
        return None
    if notice.expires_at is not None and when >= notice.expires_at:
        return None
    return when


def occurrence_text(
    session: Session, settings: Settings, notice: Notice, account: str, when: datetime
) -> TargetText:
    """The account's text for the occurrence at ``when``: its variant, with the date line."""
    platform = platform_of(session, settings, account)
    variants = json.loads(notice.variants) if notice.variants else {}
    text = variant_for(account, platform, notice.text, variants)
    if notice.recurrence and notice.date_line:
        text = recurrence.with_date_line(text, when, ZoneInfo(settings.agency.time_zone))
    return plan(settings, account, platform, text, notice.link, notice.allow_thread)


def retext(
    session: Session, settings: Settings, notice: Notice, delivery: Delivery, when: datetime
) -> None:
    """Give a post delivery the text of the occurrence at ``when``."""
    target = occurrence_text(session, settings, notice, delivery.account, when)
    delivery.text = target.text
    delivery.parts = json.dumps(list(target.parts), ensure_ascii=False) if target.parts else None
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
            + (" (it finishes on its own; retract it after)" if state == "in-flight" else "")
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
        raise UsageError("a cancellation needs a --reason")
    now = clock.now()
    with session_scope(engine) as session:
        notice = _get_for_update(session, notice_id)
        if notice.state in FINAL_NOTICE_STATES:
            raise Refused(f"notice {notice_id} is already {notice.state}")
        deliveries = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == "post")
            .with_for_update()
        ).all()
        if settings is not None and any(d.state == "published" for d in deliveries):
            try:
                require_role(settings, actor, "approver")
            except Refused as e:
                raise Refused(f"{e}: cancelling a published notice needs an approver") from None
        cancelled: list[str] = []
        too_late: dict[str, str] = {}
        latest = max((d.occurrence for d in deliveries), default=1)
        for delivery in deliveries:
            if delivery.state in ("pending", "late"):
                delivery.state = "cancelled"
                delivery.last_error = f"cancelled by {actor}: {reason}"
                session.add(delivery)
                cancelled.append(delivery.account)
            elif delivery.occurrence == latest and delivery.state not in ("cancelled",):
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


def get_notice(session: Session, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice


def _get_for_update(session: Session, notice_id: int) -> Notice:
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
