"""Archiving: a captured item becomes a snapshot object in the WORM store, an index row and a
ledger entry, in that order.

Order of a batch (group commit): every object is put (in one :meth:`WormStore.put_objects`, which
S3 sends several at a time), then the store is flushed once, then one
database transaction adds the index rows, their ledger entries and audit events, then the
ledger entries are mirrored into the store. On a local disk the transaction writes its rows
while the objects are written, and commits only once they are durable. A crash at any point
leaves either nothing indexed (objects without rows are harmless and re-used on the next try,
being content-addressed) or a complete, durable record whose mirror
:func:`bulletin.archiver.ledger.repair_mirror` restores.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import ledger, warc
from bulletin.archiver.canonical import canonical_checked, canonical_plain
from bulletin.archiver.holds import hold_new_records
from bulletin.archiver.retention import retain_until, series_for
from bulletin.archiver.search import index_new_records
from bulletin.archiver.store.base import NewObject, WormStore, object_key
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.connectors.base import RemoteItem
from bulletin.connectors.wire import Exchange
from bulletin.db import insert_rows, session_scope
from bulletin.events import iso, record_events, subscribers
from bulletin.models import LedgerEntry, Record, RecordMedia
from bulletin.states import RecordState

SNAPSHOT_SCHEMA = "bulletin.snapshot/1"

_RECORDS = Record.__table__  # type: ignore[attr-defined]
_LEDGER = LedgerEntry.__table__  # type: ignore[attr-defined]
_MEDIA = RecordMedia.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Capture:
    """One item seen on a platform, to be archived."""

    account: str
    platform: str
    item: RemoteItem
    training: bool = False
    notice_id: int | None = None
    priority: str | None = None
    media: tuple[MediaBlob, ...] = ()


@dataclass(frozen=True)
class MediaBlob:
    """An image fetched from an item's attachment URL (``data`` empty when fetching failed);
    ``alt_text`` is the author's description of it when the platform gives one."""

    url: str
    data: bytes = b""
    mime_type: str | None = None
    error: str | None = None
    alt_text: str | None = None


Key = tuple[str, str, str]  # account, kind, remote id


@dataclass(frozen=True)
class Latest:
    """The newest archived version of one item, with the notice and language it carries."""

    record_id: int
    version: int
    content_sha256: str
    state: str
    text: str
    notice_id: int | None = None
    lang: str | None = None
    series: str | None = None


def describe_change(previous: Latest | None, state: str, text: str) -> str:
    """How a version differs from the one before it."""
    if previous is None:
        return "new"
    if state != previous.state:
        if state in (RecordState.DELETED, RecordState.HIDDEN):
            return state
        return "restored" if previous.state == RecordState.DELETED else "unhidden"
    return "edited"


def item_language(extra: Mapping[str, Any]) -> str | None:
    """The language the publisher archived a post of a notice in several languages with
    (``extra["lang"]``, a BCP 47 tag), kept on its record; None when it names none.

    Only the publisher names one: a visitor's comment or reply declares no language, and no
    connector reads the language a platform guesses or reports for it (X's ``lang``,
    Mastodon's ``language``, Bluesky's ``langs``), so a comment's record has none and
    ``lang:`` never finds comments. A connector that one day puts a language the platform
    reports into ``extra["lang"]`` gives the comment's record that language.
    """
    lang = extra.get("lang")
    return lang if isinstance(lang, str) and 0 < len(lang) <= 35 else None


def snapshot_language(snapshot: Mapping[str, Any]) -> str | None:
    """The language a snapshot names: the publisher's (``item.extra.lang``), else the one a
    later version carries from the version before it (the snapshot's own ``lang``)."""
    item = snapshot.get("item")
    extra = item.get("extra") if isinstance(item, Mapping) else None
    return item_language(extra if isinstance(extra, Mapping) else {}) or item_language(snapshot)


def carried(
    notice_id: int | None, lang: str | None, before: Latest | None
) -> tuple[int | None, str | None]:
    """The notice and language a version is archived with: its own, else those of the
    item's version before it.

    The publisher archives the first version of a post with its notice and (for a notice in
    several languages) its language; a sweep or a webhook that later finds the post edited,
    hidden or deleted may know neither, yet every version of the post belongs to the same
    notice and is in the same language, so ``lang:es`` finds them all. The snapshot of such
    a version names what it carries (``notice_id``, ``lang``), so that a rebuild of the index
    and ``verify`` read the same from the store; a rebuild also carries them forward for
    versions archived before snapshots named them.
    """
    if before is None:
        return notice_id, lang
    return (notice_id if notice_id is not None else before.notice_id), (lang or before.lang)


