"""Reading notices: the list (what is due next, in flight, late, failed and why), one notice
in full, and the notices waiting for a decision. Reads need no role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from bulletin.app.context import App
from bulletin.app.follow_ups import FollowUp, follow_ups_of
from bulletin.models import Delivery, DeliveryAttempt, Notice, Template
from bulletin.publisher.approval import Review, review_notice
from bulletin.publisher.failures import delivery_label, state_condition
from bulletin.publisher.languages import LanguageVariant, variants_of
from bulletin.publisher.media import PinnedImage, notice_images
from bulletin.publisher.notices import get_notice
from bulletin.publisher.schedule import LateNotice, late_notices
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

PROBLEM_STATES = (DeliveryState.FAILED, DeliveryState.UNCERTAIN, DeliveryState.LATE)


@dataclass(frozen=True)
class NoticeRow:
    """One notice of the list: its current deliveries' states (by label), the reasons of
    those that need a person, and when something of it is due next."""

    notice: Notice
    deliveries: dict[str, str]
    problems: dict[str, str]
    next_due: datetime | None


@dataclass(frozen=True)
class ApprovalLine:
    """One approval of a notice: who, when, through which template, overriding what."""

    approver: str
    at: datetime
    via_template: str | None
    overrides: list[str]
    reason: str | None


@dataclass(frozen=True)
class NoticeView:
    """One notice in full: every delivery with its attempts, approvals, images, review and
    follow-ups (one per language; empty without)."""

    notice: Notice
    deliveries: list[Delivery]
    attempts: dict[int, list[DeliveryAttempt]]
    approvals: list[ApprovalLine]
    images: list[PinnedImage]
    review: Review
    variants: list[Delivery] = field(default_factory=list)  # first posts with their own text
    languages: list[LanguageVariant] = field(default_factory=list)  # the primary first
    follow_ups: list[FollowUp] = field(default_factory=list)  # the primary's first


def list_notices(
    app: App,
    state: str | None = None,
    limit: int = 50,
    *,
    category: str | None = None,
    since: datetime | None = None,
    before: int | None = None,
    account: str | None = None,
    text: str | None = None,
    due_between: tuple[datetime, datetime] | None = None,
    occurring: list[int] | None = None,
) -> list[NoticeRow]:
    """Notices newest first, ``state`` only (``failed``: every notice with a failed delivery),
    of ``category`` only, drafted at or after ``since``, with an id below ``before`` (where
    the previous page ended), with a delivery to ``account``, whose text or title holds
    ``text`` (any case), scheduled in ``due_between`` (start included, end not: a post still
    due then, a draft's publish time, or one of the recurring notices ``occurring`` then, as
    the caller computed them).

    :raises UsageError: an unknown state.
    """
    query = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if state:
        query = query.where(state_condition(state))
    if category:
        query = query.where(Notice.category == category)
    if since is not None:
        query = query.where(col(Notice.created_at) >= since)
    if before is not None:
        query = query.where(col(Notice.id) < before)
    if account:
        targeted = (
            select(Delivery.notice_id).where(Delivery.account == account).where(Delivery.live())
        )
        query = query.where(col(Notice.id).in_(targeted))
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            col(Notice.text).ilike(pattern, escape="\\")
            | col(Notice.title).ilike(pattern, escape="\\")
        )
    if due_between is not None:
        begin, end = due_between
        due = (
            select(Delivery.notice_id)
            .where(Delivery.kind == DeliveryKind.POST)
            .where(col(Delivery.state) == DeliveryState.PENDING)
            .where(col(Delivery.due_at) >= begin, col(Delivery.due_at) < end)
        )
        query = query.where(
            col(Notice.id).in_(due)
            | (
                (col(Notice.state) == NoticeState.DRAFT)
                & (col(Notice.publish_at) >= begin)
                & (col(Notice.publish_at) < end)
            )
            | col(Notice.id).in_(occurring or [])
        )
    with Session(app.checked_engine()) as session:
        notices = list(session.exec(query))
        by_notice: dict[int, list[Delivery]] = {}
        ids = [n.id for n in notices]
        for d in session.exec(
            select(Delivery)
            .where(col(Delivery.notice_id).in_(ids))
            .where(Delivery.live())
            .order_by(col(Delivery.id))
        ):
            by_notice.setdefault(d.notice_id, []).append(d)
    return [_row(n, by_notice.get(n.id or 0, [])) for n in notices]


def _row(n: Notice, deliveries: list[Delivery]) -> NoticeRow:
    latest = max((d.occurrence for d in deliveries if d.kind == DeliveryKind.POST), default=1)
    current = [d for d in deliveries if d.kind != DeliveryKind.POST or d.occurrence == latest]
    waiting = [
        d.due_at
        for d in deliveries
        if d.state in (DeliveryState.PENDING, DeliveryState.UNCERTAIN) and d.due_at
    ]
    return NoticeRow(
        n,
        {delivery_label(d, n.lang): d.state for d in current},
        {
            delivery_label(d, n.lang): d.last_error
            for d in current
            if d.state in PROBLEM_STATES and d.last_error
        },
        min([*waiting, *([n.next_occurrence_at] if n.next_occurrence_at else [])], default=None),
    )


def show_notice(app: App, notice_id: int) -> NoticeView:
    """One notice with everything about it: its deliveries, none of a language an edit
    dropped (they ended cancelled; the audit trail names them). :raises NotFound: no such
    notice."""
    with Session(app.checked_engine()) as session:
        n = get_notice(session, notice_id)
        deliveries = list(
            session.exec(
                select(Delivery)
                .where(Delivery.notice_id == notice_id)
                .where(Delivery.live())
                .order_by(col(Delivery.id))
            )
        )
        review = review_notice(session, app.settings, n)
        languages = variants_of(session, n)
        template = session.get(Template, n.template_id) if n.template_id else None
        attempts: dict[int, list[DeliveryAttempt]] = {}
        for a in session.exec(
            select(DeliveryAttempt)
            .where(col(DeliveryAttempt.delivery_id).in_([d.id for d in deliveries]))
            .order_by(col(DeliveryAttempt.id))
        ):
            attempts.setdefault(a.delivery_id, []).append(a)
    approvals = [
        ApprovalLine(
            a.approver,
            a.at,
            f"{template.name} v{template.version}"
            if template and a.via_template_id == template.id
            else None,
            a.overrides or [],
            a.reason,
        )
        for a in review.approvals
    ]
    variants = [
        d
        for d in deliveries
        if d.kind == DeliveryKind.POST
        and d.occurrence == 1
        and d.lang in ("", n.lang)
        and d.text
        and d.text != n.text
    ]
    return NoticeView(
        n,
        deliveries,
        attempts,
        approvals,
        notice_images(n),
        review,
        variants=variants,
        languages=languages,
        follow_ups=follow_ups_of(n, deliveries, languages),
    )


def waiting_for_decision(app: App) -> list[LateNotice]:
    """Routine notices whose time passed while no daemon ran, oldest first."""
    with Session(app.checked_engine()) as session:
        return late_notices(session)
