"""Notices: drafting, approval and cancellation, with the checks that refuse bad input.

Every change commits together with its audit event; nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.models import Account, Delivery, Notice
from bulletin.publisher.delivery import refresh_notice_state
from bulletin.waker import NOTIFY_CHANNEL

FINAL_NOTICE_STATES = {"published", "partially-published", "failed", "cancelled", "expired"}


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


def validate_draft(draft: NoticeDraft, settings: Settings, now: datetime) -> str:
    """Check a draft; returns its priority.

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
    limit = settings.publisher.max_text_length
    if len(text) > limit:
        raise UsageError(f"notice text is {len(text)} characters, at most {limit} are allowed")
    if not draft.targets:
        raise UsageError("a notice needs at least one --target account")
    for target in draft.targets:
        account = settings.accounts.get(target)
        if account is None:
            known = ", ".join(sorted(settings.accounts)) or "none configured"
            raise UsageError(f"unknown target account {target!r} (known: {known})")
        if not account.enabled:
            raise UsageError(f"target account {target!r} is disabled in the configuration")
    if len(set(draft.targets)) != len(draft.targets):
        raise UsageError("a target account is named twice")
    _check_times(draft.publish_at, draft.expires_at, draft.late_ok, settings, now)
    return categories[draft.category]


def _check_times(
    publish_at: datetime | None,
    expires_at: datetime | None,
    late_ok: bool,
    settings: Settings,
    now: datetime,
) -> None:
    grace = timedelta(minutes=settings.publisher.past_grace_minutes)
    if publish_at is not None and publish_at < now - grace and not late_ok:
        raise UsageError(
            f"publish time {publish_at.isoformat()} is more than {grace} in the past "
            "(use --late-ok to publish it now anyway)"
        )
    if expires_at is not None:
        if expires_at <= now:
            raise UsageError(f"expiry {expires_at.isoformat()} is already past")
        if publish_at is not None and expires_at <= publish_at:
            raise UsageError("the notice would expire before it is published")


def create_notice(
    engine: Engine, settings: Settings, clock: Clock, draft: NoticeDraft, author: str
) -> Notice:
    """Store a draft notice and one pending delivery per target account."""
    now = clock.now()
    priority = validate_draft(draft, settings, now)
    with session_scope(engine) as session:
        _ensure_accounts(session, settings, draft.targets)
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
        )
        session.add(notice)
        session.flush()
        assert notice.id is not None
        for target in draft.targets:
            session.add(Delivery(notice_id=notice.id, account=target))
        audit.record_event(
            session,
            at=now,
            actor=author,
            action="drafted",
            object_type="notice",
            object_id=notice.id,
            category=draft.category,
            targets=list(draft.targets),
        )
    return notice


def approve_notice(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    notice_id: int,
    approver: str,
    late_ok: bool = False,
) -> Notice:
    """Approve a draft: its deliveries become due at its publish time (or now).

    :raises Refused: not a draft (approved twice, cancelled...), or self-approval with users.
    """
    now = clock.now()
    with session_scope(engine) as session:
        notice = _get_for_update(session, notice_id)
        if notice.state == "approved" or notice.approved_by:
            raise Refused(f"notice {notice_id} is already approved (by {notice.approved_by})")
        if notice.state != "draft":
            raise Refused(f"notice {notice_id} is {notice.state}; only a draft can be approved")
        if not settings.open_mode and approver == notice.author:
            raise Refused(f"{approver} wrote notice {notice_id} and may not approve it")
        _check_times(notice.publish_at, notice.expires_at, late_ok, settings, now)
        due = max(notice.publish_at or now, now)
        notice.state = "approved"
        notice.approved_by = approver
        notice.approved_at = now
        deliveries = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()
        for delivery in deliveries:
            delivery.due_at = due
            session.add(delivery)
        session.add(notice)
        if session.get_bind().dialect.name == "postgresql":
            # delivered at commit to every daemon's listener, on any host
            session.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))
        audit.record_event(
            session,
            at=now,
            actor=approver,
            action="approved",
            object_type="notice",
            object_id=notice_id,
            due_at=due.isoformat(),
        )
    return notice


def cancel_notice(engine: Engine, clock: Clock, notice_id: int, actor: str, reason: str) -> Notice:
    """Cancel every delivery not yet attempted. A delivery in flight finishes on its own.

    :raises Refused: the notice is already final.
    """
    if not reason.strip():
        raise UsageError("a cancellation needs a --reason")
    now = clock.now()
    with session_scope(engine) as session:
        notice = _get_for_update(session, notice_id)
        if notice.state in FINAL_NOTICE_STATES:
            raise Refused(f"notice {notice_id} is already {notice.state}")
        deliveries = session.exec(
            select(Delivery).where(Delivery.notice_id == notice_id).with_for_update()
        ).all()
        for delivery in deliveries:
            if delivery.state == "pending":
                delivery.state = "cancelled"
                delivery.last_error = f"cancelled by {actor}: {reason}"
                session.add(delivery)
        notice.closed_reason = reason
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
        )
    return notice


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
