"""Review and approval: what an approver sees, and the state change that makes a notice due.

An approval counts only after every target's text is measured again and the content-policy
rules run; the last approval a category needs makes the notice's deliveries due (and asks
that the daemon be woken once the transaction commits). Every change commits together with
its audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import Refused, UsageError
from bulletin.identity import require_role
from bulletin.models import Approval, Delivery, Notice
from bulletin.publisher import announce, policy
from bulletin.publisher.languages import account_languages, languages_of, variants_of
from bulletin.publisher.media import notice_images as pinned_images
from bulletin.publisher.notices import (
    NoticeDraft,
    check_times,
    draft_languages,
    get_for_update,
    platform_of,
)
from bulletin.publisher.schedule import next_occurrence, retext
from bulletin.publisher.texts import TargetText, plan, variant_for
from bulletin.states import DeliveryKind, NoticeState


@dataclass(frozen=True)
class Review:
    """What an approver sees: each target's text, length and cost, and the policy findings."""

    targets: list[TargetText]
    findings: list[policy.Finding]
    approvals: list[Approval]
    overridden: set[str]
    #: what the follow-ups at expiry will cost, a reply to each post in its language
    follow_up_cost: float = 0.0

    @property
    def blocking(self) -> list[policy.Finding]:
        return policy.blocking(self.findings, self.overridden)

    @property
    def cost(self) -> float:
        return sum(t.cost for t in self.targets) + self.follow_up_cost

    def as_json(self) -> dict[str, object]:
        return {
            "targets": [t.as_json() for t in self.targets],
            "cost_usd": {t.label: round(t.cost, 3) for t in self.targets}
            | ({"follow-ups": round(self.follow_up_cost, 3)} if self.follow_up_cost else {})
            | {"total": round(self.cost, 3)},
            "policy": [f.as_json() for f in self.findings],
            "blocking": [f.rule for f in self.blocking],
            "overridden": sorted(self.overridden),
        }


def review_notice(session: Session, settings: Settings, notice: Notice) -> Review:
    """Measure each delivery's text again and run the content-policy rules."""
    assert notice.id is not None
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.notice_id == notice.id)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(Delivery.occurrence == 1)
        .where(Delivery.live())
    ).all()
    approvals = approvals_of(session, notice.id, notice.revision)
    targets = [
        replace(
            plan(
                settings,
                d.account,
                platform_of(session, settings, d.account),
                d.text or notice.text,
                notice.link,
                notice.allow_thread,
            ),
            lang="" if d.lang in ("", notice.lang) else d.lang,
        )
        for d in deliveries
    ]
    images = notice_images(notice) + variant_images(session, notice)
    subject = policy.Subject(notice.category, targets, notice.link, images, notice.lang)
    overridden = {rule for a in approvals for rule in a.overrides or []}
    follow_ups = {v.lang: v.follow_up for v in variants_of(session, notice) if v.follow_up}
    follow_up_cost = sum(
        follow_up_cost_of(settings, d.account, platform_of(session, settings, d.account), text)
        for d in deliveries
        if (text := follow_ups.get(d.lang or notice.lang))
    )
    return Review(targets, policy.check(settings, subject), approvals, overridden, follow_up_cost)


def follow_up_cost_of(settings: Settings, account: str, platform: str, text: str) -> float:
    """The estimated price of one follow-up reply of ``text`` on ``account``."""
    return plan(settings, account, platform, text, None, True).cost


def review_draft(settings: Settings, draft: NoticeDraft) -> Review:
    """What an approver would see of ``draft`` (validated, see
    :func:`bulletin.publisher.notices.validate_draft`) before it is stored: each target's
    text as its platform counts it, its cost and the policy findings. Writes nothing; a text
    too long for a platform is a finding here, not an error."""
    languages = draft_languages(draft, settings)
    langs = [v.lang for v in languages]
    targets = []
    follow_up_cost = 0.0
    for index, variant in enumerate(languages):
        wording = {k: v.strip() for k, v in variant.wording.items()}
        for account in draft.targets:
            if variant.lang not in account_languages(settings, account, langs):
                continue
            platform = settings.accounts[account].platform
            own = variant_for(account, platform, variant.text, wording)
            target = plan(settings, account, platform, own, draft.link, draft.allow_thread)
            targets.append(replace(target, lang="" if index == 0 else variant.lang))
            if variant.follow_up:
                follow_up_cost += follow_up_cost_of(settings, account, platform, variant.follow_up)
    images = [{"name": path, "alt": alt} for path, alt in draft.images] + [
        {"name": f"{path} ({v.lang})", "alt": alt}
        for v in languages[1:]
        for (path, _), alt in zip(draft.images, v.alts, strict=False)
    ]
    subject = policy.Subject(draft.category, targets, draft.link, images, langs[0])
    return Review(targets, policy.check(settings, subject), [], set(), follow_up_cost)


def notice_images(notice: Notice) -> list[dict[str, str]]:
    return [{"name": i.name, "alt": i.alt} for i in pinned_images(notice)]


