"""Near-real-time capture from Facebook Page webhooks (the sweeps remain the safety net).

Receipt (:func:`receive`) only stores the delivery, raw body and X-Hub-Signature-256 header,
and asks for the daemon to be woken: what Meta was answered 200 for is durable before the
answer. Deliveries received together share one transaction (a group commit, one fsync for
all of them, each answered after it), so receipt keeps up when each delivery carries a
single change. A capture job (:class:`WebhookCapture`) then takes the pending deliveries in
batches, oldest change first, each item read once per batch with several reads in flight:

- each delivery is archived as evidence (a ``webhook`` record: its raw body byte for byte,
  its signature header and when it came), once per distinct body;
- each comment or post change (verbs ``add``, ``edited``, ``remove``, ``hide``, ``unhide``)
  captures that item at once: read fresh where it still exists and archived with the same
  versioning rules as a sweep (:func:`~bulletin.archiver.capture.versioning.next_version`);
  where it is already gone, the change's own payload (message, from, created_time) is its
  first version, followed by a deleted version; ``remove`` archives a deleted version;
- a change already applied (same item, verb and event time) is skipped, so duplicate and
  repeated deliveries add nothing, and out-of-order ones cannot undo a later state: the item
  is read as it is now, not as the change says.

A crash at any point loses nothing: a delivery stays ``pending`` until its changes are
applied, archiving is idempotent by content, and applied changes are remembered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Archiver, Capture
from bulletin.archiver.capture.threads import register_threads
from bulletin.archiver.capture.versioning import gone_version, key, next_version
from bulletin.clock import Clock
from bulletin.connectors.base import Connector, RemoteItem, json_bytes
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import ConnectorError
from bulletin.models import Account, FacebookWebhookChange, FacebookWebhookEvent, Record
from bulletin.states import RecordState

log = structlog.get_logger("bulletin.capture")

PLATFORM = "facebook"
VERBS = frozenset({"add", "edited", "edit", "remove", "hide", "unhide"})
POST_ITEMS = frozenset({"status", "post", "photo", "video", "share"})
MAX_ATTEMPTS = 10  # then the delivery is "failed"; the next sweep still sees the item
BATCH = 200
RECEIPT_BATCH = 500  # deliveries in one receipt transaction, at most
READERS = 8  # items read from Graph at once by a capture run


def receive(engine: Engine, body: bytes, signature: str, now: datetime) -> int:
    """Store one signed delivery as ``pending`` and wake the daemon once it commits; its id,
    returned only after the commit (fsync included). Call only after the signature was
    checked.

    Deliveries that arrive together share one transaction (a group commit, see
    :class:`Receipts`): one fsync answers them all, so receipt keeps up with Meta's
    deliveries when each carries a single change."""
    with _receipts_lock:
        receipts = _receipts.get(engine)
        if receipts is None:
            receipts = _receipts[engine] = Receipts()
    return receipts.receive(engine, body, signature, now)


@dataclass
class _Waiting:
    """One delivery handed to :class:`Receipts`, and what became of it."""

    body: bytes
    signature: str
    received_at: datetime
    id: int | None = None
    error: BaseException | None = None
    done: bool = False


class Receipts:
    """Group commit of deliveries (one instance per engine). Each caller hands in its delivery and
    waits; the first caller that finds no transaction under way writes every delivery
    handed in so far (its own among them) in one transaction, commits, and answers them
    all, while the deliveries arriving meanwhile gather for the next. No thread of its own:
    a caller leads, so there is nothing to start or stop. A failed transaction fails each
    of its deliveries (answered 500, so Meta sends them again); none is answered before its
    commit."""

    def __init__(self, most: int = RECEIPT_BATCH) -> None:
        self.most = most
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._writing = False
        self.commits = 0  # transactions, for tests and benchmarks

    def receive(self, engine: Engine, body: bytes, signature: str, now: datetime) -> int:
        """Store the delivery (with any others waiting) through ``engine``; its id.

        :raises DatabaseError: the transaction failed (every delivery in it is refused).
        """
        mine = _Waiting(body, signature, now)
        with self._cond:
            self._waiting.append(mine)
        while True:
            with self._cond:
                while self._writing and not mine.done:
                    self._cond.wait()
                if mine.done:
                    break
                self._writing = True  # this caller leads the next transaction
                batch, self._waiting = self._waiting[: self.most], self._waiting[self.most :]
            try:
                self._write(engine, batch)
            except BaseException as e:
                for waiting in batch:
                    waiting.error = e
            finally:
                with self._cond:
                    for waiting in batch:
                        waiting.done = True
                    self._writing = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.id is not None
        return mine.id

    def _write(self, engine: Engine, batch: list[_Waiting]) -> None:
        with session_scope(engine) as session:
            rows = [
                FacebookWebhookEvent(
                    received_at=w.received_at,
                    body=w.body,
                    signature=w.signature,
                    body_sha256=hashlib.sha256(w.body).hexdigest(),
                )
                for w in batch
            ]
            session.add_all(rows)
            session.flush()
            wake_after_commit(session)  # one wake-up for the lot
        for waiting, row in zip(batch, rows, strict=True):
            waiting.id = row.id
        self.commits += 1


_receipts: weakref.WeakKeyDictionary[Engine, Receipts] = weakref.WeakKeyDictionary()
_receipts_lock = threading.Lock()


def pending_count(engine: Engine) -> int:
    """How many deliveries wait for capture."""
    with Session(engine) as session:
        found = session.execute(
            sa.select(sa.func.count())
            .select_from(FacebookWebhookEvent)
            .where(col(FacebookWebhookEvent.state) == "pending")
        ).scalar()
    return int(found or 0)


def prune(engine: Engine, before: datetime) -> int:
    """Forget deliveries captured (``done``) before ``before``, and the changes applied
    before it: each delivery is in the archive as evidence by then, and Meta repeats a
    delivery within hours, not weeks. Pending and failed ones stay. How many deliveries."""
    with session_scope(engine) as session:
        gone = session.execute(
            sa.delete(FacebookWebhookEvent)
            .where(col(FacebookWebhookEvent.state) == "done")
            .where(col(FacebookWebhookEvent.processed_at) < before)
        )
        session.execute(
            sa.delete(FacebookWebhookChange).where(col(FacebookWebhookChange.applied_at) < before)
        )
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Change:
    """One change a delivery reports (one element of an entry's ``changes``)."""

    event_id: int
    index: int  # its place in the delivery
    page_id: str
    entry_time: int
    item: str  # comment | status | photo | ... (Graph's "item")
    verb: str
    remote_id: str  # comment_id for a comment, post_id for a post
    post_id: str | None
    value: dict[str, Any]

    @property
    def created_time(self) -> int:
        found = self.value.get("created_time")
        return int(found) if isinstance(found, int | float) else 0

    @property
    def event_time(self) -> str:
        """The change's time as its idempotency key holds it: entry time and created_time."""
        return f"{self.entry_time}/{self.created_time}"

    @property
    def is_comment(self) -> bool:
        return self.item == "comment"


def parse(body: bytes, event_id: int = 0) -> list[Change]:
    """The comment and post changes of a Page webhook body (other fields and items, such as
    reactions, are left out).

    :raises ValueError: the body is not a Page webhook notification.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"the body is not JSON ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("object") != "page":
        raise ValueError("not a Page notification (object is not 'page')")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise ValueError("a Page notification without entries")
    out: list[Change] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("an entry that is not an object")
        page_id = str(entry.get("id", ""))
        entry_time = entry.get("time")
        entry_time = int(entry_time) if isinstance(entry_time, int | float) else 0
        for change in entry.get("changes") or []:
            if not isinstance(change, dict) or change.get("field") != "feed":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            item, verb = str(value.get("item", "")), str(value.get("verb", ""))
            if verb not in VERBS:
                continue
            post_id = value.get("post_id")
            if item == "comment" and value.get("comment_id"):
                remote_id = str(value["comment_id"])
            elif item in POST_ITEMS and post_id:
                remote_id = str(post_id)
            else:
                continue
            out.append(
                Change(
                    event_id=event_id,
                    index=len(out),
                    page_id=page_id,
                    entry_time=entry_time,
                    item=item,
                    verb="edited" if verb == "edit" else verb,  # both are seen from Meta
                    remote_id=remote_id,
                    post_id=str(post_id) if post_id else None,
                    value=value,
                )
            )
    return out


@dataclass
class WebhookResult:
    """What one run of the capture job did."""

    events: int = 0
    changes: int = 0
    duplicates: int = 0
    archived: int = 0
    deferred: int = 0  # deliveries left pending after a platform failure
    unknown_pages: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """The account a Page's changes belong to."""

    account: str
    page_id: str
    training: bool


class WebhookCapture:
    """Captures what pending deliveries report. ``pages`` maps a Page id to its account's
    name; ``connector_for`` gives an account's connector. Safe to run again at any time (one
    instance at a time: the job is exclusive)."""

    def __init__(
        self,
        archiver: Archiver,
        connector_for: Callable[[str], Connector],
        pages: Mapping[str, str],
        clock: Clock,
    ) -> None:
        self.archiver = archiver
        self.engine = archiver.engine
        self.connector_for = connector_for
        self.pages = dict(pages)
        self.clock = clock
        self.policy = archiver.settings.capture
        self.result = WebhookResult()

    def run(self, limit: int = BATCH) -> WebhookResult:
        """Capture up to ``limit`` pending deliveries (oldest first)."""
        with Session(self.engine) as session:
            events = list(
                session.exec(
                    select(FacebookWebhookEvent)
                    .where(col(FacebookWebhookEvent.state) == "pending")
                    .order_by(col(FacebookWebhookEvent.id))
                    .limit(limit)
                ).all()
            )
        if not events:
            return self.result
        self.result.events = len(events)
        targets = self._targets()
        notes: dict[int, str] = {}
        changes: list[Change] = []
        evidence: list[Capture] = []
        for event in events:
            assert event.id is not None
            try:
                found = parse(event.body, event.id)
            except ValueError as e:
                notes[event.id] = str(e)
                found = []
            changes += found
            proof = self._evidence(event, found, targets)
            if proof is not None:
                evidence.append(proof)
        if evidence:  # the deliveries themselves first, in one group commit
            _, created = self.archiver.archive_batch(evidence, resolve=False)
            self.result.archived += created
        changes.sort(key=lambda c: (c.entry_time, c.created_time, c.event_id, c.index))
        retry = self._apply_all(changes, targets, notes)
        self._finish(events, notes, retry)
        log.info(
            "webhook changes captured",
            events=self.result.events,
            changes=self.result.changes,
            duplicates=self.result.duplicates,
            archived=self.result.archived,
            deferred=self.result.deferred,
        )
        return self.result

    # -- accounts --------------------------------------------------------------------------

    def _targets(self) -> dict[str, Target]:
        with Session(self.engine) as session:
            training = {
                a.name: a.training
                for a in session.exec(
                    select(Account).where(col(Account.name).in_(list(self.pages.values())))
                ).all()
            }
        return {
            page: Target(name, page, training.get(name, False)) for page, name in self.pages.items()
        }

    # -- evidence --------------------------------------------------------------------------

    def _evidence(
        self, event: FacebookWebhookEvent, changes: list[Change], targets: Mapping[str, Target]
    ) -> Capture | None:
        """The delivery itself as a record: raw body byte for byte, its signature header
        (None when no account has its Page: the events table keeps it)."""
        page = changes[0].page_id if changes else _first_page(event.body)
        target = targets.get(page or "")
        if target is None:
            return None
        item = RemoteItem(
            kind="webhook",
            remote_id=f"facebook-webhook/{event.body_sha256}",
            text="",
            author="facebook",
            posted_at=event.received_at,
            thread_id=next((c.post_id for c in changes if c.post_id), None),
            extra={
                "x_hub_signature_256": event.signature,
                "received_at": event.received_at.isoformat(),
                "body_sha256": event.body_sha256,
                "event_id": event.id,
                "changes": [
                    {"item": c.item, "verb": c.verb, "id": c.remote_id, "post_id": c.post_id}
                    for c in changes
                ],
            },
            raw=event.body,
        )
        return Capture(target.account, PLATFORM, item, target.training)

    # -- the changes -----------------------------------------------------------------------

    def _apply_all(
        self, changes: list[Change], targets: Mapping[str, Target], notes: dict[int, str]
    ) -> dict[int, str]:
        """Apply ``changes`` in order; the events left for a later run, with why. Items read
        fresh are archived together (one group commit); an item found gone is archived
        after them, alone, since what it becomes depends on its versions so far."""
        retry: dict[int, str] = {}
        done = self._already_applied(changes, targets)
        reads = self._read_all(
            [
                (c, targets[c.page_id])
                for c in changes
                if c.page_id in targets and _marker(c, targets[c.page_id]) not in done
            ]
        )
        batch: list[tuple[Change, Target, RemoteItem]] = []
        for change in changes:
            if change.event_id in retry:
                continue  # an event's changes stay in order
            target = targets.get(change.page_id)
            if target is None:
                self.result.unknown_pages += 1
                notes[change.event_id] = f"no facebook account has page {change.page_id}"
                continue
            marker = _marker(change, target)
            if marker in done:
                self.result.duplicates += 1
                continue
            done.add(marker)
            try:
                fresh = reads.get(_item_key(change, target))
                if isinstance(fresh, ConnectorError):
                    raise fresh
                if fresh is not None:
                    batch.append((change, target, fresh))
                    continue
                self._flush(batch)
                batch = []
                self._store([(change, target)], self._gone(change, target))
            except ConnectorError as e:
                retry[change.event_id] = str(e)
                self.result.errors.append(str(e))
        self._flush(batch)
        return retry

    def _already_applied(
        self, changes: list[Change], targets: Mapping[str, Target]
    ) -> set[tuple[str, str, str, str]]:
        markers = {_marker(c, targets[c.page_id]) for c in changes if c.page_id in targets}
        return markers & _applied(self.engine, markers)

    def _read_all(
        self, changes: list[tuple[Change, Target]]
    ) -> dict[tuple[str, str], RemoteItem | ConnectorError | None]:
        """Each item ``changes`` are about, read once as the platform has it now, several
        reads in flight at once (:data:`READERS`, each thread with its own connector):
        (account, remote id) -> the item, None when gone, or the error that stopped its
        read. Items only removed are not read."""
        wanted: dict[tuple[str, str], tuple[Change, Target]] = {}
        for change, target in changes:
            if change.verb != "remove":
                wanted.setdefault(_item_key(change, target), (change, target))
        if not wanted:
            return {}

        def read(job: tuple[Change, Target]) -> RemoteItem | ConnectorError | None:
            change, target = job
            connector = self.connector_for(target.account)
            try:
                if change.is_comment:
                    return connector.fetch_comment(change.post_id or "", change.remote_id)
                return connector.fetch_post(change.remote_id)
            except ConnectorError as e:
                return e

        jobs = list(wanted.values())
        if len(jobs) == 1:
            return {next(iter(wanted)): read(jobs[0])}
        return dict(zip(wanted, _readers().map(read, jobs), strict=True))

    def _flush(self, batch: list[tuple[Change, Target, RemoteItem]]) -> None:
        if batch:
            self._store([(c, t) for c, t, _ in batch], [item for _, _, item in batch])

    def _store(self, applied: list[tuple[Change, Target]], items: list[RemoteItem]) -> None:
        """Archive ``items`` (the accounts of ``applied``) as a sweep would, then remember
        ``applied`` as done, each with the first new version it made."""
        accounts = {t.account: t for _, t in applied}
        for account, target in accounts.items():
            posts = [(c.post_id, None, None) for c, t in applied if t is target and c.post_id]
            register_threads(self.engine, account, self.clock, posts)
        owner = {c.remote_id: t for c, t in applied}
        made: dict[str, int] = {}
        if items:
            captures = [
                Capture(owner[i.remote_id].account, PLATFORM, i, owner[i.remote_id].training)
                for i in items
            ]
            latest = self.archiver.latest_versions([key(c) for c in captures])
            ready = []
            for capture in captures:
                connector = self.connector_for(capture.account)
                found = latest.get(key(capture))
                ready.append(
                    next_version(capture, found, connector, connector.limits(), self.policy)
                )
            records, created = self.archiver.archive_batch(ready)
            self.result.archived += created
            known = {found.record_id for found in latest.values()}
            for capture, record in zip(ready, records, strict=True):
                if record.id is not None and record.id not in known:
                    made.setdefault(capture.item.remote_id, record.id)
                    known.add(record.id)
        now = self.clock.now()
        rows = {
            _marker(change, target): FacebookWebhookChange(
                account=target.account,
                remote_id=change.remote_id,
                verb=change.verb,
                event_time=change.event_time,
                event_id=change.event_id,
                applied_at=now,
                record_id=made.pop(change.remote_id, None),
            )
            for change, target in applied
        }
        with session_scope(self.engine) as session:
            # the job is exclusive: a marker already there was written by a run that
            # stopped before its delivery was marked done
            for marker in _applied(session, set(rows)):
                rows.pop(marker)
            session.add_all(rows.values())
        self.result.changes += len(applied)

    def _gone(self, change: Change, target: Target) -> list[RemoteItem]:
        """The versions to archive for an item the platform no longer has."""
        payload = payload_item(change, target.page_id)
        keys = [(target.account, kind, change.remote_id) for kind in ("comment", "post")]
        latest = self.archiver.latest_versions(keys)
        current = latest.get((target.account, payload.kind, change.remote_id)) or next(
            iter(latest.values()), None
        )
        how = {"found_gone_by": "webhook", "webhook_event": change.event_id, "verb": change.verb}
        if current is None:
            if change.verb == "remove" and "message" not in change.value:
                return [replace(payload, state="deleted", extra={**payload.extra, **how})]
            # gone before it could be read: what the change said is its first version
            return [payload, replace(payload, state="deleted", extra={**payload.extra, **how})]
        if current.state == RecordState.DELETED:
            if not current.text and payload.text:
                # a late delivery carries the text of an item known only as deleted
                return [replace(payload, state="deleted", extra={**payload.extra, **how})]
            return []
        with Session(self.engine) as session:
            record = session.get(Record, current.record_id)
        assert record is not None
        return [gone_version(record, how)]

    # -- bookkeeping -----------------------------------------------------------------------

    def _finish(
        self, events: list[FacebookWebhookEvent], notes: dict[int, str], retry: dict[int, str]
    ) -> None:
        now = self.clock.now()
        plain = [e.id for e in events if e.id not in retry and e.id not in notes]
        with session_scope(self.engine) as session:
            for chunk in _chunks(plain):
                session.execute(
                    sa.update(FacebookWebhookEvent)
                    .where(col(FacebookWebhookEvent.id).in_(chunk))
                    .values(state="done", processed_at=now, error=None)
                )
            for event in events:
                if event.id not in retry and event.id not in notes:
                    continue
                row = session.get(FacebookWebhookEvent, event.id)
                if row is None:
                    continue
                if row.id in retry:
                    row.attempts += 1
                    row.error = retry[row.id][:2000]
                    if row.attempts >= MAX_ATTEMPTS:
                        row.state = "failed"
                        log.error(
                            "a webhook delivery could not be captured; the sweeps will see "
                            "its items",
                            event=row.id,
                            error=row.error,
                        )
                    else:
                        self.result.deferred += 1
                else:
                    row.state = "done"
                    row.processed_at = now
                    row.error = notes.get(row.id or 0)
                session.add(row)


def _marker(change: Change, target: Target) -> tuple[str, str, str, str]:
    """A change's idempotency key: its item, verb and event time."""
    return (target.account, change.remote_id, change.verb, change.event_time)


def _item_key(change: Change, target: Target) -> tuple[str, str]:
    return (target.account, change.remote_id)


def _applied(
    where: Engine | Session, markers: set[tuple[str, str, str, str]]
) -> set[tuple[str, str, str, str]]:
    """Those of ``markers`` already recorded as applied (one query per 500 items)."""
    found: set[tuple[str, str, str, str]] = set()
    ids = sorted({m[1] for m in markers})
    with contextlib.ExitStack() as stack:
        session = where if isinstance(where, Session) else stack.enter_context(Session(where))
        for chunk in _chunks(ids):
            rows = session.execute(
                sa.select(
                    col(FacebookWebhookChange.account),
                    col(FacebookWebhookChange.remote_id),
                    col(FacebookWebhookChange.verb),
                    col(FacebookWebhookChange.event_time),
                ).where(col(FacebookWebhookChange.remote_id).in_(chunk))
            ).all()
            found.update(m for m in (tuple(r) for r in rows) if m in markers)
    return found


def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _readers() -> ThreadPoolExecutor:
    """The threads that read changed items (shared by every capture run of the process)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(READERS, thread_name_prefix="webhook-read")
        return _pool


def payload_item(change: Change, page_id: str) -> RemoteItem:
    """The item as the change itself describes it (message, from, created_time), normalised
    as the connector normalises a comment or post."""
    value = change.value
    sender = value.get("from") if isinstance(value.get("from"), dict) else {}
    assert isinstance(sender, dict)
    created = value.get("created_time")
    posted_at = datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else None
    extra: dict[str, Any] = {"from_webhook": change.event_id}
    if sender:
        extra["from"] = sender
    if change.is_comment:
        kind = "post" if str(sender.get("id")) == page_id else "comment"
        parent = value.get("parent_id")
        return RemoteItem(
            kind=kind,  # type: ignore[arg-type]
            remote_id=change.remote_id,
            text=str(value.get("message") or ""),
            author=sender.get("name"),
            posted_at=posted_at,
            parent_id=str(parent) if parent else change.post_id,
            thread_id=change.post_id,
            state="hidden" if change.verb == "hide" else "visible",
            extra=extra,
            raw=json_bytes(value),
        )
    return RemoteItem(
        kind="post",
        remote_id=change.remote_id,
        text=str(value.get("message") or ""),
        author=sender.get("name") or sender.get("id") or page_id,
        posted_at=posted_at,
        thread_id=change.remote_id,
        extra=extra,
        raw=json_bytes(value),
    )


def _first_page(body: bytes) -> str | None:
    try:
        entries = json.loads(body).get("entry") or []
        return str(entries[0]["id"])
    except (ValueError, AttributeError, LookupError, TypeError, UnicodeDecodeError):
        return None
