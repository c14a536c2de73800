"""``archive status``: what the archive holds and how capture is doing, in one dictionary."""

from __future__ import annotations

from datetime import datetime
from statistics import median
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.capture.lag import capture_lags
from bulletin.archiver.capture.spend import month_of
from bulletin.archiver.store.base import WormStore
from bulletin.config.settings import Settings
from bulletin.models import CaptureSpend, CaptureSweep, Quarantine, Record


def store_backlog(store: WormStore) -> int:
    """Objects accepted but not yet in the backend: the S3 outage spool's backlog (the local
    store makes each batch durable before a cursor moves, so its backlog is always 0)."""
    return store.backlog()


def capture_health(engine: Engine, settings: Settings) -> tuple[dict[str, Any], int]:
    """Each configured account's last sweep (None: never swept) and how many answers are in
    quarantine: the part of :func:`archive_status` a monitor reads, without counting the
    archive's records."""
    with Session(engine) as session:
        sweeps = _last_sweeps(session, sorted(settings.accounts))
        total = session.exec(select(sa.func.count()).select_from(Quarantine)).one()
    return sweeps, int(total)


def capture_lag(engine: Engine) -> list[dict[str, Any]]:
    """Per account and path (``webhook``, ``stream``, ``sweep``): how many first comment
    versions among the newest records (:func:`~.capture.lag.capture_lags`), and their median
    and slowest lag in seconds."""
    return [
        {
            "account": account,
            "path": path,
            "comments": len(lags),
            "median_seconds": round(median(lags), 3),
            "max_seconds": round(max(lags), 3),
        }
        for (account, path), lags in sorted(capture_lags(engine).items())
    ]


def _last_sweeps(session: Session, accounts: list[str]) -> dict[str, Any]:
    sweeps: dict[str, Any] = {}
    for name in accounts:
        last = session.exec(
            select(CaptureSweep)
            .where(CaptureSweep.account == name)
            .order_by(col(CaptureSweep.id).desc())
            .limit(1)
        ).first()
        sweeps[name] = last.model_dump() if last else None
    return sweeps


def archive_status(
    engine: Engine, store: WormStore, settings: Settings, now: datetime
) -> dict[str, Any]:
    month = month_of(now)
    with Session(engine) as session:
        counts = session.execute(
            sa.select(
                col(Record.account), col(Record.kind), col(Record.state), sa.func.count()
            ).group_by(col(Record.account), col(Record.kind), col(Record.state))
        ).all()
        accounts = sorted(set(settings.accounts) | {a for a, *_ in counts})
        sweeps = _last_sweeps(session, accounts)
        total = session.exec(select(sa.func.count()).select_from(Quarantine)).one()
        recent = session.exec(select(Quarantine).order_by(col(Quarantine.id).desc()).limit(10))
        recent_rows = [q.model_dump() for q in recent]
        spend_rows = {
            s.account: s
            for s in session.exec(select(CaptureSpend).where(CaptureSpend.month == month))
        }
    spend = {}
    for name in accounts:
        row = spend_rows.get(name)
        configured = settings.accounts.get(name)
        budget = configured.monthly_budget if configured else 0.0
        spend[name] = {
            "usd": round(row.usd, 4) if row else 0.0,
            "reads": row.reads if row else 0,
            "budget": budget,
            "share": round(row.usd / budget, 4) if row and budget else None,
        }
    return {
        "records": [
            {"account": a, "kind": k, "state": s, "count": int(n)} for a, k, s, n in counts
        ],
        "sweeps": sweeps,
        "quarantine": {"total": int(total), "recent": recent_rows},
        "month": month,
        "spend": spend,
        "store_backlog": store_backlog(store),
        "capture_lag": capture_lag(engine),
    }
