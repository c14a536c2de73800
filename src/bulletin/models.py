"""The database tables. The database is the working index; the WORM store is the record.

All times are stored as UTC and come back timezone-aware (see :class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC and returned aware, on every database."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Account(SQLModel, table=True):
    """A configured platform account, mirrored from configuration at start."""

    __tablename__ = "accounts"

    name: str = Field(primary_key=True)
    platform: str
    base_url: str = ""
    training: bool = False
    enabled: bool = True
    capture_cursor: str | None = None  # newest post id archived (the platform's since_id)
    last_capture_at: datetime | None = _ts()  # when the post listing last finished
    # A post listing interrupted mid-way resumes here; its newest id becomes the cursor
    # once the listing reaches the end.
    capture_page_cursor: str | None = None
    capture_pending_newest: str | None = None


class Notice(SQLModel, table=True):
    """A public notice: draft → approved → published | partially-published | failed,
    or cancelled / expired."""

    __tablename__ = "notices"

    id: int | None = Field(default=None, primary_key=True)
    category: str
    priority: str
    title: str = ""
    text: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = None
    state: str = Field(default="draft", index=True)
    author: str
    created_at: datetime = _ts(nullable=False)
    publish_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    approved_by: str | None = None
    approved_at: datetime | None = _ts()
    closed_reason: str | None = None


class Delivery(SQLModel, table=True):
    """One notice to one account. ``due_at`` is set on approval; the due-scan reads it.

    States: pending → in-flight (claimed with a lease) → published | failed | uncertain |
    cancelled.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notice_id", "account", name="uq_delivery_notice_account"),
        Index("ix_deliveries_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notices.id", index=True)
    account: str = Field(foreign_key="accounts.name")
    state: str = "pending"
    due_at: datetime | None = _ts()
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = _ts()
    attempt_started_at: datetime | None = _ts()
    remote_id: str | None = None
    remote_url: str | None = None
    published_at: datetime | None = _ts()
    last_error: str | None = None
    raw_response: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    archived_record_id: int | None = None


class Record(SQLModel, table=True):
    """One archived version of a post or comment; the object itself lives in the WORM store."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("account", "kind", "remote_id", "version", name="uq_record_version"),
        Index("ix_records_remote", "account", "remote_id"),
        Index("ix_records_thread", "account", "thread_id"),
        Index("ix_records_posted", "posted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str
    platform: str
    kind: str  # post | comment
    remote_id: str
    parent_id: str | None = None
    thread_id: str | None = None
    version: int = 1
    state: str = "visible"
    author: str | None = None
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    url: str | None = None
    posted_at: datetime | None = _ts()
    captured_at: datetime = _ts(nullable=False)
    series: str
    retain_until: datetime | None = _ts()
    legal_hold: bool = False
    training: bool = False
    content_sha256: str  # hash of the normalised content (defines a version)
    object_sha256: str  # the stored snapshot (canonical JSON)
    raw_sha256: str | None = None  # the platform's raw response
    size: int = 0
    notice_id: int | None = None
    ledger_seq: int | None = Field(default=None, index=True)
    previous_record_id: int | None = None  # the version this one follows
    change: str = "new"  # new | edited | hidden | unhidden | deleted | restored


class LedgerEntry(SQLModel, table=True):
    """One link of the hash chain: ``entry_hash`` = sha256 of the entry's canonical JSON,
    which includes ``prev_hash``."""

    __tablename__ = "ledger"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    prev_hash: str = Field(unique=True)
    entry_hash: str = Field(unique=True)
    kind: str  # record | checkpoint | …
    record_id: int | None = None
    object_sha256: str | None = None
    recorded_at: datetime = _ts(nullable=False)


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, when and why."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False, index=True)
    actor: str
    action: str = Field(index=True)
    object_type: str
    object_id: str
    reason: str | None = None
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class RecordMedia(SQLModel, table=True):
    """An image attached to an archived item, stored as its own object."""

    __tablename__ = "record_media"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(index=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str | None = None  # None: fetching failed (``error`` says why)
    mime_type: str | None = None
    size: int = 0
    error: str | None = None


class CaptureThread(SQLModel, table=True):
    """A post whose comments are swept, with its per-thread cursors and schedule."""

    __tablename__ = "capture_threads"

    account: str = Field(primary_key=True)
    thread_id: str = Field(primary_key=True)
    priority: str = "community"
    posted_at: datetime | None = _ts()
    first_seen_at: datetime = _ts(nullable=False)
    last_swept_at: datetime | None = _ts()  # any sweep that reached the end
    last_full_at: datetime | None = _ts()  # a full listing that reached the end
    since_id: str | None = None  # newest comment id archived (platforms with since_id)
    page_cursor: str | None = None  # resume point of an interrupted listing
    page_mode: str | None = None  # "new" | "full": the kind of the interrupted listing
    page_newest: str | None = None  # newest id of the interrupted listing
    last_error: str | None = None


class CaptureSweep(SQLModel, table=True):
    """One capture sweep of one account and how it ended."""

    __tablename__ = "capture_sweeps"
    __table_args__ = (Index("ix_capture_sweeps_account", "account", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str
    started_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    result: str = "running"  # running | ok | partial | auth-error | failed
    threads: int = 0
    pages: int = 0
    seen: int = 0
    archived: int = 0
    quarantined: int = 0
    reads_charged: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CaptureRead(SQLModel, table=True):
    """A platform resource read on one UTC day (X charges each post once per day)."""

    __tablename__ = "capture_reads"

    account: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # YYYY-MM-DD, UTC
    remote_id: str = Field(primary_key=True)


class CaptureSpend(SQLModel, table=True):
    """Estimated platform spend per account and UTC month, in US dollars."""

    __tablename__ = "capture_spend"

    account: str = Field(primary_key=True)
    month: str = Field(primary_key=True)  # YYYY-MM
    reads: int = 0
    usd: float = 0.0


class Quarantine(SQLModel, table=True):
    """A platform answer or item that could not be used, kept raw in the store."""

    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    at: datetime = _ts(nullable=False)
    operation: str  # "list posts", "list comments 123", ...
    thread_id: str | None = None
    error: str = Field(sa_column=Column(Text, nullable=False))
    raw_sha256: str | None = None
    size: int = 0
    sweep_id: int | None = None
