"""The outbox of email: a :class:`Notification` row is written in the transaction of the
change it tells about, so a rollback sends nothing; the sender (:mod:`bulletin.notify.send`)
picks it up after the commit, resolving its recipients from the configuration then.

Kinds: ``approval`` (a notice waits for an approver), ``escalation`` (an emergency still
waits after ``escalate_after``; at most one per notice), ``admin`` (something for the
administrators; ``subject`` is what duplicates are recognised by) and ``test``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, Session, SQLModel

from bulletin.columns import JSONText
from bulletin.models import Notice, _ts

KINDS = ("approval", "escalation", "admin", "test")


class Notification(SQLModel, table=True):
    """One message to send: due at ``next_attempt_at`` (None once sent, skipped or failed).
    ``to`` is set only for a message to given addresses (``test``); the others are resolved
    when sent. ``outcome`` is ``sent``, ``failed`` or ``skipped: <why>``."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "next_attempt_at"),
        UniqueConstraint("kind", "once_key", name="uq_notifications_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    notice_id: int | None = Field(default=None, index=True)
    priority: str | None = None
    subject: str = Field(sa_column=Column(Text, nullable=False))
    facts: dict[str, Any] = Field(sa_column=Column(JSONText, nullable=False))
    to: list[str] | None = Field(default=None, sa_column=Column(JSONText, nullable=True))
    # set for a message that must exist at most once (an escalation: the notice's id)
    once_key: str | None = None
    created_at: datetime = _ts(nullable=False)
    next_attempt_at: datetime | None = _ts()
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    finished_at: datetime | None = _ts()
    outcome: str | None = None


def approval_needed(session: Session, notice: Notice, approvals: int, now: datetime) -> None:
    """Ask the approvers on call to look at ``notice`` (``approvals`` given so far)."""
    session.add(
        Notification(
            kind="approval",
            notice_id=notice.id,
            priority=notice.priority,
            subject=f"Approval needed: {notice.priority} notice #{notice.id} ({notice.category})",
            facts={"approvals": approvals, "approvals_needed": notice.approvals_needed},
            created_at=now,
            next_attempt_at=now,
        )
    )


def escalation(session: Session, notice: Notice, waited: str, now: datetime) -> Notification:
    """Tell the next list that emergency ``notice`` has waited ``waited`` for approval."""
    row = Notification(
        kind="escalation",
        notice_id=notice.id,
        priority=notice.priority,
        subject=f"ESCALATED: emergency notice #{notice.id} not approved after {waited}",
        facts={"waited": waited},
        once_key=str(notice.id),
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    return row


def admin(
    session: Session, subject: str, lines: list[str], now: datetime, notice_id: int | None = None
) -> None:
    """Tell the administrators ``subject`` with ``lines`` of detail (no secrets)."""
    session.add(
        Notification(
            kind="admin",
            notice_id=notice_id,
            subject=subject,
            facts={"lines": lines},
            created_at=now,
            next_attempt_at=now,
        )
    )


def trial_message(session: Session, address: str, now: datetime) -> Notification:
    """A test message to ``address``."""
    row = Notification(
        kind="test",
        subject="Test message",
        facts={"lines": ["This is a test message from Bulletin. Email notifications work."]},
        to=[address],
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    return row
