"""Capture sweeps: what an account's posts and comments look like now, archived.

The cursor (the newest post id seen) advances only after the batch holding those posts is
durably stored, so a crash mid-sweep repeats work but never skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Archiver, Capture
from bulletin.clock import Clock
from bulletin.connectors.base import Connector, RemoteItem
from bulletin.db import session_scope
from bulletin.models import Account, Delivery, Notice

log = structlog.get_logger("bulletin.capture")


@dataclass(frozen=True)
class SweepResult:
    account: str
    seen: int
    archived: int


def _published_by_us(
    archiver: Archiver, account: str, remote_ids: list[str]
) -> dict[str, tuple[int, str]]:
    """remote id -> (notice id, priority) for the posts Bulletin itself published."""
    if not remote_ids:
        return {}
    with Session(archiver.engine) as session:
        rows = session.exec(
            select(Delivery.remote_id, Notice.id, Notice.priority)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.account) == account)
            .where(col(Delivery.remote_id).in_(remote_ids))
        ).all()
    return {rid: (nid, prio) for rid, nid, prio in rows if rid and nid is not None}


def sweep(
    archiver: Archiver, connector: Connector, account_name: str, clock: Clock, batch: int = 500
) -> SweepResult:
    """Capture the account's new posts and the comments on them."""
    with Session(archiver.engine) as session:
        account = session.get(Account, account_name)
        if account is None:
            raise LookupError(account_name)
        since_id, platform, training = account.capture_cursor, account.platform, account.training
    seen = archived = 0
    newest: str | None = None
    cursor: str | None = None
    while True:
        page = connector.list_posts(since_id=since_id, cursor=cursor)
        items: list[RemoteItem] = []
        for post in page.items:
            newest = newest or post.remote_id
            items.append(post)
            if connector.limits().supports_comments:
                items.extend(connector.iter_comments(post.remote_id))
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            ours = _published_by_us(archiver, account_name, [i.remote_id for i in chunk])
            _, created = archiver.archive_batch(
                [
                    Capture(account_name, platform, item, training, *ours.get(item.remote_id, ()))
                    for item in chunk
                ]
            )
            seen += len(chunk)
            archived += created
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    with session_scope(archiver.engine) as session:
        row = session.get(Account, account_name)
        assert row is not None
        if newest is not None:
            row.capture_cursor = newest
        row.last_capture_at = clock.now()
        session.add(row)
    log.info("swept", account=account_name, seen=seen)
    return SweepResult(account_name, seen, archived)
