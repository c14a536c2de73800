"""Rebuild the database's archive index from the WORM store alone.

The store is the record of truth: its ledger segments give every entry in order, and each
record entry names a snapshot object that holds everything the index row needs. Retention and
hold come from the store's own metadata. Records destroyed under the retention schedule come
back from the certificates of destruction (ledgered, permanent), marked disposed, with their
batches. A lost or damaged database never means a lost archive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import decisions, ledger
from bulletin.archiver.archive import Latest, carried, describe_change, snapshot_language
from bulletin.archiver.holds import refresh_holds
from bulletin.archiver.search import index_new_records
from bulletin.archiver.store.base import (
    OBJECT_PREFIX,
    ObjectInfo,
    WormStore,
    digest_of_key,
    object_key,
)
from bulletin.archiver.warc import MIME_TYPE as WARC_MIME_TYPE
from bulletin.archiver.warc import targets as warc_targets
from bulletin.db import reset_id_sequences, session_scope
from bulletin.errors import IntegrityError, NotFound, Refused
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import (
    Account,
    DispositionBatch,
    DispositionItem,
    HoldRecord,
    LedgerEntry,
    Record,
    RecordMedia,
    Redaction,
)


def _columns(model: Any) -> list[Any]:
    return list(model.__table__.columns)


@dataclass
class Destroyed:
    """What the certificates say of destroyed records and their batches."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)  # record id -> its line
    batch_of: dict[int, int] = field(default_factory=dict)  # record id -> batch id
    approved_at: dict[int, datetime] = field(default_factory=dict)  # batch id -> when
    batches: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, entry: LedgerEntry, body: dict[str, Any]) -> int:
        """Take in the certificate ``body`` that the ledger's ``entry`` names; returns its
        batch id."""
        batch_id = int(body["batch"])
        approved = datetime.fromisoformat(body["approved_at"])
        self.approved_at[batch_id] = approved
        self.batches.append(
            {
                "id": batch_id,
                "state": "approved",
                "membership_sha256": body["membership_sha256"],
                "record_count": len(body["records"]),
                "listed_by": body["listed_by"],
                "listed_at": datetime.fromisoformat(body["listed_at"]),
                "approved_by": body["approved_by"],
                "approved_at": approved,
                "certificate_sha256": entry.object_sha256,
                "certificate_seq": entry.seq,
                "completed_at": approved,
            }
        )
        for line in body["records"]:
            self.records[int(line["record_id"])] = line
            self.batch_of[int(line["record_id"])] = batch_id
            if line.get("retain_until"):
                self.items.append(
                    {
                        "batch_id": batch_id,
                        "record_id": int(line["record_id"]),
                        "series": line["series"],
                        "retain_until": datetime.fromisoformat(line["retain_until"]),
                        "object_sha256": line["object_sha256"],
                        "raw_sha256": line.get("raw_sha256"),
                    }
                )
        return batch_id


def _entries(store: WormStore) -> Iterator[tuple[str, LedgerEntry]]:
    for key in store.keys(ledger.SEGMENT_PREFIX):
        if ledger.segment_range(key) is None:
            continue
        for line in store.get(key, verify=False).splitlines():
            if line.strip():
                yield key, LedgerEntry.model_validate(json.loads(line))


def _destroyed(store: WormStore, report: RebuildReport) -> Destroyed:
    """Read every certificate of destruction the ledger names."""
    found = Destroyed()
    for _, entry in _entries(store):
        if entry.kind != "certificate" or not entry.object_sha256:
            continue
        try:
            body = json.loads(store.get(object_key(entry.object_sha256), verify=True))
        except (NotFound, IntegrityError) as e:
            report.problems.append(f"certificate in ledger entry {entry.seq}: {e}")
            continue
        found.add(entry, body)
    return found


@dataclass
class RebuildReport:
    entries: int = 0
    records: int = 0
    holds: int = 0  # restored from the store (the database had lost them)
    redactions: int = 0
    requests: int = 0
    warcs: int = 0  # WARC objects linked to their records again from the store
    problems: list[str] = field(default_factory=list)