def carried_series(capture: Capture, before: Latest | None) -> str:
    """The series a version is archived in: the one its priority gives when the capture
    knows it (the publisher's own), else the series of the item's version before it.

    A sweep or a webhook that finds an emergency notice's post edited or deleted does not
    know the notice's priority; without this its later versions would fall into
    ``agency-posts`` and could be destroyed years before the permanent first version.
    """
    if capture.priority is None and before is not None and before.series:
        return before.series
    return series_for(capture.item.kind, capture.priority)


def content_hash(item: RemoteItem) -> str:
    """The hash that defines a version: same content, same hash, whenever captured."""
    return hashlib.sha256(canonical_plain(item.content())).hexdigest()


class Archiver:
    """Writes captures into the store and the index; safe to call again with the same items."""

    def __init__(self, engine: Engine, store: WormStore, settings: Settings, clock: Clock) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        self.clock = clock

    def archive(
        self,
        captures: Sequence[Capture],
        actor: str = "bulletin",
        *,
        wire: Sequence[Exchange] = (),
    ) -> list[Record]:
        """Archive ``captures``; returns one record per capture (existing or new), in order.

        An item whose content is already archived is not archived again. ``wire``: see
        :meth:`archive_batch`.
        """
        return self.archive_batch(captures, actor, wire=wire)[0]

    def archive_batch(
        self,
        captures: Sequence[Capture],
        actor: str = "bulletin",
        *,
        resolve: bool = True,
        wire: Sequence[Exchange] = (),
    ) -> tuple[list[Record], int]:
        """Like :meth:`archive`, and also how many records are new. With ``resolve=False``
        the list is left empty (a sweep needs only the count).

        ``wire`` is what the platform said while these captures were fetched (see
        :mod:`bulletin.connectors.wire`): when records are new, it is stored as one WARC
        object (see :func:`keep_wire`) that each new record refers to.

        An item is archived when its content differs from the item's LATEST version, so an
        edit that reverts (A -> B -> A) is a new version, while the same content seen again
        is not. Within a batch, later captures of one item follow earlier ones.
        """
        if not captures:
            return [], 0
        with collector_paused():
            return self._archive_batch(captures, actor, resolve, wire)

    def _archive_batch(
        self, captures: Sequence[Capture], actor: str, resolve: bool, wire: Sequence[Exchange]
    ) -> tuple[list[Record], int]:
        now = self.clock.now()
        hashes = [content_hash(c.item) for c in captures]
        keys = [_key(c) for c in captures]
        with Session(self.engine, expire_on_commit=False) as session:
            seen = ledger.head_seq(session)  # first: what _latest sees is at least this
            latest = self._latest(session, keys)
        objects: list[NewObject] = []
        until: dict[tuple[str, datetime | None], tuple[datetime, bool]] = {}
        carry = dict(latest)  # what each item's next version carries (see carried())
        prepared = []
        for c, h in _changes(captures, hashes, {k: v.content_sha256 for k, v in latest.items()}):
            key = _key(c)
            notice_id, lang = carried(c.notice_id, item_language(c.item.extra), carry.get(key))
            before = carry.get(key)
            series = carried_series(c, before)
            carry[key] = Latest(-1, 0, h, "", "", notice_id, lang, series)
            prepared.append(self._prepare(c, h, now, objects, until, notice_id, lang, series))
        created = self._store_and_index(prepared, objects, now, actor, seen, latest)
        new_ids = [row["id"] for row in created if row is not None]
        if wire and new_ids:
            keep_wire(self.engine, self.store, wire, [r for r in created if r is not None], now)
        if new_ids:  # open legal holds and records requests cover matching new records
            hold_new_records(self.engine, self.store, new_ids, now, self.settings.agency.time_zone)
        if not resolve:
            return [], len(new_ids)
        return self._resolve(keys, hashes, created), len(new_ids)

    def latest_versions(self, keys: Sequence[Key]) -> dict[Key, Latest]:
        """The newest archived version of each of ``keys`` (account, kind, remote id)."""
        with Session(self.engine) as session:
            return self._latest(session, keys)

    def _resolve(
        self, keys: list[Key], hashes: list[str], created: list[dict[str, Any] | None]
    ) -> list[Record]:
        """One record per capture: the version holding its content (the latest such).

        The rows just created answer for themselves; only the other captures are looked up.
        """
        new = [row for row in created if row is not None]
        covered = {((r["account"], r["kind"], r["remote_id"]), r["content_sha256"]) for r in new}
        missing = {k for k, h in zip(keys, hashes, strict=True) if (k, h) not in covered}
        found: dict[tuple[Key, str], Record] = {}
        if missing:
            with Session(self.engine, expire_on_commit=False) as session:
                for record in self._rows(session, sorted(missing)):
                    found[(_record_key(record), record.content_sha256)] = record
        for row in new:
            # model_construct: the values are ours and typed, and were just stored
            record = Record.model_construct(**row)
            found[(_record_key(record), record.content_sha256)] = record
        return [found[(k, h)] for k, h in zip(keys, hashes, strict=True)]

    @staticmethod
    def _rows(session: Session, keys: list[Key]) -> list[Record]:
        """Every version of ``keys``, oldest first."""
        out: list[Record] = []
        wanted = set(keys)
        for account, kind, chunk in _chunks(wanted):
            rows = session.exec(
                select(Record)
                .where(col(Record.account) == account)
                .where(col(Record.kind) == kind)
                .where(col(Record.remote_id).in_(chunk))
                .order_by(col(Record.version))
            )
            out.extend(r for r in rows if _record_key(r) in wanted)
        return out

    @staticmethod
    def _latest(session: Session, keys: Sequence[Key]) -> dict[Key, Latest]:
        """The newest version of each of ``keys`` that is archived."""
        found: dict[Key, Latest] = {}
        wanted = set(keys)
        for account, kind, chunk in _chunks(wanted):
            newest = (
                sa.select(
                    col(Record.account).label("account"),
                    col(Record.kind).label("kind"),
                    col(Record.remote_id).label("remote_id"),
                    sa.func.max(col(Record.version)).label("version"),
                )
                .where(col(Record.account) == account)
                .where(col(Record.kind) == kind)
                .where(col(Record.remote_id).in_(chunk))
                .group_by(col(Record.account), col(Record.kind), col(Record.remote_id))
                .subquery()
            )
            rows = session.execute(
                sa.select(
                    col(Record.id),
                    col(Record.account),
                    col(Record.kind),
                    col(Record.remote_id),
                    col(Record.version),
                    col(Record.content_sha256),
                    col(Record.state),
                    col(Record.text),
                    col(Record.notice_id),
                    col(Record.lang),
                    col(Record.series),
                ).join(
                    newest,
                    sa.and_(
                        col(Record.account) == newest.c.account,
                        col(Record.kind) == newest.c.kind,
                        col(Record.remote_id) == newest.c.remote_id,
                        col(Record.version) == newest.c.version,
                    ),
                )
            )
            for rid, account, kind, remote_id, version, digest, state, text, nid, lang, s in rows:
                key = (account, kind, remote_id)
                if key in wanted:
                    found[key] = Latest(rid, version, digest, state, text, nid, lang, s)
        return found

    def _store_and_index(
        self,
        prepared: list[_Prepared],
        objects: list[NewObject],
        now: datetime,
        actor: str,
        seen: int,
        latest: dict[Key, Latest],
    ) -> list[dict[str, Any] | None]:
        """Make ``objects`` durable, and commit the index rows of ``prepared`` only after.

        With a store of :attr:`~WormStore.quick_puts` the objects are written on a thread of
        their own while this one writes the rows (the two share the CPU's two sides: system
        calls on one, Python and SQLite on the other), and the transaction commits once the
        objects are durable, or rolls back if they could not be stored. Otherwise the puts
        come first and the transaction after them.
        """
        if not prepared:
            return []
        if not self.store.quick_puts:
            self._store_durably(objects)
            return self._index(prepared, now, actor, seen, latest)
        writing = _Background(self._store_durably, objects)
        try:
            created = self._index(prepared, now, actor, seen, latest, before_commit=writing.wait)
        except BaseException:
            writing.join()  # never leave it writing behind an error of ours
            raise
        writing.wait()  # when no row was new, _index returned without waiting
        return created

    def _store_durably(self, objects: list[NewObject]) -> None:
        put_retained(self.store, objects)
        self.store.flush()

    def _prepare(
        self,
        capture: Capture,
        digest: str,
        now: datetime,
        objects: list[NewObject],
        retention: dict[tuple[str, datetime | None], tuple[datetime, bool]],
        notice_id: int | None = None,
        lang: str | None = None,
        series: str | None = None,
    ) -> _Prepared:
        """The capture's snapshot and row values; its objects are added to ``objects``.
        ``notice_id`` and ``lang``: what the version carries (see :func:`carried`).

        The snapshot is canonicalised once: those bytes are the object, its hash is the
        object's key, the row's ``object_sha256`` and the ledger's link. ``retention``
        remembers retain-until by series and posting time within a batch (all captured now).
        """
        item = capture.item
        series = series or series_for(item.kind, capture.priority)
        known = retention.get((series, item.posted_at))
        if known is None:
            known = retention[(series, item.posted_at)] = retain_until(
                self.settings, series, posted_at=item.posted_at, captured_at=now
            )
        until, permanent = known

        def add(data: bytes) -> str:
            objects.append(new := NewObject(data, until, permanent))
            return new.sha256

        raw_sha = add(item.raw) if item.raw else None
        media = [
            {
                "url": m.url,
                "sha256": add(m.data) if m.data else None,
                "mime_type": m.mime_type,
                "size": len(m.data),
                "error": m.error,
                **({"alt_text": m.alt_text} if m.alt_text is not None else {}),
            }
            for m in capture.media
        ]
        snapshot = canonical_checked(
            {
                "schema": SNAPSHOT_SCHEMA,
                "account": capture.account,
                "platform": capture.platform,
                "training": capture.training,
                "captured_at": now.isoformat(),
                "series": series,
                "content_sha256": digest,
                "raw_sha256": raw_sha,
                "notice_id": notice_id,
                "item": item.normalised(),
                **({"media": media} if media else {}),
                # carried from the version before (the item names none of its own)
                **({"lang": lang} if lang and lang != item_language(item.extra) else {}),
            },
            # the rest is typed (str, bool, None, a database id); these may hold anything
            unchecked=(item.extra, media),
        )
        object_sha = add(snapshot)
        return _Prepared(
            capture,
            digest,
            series,
            until,
            permanent,
            object_sha,
            raw_sha,
            len(snapshot),
            media,
            notice_id,
            lang,
        )

    def _index(
        self,
        prepared: list[_Prepared],
        now: datetime,
        actor: str,
        seen: int,
        latest: dict[Key, Latest],
        before_commit: Callable[[], None] = lambda: None,
    ) -> list[dict[str, Any] | None]:
        """One transaction, set-based: records, their ledger entries and audit events.

        ``latest`` is what :meth:`_latest` found when the ledger's head was at ``seen``.
        ``before_commit`` is called last inside the transaction (an error rolls it back).
        Returns the rows of the new records, ids included (None where another instance
        archived the same change meanwhile), in the order of ``prepared``.
        """
        with session_scope(self.engine) as session:
            ledger.lock(session)
            head = ledger.head(session)
            if (head.seq if head else 0) == seen:
                latest = dict(latest)  # nothing was archived since: still the latest
            else:  # another writer archived meanwhile: compare again under the lock
                latest = self._latest(session, [_key(p.capture) for p in prepared])
            digests = {k: v.content_sha256 for k, v in latest.items()}
            fresh: list[_Prepared] = []
            for p in prepared:
                key = _key(p.capture)
                if digests.get(key) != p.digest:
                    fresh.append(p)
                    digests[key] = p.digest
            if not fresh:
                return []
            first_seq = (head.seq + 1) if head else 1
            rows = []
            in_batch: dict[Key, int] = {}  # item -> index of its newest row in this batch
            for i, p in enumerate(fresh):
                key = _key(p.capture)
                rows.append(self._new_row(p, now, latest.get(key), first_seq + i))
                latest[key] = Latest(
                    -1,
                    rows[i]["version"],
                    p.digest,
                    p.capture.item.state,
                    p.capture.item.text,
                    p.notice_id,
                    p.lang,
                )
                if key in in_batch:
                    rows[i]["previous_record_id"] = None  # set once the earlier row has an id
                in_batch[key] = i
            conn = session.connection()  # Core statements: no ORM objects on this path
            # One executemany, then the ids by ledger sequence (unique, indexed, ours under
            # the ledger lock): SQLite would otherwise insert row by row to keep RETURNING
            # in parameter order.
            insert_rows(conn, _RECORDS, rows)
            last_seq = first_seq + len(rows) - 1
            index_new_records(conn, first_seq, last_seq)
            by_seq: dict[int, int] = {
                seq: rid
                for seq, rid in conn.execute(
                    sa.select(_RECORDS.c.ledger_seq, _RECORDS.c.id).where(
                        _RECORDS.c.ledger_seq.between(first_seq, last_seq)
                    )
                )
            }
            ids = [by_seq[row["ledger_seq"]] for row in rows]
            links = []
            newest: dict[Key, int] = {}
            for i, p in enumerate(fresh):
                key = _key(p.capture)
                if key in newest:
                    rows[i]["previous_record_id"] = newest[key]
                    links.append({"rid": ids[i], "prev": newest[key]})
                newest[key] = ids[i]
            if links:  # versions of one item that follow each other inside this batch
                conn.execute(
                    sa.update(_RECORDS)
                    .where(_RECORDS.c.id == sa.bindparam("rid"))
                    .values(previous_record_id=sa.bindparam("prev")),
                    links,
                )
            for record_id, row in zip(ids, rows, strict=True):
                row["id"] = record_id
            lines: list[bytes] = []
            entries = ledger.chain(
                kind="record",
                at=now,
                links=[(row["id"], row["object_sha256"]) for row in rows],
                previous=head,
                lines=lines,
            )
            media_rows = [
                {
                    "record_id": row["id"],
                    "url": m["url"],
                    "sha256": m["sha256"],
                    "mime_type": m["mime_type"],
                    "size": m["size"],
                    "error": m["error"],
                }
                for row, p in zip(rows, fresh, strict=True)
                for m in p.media
            ]
            insert_rows(conn, _MEDIA, media_rows)
            insert_rows(conn, _LEDGER, entries)
            audit.record_events(
                session,
                audit.events_of(
                    at=now,
                    actor=actor,
                    action="captured",
                    object_type="record",
                    objects=[
                        (
                            row["id"],
                            {
                                "series": row["series"],
                                "sha256": row["object_sha256"],
                                "remote_id": row["remote_id"],
                                "version": row["version"],
                                "change": row["change"],
                            },
                        )
                        for row in rows
                    ],
                ),
            )
            hooks = subscribers(session, "comment.captured")
            if hooks:  # the payloads are built only when a webhook will carry them
                record_events(
                    session,
                    "comment.captured",
                    [_comment_event(row) for row in rows if row["kind"] == "comment"],
                    at=now,
                    to=hooks,
                )
            before_commit()
        ledger.mirror(self.store, entries, lines)
        self.store.flush()
        by_prepared = {id(p): row for p, row in zip(fresh, rows, strict=True)}
        return [by_prepared.get(id(p)) for p in prepared]

    def _new_row(
        self, p: _Prepared, now: datetime, before: Latest | None, seq: int
    ) -> dict[str, Any]:
        item = p.capture.item
        return dict(
            account=p.capture.account,
            platform=p.capture.platform,
            kind=item.kind,
            remote_id=item.remote_id,
            parent_id=item.parent_id,
            thread_id=item.thread_id,
            version=(before.version + 1) if before else 1,
            previous_record_id=before.record_id if before else None,
            change=describe_change(before, item.state, item.text),
            state=item.state,
            author=item.author,
            text=item.text,
            url=item.url,
            posted_at=item.posted_at,
            captured_at=now,
            series=p.series,
            retain_until=p.until,
            legal_hold=p.permanent,
            training=p.capture.training,
            content_sha256=p.digest,
            object_sha256=p.object_sha,
            raw_sha256=p.raw_sha,
            size=p.size,
            notice_id=p.notice_id,
            ledger_seq=seq,
            lang=p.lang,
        )


