"""The ledger: a hash chain over everything archived, in the database and mirrored to the store.

Entry ``n`` holds the hash of entry ``n-1``; its own hash covers its canonical JSON. Changing,
removing, reordering or inserting an entry breaks the chain where it happened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.canonical import canonical_plain
from bulletin.archiver.retention import PERMANENT
from bulletin.archiver.store.base import WormStore
from bulletin.locks import KEY_SQL
from bulletin.models import LedgerEntry

GENESIS = "0" * 64


SEGMENT_PREFIX = "ledger/"


def segment_key(first: int, last: int) -> str:
    """The store key of the mirror segment holding entries ``first`` to ``last``."""
    return f"{SEGMENT_PREFIX}{first:012d}-{last:012d}.jsonl"


def segment_range(key: str) -> tuple[int, int] | None:
    """``(first, last)`` of a segment key, or None for anything else under ``ledger/``."""
    name = key[len(SEGMENT_PREFIX) :].removesuffix(".jsonl")
    first, sep, last = name.partition("-")
    if not sep or not first.isdigit() or not last.isdigit() or not key.endswith(".jsonl"):
        return None
    return int(first), int(last)


def entry_body(entry: LedgerEntry) -> dict[str, Any]:
    """The hashed content of an entry (everything except its own hash)."""
    return {
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
        "kind": entry.kind,
        "record_id": entry.record_id,
        "object_sha256": entry.object_sha256,
        "recorded_at": entry.recorded_at.isoformat(),
    }


def compute_hash(entry: LedgerEntry) -> str:
    return hashlib.sha256(canonical_plain(entry_body(entry))).hexdigest()


def mirror_bytes(entry: LedgerEntry) -> bytes:
    return canonical_plain({**entry_body(entry), "entry_hash": entry.entry_hash})


def lock(session: Session) -> None:
    """Take the ledger's append lock for the rest of the transaction.

    SQLite transactions are already exclusive (BEGIN IMMEDIATE); PostgreSQL takes an advisory
    transaction lock.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(sa.text(f"SELECT pg_advisory_xact_lock({KEY_SQL})"), {"name": "ledger"})


def head(session: Session) -> LedgerEntry | None:
    return session.exec(select(LedgerEntry).order_by(col(LedgerEntry.seq).desc()).limit(1)).first()


def append(
    session: Session,
    *,
    kind: str,
    at: datetime,
    record_id: int | None = None,
    object_sha256: str | None = None,
) -> LedgerEntry:
    """Add the next entry to the session; call :func:`lock` first in the same transaction."""
    built = build(
        kind=kind,
        at=at,
        record_id=record_id,
        object_sha256=object_sha256,
        previous=head(session),
    )
    entry = LedgerEntry(**built.model_dump())  # instrumented, so the session can add it
    session.add(entry)
    return entry


def build(
    *,
    kind: str,
    at: datetime,
    record_id: int | None,
    object_sha256: str | None,
    previous: LedgerEntry | None,
) -> LedgerEntry:
    """The entry that follows ``previous`` (None: the first entry), with its hash."""
    fields: dict[str, Any] = {
        "seq": (previous.seq + 1) if previous else 1,
        "prev_hash": previous.entry_hash if previous else GENESIS,
        "kind": kind,
        "record_id": record_id,
        "object_sha256": object_sha256,
        "recorded_at": at,
    }
    draft = LedgerEntry.model_construct(entry_hash="", **fields)
    # uninstrumented (fast, for bulk inserts); append() turns it into a session object
    return LedgerEntry.model_construct(entry_hash=compute_hash(draft), **fields)


def mirror(store: WormStore, entries: Sequence[LedgerEntry]) -> str | None:
    """Write consecutive ``entries`` as one mirror segment (idempotent); returns its key.

    One line per entry, each the canonical JSON of the entry with its hash.
    """
    if not entries:
        return None
    key = segment_key(entries[0].seq, entries[-1].seq)
    store.put(
        key,
        b"".join(mirror_bytes(e) + b"\n" for e in entries),
        retain_until=entries[-1].recorded_at + PERMANENT,
        legal_hold=True,
    )
    return key


def mirrored_through(store: WormStore) -> int:
    """The highest sequence number the store's mirror segments cover (0: none)."""
    last = 0
    for key in store.keys(SEGMENT_PREFIX):
        found = segment_range(key)
        if found is not None:
            last = max(last, found[1])
    return last


def repair_mirror(session: Session, store: WormStore, batch: int = 1000) -> int:
    """Mirror the entries after the last mirrored one (a crash after commit). Returns the count."""
    done = mirrored_through(store)
    written = 0
    while True:
        rows = session.exec(
            select(LedgerEntry)
            .where(col(LedgerEntry.seq) > done)
            .order_by(col(LedgerEntry.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        mirror(store, rows)
        written += len(rows)
        done = rows[-1].seq
    if written:
        store.flush()
    return written


CHECKPOINT_PREFIX = "checkpoints/"


def write_checkpoint(session: Session, store: WormStore, now: datetime) -> str | None:
    """Record the ledger's head (sequence, hash, count, time) as its own store object.

    A later rewrite of history, or a truncation, contradicts a checkpoint that ``verify``
    reads back. Returns the key, or None when the ledger is empty.
    """
    last = head(session)
    if last is None:
        return None
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    key = f"{CHECKPOINT_PREFIX}{stamp}-{last.seq:012d}.json"
    body = canonical_plain(
        {"head_seq": last.seq, "head_hash": last.entry_hash, "at": now.isoformat()}
    )
    store.put(key, body, retain_until=now + PERMANENT, legal_hold=True)
    store.flush()
    return key
