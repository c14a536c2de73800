"""Handing freed memory back to the operating system, once a minute.

The daemon's threads (the delivery workers, the scheduler's jobs, the web console) each
allocate through a glibc malloc arena of their own. What they free stays in their arena, and
an arena gives pages back to the system only from its top: over hours of publishing, sweeps
and exports the arenas hold more and more free memory between the live blocks, and the
resident size grows although the live data does not (measured by ``bench/soak.py``; see
``bench/RESULTS.md``). ``malloc_trim(0)`` releases the free pages of every arena;
:class:`Trimmer` calls it at most once per interval from the daemon's main loop. Where the C
library has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

#: seconds between two trims of the running daemon
TRIM_SECONDS = 60.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


def release_free_memory() -> bool:
    """Give the free pages of every malloc arena back to the system; False when this C
    library cannot (or had nothing to give)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


class Trimmer:
    """Calls ``release`` on :meth:`tick` when ``interval`` seconds passed since the last call
    (or since it was made); ``now`` values are monotonic seconds."""

    def __init__(
        self,
        now: float,
        interval: float = TRIM_SECONDS,
        release: Callable[[], bool] = release_free_memory,
    ) -> None:
        self.interval = interval
        self.release = release
        self.last = now
        self.calls = 0

    def tick(self, now: float) -> None:
        if now - self.last < self.interval:
            return
        self.last = now
        self.calls += 1
        self.release()
