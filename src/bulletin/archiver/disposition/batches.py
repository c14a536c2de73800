"""Listing a disposition batch: which records are due for destruction, frozen into a batch
with the sha256 of its membership; and reading batches back."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import holds
from bulletin.archiver.canonical import canonical
from bulletin.archiver.disposition.objects import complete_pending
from bulletin.archiver.store.base import WormStore, sha256_hex
from bulletin.config.archive import PERMANENT_SERIES
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import DispositionBatch, DispositionItem, Hold, HoldRecord, Record


def destroyable(settings: Settings) -> ColumnElement[bool]:
    """Records whose series is disposed of by destruction after approval."""
    configured = settings.retention.series
    if settings.retention.default_disposition == "destroy-after-approval":
        others = [n for n, s in configured.items() if s.disposition != "destroy-after-approval"]
        return col(Record.series).not_in([*others, *PERMANENT_SERIES])
    names = [
        n
        for n, s in configured.items()
        if s.disposition == "destroy-after-approval" and n not in PERMANENT_SERIES
    ]
    return col(Record.series).in_(names)


def open_hold_members() -> Any:
    return (
        select(HoldRecord.record_id)
        .join(Hold, col(Hold.id) == col(HoldRecord.hold_id))
        .where(col(Hold.state) == "open")
    )


def _listed_members() -> Any:
    return (
        select(DispositionItem.record_id)
        .join(DispositionBatch, col(DispositionBatch.id) == col(DispositionItem.batch_id))
        .where(col(DispositionBatch.state) == "listed")
    )


def eligible(
    session: Session, settings: Settings, now: datetime, limit: int | None
) -> list[Record]:
    """Records past retention, destroyable, not held, not in an open request or batch."""
    stmt = (
        select(Record)
        .where(col(Record.disposed_at).is_(None))
        .where(col(Record.legal_hold).is_(False))
        .where(col(Record.retain_until).is_not(None))
        .where(col(Record.retain_until) <= now)
        .where(destroyable(settings))
        .where(col(Record.id).not_in(open_hold_members()))
        .where(col(Record.id).not_in(_listed_members()))
        .order_by(col(Record.id))
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt).all())


def item_of(record: Record) -> dict[str, Any]:
    assert record.id is not None and record.retain_until is not None
    return {
        "record_id": record.id,
        "series": record.series,
        "retain_until": record.retain_until,
        "object_sha256": record.object_sha256,
        "raw_sha256": record.raw_sha256,
    }


def membership_hash(items: list[dict[str, Any]]) -> str:
    """sha256 of the batch's membership: each record with what would be destroyed."""
    body = [
        {**i, "retain_until": i["retain_until"].isoformat()}
        for i in sorted(items, key=lambda i: int(i["record_id"]))
    ]
    return sha256_hex(canonical(body))


def build_disposition_batch(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    now: datetime,
    actor: str = SYSTEM_ACTOR,
    limit: int | None = 10_000,
) -> DispositionBatch | None:
    """List what is due for destruction into a new batch; None when nothing is.

    :raises Refused: an open hold cannot be evaluated.
    """
    complete_pending(engine, store, now)
    holds.refresh_holds(engine, store, now, settings.agency.time_zone, strict=True)
    with session_scope(engine) as session:
        records = eligible(session, settings, now, limit)
        if not records:
            return None
        items = [item_of(r) for r in records]
        batch = DispositionBatch(
            membership_sha256=membership_hash(items),
            record_count=len(items),
            listed_by=actor,
            listed_at=now,
        )
        session.add(batch)
        session.flush()
        assert batch.id is not None
        session.execute(sa.insert(DispositionItem), [{**i, "batch_id": batch.id} for i in items])
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="disposition-listed",
            object_type="batch",
            object_id=batch.id,
            records=len(items),
            membership_sha256=batch.membership_sha256,
            series=dict(Counter(r.series for r in records)),
        )
    return batch


def get_batch(engine: Engine, batch_id: int) -> tuple[DispositionBatch, list[DispositionItem]]:
    with Session(engine) as session:
        batch = session.get(DispositionBatch, batch_id)
        if batch is None:
            raise NotFound(f"no disposition batch {batch_id}")
        items = batch_items(session, batch_id)
    return batch, items


def batch_items(session: Session, batch_id: int) -> list[DispositionItem]:
    """The frozen membership of batch ``batch_id``, by record id."""
    return list(
        session.exec(
            select(DispositionItem)
            .where(col(DispositionItem.batch_id) == batch_id)
            .order_by(col(DispositionItem.record_id))
        ).all()
    )


def list_batches(engine: Engine) -> list[DispositionBatch]:
    with Session(engine) as session:
        return list(
            session.exec(select(DispositionBatch).order_by(col(DispositionBatch.id).desc())).all()
        )
