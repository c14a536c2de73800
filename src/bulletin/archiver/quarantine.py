"""Quarantine: a platform answer (or one element of it) that could not be used is kept raw in
the WORM store with the error, listed in ``archive status``, and never stops a sweep."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bulletin.archiver.retention import retain_until
from bulletin.archiver.store.base import WormStore
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.logs import get_logger
from bulletin.models import Quarantine

log = get_logger("bulletin.capture")

SERIES = "visitor-comments"  # what a quarantined answer most likely holds; kept as long


def quarantine(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    clock: Clock,
    *,
    account: str,
    operation: str,
    error: str,
    raw: bytes,
    thread_id: str | None = None,
    sweep_id: int | None = None,
) -> Quarantine:
    """Store ``raw`` (content-addressed, durable) and add a quarantine row; logs an error."""
    now = clock.now()
    digest = None
    if raw:
        until, hold = retain_until(settings, SERIES, posted_at=None, captured_at=now)
        digest, _ = store.put_object(raw, retain_until=until, legal_hold=hold)
        store.flush()
    row = Quarantine(
        account=account,
        at=now,
        operation=operation,
        thread_id=thread_id,
        error=error[:2000],
        raw_sha256=digest,
        size=len(raw),
        sweep_id=sweep_id,
    )
    with session_scope(engine) as session:
        session.add(row)
    log.error(
        "quarantined a platform answer",
        account=account,
        operation=operation,
        error=error[:300],
        raw_sha256=digest,
        size=len(raw),
    )
    return row


def counts(engine: Engine) -> dict[str, int]:
    """Quarantined answers per account."""
    with Session(engine) as session:
        rows = session.exec(
            select(Quarantine.account, func.count()).group_by(col(Quarantine.account))
        ).all()
    return {account: int(n) for account, n in rows}