def rebuild_index(
    engine: Engine,
    store: WormStore,
    now: datetime,
    replace: bool = False,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
    time_zone: str | None = None,
    notice_floor: int = 0,
) -> RebuildReport:
    """Recreate the ``records`` and ``ledger`` rows from the store. With ``time_zone`` (the
    agency's, which hold queries' dates are in), the open holds brought back from the store
    get their records attached again.

    Ids go on above every one the store knows (records in the ledger, notices and deliveries
    of archived posts, holds, redactions, requests, batches, Bates ranges) and notices above
    ``notice_floor`` (the highest in the platforms' delivery keys), so that none is given
    twice after a restore or a lost database.

    :raises Refused: the index is not empty and ``replace`` is False.
    :raises IntegrityError: the store's ledger does not chain; nothing is written past it.
    """
    with session_scope(engine) as session:
        present = session.exec(select(sa.func.count()).select_from(LedgerEntry)).one()
        if present and not replace:
            raise Refused(
                f"the archive index already holds {present} ledger entries",
                remedy="replace",
            )
        # rows that name records by id: kept aside and put back once the records are back
        # (ids come from the ledger, so they are the same)
        kept: dict[Any, list[dict[str, Any]]] = {
            model: [row._asdict() for row in session.execute(sa.select(*_columns(model)))]
            for model in (HoldRecord, Redaction)
        }
        # the WARC a record refers to is not named by its snapshot: its row is kept aside too
        kept[RecordMedia] = [
            {k: v for k, v in row._asdict().items() if k != "id"}
            for row in session.execute(
                sa.select(*_columns(RecordMedia)).where(
                    col(RecordMedia.mime_type) == WARC_MIME_TYPE
                )
            )
        ]
        session.execute(sa.delete(HoldRecord))
        session.execute(sa.delete(Redaction))
        session.execute(sa.delete(DispositionItem))
        session.execute(sa.delete(DispositionBatch))
        session.execute(sa.delete(RecordMedia))
        session.execute(sa.delete(Record))
        session.execute(sa.delete(LedgerEntry))
    report = RebuildReport()
    # A certificate comes after the records it names in the ledger, so the segments are read
    # once for the certificates first: a destroyed record then takes its place (and its
    # version number) in order. Segments are small beside the objects read below.
    destroyed = _destroyed(store, report)
    versions: dict[tuple[str, str, str], Latest] = {}
    entries: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    prev_hash = ledger.GENESIS
    expected = 1
    last_record_id = 0
    seen: dict[str, int] = {}  # table -> the highest id of it the snapshots name
    for key, entry in _entries(store):
        if entry.seq != expected or entry.prev_hash != prev_hash:
            raise IntegrityError(
                f"ledger {entry.seq} in {key} does not follow entry {expected - 1}"
            )
        if ledger.compute_hash(entry) != entry.entry_hash:
            raise IntegrityError(f"ledger {entry.seq} in {key} does not match its hash")
        entries.append(entry.model_dump())
        last_record_id = max(last_record_id, entry.record_id or 0)
        if entry.kind == "record" and entry.record_id is not None and entry.object_sha256:
            row = _record_row(store, entry, versions, report, destroyed, seen)
            if row is not None:
                media.extend(row.pop("media"))
                records.append(row)
        prev_hash, expected = entry.entry_hash, entry.seq + 1
        if len(entries) >= batch:
            _flush(engine, entries, records, media, report, progress)
    _flush(engine, entries, records, media, report, progress)
    with session_scope(engine) as session:
        if destroyed.batches:
            session.execute(sa.insert(DispositionBatch), destroyed.batches)
        if destroyed.items:
            session.execute(sa.insert(DispositionItem), destroyed.items)
        ids = Record.__table__.c.id  # type: ignore[attr-defined]
        on_record: set[int] = set(session.execute(sa.select(ids)).scalars())
        for model, rows in kept.items():
            back = [row for row in rows if row["record_id"] in on_record]
            report.problems += [
                f"{model.__tablename__}: record {row['record_id']} is gone from the store"
                for row in rows
                if row["record_id"] not in on_record
            ]
            if back:
                session.execute(sa.insert(model), back)
        report.warcs = _link_warcs(session, store, on_record, report)
        restored = decisions.restore(session, store)  # a lost database: from the store
        report.problems += restored.problems
        report.holds, report.redactions = restored.holds, restored.redactions
        report.requests = restored.requests
        _continue_ids(session, last_record_id, notice_floor, seen.get("deliveries", 0))
        _ensure_accounts(session)
        audit.record_event(
            session,
            at=now,
            actor=SYSTEM_ACTOR,
            action="index-rebuilt",
            object_type="archive",
            object_id="index",
            entries=report.entries,
            records=report.records,
            problems=len(report.problems),
        )
    if report.holds and time_zone is not None:  # their records, attached again by their queries
        refresh_holds(engine, store, now, time_zone)
    return report