@dataclass(frozen=True)
class _Prepared:
    capture: Capture
    digest: str
    series: str
    until: datetime
    permanent: bool
    object_sha: str
    raw_sha: str | None
    size: int
    media: list[dict[str, Any]]
    notice_id: int | None = None
    lang: str | None = None


def _comment_event(row: dict[str, Any]) -> dict[str, Any]:
    """A new version of a visitor's comment or reply as an event: where it is and what
    changed, never its text or author."""
    keys = "account platform remote_id thread_id parent_id version change state url notice_id"
    return {
        "record": row["id"],
        **{k: row[k] for k in keys.split()},
        "captured_at": iso(row["captured_at"]),
    }


def keep_wire(
    engine: Engine,
    store: WormStore,
    wire: Sequence[Exchange],
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> str:
    """Store ``wire`` and the new records ``rows`` captured from it as one WARC object,
    retained as long as the longest of them (held when one of them is permanent), and refer
    each record to it (a ``record_media`` row of type ``application/warc``, so retention,
    holds, disposition and verify follow the record as for its images). Returns its sha256.
    """
    data = warc.warc_file(
        wire, [warc.Captured(r["id"], r["kind"], r["remote_id"]) for r in rows], now
    )
    urls = [wire[i].url for i in warc.sources([r["remote_id"] for r in rows], wire)]
    until = max(r["retain_until"] for r in rows)
    obj = NewObject(data, until, any(r["legal_hold"] for r in rows))
    put_retained(store, [obj])
    store.flush()
    with session_scope(engine) as session:
        session.connection().execute(
            _MEDIA.insert(),
            [
                {
                    "record_id": r["id"],
                    "url": url,
                    "sha256": obj.sha256,
                    "mime_type": warc.MIME_TYPE,
                    "size": len(data),
                    "error": None,
                }
                for r, url in zip(rows, urls, strict=True)
            ],
        )
    return obj.sha256


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a batch (when it was running).

    A batch of 1,000 records allocates tens of thousands of short-lived dicts, lists and
    tuples; each 700 allocations the collector walks the youngest objects, and every tenth
    pass an older generation, in a long-running process thousands of objects that outlive the
    batch. None of a batch's objects form cycles that need collecting before it ends, so the
    collector resumes, with whatever it would have found, when the batch returns (about 25 us
    of CPU per record, a sixth of the batch's Python time, measured by
    ``bench/bench_publish.py``). Reference counting still frees each object as it goes.
    """
    if not gc.isenabled():  # already paused (another batch, or the embedding program)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Background:
    """``target(*args)`` on a thread of its own; :meth:`wait` joins it and raises its error."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(target, args), name="archive-objects", daemon=True
        )
        self._thread.start()

    def _run(self, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            target(*args)
        except BaseException as e:  # handed to the waiting thread
            self._error = e

    def join(self) -> None:
        self._thread.join()

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def put_retained(store: WormStore, objects: Sequence[NewObject]) -> None:
    """Store ``objects``; one already stored keeps the longer of its retention and ours."""
    for new, (digest, result) in zip(objects, store.put_objects(objects), strict=True):
        if not result.created:
            info = store.head(object_key(digest))
            if info is not None and info.retain_until < new.retain_until:
                store.extend_retention(object_key(digest), new.retain_until)


def _chunks(keys: set[Key], size: int = 1000) -> list[tuple[str, str, list[str]]]:
    """(account, kind, remote ids) in chunks, so that each look-up is a search of the
    unique index on (account, kind, remote id, version) for each id, never a walk of every
    version of the account; a capture batch of the default size (``[capture] batch_items``,
    1,000) of one account and kind is one query."""
    by_item: dict[tuple[str, str], set[str]] = {}
    for account, kind, remote_id in keys:
        by_item.setdefault((account, kind), set()).add(remote_id)
    out: list[tuple[str, str, list[str]]] = []
    for (account, kind), ids in sorted(by_item.items()):
        ordered = sorted(ids)
        out.extend((account, kind, ordered[i : i + size]) for i in range(0, len(ordered), size))
    return out


def _key(capture: Capture) -> Key:
    return (capture.account, capture.item.kind, capture.item.remote_id)


def _record_key(record: Record) -> Key:
    return (record.account, record.kind, record.remote_id)


def _changes(
    captures: Sequence[Capture], hashes: list[str], latest: dict[Key, str]
) -> list[tuple[Capture, str]]:
    """The captures whose content differs from the item's latest version, in order (a
    capture is compared with the one before it in the batch when there is one)."""
    current = dict(latest)
    out = []
    for capture, digest in zip(captures, hashes, strict=True):
        key = _key(capture)
        if current.get(key) != digest:
            current[key] = digest
            out.append((capture, digest))
    return out