def variant_images(session: Session, notice: Notice) -> list[dict[str, str]]:
    """The notice's images as each other language describes them (for the alt-text rule)."""
    names = [i.name for i in pinned_images(notice)]
    return [
        {"name": f"{name} ({v.lang})", "alt": alt}
        for v in variants_of(session, notice)[1:]
        for name, alt in zip(names, v.alts, strict=False)
    ]


def approve_notice(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    notice_id: int,
    approver: str,
    late_ok: bool = False,
    overrides: Sequence[str] = (),
    reason: str | None = None,
    publish_partial: bool = False,
) -> Notice:
    """Record one approval; with all the approvals its category needs, the notice is approved
    and its deliveries become due at its publish time (or now).

    The approval covers the whole set: it names every language variant (and the revision).
    The variants are published together (see :mod:`bulletin.publisher.languages`) unless an
    approver chooses ``publish_partial``: then a variant that fails does not stop the others.

    Before an approval counts, every target's text is measured again and the content-policy
    rules run; a blocking finding refuses the approval unless this approval (or an earlier
    one) overrides that rule, with a reason.

    :raises Refused: not a draft (already approved, cancelled...), a second approval by the
        same person, self-approval or a missing role with users, or a policy finding.
    :raises UsageError: an override without a reason, or of an unknown rule.
    """
    overrides = list(dict.fromkeys(overrides))
    check_overrides(settings, overrides, reason)
    require_role(settings, approver, "approver", engine)
    now = clock.now()
    with session_scope(engine) as session:
        notice = get_for_update(session, notice_id)
        if notice.state == NoticeState.APPROVED or (
            notice.state == NoticeState.DRAFT and notice.approved_by
        ):
            raise Refused(
                f"notice {notice_id} is already approved: it has all "
                f"{notice.approvals_needed} approval(s) it needs ({notice.approved_by})"
            )
        if notice.state != NoticeState.DRAFT:
            raise Refused(f"notice {notice_id} is {notice.state}; only a draft can be approved")
        if notice.sent_back:
            raise Refused(
                f"notice {notice_id} was sent back to {notice.author} "
                f"(“{notice.sent_back}”); it can be approved once edited"
            )
        if approver == notice.author:
            raise Refused(f"{approver} wrote notice {notice_id} and may not approve it")
        check_times(
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
            overridable = any(f.overridable for f in blocked)
            raise Refused(
                policy_refusal(notice_id, blocked), remedy="override" if overridable else None
            )
        languages = languages_of(session, notice)
        session.add(
            Approval(
                notice_id=notice_id,
                approver=approver,
                at=now,
                overrides=list(overrides) or None,
                reason=reason.strip() if overrides and reason else None,
                revision=notice.revision,
                languages=languages,
            )
        )
        if publish_partial:
            notice.publish_partial = True
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
            revision=notice.revision,
            languages=languages,
            publish_partial=notice.publish_partial if len(languages) > 1 else None,
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
        else:
            announce.approval_needed(session, notice, len(names), now)
        session.add(notice)
    return notice


def approvals_of(session: Session, notice_id: int, revision: int | None = None) -> list[Approval]:
    """The approvals of ``notice_id``, of its ``revision`` only when given (an edit of a
    draft starts its approvals over)."""
    query = select(Approval).where(Approval.notice_id == notice_id)
    if revision is not None:
        query = query.where(Approval.revision == revision)
    return list(session.exec(query.order_by(Approval.id)).all())  # type: ignore[arg-type]


def check_overrides(settings: Settings, overrides: Sequence[str], reason: str | None) -> None:
    """:raises UsageError: an override without a reason or of an unknown rule.
    :raises Refused: a rule that cannot be overridden."""
    if not overrides:
        return
    if not (reason and reason.strip()):
        raise UsageError(
            "an override needs a reason (it is kept in the audit trail)", remedy="reason"
        )
    known = policy.rule_ids(settings)
    for rule in overrides:
        if rule not in known:
            raise UsageError(
                f"unknown policy rule {rule!r} (rules: {', '.join(sorted(known)) or 'none'})"
            )
        if not known[rule].overridable:
            raise Refused(f"policy rule {rule!r} cannot be overridden: {known[rule].message}")


def policy_refusal(notice_id: int, blocked: Sequence[policy.Finding]) -> str:
    """One line naming each rule the notice breaks and which an approver may override."""
    lines = "; ".join(f.line() for f in blocked)
    overridable = [f.rule for f in blocked if f.overridable]
    hint = (
        f" (an approver may override {', '.join(dict.fromkeys(overridable))}, with a reason)"
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
        for delivery in session.exec(
            select(Delivery).where(Delivery.notice_id == notice.id).where(Delivery.live())
        ):
            retext(session, settings, notice, delivery, first)
    due = max(notice.publish_at or now, now)
    notice.state = NoticeState.APPROVED
    notice.approved_by = approved_by
    notice.approved_at = now
    for delivery in session.exec(
        select(Delivery).where(Delivery.notice_id == notice.id).where(Delivery.live())
    ).all():
        delivery.due_at = due
        session.add(delivery)
    if notice.recurrence and notice.publish_at is not None:
        notice.next_occurrence_at = next_occurrence(notice, settings, notice.publish_at)
    session.add(notice)
    wake_after_commit(session)
