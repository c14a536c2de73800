"""The daemon's periodic jobs read what their run needs, not the archive's history: their
memory stays flat however long the agency has kept Bulletin."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bulletin.archiver import decisions, holds, ledger
from bulletin.archiver.store.local import LocalStore
from bulletin.archiver.timestamp.checkpoints import token_key, unstamped
from bulletin.models import Delivery, DeliveryAttempt, Notice, Redaction
from bulletin.publisher.notices import sync_account
from bulletin.service.daemon import Daemon
from bulletin.service.status import gather, retried_too_long
from bulletin.states import DeliveryState, NoticeState
from bulletin.timeparse import iso_basic
from tests.plugins.bulletin_app import Instance
from tests.test_archive import comment
from tests.test_export import post
from tests.test_redaction import record_of
from tests.test_retention import hold_on

DECISIONS = 3000


def test_the_hourly_copy_of_decisions_holds_only_what_the_store_lacks(
    instance: Instance,
) -> None:
    """3,000 redactions taken over the years, all in the store, and one whose copy a crash
    left out: the hourly job reads them a page at a time beside the store's listing and
    keeps only the one missing, peaking under 3.5 MB (2.1-2.3, of which the local store's
    listing of the folder takes 1.5-2.0; every redaction as a row and its objects, as they
    were kept before, took 6.9-7.0 MB). It writes that one, and then nothing."""
    app = instance.app
    app.archiver.archive([post("p1", "Road closed on Main Street, call 555-0100")])
    record = record_of(instance, "p1")
    now = instance.clock.now()
    with app.engine.begin() as conn:
        conn.execute(
            sa.insert(Redaction),
            [
                {
                    "record_id": record.id,
                    "start": 32,
                    "end": 40,
                    "exemption": "26c",
                    "reason": f"a resident's phone number, as asked in letter {n}",
                    "created_by": "clerk1",
                    "created_at": now - timedelta(days=900) + timedelta(hours=n),
                }
                for n in range(DECISIONS)
            ],
        )
    assert decisions.mirror_all(app.engine, app.store, now) == DECISIONS
    with Session(app.engine) as session:  # its copy was never written (a crash)
        session.add(
            Redaction(
                record_id=record.id or 0,
                start=0,
                end=4,
                exemption="26c",
                reason="the newest",
                created_by="clerk1",
                created_at=now,
            )
        )
        session.commit()
    maintenance = Daemon(app).maintenance
    tracemalloc.start()
    try:
        missing = decisions._missing_events(app.engine, app.store)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [body["reason"] for body in missing.values()] == ["the newest"]
    assert peak < 3.5 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for {DECISIONS} redactions"
    assert maintenance.mirror_decisions() == 1
    assert maintenance.mirror_decisions() == 0
    assert len(list(app.store.keys(decisions.REDACTIONS))) == DECISIONS + 1


def _deliveries(engine: Engine, now: datetime, states: list[tuple[str, timedelta]]) -> None:
    """A notice with one post per (state, how long ago its one attempt began)."""
    with Session(engine) as session:
        notice = Notice(
            category="traffic",
            priority="routine",
            text="Road closed",
            author="clerk1",
            created_at=now - timedelta(days=800),
            state=NoticeState.APPROVED,
        )
        session.add(notice)
        session.flush()
        rows = [
            Delivery(
                notice_id=notice.id or 0,
                account="feed",
                occurrence=n + 1,
                state=state,
                due_at=now - ago,
                attempts=1,
            )
            for n, (state, ago) in enumerate(states)
        ]
        session.add_all(rows)
        session.flush()
        session.execute(
            sa.insert(DeliveryAttempt),
            [
                {"delivery_id": row.id, "owner": "old-daemon", "started_at": now - ago}
                for row, (_, ago) in zip(rows, states, strict=True)
            ],
        )
        session.commit()


def _steps(engine: Engine, since: datetime) -> tuple[int, int]:
    """The count of deliveries retried too long, and how many SQLite instructions it took."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.set_progress_handler(count, 1)  # type: ignore[union-attr]
        try:
            found = conn.execute(retried_too_long(since)).scalar_one()
        finally:
            raw.set_progress_handler(None, 1)  # type: ignore[union-attr]
    return int(found), steps


