"""The proof of one archived record, for anyone to check without Bulletin: the snapshot's
bytes, the record's ledger entry and the chain of entries from it to a checkpoint.

What it proves: the snapshot's sha256 is the ``object_sha256`` the record's ledger entry
names; each entry's hash is the sha256 of its canonical JSON (RFC 8785, as
:func:`bulletin.archiver.ledger.compute_hash`) and names the hash before it; the last entry is
the head a checkpoint (a legally held WORM object) recorded. ``bulletin.portal.verify_proof``
checks all of it with the standard library alone.

The chain ends at the first checkpoint at or after the record's entry, so a proof's size is
bounded by what the ledger grows between checkpoints (an hour by default); a record newer than
the last checkpoint is chained to the ledger's head, and the proof says it has no checkpoint.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver import ledger
from bulletin.archiver.store.base import WormStore, object_key, sha256_hex
from bulletin.errors import NotFound, Refused
from bulletin.models import LedgerEntry, Record

FORMAT = "bulletin-record-proof/1"
#: the longest chain a proof carries (entries); a longer one is refused
MAX_ENTRIES = 100_000


def _checkpoint_seq(key: str) -> int | None:
    """The head sequence a checkpoint key names (``…-000000000042.json``)."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    tail = stem.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _checkpoint_after(store: WormStore, seq: int) -> tuple[str, int] | None:
    """The checkpoint with the lowest head at or after ``seq``: (key, head seq)."""
    best: tuple[str, int] | None = None
    for key in store.keys(ledger.CHECKPOINT_PREFIX):
        head = _checkpoint_seq(key)
        if head is not None and head >= seq and (best is None or head < best[1]):
            best = (key, head)
    return best


def record_proof(engine: Engine, store: WormStore, record: Record, verify_command: str) -> bytes:
    """The proof of ``record`` as JSON bytes (see the module doc).

    :raises NotFound: the record has no ledger entry, or its snapshot is gone (disposed).
    :raises Refused: the chain to the checkpoint is longer than ``MAX_ENTRIES``.
    :raises IntegrityError: the stored snapshot does not match its hash.
    """
    seq = record.ledger_seq
    if seq is None or record.disposed_at is not None:
        raise NotFound(f"record {record.id} has no proof to give")
    snapshot = store.get(object_key(record.object_sha256), verify=True)
    found = _checkpoint_after(store, seq)
    checkpoint: dict[str, Any] | None = None
    with Session(engine) as session:
        last = found[1] if found else ledger.head_seq(session)
        if last - seq + 1 > MAX_ENTRIES:
            raise Refused(
                f"the proof of record {record.id} would chain {last - seq + 1} ledger entries; "
                f"at most {MAX_ENTRIES}"
            )
        entries = session.exec(
            select(LedgerEntry)
            .where(col(LedgerEntry.seq) >= seq, col(LedgerEntry.seq) <= last)
            .order_by(col(LedgerEntry.seq))
        ).all()
        chain = [{**ledger.entry_body(e), "entry_hash": e.entry_hash} for e in entries]
    if found:
        body = store.get(found[0], verify=False)
        checkpoint = {"key": found[0], "base64": base64.b64encode(body).decode()}
    proof = {
        "format": FORMAT,
        "record": {
            "id": record.id,
            "account": record.account,
            "kind": record.kind,
            "remote_id": record.remote_id,
            "version": record.version,
            "ledger_seq": seq,
        },
        "snapshot": {
            "sha256": sha256_hex(snapshot),
            "base64": base64.b64encode(snapshot).decode(),
        },
        "ledger": chain,
        "checkpoint": checkpoint,
        "verify": verify_command,
    }
    return json.dumps(proof, indent=1, ensure_ascii=False).encode()
