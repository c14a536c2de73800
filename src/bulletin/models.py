"""The database tables. The database is the working index; the WORM store is the record.

All times are stored as UTC and come back timezone-aware (see :class:`UTCDateTime`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Index, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel, col

from bulletin.columns import EnumText, JSONText
from bulletin.states import DeliveryKind, DeliveryState, NoticeState, RecordState


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
    or cancelled / expired; ``retracted`` once withdrawn after approval."""

    __tablename__ = "notices"
    # ids leave the database (feed entries, delivery keys, archived posts): SQLite must never
    # hand out one again, not even the highest after its row is gone, and a restore can
    # raise the floor (sqlite_sequence)
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    # a random token of this notice in its delivery keys, so that they are unique even where
    # a number was used before; None for notices made before it existed (keys without it)
    uid: str | None = Field(default_factory=lambda: secrets.token_hex(4))
    category: str
    priority: str
    title: str = ""
    text: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = None
    state: str = Field(default=NoticeState.DRAFT, index=True, sa_type=EnumText(NoticeState))
    author: str
    created_at: datetime = _ts(nullable=False)
    publish_at: datetime | None = _ts()
    expires_at: datetime | None = _ts(index=True)  # the due-scan looks for expired notices
    approved_by: str | None = None
    approved_at: datetime | None = _ts()
    closed_reason: str | None = None
    approvals_needed: int = 1
    allow_thread: bool = False
    # JSON: {account or platform: text} when some targets get their own wording
    variants: dict[str, str] | None = Field(default=None, sa_column=Column(JSONText, nullable=True))
    # JSON: [{"path": ..., "alt": ...}]
    images: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONText, nullable=True)
    )
    template_id: int | None = Field(default=None, foreign_key="templates.id")
    # Recurrence (see :mod:`bulletin.publisher.recurrence`): the rule as normalised text; the
    # series ends at ``repeat_until`` (None with a rule: until cancelled). ``occurrences``
    # counts the occurrences made so far; ``next_occurrence_at`` is when the next one is due
    # (None: no more). The due-scan makes each occurrence when its time comes.
    recurrence: str | None = None
    repeat_until: datetime | None = _ts()
    date_line: bool = True
    occurrences: int = 1
    next_occurrence_at: datetime | None = _ts(index=True)
    # Posted at expiry as a reply to each published post; ``followed_up_at`` once made.
    follow_up: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    followed_up_at: datetime | None = _ts()
    # Drafts: each edit makes a new revision (approvals name the one they approved);
    # ``sent_back`` is the comment of the last send-back, until the author's next edit.
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    sent_back: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Languages (see :mod:`bulletin.publisher.languages`): ``lang`` is the BCP 47 tag of the
    # primary variant, whose text, wording and alt texts are the columns above; the other
    # variants are :class:`NoticeLanguage` rows. ``publish_partial``: chosen at approval, a
    # variant that fails does not hold back the others.
    lang: str = Field(default="en", sa_column_kwargs={"server_default": "en"})
    publish_partial: bool = False