def _link_warcs(
    session: Session, store: WormStore, on_record: set[int], report: RebuildReport
) -> int:
    """Link each record to the WARC object that carried it, found in the store: no snapshot
    names its WARC, so after the database was lost every object the index does not know
    (snapshots, raw responses, images, WARCs kept aside by ``--replace``) is read, and each
    WARC's metadata names its records. Returns how many WARC objects were linked."""
    known: set[str] = set()
    for column in (col(Record.object_sha256), col(Record.raw_sha256), col(RecordMedia.sha256)):
        known.update(v for v in session.execute(sa.select(column).distinct()).scalars() if v)
    rows: list[dict[str, Any]] = []
    linked = 0
    for key in store.keys(OBJECT_PREFIX):
        digest = digest_of_key(key)
        if digest is None or digest in known:
            continue
        try:
            data = store.get(key, verify=True)
        except (NotFound, IntegrityError) as e:
            report.problems.append(f"{key}: {e}")
            continue
        if not data.startswith(b"\x1f\x8b"):  # gzip: what every WARC object is
            continue
        try:
            named = warc_targets(data)
        except ValueError:
            continue
        found = [
            {
                "record_id": record_id,
                "url": url,
                "sha256": digest,
                "mime_type": WARC_MIME_TYPE,
                "size": len(data),
                "error": None,
            }
            for record_id, url in sorted(named.items())
            if record_id in on_record
        ]
        rows += found
        linked += bool(found)
    if rows:
        session.execute(sa.insert(RecordMedia), rows)
    return linked


def _record_row(
    store: WormStore,
    entry: LedgerEntry,
    versions: dict[tuple[str, str, str], Latest],
    report: RebuildReport,
    destroyed: Destroyed,
    seen: dict[str, int],
) -> dict[str, Any] | None:
    """The index row of ``entry``'s record (None when its object is gone or damaged: a
    problem); the delivery id its snapshot names raises ``seen["deliveries"]``."""
    assert entry.object_sha256 is not None and entry.record_id is not None
    key = object_key(entry.object_sha256)
    try:
        data = store.get(key, verify=True)
    except NotFound as e:
        if entry.record_id in destroyed.records:
            return destroyed_row(entry, versions, destroyed)
        report.problems.append(f"record {entry.record_id}: {e}")
        return None
    except IntegrityError as e:
        report.problems.append(f"record {entry.record_id}: {e}")
        return None
    snapshot = json.loads(data)
    item = snapshot["item"]
    delivery = (item.get("extra") or {}).get("delivery_id")
    if isinstance(delivery, int) and not isinstance(delivery, bool):
        seen["deliveries"] = max(seen.get("deliveries", 0), delivery)
    ident = (snapshot["account"], item["kind"], item["remote_id"])
    row = snapshot_row(
        snapshot,
        len(data),
        record_id=entry.record_id,
        seq=entry.seq,
        object_sha256=entry.object_sha256,
        info=store.head(key),
        before=versions.get(ident),
    )
    versions[ident] = Latest(
        entry.record_id,
        row["version"],
        row["content_sha256"],
        row["state"],
        row["text"],
        row["notice_id"],
        row["lang"],
    )
    return row


def snapshot_row(
    snapshot: dict[str, Any],
    size: int,
    *,
    record_id: int | None,
    seq: int | None,
    object_sha256: str,
    info: ObjectInfo | None = None,
    before: Latest | None = None,
) -> dict[str, Any]:
    """The index row (with its ``media`` rows) of record ``record_id``, ledgered as entry
    ``seq``, from its snapshot object ``object_sha256`` (``size`` bytes, parsed), the store's
    retention and hold of it (``info``), and the item's version before it (``before``, None
    for the first), whose notice and language a version that names none carries (see
    :func:`~bulletin.archiver.archive.carried`: also for versions archived before snapshots
    named what they carry)."""
    item = snapshot["item"]
    notice_id, lang = carried(snapshot.get("notice_id"), snapshot_language(snapshot), before)
    state, text = item.get("state", "visible"), item.get("text", "")
    posted = item.get("posted_at")
    return {
        "id": record_id,
        "account": snapshot["account"],
        "platform": snapshot["platform"],
        "kind": item["kind"],
        "remote_id": item["remote_id"],
        "parent_id": item.get("parent_id"),
        "thread_id": item.get("thread_id"),
        "version": (before.version + 1) if before else 1,
        "previous_record_id": before.record_id if before else None,
        "change": describe_change(before, state, text),
        "state": state,
        "author": item.get("author"),
        "text": text,
        "url": item.get("url"),
        "posted_at": datetime.fromisoformat(posted) if posted else None,
        "captured_at": datetime.fromisoformat(snapshot["captured_at"]),
        "series": snapshot["series"],
        "retain_until": info.retain_until if info else None,
        "legal_hold": info.legal_hold if info else False,
        "training": bool(snapshot.get("training")),
        "content_sha256": snapshot["content_sha256"],
        "object_sha256": object_sha256,
        "raw_sha256": snapshot.get("raw_sha256"),
        "size": size,
        "notice_id": notice_id,
        "ledger_seq": seq,
        "lang": lang,
        "disposed_at": None,
        "disposal_batch_id": None,
        "media": [
            {
                "record_id": record_id,
                "url": m["url"],
                "sha256": m.get("sha256"),
                "mime_type": m.get("mime_type"),
                "size": m.get("size", 0),
                "error": m.get("error"),
            }
            for m in snapshot.get("media", [])
        ],
    }


