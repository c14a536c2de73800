"""The ledger: a hash chain over everything archived, in the database and mirrored to the store.

Entry ``n`` holds the hash of entry ``n-1``; its own hash covers its canonical JSON. Changing,
removing, reordering or inserting an entry breaks the chain where it happened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.canonical import canonical_plain
from bulletin.archiver.retention import PERMANENT
from bulletin.archiver.store.base import WormStore
from bulletin.locks import KEY_SQL
from bulletin.models import LedgerEntry
from bulletin.timeparse import iso_basic

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


_COLUMNS = ("seq", "prev_hash", "kind", "record_id", "object_sha256", "recorded_at", "entry_hash")


def _row(entry: LedgerEntry | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(entry, Mapping):
        return entry
    return {name: getattr(entry, name) for name in _COLUMNS}


def entry_body(entry: LedgerEntry | Mapping[str, Any]) -> dict[str, Any]:
    """The hashed content of an entry (everything except its own hash); ``entry`` is a
    :class:`LedgerEntry` or a row of its columns (as :func:`chain` builds)."""
    row = _row(entry)
    return {
        "seq": row["seq"],
        "prev_hash": row["prev_hash"],
        "kind": row["kind"],
        "record_id": row["record_id"],
        "object_sha256": row["object_sha256"],
        "recorded_at": row["recorded_at"].isoformat(),
    }


def compute_hash(entry: LedgerEntry | Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_plain(entry_body(entry))).hexdigest()


def mirror_bytes(entry: LedgerEntry | Mapping[str, Any]) -> bytes:
    """The entry's line in a mirror segment: its canonical JSON with its hash."""
    row = _row(entry)
    return canonical_plain({**entry_body(row), "entry_hash": row["entry_hash"]})


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


def head_seq(session: Session) -> int:
    """The sequence number of the newest entry (0: the ledger is empty).

    Every archived record is added with its entry, under :func:`lock`: while this number
    stays the same, no record was added.
    """
    return session.exec(select(sa.func.max(col(LedgerEntry.seq)))).one() or 0


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
    # uninstrumented (fast, for bulk inserts); append() turns it into a session object
    return LedgerEntry.model_construct(entry_hash=compute_hash(fields), **fields)


def chain(
    *,
    kind: str,
    at: datetime,
    links: Sequence[tuple[int | None, str | None]],
    previous: LedgerEntry | None,
    lines: list[bytes] | None = None,
) -> list[dict[str, Any]]:
    """The entries that follow ``previous``, one per ``(record_id, object_sha256)`` of
    ``links``, as rows of the ledger table with their hashes (for one bulk insert).

    Each row is what :func:`build` would give for it, chained to the row before it. Each
    entry is canonicalised once: when ``lines`` is given, each entry's mirror line
    (:func:`mirror_bytes`, made from the same bytes its hash covers) is appended to it.
    """
    seq = previous.seq if previous else 0
    prev_hash = previous.entry_hash if previous else GENESIS
    recorded_at = at.isoformat()
    rows: list[dict[str, Any]] = []
    for record_id, digest in links:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "prev_hash": prev_hash,
            "kind": kind,
            "record_id": record_id,
            "object_sha256": digest,
            "recorded_at": at,
        }
        body = canonical_plain({**row, "recorded_at": recorded_at})
        prev_hash = row["entry_hash"] = hashlib.sha256(body).hexdigest()
        if lines is not None:
            lines.append(_with_hash(body, prev_hash))
        rows.append(row)
    return rows


def _with_hash(body: bytes, entry_hash: str) -> bytes:
    """The canonical JSON of an entry with its hash, from that of its body: ``entry_hash``
    sorts before every other member name, so it is the first member."""
    return b'{"entry_hash":"' + entry_hash.encode() + b'",' + body[1:]


def mirror(
    store: WormStore,
    entries: Sequence[LedgerEntry | Mapping[str, Any]],
    lines: Sequence[bytes] | None = None,
) -> str | None:
    """Write consecutive ``entries`` (entries or their rows) as one mirror segment
    (idempotent); returns its key.

    One line per entry, each the canonical JSON of the entry with its hash (``lines``: those
    lines, as :func:`chain` made them).
    """
    if not entries:
        return None
    rows = [_row(e) for e in entries]
    key = segment_key(rows[0]["seq"], rows[-1]["seq"])
    if lines is None:
        lines = [mirror_bytes(r) for r in rows]
    store.put(
        key,
        b"".join(line + b"\n" for line in lines),
        retain_until=rows[-1]["recorded_at"] + PERMANENT,
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


def entry_batches(session: Session, after: int, batch: int) -> Iterator[list[LedgerEntry]]:
    """The ledger's entries after sequence ``after``, in order, ``batch`` at a time."""
    while True:
        rows = list(
            session.exec(
                select(LedgerEntry)
                .where(col(LedgerEntry.seq) > after)
                .order_by(col(LedgerEntry.seq))
                .limit(batch)
            ).all()
        )
        if not rows:
            return
        yield rows
        after = rows[-1].seq


def repair_mirror(session: Session, store: WormStore, batch: int = 1000) -> int:
    """Mirror the entries after the last mirrored one (a crash after commit). Returns the count."""
    written = 0
    for rows in entry_batches(session, mirrored_through(store), batch):
        mirror(store, rows)
        written += len(rows)
    if written:
        store.flush()
    return written


CHECKPOINT_PREFIX = "checkpoints/"
CHECKPOINT_SUFFIX = ".json"  # beside each, its RFC 3161 time stamp may be kept (``.json.tsr``)
#: how often the daemon writes a checkpoint (when the ledger moved since the last one)
CHECKPOINT_INTERVAL = timedelta(hours=1)


def checkpoint_keys(store: WormStore) -> Iterator[str]:
    """The keys of the checkpoints themselves (not of what is kept beside them), in order."""
    return (k for k in store.keys(CHECKPOINT_PREFIX) if k.endswith(CHECKPOINT_SUFFIX))


def write_checkpoint(session: Session, store: WormStore, now: datetime) -> str | None:
    """Record the ledger's head (sequence, hash, count, time) as its own store object.

    A later rewrite of history, or a truncation, contradicts a checkpoint that ``verify``
    reads back. Returns the key, or None when the ledger is empty.
    """
    last = head(session)
    if last is None:
        return None
    key = f"{CHECKPOINT_PREFIX}{iso_basic(now)}-{last.seq:012d}{CHECKPOINT_SUFFIX}"
    body = canonical_plain(
        {"head_seq": last.seq, "head_hash": last.entry_hash, "at": now.isoformat()}
    )
    store.put(key, body, retain_until=now + PERMANENT, legal_hold=True)
    store.flush()
    return key