class NoticeLanguage(SQLModel, table=True):
    """One language variant of a notice other than its primary: its own text, its own
    wording per account or platform (``wording``, JSON) and its own alt text per image
    (``alts``, JSON list in the notice's image order; None: the primary's), and its own
    follow-up at expiry (``follow_up``; None: its posts get none).
    ``position`` orders the variants (the primary is 0)."""

    __tablename__ = "notice_languages"
    __table_args__ = (UniqueConstraint("notice_id", "lang", name="uq_notice_language"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notices.id", index=True)
    lang: str
    position: int = 1
    text: str = Field(sa_column=Column(Text, nullable=False))
    wording: dict[str, str] | None = Field(default=None, sa_column=Column(JSONText, nullable=True))
    alts: list[str] | None = Field(default=None, sa_column=Column(JSONText, nullable=True))
    follow_up: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Delivery(SQLModel, table=True):
    """One notice to one account. ``due_at`` is set on approval; the due-scan reads it.

    States: pending → in-flight (claimed with a lease) → published | failed | uncertain |
    cancelled; ``late`` when a routine post's time passed while no daemon ran (it waits for
    a person: ``bulletin notice late``).

    ``kind``: ``post`` (occurrence ``occurrence`` of the notice), or an act on the published
    post ``parent_id``: ``follow-up`` and ``correction`` and ``retraction`` (replies),
    ``deletion`` (the post is deleted). One delivery per (notice, account, occurrence, kind,
    revision, lang, dropped_in); ``revision`` numbers the corrections, ``lang`` is the
    language variant it carries (a post per language and account: exactly once per (variant,
    account)). ``dropped_in`` is the notice revision whose edit dropped that language (the
    post ended cancelled, never deleted: its id is never handed out again); 0 for every other.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint(
            "notice_id",
            "account",
            "occurrence",
            "kind",
            "revision",
            "lang",
            "dropped_in",
            name="uq_delivery_occurrence",
        ),
        Index("ix_deliveries_due", "state", "due_at"),
        # ids leave the database (the API, the audit trail): never handed out twice
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notices.id", index=True)
    account: str = Field(foreign_key="accounts.name")
    occurrence: int = 1
    kind: str = Field(default=DeliveryKind.POST, sa_type=EnumText(DeliveryKind))
    revision: int = 0
    parent_id: int | None = Field(default=None, foreign_key="deliveries.id")
    state: str = Field(default=DeliveryState.PENDING, sa_type=EnumText(DeliveryState))
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
    # the text for this account (the notice's text or its variant for the account/platform)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # JSON list: the numbered parts of a thread, when the text is split
    parts: list[str] | None = Field(default=None, sa_column=Column(JSONText, nullable=True))
    # remote ids of the parts published so far (JSON text)
    thread_ids: list[str] | None = Field(default=None, sa_column=Column(JSONText, nullable=True))
    # published but not archived yet: when the due-scan archives it, and why it last failed
    archive_due_at: datetime | None = _ts(index=True)
    archive_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lang: str = Field(default="", sa_column_kwargs={"server_default": ""})
    dropped_in: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    @classmethod
    def live(cls) -> ColumnElement[bool]:
        """A condition: the delivery belongs to the notice as it stands (its language was
        not dropped by an edit)."""
        return col(cls.dropped_in) == 0


class DeliveryAttempt(SQLModel, table=True):
    """One try at a delivery, written by the worker: claimed at ``started_at``, ended at
    ``finished_at`` with ``outcome`` (published, failed, pending, uncertain, cancelled, or
    abandoned when its claim expired)."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    owner: str
    started_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    outcome: str | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Template(SQLModel, table=True):
    """A notice template, approved in advance. A change is a new version, unapproved.

    ``bodies`` is JSON ``{"default": text, platform or account: text}``; ``variables`` is JSON
    ``{name: type}``; ``content_sha256`` hashes name, category, bodies and variables.
    """

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_template_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int = 1
    category: str
    bodies: dict[str, str] = Field(sa_column=Column(JSONText, nullable=False))
    variables: dict[str, str] = Field(sa_column=Column(JSONText(ensure_ascii=True), nullable=False))
    content_sha256: str
    created_by: str
    created_at: datetime = _ts(nullable=False)
    approved_by: str | None = None
    approved_at: datetime | None = _ts()


class Approval(SQLModel, table=True):
    """One person's approval of a notice, directly or through an approved template.

    ``overrides`` is JSON ``[rule id, ...]`` of content-policy rules this approval overrode,
    with ``reason``.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("notice_id", "approver", "revision", name="uq_approval_person"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notices.id", index=True)
    approver: str
    at: datetime = _ts(nullable=False)
    via_template_id: int | None = Field(default=None, foreign_key="templates.id")
    overrides: list[str] | None = Field(
        default=None, sa_column=Column(JSONText(ensure_ascii=True), nullable=True)
    )
    reason: str | None = None
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # of the notice
    # JSON [tag, ...]: the language variants this approval covered, the primary first
    languages: list[str] | None = Field(
        default=None, sa_column=Column(JSONText(ensure_ascii=True), nullable=True)
    )


class Record(SQLModel, table=True):
    """One archived version of a post or comment; the object itself lives in the WORM store."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("account", "kind", "remote_id", "version", name="uq_record_version"),
        Index("ix_records_remote", "account", "remote_id"),
        Index("ix_records_retain_until", "retain_until"),
        Index("ix_records_object", "object_sha256"),
        Index("ix_records_raw", "raw_sha256"),
        Index("ix_records_thread", "account", "thread_id"),
        Index("ix_records_posted", "posted_at"),
        # the few versions in a notable state, for searches by state (see RARE_STATES)
        *(
            Index(name, "account", "kind", "remote_id", sqlite_where=where, postgresql_where=where)
            for name, where in (
                ("ix_records_hidden", text("state = 'hidden'")),
                ("ix_records_deleted", text("state = 'deleted'")),
                ("ix_records_edited", text("change = 'edited'")),
            )
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str
    platform: str
    kind: str  # post | comment
    remote_id: str
    parent_id: str | None = None
    thread_id: str | None = None
    version: int = 1
    state: str = Field(default=RecordState.VISIBLE, sa_type=EnumText(RecordState))
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
    # disposition: the row stays, marked; its objects are gone from the store
    disposed_at: datetime | None = _ts()
    disposal_batch_id: int | None = None
    previous_record_id: int | None = None  # the version this one follows
    change: str = "new"  # new | edited | hidden | unhidden | deleted | restored
    lang: str | None = None  # a post of a notice in several languages: its language (BCP 47)


class LedgerEntry(SQLModel, table=True):
    """One link of the hash chain: ``entry_hash`` = sha256 of the entry's canonical JSON,
    which includes ``prev_hash``. The hashes are not indexed (migration 0035): an entry's
    place is its ``seq``, and ``verify`` checks every link."""

    __tablename__ = "ledger"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    prev_hash: str
    entry_hash: str
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
    via: str | None = None  # how the actor was authenticated (bulletin.app.actor)
    host: str | None = None  # where the actor acted from


class DaemonInstance(SQLModel, table=True):
    """A daemon that has run against this database; live while its heartbeat is fresh."""

    __tablename__ = "daemons"

    owner: str = Field(primary_key=True)
    host: str
    pid: int
    version: str
    started_at: datetime = _ts(nullable=False)
    heartbeat_at: datetime = _ts(nullable=False)
    stopped_at: datetime | None = _ts()
    # JSON list: the local files it writes (a local archive store, feed files)
    local_paths: list[str] | None = Field(
        default=None, sa_column=Column(JSONText(ensure_ascii=True), nullable=True)
    )


class Hold(SQLModel, table=True):
    """A legal hold: every record matching ``query`` is kept while it is open.

    An open records request owns one (``request_id``); it is released when the request closes.
    """

    __tablename__ = "holds"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    query: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON of the filter
    reason: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="open", index=True)  # open | released
    request_id: int | None = None
    created_by: str
    created_at: datetime = _ts(nullable=False)
    released_by: str | None = None
    released_at: datetime | None = _ts()
    release_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class HoldRecord(SQLModel, table=True):
    """Membership: ``record_id`` is (or was, once the hold is released) under ``hold_id``."""

    __tablename__ = "hold_records"
    __table_args__ = (Index("ix_hold_records_record", "record_id"),)

    hold_id: int = Field(foreign_key="holds.id", primary_key=True)
    record_id: int = Field(foreign_key="records.id", primary_key=True)
    added_at: datetime = _ts(nullable=False)


class RecordsRequest(SQLModel, table=True):
    """An open-records (or litigation) request: a deadline and a hold on its scope."""

    __tablename__ = "records_requests"

    id: int | None = Field(default=None, primary_key=True)
    requester: str
    description: str = Field(sa_column=Column(Text, nullable=False))
    query: str = Field(sa_column=Column(Text, nullable=False))
    litigation: bool = False
    received_on: date
    due_on: date = Field(index=True)
    extension_days: int = 0
    extension_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    state: str = Field(default="open", index=True)  # open | closed
    hold_id: int | None = None
    opened_by: str
    opened_at: datetime = _ts(nullable=False)
    closed_by: str | None = None
    closed_at: datetime | None = _ts()
    close_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class DispositionBatch(SQLModel, table=True):
    """A frozen list of records past retention, awaiting an approver.

    States: listed → approved (destroyed, certificate written) | stale (its membership changed
    before approval; its records return to the pool for the next batch).
    """

    __tablename__ = "disposition_batches"

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default="listed", index=True)
    membership_sha256: str
    record_count: int
    listed_by: str
    listed_at: datetime = _ts(nullable=False)
    approved_by: str | None = None
    approved_at: datetime | None = _ts()
    certificate_sha256: str | None = None
    certificate_seq: int | None = None
    completed_at: datetime | None = _ts()  # every object the certificate names is deleted
    stale_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class DispositionItem(SQLModel, table=True):
    """One record in a batch, as it was when listed."""

    __tablename__ = "disposition_items"
    __table_args__ = (Index("ix_disposition_items_record", "record_id"),)

    batch_id: int = Field(foreign_key="disposition_batches.id", primary_key=True)
    record_id: int = Field(foreign_key="records.id", primary_key=True)
    series: str
    retain_until: datetime = _ts(nullable=False)
    object_sha256: str
    raw_sha256: str | None = None


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


class Redaction(SQLModel, table=True):
    """Text of one archived record withheld from public productions, with its legal ground.

    ``start``/``end`` are a half-open range of code points in the record's archived text,
    widened so that it never splits a user-perceived character. The archive itself is never
    changed: a redaction only shapes what a public production shows. A removed redaction
    stays, marked, for the audit trail.
    """

    __tablename__ = "redactions"
    __table_args__ = (Index("ix_redactions_record", "record_id"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="records.id")
    start: int
    end: int
    exemption: str
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str
    created_at: datetime = _ts(nullable=False)
    removed_by: str | None = None
    removed_at: datetime | None = _ts()
    removal_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class BatesRange(SQLModel, table=True):
    """Bates numbers issued to one production: ``first`` to ``last`` after ``prefix``.

    Reserved when the production's plan is made (``run`` names that export, so a resumed one
    keeps its range) and never given again; mirrored into the store (see
    :mod:`bulletin.archiver.decisions`).
    """

    __tablename__ = "bates_ranges"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(index=True)
    first: int
    last: int
    run: str = Field(unique=True)
    identifier: str
    production: str
    issued_by: str
    issued_at: datetime = _ts(nullable=False)


class RequestEntry(SQLModel, table=True):
    """A line on a records request's file: a correspondence note (``kind`` ``note``) or a
    fee charged (``fee``, ``amount_cents`` in the agency's currency); never changed."""

    __tablename__ = "request_entries"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="records_requests.id", index=True)
    kind: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    amount_cents: int | None = None
    created_by: str
    created_at: datetime = _ts(nullable=False)


class ExportJobRow(SQLModel, table=True):
    """A production started from the console or the API, shared by every process.

    ``state`` is ``running``, ``done`` or ``failed``; a running job is worked on by the
    process named in ``claimed_by`` until ``lease_until``, which that process keeps renewing;
    a running job whose lease ran out was interrupted (its journal in ``<out>.partial/``
    lets another process resume it). ``verified`` is the one-line result of checking the
    finished bundle.
    """

    __tablename__ = "export_jobs"

    id: str = Field(primary_key=True)
    owner: str = Field(index=True)
    production: str
    request_id: int | None = None
    query: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    out: str
    state: str = Field(index=True)
    done: int = 0
    total: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    records: int | None = None
    payload_sha256: str | None = None
    first_bates: str | None = None
    last_bates: str | None = None
    verified: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resumes: int = 0
    started_at: datetime = _ts(nullable=False, index=True)
    updated_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    claimed_by: str | None = None
    lease_until: datetime | None = _ts()


class FacebookWebhookEvent(SQLModel, table=True):
    """One Page webhook delivery as received: the raw body and its X-Hub-Signature-256
    header, committed before Meta is answered 200. ``pending`` until a capture job has
    archived it and every change it reports (``done``), or gave up after repeated platform
    failures (``failed``; the sweeps still cover the Page)."""

    __tablename__ = "facebook_webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _ts(nullable=False)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: str
    body_sha256: str = Field(index=True)
    state: str = Field(default="pending", index=True)  # pending | done | failed
    attempts: int = 0
    processed_at: datetime | None = _ts()
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class FacebookWebhookChange(SQLModel, table=True):
    """One change a webhook reported (an item, a verb, the event's time) that was applied:
    a duplicate or repeated delivery of it is recognised here and changes nothing.
    ``record_id`` is the first version its capture archived (None: nothing new)."""

    __tablename__ = "facebook_webhook_changes"

    account: str = Field(primary_key=True)
    remote_id: str = Field(primary_key=True)
    verb: str = Field(primary_key=True)
    event_time: str = Field(primary_key=True)  # "<entry time>/<change created_time>"
    event_id: int
    applied_at: datetime = _ts(nullable=False)
    record_id: int | None = Field(default=None, index=True)


class StreamCapture(SQLModel, table=True):
    """A record the X filtered stream archived (written after its batch; the capture-lag
    path ``stream``). Without one, a record came from a sweep or a webhook."""

    __tablename__ = "stream_captures"

    record_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class VerifyRun(SQLModel, table=True):
    """One run of the archive verify: the nightly job's (``trigger`` ``nightly``) or a
    person's (``command``). ``finished_at`` is empty while it runs, and stays empty when the
    process died in it; ``error`` says why a run that raised stopped. ``problems`` counts
    what failed it; ``first_problems`` holds the first lines of them, one a line."""

    __tablename__ = "verify_runs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    trigger: str
    started_at: datetime = _ts(nullable=False, index=True)
    finished_at: datetime | None = _ts()
    records: int = 0
    entries: int = 0
    objects: int = 0
    problems: int = 0
    warnings: int = 0
    first_problems: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
