"""What a destroyed batch takes from the store: every object of its records that no retained
record and no live notice still refers to, and only once the store would allow it; the
deletions a certificate names, finished after a crash."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import holds
from bulletin.archiver.retention import live_notice_images
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.db import session_scope
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import DispositionBatch, Record, RecordMedia


def still_referenced(session: Session, keys: list[str], members: set[int | None]) -> set[str]:
    """Those of ``keys`` that a record outside the batch, not disposed of, refers to."""
    digests = [k.removeprefix("sha256/") for k in keys]
    kept: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        for column in (col(Record.object_sha256), col(Record.raw_sha256)):
            rows = session.execute(
                sa.select(column, col(Record.id))
                .where(column.in_(chunk))
                .where(col(Record.disposed_at).is_(None))
            ).all()
            kept.update(object_key(d) for d, rid in rows if rid not in members and d)
    return kept


# -- images (media) of the records of a batch ----------------------------------------------


def media_still_referenced(session: Session, keys: list[str], members: set[int | None]) -> set[str]:
    """Those of ``keys`` that an image of a record outside the batch, not disposed of, or of
    a live notice refers to (content addressing: one object may
    be several records' image, or a snapshot's)."""
    digests = [k.removeprefix("sha256/") for k in keys]
    kept: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        rows = session.execute(
            sa.select(col(RecordMedia.sha256), col(RecordMedia.record_id))
            .join(Record, col(Record.id) == col(RecordMedia.record_id))
            .where(col(RecordMedia.sha256).in_(chunk))
            .where(col(Record.disposed_at).is_(None))
        ).all()
        kept.update(object_key(d) for d, rid in rows if rid not in members and d)
    wanted = set(digests)
    kept.update(object_key(d) for _, _, d in live_notice_images(session) if d in wanted)
    return kept


def images_still_locked(store: WormStore, keys: list[str], now: datetime) -> set[str]:
    """Those image ``keys`` the store retains past ``now``: pinned since by a notice that
    will not publish it (cancelled, say), whose retention ran longer than these records'.
    Such an image is kept (the longest retention wins), never a reason to refuse the batch."""
    locked = set()
    for key in keys:
        info = store.head(key)
        if info is not None and info.retain_until > now and not info.legal_hold:
            locked.add(key)
    return locked


def store_blocks(
    engine: Engine, store: WormStore, keys: list[str], members: set[int | None], now: datetime
) -> list[str]:
    """Reconcile leftover store holds (no open hold covers these records), then name any
    object the store would still refuse to delete."""
    holds.sync_object_holds(engine, store, keys, exclude=[m for m in members if m is not None])
    blocked = []
    for key in keys:
        info = store.head(key)
        if info is None:
            continue
        if info.legal_hold:
            blocked.append(f"{key} is on legal hold in the store")
        elif info.retain_until > now:
            blocked.append(
                f"{key} is retained by the store until {info.retain_until:%Y-%m-%d %H:%M:%S} UTC"
            )
    return blocked


def finish(engine: Engine, store: WormStore, batch_id: int, now: datetime) -> list[str]:
    """Delete what the batch's certificate says is destroyed; idempotent."""
    with Session(engine) as session:
        batch = session.get(DispositionBatch, batch_id)
        assert batch is not None and batch.certificate_sha256 is not None
        if batch.completed_at is not None:
            return []
    certificate = json.loads(store.get(object_key(batch.certificate_sha256), verify=True))
    destroyed = []
    for key in certificate["objects_destroyed"]:
        if store.head(key) is not None:
            store.delete(key, now=now)
            destroyed.append(key)
    store.flush()
    with session_scope(engine) as session:
        row = session.get(DispositionBatch, batch_id)
        assert row is not None
        row.completed_at = now
        session.add(row)
        audit.record_event(
            session,
            at=now,
            actor=SYSTEM_ACTOR,
            action="objects-destroyed",
            object_type="batch",
            object_id=batch_id,
            objects=len(destroyed),
        )
    return destroyed


def complete_pending(engine: Engine, store: WormStore, now: datetime) -> int:
    """Finish the deletions of approved batches that a crash interrupted; returns how many."""
    with Session(engine) as session:
        pending = session.exec(
            select(DispositionBatch.id)
            .where(col(DispositionBatch.state) == "approved")
            .where(col(DispositionBatch.completed_at).is_(None))
        ).all()
    for batch_id in pending:
        if batch_id is not None:
            finish(engine, store, batch_id, now)
    return len(pending)
