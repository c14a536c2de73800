"""Disposition: the only way anything archived is ever destroyed.

1. :func:`build_disposition_batch` (nightly, from the daemon) lists the records whose retention
   has passed, whose series says ``destroy-after-approval``, that no open hold or records
   request covers and that are in no other open batch, into a frozen batch with the sha256 of
   its membership.
2. :func:`approve_batch` (an approver) recomputes that membership as it is now and refuses when
   it differs (a record became held, its retention was extended, a row was changed) or when the
   batch was already approved; the batch then goes ``stale`` and its records return to the pool.
   Otherwise it writes a certificate of destruction (an archived object, retained permanently,
   on legal hold and ledgered as kind ``certificate``), marks the records disposed (the rows
   stay) and deletes from the store every object (snapshot, raw answer, image) that no
   retained record and no live notice still refers to; the certificate names each image.

A crash after the certificate is committed and before every deletion is done is finished by
:func:`complete_pending` (run by the nightly job and before each approval).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import holds, ledger
from bulletin.archiver.canonical import canonical
from bulletin.archiver.retention import PERMANENT, live_notice_images, media_digests
from bulletin.archiver.store.base import WormStore, object_key, sha256_hex
from bulletin.config.archive import PERMANENT_SERIES
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import (
    DispositionBatch,
    DispositionItem,
    Hold,
    HoldRecord,
    LedgerEntry,
    Record,
    RecordMedia,
)

CERTIFICATE_SCHEMA = "bulletin.certificate/1"


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


def _open_hold_members() -> Any:
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
        .where(col(Record.id).not_in(_open_hold_members()))
        .where(col(Record.id).not_in(_listed_members()))
        .order_by(col(Record.id))
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt).all())


def _item(record: Record) -> dict[str, Any]:
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
        items = [_item(r) for r in records]
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
    held = set(session.exec(_open_hold_members().where(col(HoldRecord.record_id).in_(ids))).all())
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
        current.append(_item(record))
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
        items = list(
            session.exec(
                select(DispositionItem)
                .where(col(DispositionItem.batch_id) == batch_id)
                .order_by(col(DispositionItem.record_id))
            ).all()
        )
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
        kept = _still_referenced(session, keys, member_ids)
        kept |= _media_still_referenced(session, keys, member_ids)
    images = {object_key(d) for digests in media.values() for d in digests}
    kept |= _images_still_locked(store, [k for k in keys if k in images and k not in kept], now)
    doomed = [k for k in keys if k not in kept]
    blocked = _store_blocks(engine, store, doomed, member_ids, now)
    if blocked:
        _mark_stale(engine, batch_id, "; ".join(blocked), actor, now)
        raise Refused(f"batch {batch_id} cannot be destroyed: {'; '.join(blocked)}")
    body = _certificate(settings, batch, records, doomed, sorted(kept), actor, now, media)
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
    destroyed = _finish(engine, store, batch_id, now)
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


def _still_referenced(session: Session, keys: list[str], members: set[int | None]) -> set[str]:
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


def _media_still_referenced(
    session: Session, keys: list[str], members: set[int | None]
) -> set[str]:
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


def _images_still_locked(store: WormStore, keys: list[str], now: datetime) -> set[str]:
    """Those image ``keys`` the store retains past ``now``: pinned since by a notice that
    will not publish it (cancelled, say), whose retention ran longer than these records'.
    Such an image is kept (the longest retention wins), never a reason to refuse the batch."""
    locked = set()
    for key in keys:
        info = store.head(key)
        if info is not None and info.retain_until > now and not info.legal_hold:
            locked.add(key)
    return locked


def _store_blocks(
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


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _certificate(
    settings: Settings,
    batch: DispositionBatch,
    records: list[Record],
    destroyed: list[str],
    kept: list[str],
    actor: str,
    now: datetime,
    media: dict[int, list[str]],
) -> bytes:
    images = {object_key(d) for r in records for d in media.get(r.id or 0, [])}
    posted = sorted(r.posted_at or r.captured_at for r in records)
    return canonical(
        {
            "schema": CERTIFICATE_SCHEMA,
            "title": "Certificate of destruction of public records",
            "agency": settings.agency.name,
            "jurisdiction": settings.agency.jurisdiction,
            "batch": batch.id,
            "membership_sha256": batch.membership_sha256,
            "listed_by": batch.listed_by,
            "listed_at": _iso(batch.listed_at),
            "approved_by": actor,
            "approved_at": now.isoformat(),
            "series": {
                name: {
                    "records": count,
                    "period": (s.period if (s := settings.retention.series.get(name)) else None)
                    or settings.retention.default_period,
                    "authority": s.authority if s else "",
                }
                for name, count in sorted(Counter(r.series for r in records).items())
            },
            "dates": {"first": _iso(posted[0]), "last": _iso(posted[-1])},
            "records": [
                {
                    "record_id": r.id,
                    "account": r.account,
                    "platform": r.platform,
                    "kind": r.kind,
                    "remote_id": r.remote_id,
                    "version": r.version,
                    "series": r.series,
                    "posted_at": _iso(r.posted_at),
                    "captured_at": _iso(r.captured_at),
                    "retain_until": _iso(r.retain_until),
                    "content_sha256": r.content_sha256,
                    "object_sha256": r.object_sha256,
                    "raw_sha256": r.raw_sha256,
                    "ledger_seq": r.ledger_seq,
                    "media_sha256": media.get(r.id or 0, []),
                }
                for r in records
            ],
            "objects_destroyed": destroyed,
            "objects_kept_shared": kept,
            "media_destroyed": [k for k in destroyed if k in images],
            "media_kept_shared": [k for k in kept if k in images],
        }
    )


def _finish(engine: Engine, store: WormStore, batch_id: int, now: datetime) -> list[str]:
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
            _finish(engine, store, batch_id, now)
    return len(pending)


def get_batch(engine: Engine, batch_id: int) -> tuple[DispositionBatch, list[DispositionItem]]:
    with Session(engine) as session:
        batch = session.get(DispositionBatch, batch_id)
        if batch is None:
            raise NotFound(f"no disposition batch {batch_id}")
        items = list(
            session.exec(
                select(DispositionItem)
                .where(col(DispositionItem.batch_id) == batch_id)
                .order_by(col(DispositionItem.record_id))
            ).all()
        )
    return batch, items


def list_batches(engine: Engine) -> list[DispositionBatch]:
    with Session(engine) as session:
        return list(
            session.exec(select(DispositionBatch).order_by(col(DispositionBatch.id).desc())).all()
        )


def verify_certificate(engine: Engine, store: WormStore, batch_id: int) -> list[str]:
    """Problems with a batch's certificate: its object, its ledger entry, its membership hash,
    and whether every object it names as destroyed is gone. Empty: it verifies."""
    batch, _ = get_batch(engine, batch_id)
    if batch.certificate_sha256 is None:
        return [f"batch {batch_id} has no certificate (state {batch.state})"]
    key = object_key(batch.certificate_sha256)
    try:
        certificate = json.loads(store.get(key, verify=True))
    except Exception as e:
        return [f"certificate {key}: {e}"]
    problems = []
    with Session(engine) as session:
        entry = session.get(LedgerEntry, batch.certificate_seq or -1)
    if (
        entry is None
        or entry.kind != "certificate"
        or entry.object_sha256 != batch.certificate_sha256
    ):
        problems.append(f"certificate {key} is not in the ledger as entry {batch.certificate_seq}")
    items = [
        {
            "record_id": r["record_id"],
            "series": r["series"],
            "retain_until": datetime.fromisoformat(r["retain_until"]),
            "object_sha256": r["object_sha256"],
            "raw_sha256": r["raw_sha256"],
        }
        for r in certificate["records"]
    ]
    if membership_hash(items) != certificate["membership_sha256"] or (
        certificate["membership_sha256"] != batch.membership_sha256
    ):
        problems.append("the certificate's records do not match its membership hash")
    info = store.head(key)
    if info is None or not info.legal_hold:
        problems.append(f"certificate {key} is not on legal hold")
    if batch.completed_at is not None:
        problems.extend(
            f"{k} is named destroyed but is still in the store"
            for k in certificate["objects_destroyed"]
            if store.head(k) is not None
        )
    return problems
