"""Capture lag: how long after a visitor wrote a comment its first version was archived
(``captured_at - posted_at``, both kept on every version), and by which path: a Page
webhook (:mod:`.webhooks`), the X filtered stream (:mod:`.xstream`) or a sweep
(:mod:`.sweep`)."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bulletin.archiver import ledger
from bulletin.db import session_scope
from bulletin.models import FacebookWebhookChange, Record, StreamCapture

RECENT = 10_000  # the newest records looked at (an indexed range, whatever the archive's size)


def capture_lags(engine: Engine, recent: int = RECENT) -> dict[tuple[str, str], list[float]]:
    """(account, path) -> lags in seconds of the first versions of comments among the newest
    ``recent`` records; path is ``webhook``, ``stream`` (the X filtered stream) or ``sweep``.
    A negative lag (clocks apart) counts as 0."""
    with Session(engine) as session:
        head = ledger.head(session)
        if head is None:
            return {}
        via_webhook = sa.exists().where(col(FacebookWebhookChange.record_id) == col(Record.id))
        via_stream = sa.exists().where(col(StreamCapture.record_id) == col(Record.id))
        rows = session.execute(
            sa.select(
                col(Record.account),
                col(Record.posted_at),
                col(Record.captured_at),
                via_webhook.label("webhook"),
                via_stream.label("stream"),
            )
            .where(col(Record.ledger_seq) > head.seq - recent)
            .where(col(Record.kind) == "comment")
            .where(col(Record.version) == 1)
            .where(col(Record.posted_at).is_not(None))
        ).all()
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for account, posted_at, captured_at, webhook, stream in rows:
        lag = max((captured_at - posted_at).total_seconds(), 0.0)
        path = "webhook" if webhook else "stream" if stream else "sweep"
        out[(account, path)].append(lag)
    return dict(out)


def prune(engine: Engine, recent: int = RECENT) -> int:
    """Forget which records the X filtered stream archived (``stream_captures``) for records
    older than the newest ``recent``: :func:`capture_lags` (the histogram, the metrics,
    ``archive status``) never looks at them again, since the window only moves on. The
    records themselves stay. How many rows went.

    (``facebook_webhook_changes``, the webhook path's rows, are kept 30 days for the
    idempotency of late deliveries: :func:`.webhooks.prune`.)"""
    with Session(engine) as session:
        head = ledger.head(session)
    if head is None:
        return 0
    floor = head.seq - recent
    if floor <= 0:
        return 0
    with session_scope(engine) as session:
        in_window = sa.select(col(Record.id)).where(col(Record.ledger_seq) > floor)
        gone = session.execute(
            sa.delete(StreamCapture).where(col(StreamCapture.record_id).not_in(in_window))
        )
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]
