"""Archiving: a captured item becomes a snapshot object in the WORM store, an index row and a
ledger entry, in that order.

Order of a batch (group commit): every object is put, then the store is flushed once, then one
database transaction adds the index rows, their ledger entries and audit events, then the
ledger entries are mirrored into the store. A crash at any point leaves either nothing indexed
(objects without rows are harmless and re-used on the next try, being content-addressed) or
a complete, durable record whose mirror :func:`bulletin.archiver.ledger.repair_mirror` restores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import ledger
from bulletin.archiver.canonical import canonical, canonical_plain
from bulletin.archiver.retention import retain_until, series_for
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.connectors.base import RemoteItem
from bulletin.db import session_scope
from bulletin.models import LedgerEntry, Record

SNAPSHOT_SCHEMA = "bulletin.snapshot/1"
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_LEDGER: sa.Table = LedgerEntry.__table__  # type: ignore[attr-defined]
_LEDGER_COLUMNS = tuple(c.name for c in _LEDGER.columns)


@dataclass(frozen=True)
class Capture:
    """One item seen on a platform, to be archived."""

    account: str
    platform: str
    item: RemoteItem
    training: bool = False
    notice_id: int | None = None
    priority: str | None = None


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

    def archive(self, captures: Sequence[Capture], actor: str = "bulletin") -> list[Record]:
        """Archive ``captures``; returns one record per capture (existing or new), in order.

        An item whose content is already archived is not archived again.
        """
        return self.archive_batch(captures, actor)[0]

    def archive_batch(
        self, captures: Sequence[Capture], actor: str = "bulletin"
    ) -> tuple[list[Record], int]:
        """Like :meth:`archive`, and also how many records are new."""
        if not captures:
            return [], 0
        now = self.clock.now()
        hashes = [content_hash(c.item) for c in captures]
        with Session(self.engine, expire_on_commit=False) as session:
            existing = self._existing(session, captures, hashes)
        pending = [
            (c, h) for c, h in zip(captures, hashes, strict=True) if (c.account, h) not in existing
        ]
        prepared = [self._store_objects(c, h, now) for c, h in _unique(pending)]
        if prepared:
            self.store.flush()
        created = self._index(prepared, now, actor) if prepared else {}
        out: list[Record] = []
        for capture, digest in zip(captures, hashes, strict=True):
            key = (capture.account, digest)
            out.append(existing[key] if key in existing else created[key])
        return out, len(created)

    def _existing(
        self, session: Session, captures: Sequence[Capture], hashes: list[str]
    ) -> dict[tuple[str, str], Record]:
        found: dict[tuple[str, str], Record] = {}
        for start in range(0, len(hashes), 500):
            chunk = set(hashes[start : start + 500])
            rows = session.exec(select(Record).where(Record.content_sha256.in_(chunk)))  # type: ignore[attr-defined]
            for row in rows:
                found[(row.account, row.content_sha256)] = row
        return found

    def _put(self, data: bytes, until: datetime, hold: bool) -> str:
        digest, result = self.store.put_object(data, retain_until=until, legal_hold=hold)
        if not result.created:
            info = self.store.head(object_key(digest))
            if info is not None and info.retain_until < until:
                self.store.extend_retention(object_key(digest), until)
        return digest

    def _store_objects(self, capture: Capture, digest: str, now: datetime) -> _Prepared:
        item = capture.item
        series = series_for(item.kind, capture.priority)
        until, permanent = retain_until(
            self.settings, series, posted_at=item.posted_at, captured_at=now
        )
        raw_sha = self._put(item.raw, until, permanent) if item.raw else None
        snapshot = canonical(
            {
                "schema": SNAPSHOT_SCHEMA,
                "account": capture.account,
                "platform": capture.platform,
                "training": capture.training,
                "captured_at": now.isoformat(),
                "series": series,
                "content_sha256": digest,
                "raw_sha256": raw_sha,
                "notice_id": capture.notice_id,
                "item": item.normalised(),
            }
        )
        object_sha = self._put(snapshot, until, permanent)
        return _Prepared(
            capture, digest, series, until, permanent, object_sha, raw_sha, len(snapshot)
        )

    def _index(
        self, prepared: list[_Prepared], now: datetime, actor: str
    ) -> dict[tuple[str, str], Record]:
        """One transaction, set-based: records, their ledger entries and audit events."""
        created: dict[tuple[str, str], Record] = {}
        with session_scope(self.engine) as session:
            ledger.lock(session)
            again = self._existing(
                session, [p.capture for p in prepared], [p.digest for p in prepared]
            )
            for p in prepared:  # another instance may have archived some meanwhile
                if (p.capture.account, p.digest) in again:
                    created[(p.capture.account, p.digest)] = again[(p.capture.account, p.digest)]
            fresh = [p for p in prepared if (p.capture.account, p.digest) not in again]
            if not fresh:
                return created
            head = ledger.head(session)
            first_seq = (head.seq + 1) if head else 1
            versions = self._next_versions(session, fresh)
            rows = [self._new_row(p, now, versions, first_seq + i) for i, p in enumerate(fresh)]
            # Core inserts (not the ORM's bulk path): the same rows, a fraction of the overhead
            ids = (
                session.execute(
                    sa.insert(_RECORDS).returning(_RECORDS.c.id, sort_by_parameter_order=True),
                    rows,
                )
                .scalars()
                .all()
            )
            records = []
            entries = []
            previous = head
            for row, record_id, p in zip(rows, ids, fresh, strict=True):
                # model_construct: the values are ours and typed; validating each row would
                # cost more than the rest of indexing together.
                record = Record.model_construct(id=record_id, **row)
                records.append(record)
                previous = ledger.build(
                    kind="record",
                    at=now,
                    record_id=record_id,
                    object_sha256=p.object_sha,
                    previous=previous,
                )
                entries.append(previous)
                created[(p.capture.account, p.digest)] = record
            session.execute(
                sa.insert(_LEDGER),
                [{name: getattr(e, name) for name in _LEDGER_COLUMNS} for e in entries],
            )
            audit.record_events(
                session,
                [
                    audit.event(
                        at=now,
                        actor=actor,
                        action="captured",
                        object_type="record",
                        object_id=r.id or 0,
                        series=r.series,
                        sha256=r.object_sha256,
                        remote_id=r.remote_id,
                    )
                    for r in records
                ],
            )
        ledger.mirror(self.store, entries)
        self.store.flush()
        return created

    def _next_versions(
        self, session: Session, fresh: list[_Prepared]
    ) -> dict[tuple[str, str, str], int]:
        """Highest stored version per (account, kind, remote id) in the batch."""
        found: dict[tuple[str, str, str], int] = {}
        ids = sorted({p.capture.item.remote_id for p in fresh})
        for start in range(0, len(ids), 500):
            rows = session.execute(
                sa.select(
                    col(Record.account),
                    col(Record.kind),
                    col(Record.remote_id),
                    sa.func.max(col(Record.version)),
                )
                .where(col(Record.remote_id).in_(ids[start : start + 500]))
                .group_by(col(Record.account), col(Record.kind), col(Record.remote_id))
            )
            for account, kind, remote_id, version in rows:
                found[(account, kind, remote_id)] = int(version)
        return found

    def _new_row(
        self, p: _Prepared, now: datetime, versions: dict[tuple[str, str, str], int], seq: int
    ) -> dict[str, Any]:
        item = p.capture.item
        key = (p.capture.account, item.kind, item.remote_id)
        versions[key] = versions.get(key, 0) + 1
        return dict(
            account=p.capture.account,
            platform=p.capture.platform,
            kind=item.kind,
            remote_id=item.remote_id,
            parent_id=item.parent_id,
            thread_id=item.thread_id,
            version=versions[key],
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
            notice_id=p.capture.notice_id,
            ledger_seq=seq,
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


def _unique(pairs: list[tuple[Capture, str]]) -> list[tuple[Capture, str]]:
    """Drop repeats of the same content within one batch."""
    seen: set[tuple[str, str]] = set()
    out = []
    for capture, digest in pairs:
        if (capture.account, digest) not in seen:
            seen.add((capture.account, digest))
            out.append((capture, digest))
    return out
