"""The ledger: a hash chain over everything archived, in the database and mirrored to the store.

Entry ``n`` holds the hash of entry ``n-1``; its own hash covers its canonical JSON. Changing,
removing, reordering or inserting an entry breaks the chain where it happened.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.canonical import canonical
from bulletin.archiver.retention import PERMANENT
from bulletin.archiver.store.base import WormStore
from bulletin.models import LedgerEntry

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x62756C6C  # advisory lock id: serialises appends across instances


def mirror_key(seq: int) -> str:
    return f"ledger/{seq:012d}.json"


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
    return hashlib.sha256(canonical(entry_body(entry))).hexdigest()


def mirror_bytes(entry: LedgerEntry) -> bytes:
    return canonical({**entry_body(entry), "entry_hash": entry.entry_hash})


def lock(session: Session) -> None:
    """Take the ledger's append lock for the rest of the transaction.

    SQLite transactions are already exclusive (BEGIN IMMEDIATE); PostgreSQL takes an advisory
    transaction lock.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


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
    entry = build(
        kind=kind,
        at=at,
        record_id=record_id,
        object_sha256=object_sha256,
        previous=head(session),
    )
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
    last = previous
    entry = LedgerEntry(
        seq=(last.seq + 1) if last else 1,
        prev_hash=last.entry_hash if last else GENESIS,
        entry_hash="",
        kind=kind,
        record_id=record_id,
        object_sha256=object_sha256,
        recorded_at=at,
    )
    entry.entry_hash = compute_hash(entry)
    return entry


def mirror(store: WormStore, entry: LedgerEntry) -> None:
    """Write the entry's mirror object (idempotent)."""
    store.put(
        mirror_key(entry.seq),
        mirror_bytes(entry),
        retain_until=entry.recorded_at + PERMANENT,
        legal_hold=True,
    )


def repair_mirror(session: Session, store: WormStore, limit: int = 10_000) -> int:
    """Mirror the newest entries whose mirror object is missing (a crash after commit).

    Walks back from the head until it meets an entry that is mirrored. Returns the count.
    """
    written = 0
    rows = session.exec(select(LedgerEntry).order_by(col(LedgerEntry.seq).desc()).limit(limit))
    for entry in rows:
        if store.exists(mirror_key(entry.seq)):
            break
        mirror(store, entry)
        written += 1
    if written:
        store.flush()
    return written


def parse_mirror(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(data)
    return value
