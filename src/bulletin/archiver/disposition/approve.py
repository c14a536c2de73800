"""Approving a batch: its membership recomputed and compared, then certified and destroyed;
a batch that changed goes stale instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import holds, ledger
from bulletin.archiver.disposition.batches import (
    batch_items,
    destroyable,
    item_of,
    membership_hash,
    open_hold_members,
)
from bulletin.archiver.disposition.certificate import certificate_body
from bulletin.archiver.disposition.objects import (
    complete_pending,
    finish,
    images_still_locked,
    media_still_referenced,
    still_referenced,
    store_blocks,
)
from bulletin.archiver.retention import PERMANENT, media_digests
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused
from bulletin.models import DispositionBatch, DispositionItem, HoldRecord, LedgerEntry, Record


@dataclass
class ApproveResult:
    batch: DispositionBatch
    certificate_key: str
    destroyed: list[str] = field(default_factory=list)
    kept_shared: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # the records' images among those two


def _changes(
    session: Session, settings: Settings, items: list[DispositionItem], now: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    """The batch's membership as it is now, and why each dropped record was dropped."""
    ids = [i.record_id for i in items]
    records = {r.id: r for r in session.exec(select(Record).where(col(Record.id).in_(ids))).all()}
    held = set(session.exec(open_hold_members().where(col(HoldRecord.record_id).in_(ids))).all())
    still_destroyable = {
        r.id
        for r in session.exec(
            select(Record).where(col(Record.id).in_(ids)).where(destroyable(settings))
        ).all()
    }
    current: list[dict[str, Any]] = []
    why: list[str] = []
    for item in items:
        record = records.get(item.record_id)
        reason = None
        if record is None:
            reason = "is gone from the index"
        elif record.disposed_at is not None:
            reason = "was already disposed of"
        elif record.legal_hold or record.id in held:
            reason = "is on legal hold now"
        elif record.retain_until is None or record.retain_until > now:
            reason = "is retained longer now"
        elif record.id not in still_destroyable:
            reason = "is in a series that is no longer destroyed after approval"
        if reason:
            why.append(f"record {item.record_id} {reason}")
            continue
        assert record is not None
        current.append(item_of(record))
    return current, why


def approve_batch(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    batch_id: int,
    *,
    actor: str,
    now: datetime,
) -> ApproveResult:
    """Destroy a listed batch and certify it; see the module doc.

    :raises NotFound: no such batch.
    :raises Refused: approved already, stale, or its membership changed since it was listed
        (the batch is then marked stale; nothing is destroyed), or an open hold cannot be
        evaluated.
    """
    complete_pending(engine, store, now)
    holds.refresh_holds(engine, store, now, settings.agency.time_zone, strict=True)
    with Session(engine) as session:
        batch = _require_listed(session, batch_id)
        items = batch_items(session, batch_id)
        listed = [
            {
                "record_id": i.record_id,
                "series": i.series,
                "retain_until": i.retain_until,
                "object_sha256": i.object_sha256,
                "raw_sha256": i.raw_sha256,
            }
            for i in items
        ]
        current, why = _changes(session, settings, items, now)
    problems = list(why)
    if membership_hash(listed) != batch.membership_sha256:
        problems.insert(0, "its frozen list no longer matches the hash taken when it was listed")
    elif membership_hash(current) != batch.membership_sha256:
        problems.insert(0, "its records changed since it was listed")
    if problems:
        _mark_stale(engine, batch_id, "; ".join(problems), actor, now)
        raise Refused(
            f"batch {batch_id} changed since it was listed and is now stale "
            f"({'; '.join(problems)}); list a new batch with `bulletin retention list-batch`"
        )
    with Session(engine) as session:
        records = list(
            session.exec(
                select(Record)
                .where(col(Record.id).in_([i.record_id for i in items]))
                .order_by(col(Record.id))
            ).all()
        )
        member_ids = {r.id for r in records}
        media = media_digests(session, [r.id for r in records if r.id is not None])
        keys = sorted({k for r in records for k in holds._keys(r, media)})
        kept = still_referenced(session, keys, member_ids)
        kept |= media_still_referenced(session, keys, member_ids)
    images = {object_key(d) for digests in media.values() for d in digests}
    kept |= images_still_locked(store, [k for k in keys if k in images and k not in kept], now)
    doomed = [k for k in keys if k not in kept]
    blocked = store_blocks(engine, store, doomed, member_ids, now)
    if blocked:
        _mark_stale(engine, batch_id, "; ".join(blocked), actor, now)
        raise Refused(f"batch {batch_id} cannot be destroyed: {'; '.join(blocked)}")
    body = certificate_body(settings, batch, records, doomed, sorted(kept), actor, now, media)
    cert_sha, _ = store.put_object(body, retain_until=now + PERMANENT, legal_hold=True)
    store.flush()
    with session_scope(engine) as session:
        ledger.lock(session)
        fresh = _require_listed(session, batch_id)  # a second approver, meanwhile
        entry = ledger.append(session, kind="certificate", at=now, object_sha256=cert_sha)
        session.flush()
        fresh.state = "approved"
        fresh.approved_by = actor
        fresh.approved_at = now
        fresh.certificate_sha256 = cert_sha
        fresh.certificate_seq = entry.seq
        session.add(fresh)
        ids = sorted(i for i in member_ids if i is not None)
        for start in range(0, len(ids), 500):
            session.execute(
                sa.update(Record)
                .where(col(Record.id).in_(ids[start : start + 500]))
                .values(disposed_at=now, disposal_batch_id=batch_id)
            )
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="disposition-approved",
            object_type="batch",
            object_id=batch_id,
            records=len(ids),
            certificate_sha256=cert_sha,
            ledger_seq=entry.seq,
            objects_destroyed=len(doomed),
        )
        audit.record_events(
            session,
            [
                audit.event(
                    at=now,
                    actor=actor,
                    action="disposed",
                    object_type="record",
                    object_id=r.id or 0,
                    batch_id=batch_id,
                    series=r.series,
                    sha256=r.object_sha256,
                    certificate_sha256=cert_sha,
                )
                for r in records
            ],
        )
        mirrored = LedgerEntry.model_construct(**entry.model_dump())
    ledger.mirror(store, [mirrored])
    store.flush()
    destroyed = finish(engine, store, batch_id, now)
    with Session(engine) as session:
        done = session.get(DispositionBatch, batch_id)
        assert done is not None
    return ApproveResult(done, object_key(cert_sha), destroyed, sorted(kept), sorted(images))


def _require_listed(session: Session, batch_id: int) -> DispositionBatch:
    query = select(DispositionBatch).where(col(DispositionBatch.id) == batch_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    batch = session.exec(query).first()
    if batch is None:
        raise NotFound(f"no disposition batch {batch_id}")
    if batch.state == "approved":
        raise Refused(
            f"batch {batch_id} was already approved by {batch.approved_by} "
            f"at {batch.approved_at:%Y-%m-%d %H:%M} UTC"
        )
    if batch.state == "stale":
        raise Refused(f"batch {batch_id} is stale ({batch.stale_reason}); list a new batch instead")
    return batch


def _mark_stale(engine: Engine, batch_id: int, reason: str, actor: str, now: datetime) -> None:
    with session_scope(engine) as session:
        batch = session.get(DispositionBatch, batch_id)
        assert batch is not None
        batch.state = "stale"
        batch.stale_reason = reason
        session.add(batch)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="disposition-refused",
            object_type="batch",
            object_id=batch_id,
            reason=reason,
        )
