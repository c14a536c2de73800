"""What is new about an item a sweep saw: an edit or a change of state is a new version (the
earlier ones stay), a hidden reply stays hidden where the platform does not report hiding, and
an item a complete listing no longer shows is deleted.

On a platform with a look-back window (X: seven days) only items young enough to be listed at
all count as absent: one that merely aged out of the window is not gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Capture, Key, Latest, MediaBlob, content_hash
from bulletin.config.archive import CaptureSettings
from bulletin.connectors.base import (
    Connector,
    Limits,
    RemoteItem,
    attachment_alt_texts,
    attachment_urls,
)
from bulletin.errors import BulletinError
from bulletin.logs import get_logger
from bulletin.models import Record
from bulletin.states import RecordState

log = get_logger("bulletin.capture")


def key(capture: Capture) -> Key:
    """The item a capture is a version of."""
    return (capture.account, capture.item.kind, capture.item.remote_id)


def next_version(
    capture: Capture,
    latest: Latest | None,
    connector: Connector,
    limits: Limits,
    policy: CaptureSettings,
) -> Capture:
    """``capture`` ready to archive after ``latest``, the item's newest version: a reply we
    hid stays hidden where the platform does not report hiding, and a new version's
    attachments are fetched (each failure is kept, as the blob's error)."""
    item = capture.item
    if (
        not limits.reports_hidden
        and latest is not None
        and latest.state == RecordState.HIDDEN
        and item.state == "visible"
        and latest.text == item.text
    ):
        # The platform does not say a reply is hidden; it stays as we hid it.
        item = replace(item, state="hidden")
        capture = replace(capture, item=item)
    urls = attachment_urls(item)
    if not urls or not policy.fetch_media:
        return capture
    if latest is not None and latest.content_sha256 == content_hash(item):
        return capture  # not a new version: nothing is archived, nothing to fetch
    blobs = []
    for url, alt_text in zip(urls, attachment_alt_texts(item), strict=True):
        try:
            data, mime = connector.fetch_media(url, policy.media_max_bytes)
            blobs.append(MediaBlob(url, data, mime, alt_text=alt_text))
        except BulletinError as e:
            blobs.append(MediaBlob(url, error=str(e), alt_text=alt_text))
            log.warning("attachment not fetched", account=capture.account, error=str(e))
    return replace(capture, media=tuple(blobs))


def absent_items(
    engine: Engine,
    account: str,
    thread_id: str,
    seen: set[str],
    now: datetime,
    lookback_days: int | None,
    sweep_id: int | None,
) -> list[RemoteItem]:
    """The comments (and the account's own replies) of a thread that a complete listing,
    which saw ``seen``, no longer shows: each as its deleted version."""
    # On a platform with a look-back window, only comments young enough to be listed at
    # all can be told apart from ones that merely aged out of it (an hour's margin).
    visible_since = (
        now - timedelta(days=lookback_days) + timedelta(hours=1) if lookback_days else None
    )
    absent: list[int] = []
    for rid, kind, remote_id, state, posted_at in latest_in_thread(engine, account, thread_id):
        listed = kind == "comment" or (kind == "post" and remote_id != thread_id)
        if not listed or state == RecordState.DELETED or remote_id in seen:
            continue
        if visible_since is not None and (posted_at is None or posted_at < visible_since):
            continue
        absent.append(rid)
    return [
        gone_version(
            record,
            {
                "absent_from_sweep": sweep_id,
                "state_before": record.state,
                "record_before": record.id,
            },
        )
        for record in records_by_id(engine, absent)
    ]


def gone_version(record: Record, extra: dict[str, object]) -> RemoteItem:
    """The version that says ``record``'s item is deleted: its last known content, state
    ``deleted``, and ``extra`` saying how that was found out."""
    return RemoteItem(
        kind="post" if record.kind == "post" else "comment",
        remote_id=record.remote_id,
        text=record.text,
        author=record.author,
        posted_at=record.posted_at,
        url=record.url,
        parent_id=record.parent_id,
        thread_id=record.thread_id,
        state="deleted",
        extra=extra,
    )


def latest_in_thread(
    engine: Engine, account: str, thread_id: str
) -> list[tuple[int, str, str, str, datetime | None]]:
    """The newest version of every item of a thread: its record's id, kind, remote id,
    state and posting time, oldest record first. Columns, not records: a sweep of a thread
    of many thousand comments holds a few small tuples each, and loads whole records only
    for the items it found gone (:func:`records_by_id`)."""
    newest = (
        sa.select(
            col(Record.kind).label("kind"),
            col(Record.remote_id).label("remote_id"),
            sa.func.max(col(Record.version)).label("version"),
        )
        .where(col(Record.account) == account)
        .where(col(Record.thread_id) == thread_id)
        .group_by(col(Record.kind), col(Record.remote_id))
        .subquery()
    )
    query = (
        sa.select(
            col(Record.id),
            col(Record.kind),
            col(Record.remote_id),
            col(Record.state),
            col(Record.posted_at),
        )
        .join(
            newest,
            sa.and_(
                col(Record.kind) == newest.c.kind,
                col(Record.remote_id) == newest.c.remote_id,
                col(Record.version) == newest.c.version,
            ),
        )
        .where(col(Record.account) == account)
        .where(col(Record.thread_id) == thread_id)
        .order_by(col(Record.id))
    )
    with engine.connect() as conn:  # a stored row's id is never None
        return [(r[0] or 0, r[1], r[2], r[3], r[4]) for r in conn.execute(query)]


def records_by_id(engine: Engine, ids: Sequence[int]) -> list[Record]:
    """The records of ``ids``, in that order (chunks of 500 ids a query)."""
    found: dict[int, Record] = {}
    with Session(engine) as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found.update(
                (r.id, r)
                for r in session.exec(select(Record).where(col(Record.id).in_(chunk)))
                if r.id is not None
            )
    return [found[i] for i in ids if i in found]
