"""The table of imported CAP alerts: one row per alert received (imported or ignored), so an
alert is never imported twice and an Update or Cancel finds the notice its reference made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bulletin.models import _ts


class CapAlert(SQLModel, table=True):
    """One CAP 1.2 alert as received.

    ``outcome``: ``received`` (being handled) → ``drafted`` | ``approved`` (an approved
    template covered it) | ``ignored`` (``reason`` says why). ``notice_id`` is the notice made
    from it; ``previous_notice_id`` the notice an Update or Cancel acted on. ``signature``:
    ``unsigned`` | ``verified`` | ``not-verified`` (signed, no trust store configured).
    """

    __tablename__ = "cap_alerts"
    __table_args__ = (UniqueConstraint("sender", "identifier", "sent", name="uq_cap_alert"),)

    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(index=True)
    sender: str
    sent: str  # as written in the alert: references quote it verbatim
    sent_at: datetime = _ts(nullable=False)
    msg_type: str
    status: str
    scope: str
    references: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    event: str | None = None
    severity: str | None = None
    urgency: str | None = None
    expires_at: datetime | None = _ts()
    outcome: str = Field(default="received", index=True)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    notice_id: int | None = Field(default=None, foreign_key="notices.id", index=True)
    previous_notice_id: int | None = Field(default=None, foreign_key="notices.id")
    signature: str = "unsigned"
    source: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    entry_id: str | None = Field(default=None, index=True)  # the Atom entry it came from
    raw_sha256: str
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    imported_by: str
    imported_at: datetime = _ts(nullable=False)
