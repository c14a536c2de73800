"""A sweep holds columns, not records: its look for comments gone from a thread follows the
few items gone, not the thread's size, and its look for threads due follows the threads it
sweeps, not every thread the account has had."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

from sqlmodel import Session

from bulletin.archiver.capture.sweep import Sweeper
from bulletin.archiver.capture.threads import register_published
from bulletin.archiver.capture.versioning import absent_items
from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import CaptureThread
from tests.plugins.bulletin_app import Instance
from tests.plugins.capture import comments, fb_post, records, run
from tests.plugins.sandbox import Control
from tests.test_archive import comment

THREAD = 3000


def _peak_of_absent(instance: Instance, seen: set[str]) -> tuple[list[str], int]:
    tracemalloc.start()
    try:
        gone = absent_items(
            instance.app.engine, "feed", "p1", seen, instance.clock.now(), None, None
        )
        return [item.remote_id for item in gone], tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_sweep_of_a_large_thread_loads_only_the_comments_gone(instance: Instance) -> None:
    """A thread of 3,000 comments, every one still listed: the look-up peaks under 2 MB
    (0.7 on SQLite; a whole record each, as it was loaded before, took 12.5 MB). Two gone:
    each comes back as its deleted version with its last text and author."""
    archiver = instance.app.archiver
    for start in range(0, THREAD, 1000):
        archiver.archive_batch([comment(n) for n in range(start, start + 1000)], resolve=False)
    everyone = {f"c{n}" for n in range(THREAD)}
    gone, peak = _peak_of_absent(instance, everyone)
    assert gone == []
    assert peak < 2 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a thread of {THREAD}"
    gone_ids, _ = _peak_of_absent(instance, everyone - {"c7", "c2999"})
    assert gone_ids == ["c7", "c2999"]
    items = absent_items(
        instance.app.engine, "feed", "p1", everyone - {"c7"}, instance.clock.now(), None, 4
    )
    assert [(i.state, i.text, i.author) for i in items] == [
        ("deleted", "Comment number 7 🚧 שלום", "visitor7")
    ]
    assert items[0].extra["absent_from_sweep"] == 4
    assert items[0].extra["state_before"] == "visible"


ACCOUNT_THREADS = 3000


def test_a_sweep_holds_the_threads_it_sweeps_not_every_thread_the_account_has(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """An account with 3,000 threads swept a minute ago and one new post: the sweep reads
    the threads as columns a page at a time and keeps the one due: the look-up peaks under
    2 MB (0.8-0.9; whole rows of every thread, as they were loaded before, took 6.1 MB).
    That thread is then swept."""
    now = site.clock.now()
    with Session(site.app.engine) as session:
        session.add_all(
            CaptureThread(
                account="facebook",
                thread_id=f"old-{n}",
                posted_at=now - timedelta(days=400 + n % 900),
                first_seen_at=now - timedelta(days=400),
                last_swept_at=now - timedelta(minutes=1),
                last_full_at=now - timedelta(minutes=1),
                since_id=f"{10**15 + n}",
            )
            for n in range(ACCOUNT_THREADS)
        )
        session.commit()
    post = fb_post(sandbox)
    expected = comments(control, post, count=3)
    register_published(site.app.engine, "facebook", site.clock)
    with Session(site.app.engine) as session:  # the new post, as a post listing finds it
        session.add(CaptureThread(account="facebook", thread_id=post, first_seen_at=now))
        session.commit()
    sweeper = Sweeper(site.app.archiver, site.app.connector("facebook"), "facebook", site.clock)
    tracemalloc.start()
    try:
        due, later = sweeper._due_threads(now, 0.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(t.thread_id, mode) for t, mode in due] == [(post, "full")]
    assert later == ACCOUNT_THREADS
    assert peak < 2 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for {ACCOUNT_THREADS} threads"
    result = run(site, "facebook")
    assert result.result == "ok" and result.not_due == ACCOUNT_THREADS
    assert sorted(r.remote_id for r in records(site, kind="comment")) == sorted(expected)
