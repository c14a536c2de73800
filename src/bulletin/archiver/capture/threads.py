"""The threads capture follows: every post listed becomes one, and a post Bulletin published
becomes one at once, with its notice's priority (which makes an emergency thread hot, see
:mod:`bulletin.archiver.capture.schedule`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.clock import Clock
from bulletin.db import session_scope
from bulletin.models import CaptureThread, Delivery, Notice
from bulletin.states import DeliveryState


def register_threads(
    engine: Engine,
    account: str,
    clock: Clock,
    posts: Sequence[tuple[str, datetime | None, str | None]],
) -> None:
    """Follow each post (id, posted at, its notice's priority or None) not followed yet."""
    if not posts:
        return
    ids = [p[0] for p in posts]
    with session_scope(engine) as session:
        known = set(
            session.exec(
                select(CaptureThread.thread_id)
                .where(CaptureThread.account == account)
                .where(col(CaptureThread.thread_id).in_(ids))
            ).all()
        )
        now = clock.now()
        for thread_id, posted_at, priority in posts:
            if thread_id in known:
                continue
            known.add(thread_id)
            session.add(
                CaptureThread(
                    account=account,
                    thread_id=thread_id,
                    priority=priority or "community",
                    posted_at=posted_at,
                    first_seen_at=now,
                )
            )


def register_published(engine: Engine, account: str, clock: Clock) -> None:
    """Posts Bulletin published become threads at once, with their notice's priority."""
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.remote_id, Delivery.published_at, Notice.priority)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.account) == account)
            .where(col(Delivery.state) == DeliveryState.PUBLISHED)
            .where(col(Delivery.remote_id).is_not(None))
            .where(
                ~sa.exists().where(
                    col(CaptureThread.account) == account,
                    col(CaptureThread.thread_id) == col(Delivery.remote_id),
                )
            )
        ).all()
    register_threads(engine, account, clock, [(rid, at, prio) for rid, at, prio in rows if rid])


def published_by_us(
    engine: Engine, account: str, remote_ids: list[str]
) -> dict[str, tuple[int, str]]:
    """remote id -> (notice id, priority) for the posts Bulletin itself published."""
    if not remote_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.remote_id, Notice.id, Notice.priority)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.account) == account)
            .where(col(Delivery.remote_id).in_(remote_ids))
        ).all()
    return {rid: (nid, prio) for rid, nid, prio in rows if rid and nid is not None}
