"""The certificate of destruction: what it says of a batch (written once, kept permanently,
on legal hold and ledgered), and the check of one."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bulletin.archiver.canonical import canonical
from bulletin.archiver.disposition.batches import get_batch, membership_hash
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.config.settings import Settings
from bulletin.models import DispositionBatch, LedgerEntry, Record

CERTIFICATE_SCHEMA = "bulletin.certificate/1"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def certificate_body(
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
