"""The daemon hands freed memory back to the system at most and at least once per interval."""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import bulletin
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


_ARENAS_CHILD = """
import ctypes, threading
from bulletin.service.memory import _libc, limit_arenas
print(limit_arenas({}, 2), flush=True)
hold = []
started = threading.Barrier(9)
def work():
    hold.append([bytearray(300) for _ in range(2000)])
    started.wait()  # all eight threads alive at once, each with its blocks
for t in [threading.Thread(target=work) for _ in range(8)]:
    t.start()
started.wait()
_libc().malloc_stats()
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")
def test_eight_threads_share_at_most_two_arenas() -> None:
    """The bound: however many threads allocate, the daemon's memory is in two arenas."""
    env = {**os.environ, "PYTHONPATH": str(Path(bulletin.__file__).parent.parent)}
    env.pop("MALLOC_ARENA_MAX", None)
    done = subprocess.run(
        [sys.executable, "-c", _ARENAS_CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "True"
    arenas = [line for line in done.stderr.splitlines() if line.startswith("Arena ")]
    assert 1 <= len(arenas) <= 2, done.stderr
