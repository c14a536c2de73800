"""A sweep's look for comments gone from a thread holds columns, not records: its memory
follows the few items gone, not the thread's size."""

from __future__ import annotations

import tracemalloc

from bulletin.archiver.capture.versioning import absent_items
from tests.plugins.bulletin_app import Instance
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