def test_status_counts_deliveries_retried_too_long_without_every_attempt_ever_made(
    instance: Instance,
) -> None:
    """Two posts still retried, one first tried 40 minutes ago (over ``stuck_after``) and one
    five: ``status`` counts the first. 3,000 posts published over the years, each with its
    attempt, change nothing: on SQLite the count takes the same work with them as without
    them (76 and 78 instructions; it grouped every attempt ever made before, on every
    scrape: 122, then 75,123)."""
    app = instance.app
    now = instance.clock.now()
    with Session(app.engine) as session:
        sync_account(session, app.settings, "feed")
        session.commit()
    _deliveries(
        app.engine,
        now,
        [
            (DeliveryState.PENDING, timedelta(minutes=40)),
            (DeliveryState.PENDING, timedelta(minutes=5)),
        ],
    )
    assert gather(app, 5).retried == 1
    since = now - app.settings.daemon.stuck_after_delta
    sqlite = app.engine.dialect.name == "sqlite"
    before = _steps(app.engine, since) if sqlite else (1, 0)
    _deliveries(
        app.engine,
        now,
        [(DeliveryState.PUBLISHED, timedelta(days=1 + n % 700)) for n in range(DECISIONS)],
    )
    assert gather(app, 5).retried == 1
    if sqlite:
        after = _steps(app.engine, since)
        assert after[0] == 1 and after[1] < before[1] + 100, (before, after)


CHECKPOINTS = 3000  # four months of hourly checkpoints


def _peak(read: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_time_stamp_backlog_holds_only_the_checkpoints_waiting(tmp_path: Path) -> None:
    """3,000 checkpoints, each with its time stamp but the newest: the look for those
    waiting (the backlog job every five minutes, each checkpoint, ``status``) finds the
    newest while holding no more than the store's own listing of the folder does, plus
    0.25 MB (2.3 MB for both; a set of every key, as before, took 3.4)."""
    store = LocalStore(tmp_path / "archive")
    start = datetime(2026, 8, 1, tzinfo=UTC)
    keys = [
        f"{ledger.CHECKPOINT_PREFIX}{iso_basic(start + timedelta(hours=n))}-{n + 1:012d}"
        f"{ledger.CHECKPOINT_SUFFIX}"
        for n in range(CHECKPOINTS)
    ]
    until = start + timedelta(days=3650)
    for key in keys:
        store.put(key, b'{"head_seq": 1}', retain_until=until, legal_hold=True)
        if key != keys[-1]:
            store.put(token_key(key), b"a token", retain_until=until, legal_hold=True)
    store.flush()

    def listing() -> None:
        for _ in store.keys(ledger.CHECKPOINT_PREFIX):
            pass

    assert unstamped(store) == [keys[-1]]
    listed, peak = _peak(listing), _peak(lambda: unstamped(store))
    assert peak < listed + 256 * 1024, f"{peak / 1e6:.1f} MB, the listing {listed / 1e6:.1f}"


@contextlib.contextmanager
def _counting(engine: Engine) -> Iterator[list[int]]:
    """The SQLite instructions run through ``engine`` inside the block (none elsewhere)."""
    count = [0]

    def step() -> int:
        count[0] += 1
        return 0

    def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        dbapi_conn.set_progress_handler(step, 1)

    def checkin(dbapi_conn: Any, _record: Any) -> None:
        if dbapi_conn is not None:
            dbapi_conn.set_progress_handler(None, 1)

    if engine.dialect.name != "sqlite":
        yield count
        return
    sa.event.listen(engine, "checkout", checkout)
    sa.event.listen(engine, "checkin", checkin)
    try:
        yield count
    finally:
        sa.event.remove(engine, "checkout", checkout)
        sa.event.remove(engine, "checkin", checkin)


def test_a_capture_under_a_large_hold_does_not_list_the_holds_members(
    instance: Instance,
) -> None:
    """An open hold on a thread that grows by 3,000 comments: each comment captured later
    is still put under it, and on SQLite capturing one takes the same work with the hold's
    3,000 members as with its first 11 (662 instructions both times; each chunk of a
    capture listed every member before: 720, then 15,725)."""
    archiver = instance.app.archiver
    archiver.archive([post("p1", "Missing: Tom, 82, last seen near the common")])
    archiver.archive_batch([comment(n) for n in range(10)], resolve=False)
    hold = hold_on(instance, "thread:p1")
    sqlite = instance.app.engine.dialect.name == "sqlite"

    def capture(n: int) -> int:
        with _counting(instance.app.engine) as steps:
            archiver.archive([comment(n)])
        assert record_of(instance, f"c{n}").legal_hold
        return steps[0]

    first = capture(10)
    for start in range(11, 3011, 1000):
        archiver.archive_batch([comment(n) for n in range(start, start + 1000)], resolve=False)
    assert len(holds.members(instance.app.engine, hold)) == 3012
    later = capture(3011)
    if sqlite:
        assert later < first * 1.1, f"{later} instructions, {first} at first"