def destroyed_row(
    entry: LedgerEntry, versions: dict[tuple[str, str, str], Latest], destroyed: Destroyed
) -> dict[str, Any]:
    """The index row of a destroyed record, from its certificate: what it was, not what it
    said (its text and author went with it)."""
    assert entry.record_id is not None
    line = destroyed.records[entry.record_id]
    batch_id = destroyed.batch_of[entry.record_id]
    ident = (line["account"], line["kind"], line["remote_id"])
    before = versions.get(ident)
    versions[ident] = Latest(entry.record_id, int(line["version"]), line["content_sha256"], "", "")
    posted = line.get("posted_at")
    until = line.get("retain_until")
    return {
        "id": entry.record_id,
        "account": line["account"],
        "platform": line["platform"],
        "kind": line["kind"],
        "remote_id": line["remote_id"],
        "parent_id": None,
        "thread_id": None,
        "version": int(line["version"]),
        "previous_record_id": before.record_id if before else None,
        "change": "edited" if before else "new",
        "state": "visible",
        "author": None,
        "text": "",
        "url": None,
        "series": line["series"],
        "posted_at": datetime.fromisoformat(posted) if posted else None,
        "captured_at": datetime.fromisoformat(line["captured_at"]),
        "retain_until": datetime.fromisoformat(until) if until else None,
        "content_sha256": line["content_sha256"],
        "object_sha256": line["object_sha256"],
        "raw_sha256": line.get("raw_sha256"),
        "legal_hold": False,
        "training": False,
        "size": 0,
        "notice_id": None,
        "ledger_seq": entry.seq,
        "disposed_at": destroyed.approved_at[batch_id],
        "disposal_batch_id": batch_id,
        "media": [],
    }


def _flush(
    engine: Engine,
    entries: list[dict[str, Any]],
    records: list[dict[str, Any]],
    media: list[dict[str, Any]],
    report: RebuildReport,
    progress: Callable[[int], None] | None,
) -> None:
    if not entries:
        return
    with session_scope(engine) as session:
        session.execute(sa.insert(LedgerEntry), entries)
        if records:
            session.execute(sa.insert(Record), records)
            index_new_records(session.connection(), entries[0]["seq"], entries[-1]["seq"])
        if media:
            session.execute(sa.insert(RecordMedia), media)
    report.entries += len(entries)
    report.records += len(records)
    entries.clear()
    records.clear()
    media.clear()
    if progress:
        progress(report.entries)


def _continue_ids(
    session: Session, highest_record: int, notice_floor: int, delivery_floor: int
) -> None:
    """Next ids above the store's: records above every ledger entry's (also one whose object
    is gone), notices above every archived post's and ``notice_floor``, deliveries above
    every archived post's (``delivery_floor``)."""
    archived = session.exec(select(sa.func.max(Record.notice_id))).one() or 0
    reset_id_sequences(
        session,
        ("records", "disposition_batches", "notices", "deliveries"),
        {
            "records": highest_record,
            "notices": max(archived, notice_floor),
            "deliveries": delivery_floor,
        },
    )


def _ensure_accounts(session: Session) -> None:
    """Index rows name accounts; make sure each exists (configuration fills in the rest)."""
    known = set(session.exec(select(Account.name)).all())
    for name, platform in session.exec(
        select(col(Record.account), col(Record.platform)).distinct()
    ).all():
        if name not in known:
            session.add(Account(name=name, platform=platform))
