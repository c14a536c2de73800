"""The daemon hands freed memory back to the system at most and at least once per interval."""

from __future__ import annotations

import itertools
import platform
import threading

from bulletin.service.memory import TRIM_SECONDS, Trimmer, release_free_memory


def test_trims_once_per_interval_whatever_the_loop_turns() -> None:
    calls: list[float] = []
    now = 1000.0

    def release() -> bool:
        calls.append(now)
        return True

    trimmer = Trimmer(now, release=release)
    # the daemon's loop turns every 0.2 s: an hour of turns
    for turn in range(1, 5 * 3600 + 1):
        now = 1000.0 + turn * 0.2
        trimmer.tick(now)
    assert trimmer.calls == len(calls) == 3600 // TRIM_SECONDS
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(TRIM_SECONDS <= gap < TRIM_SECONDS + 0.3 for gap in gaps)


def test_not_before_the_first_interval() -> None:
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        return True

    trimmer = Trimmer(0.0, interval=60.0, release=release)
    trimmer.tick(59.9)
    assert calls == []
    trimmer.tick(60.0)
    assert calls == [1]


def test_releases_what_threads_freed_on_glibc() -> None:
    def churn() -> None:
        blocks = [bytearray(200_000) for _ in range(50)]
        del blocks

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    released = release_free_memory()  # never raises, whatever the C library
    assert isinstance(released, bool)
    if platform.libc_ver()[0] != "glibc":
        assert released is False
