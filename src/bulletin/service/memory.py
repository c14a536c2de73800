"""Keeping the daemon's resident memory from creeping up: fewer malloc arenas, and freed
pages handed back to the operating system once a minute.

The daemon's threads (the delivery workers, the scheduler's ten job threads, the lease
keepers, the web console) each allocate through a glibc malloc arena of their own, up to eight
per core. What a thread frees stays in its arena, between the live blocks; an arena gives
pages back only from its top. Under steady publishing, sweeps and exports the arenas held
more and more free memory while the live data hardly grew (``bench/soak.py``; see
``bench/RESULTS.md``). :func:`limit_arenas` makes the threads share :data:`ARENAS` arenas
(``MALLOC_ARENA_MAX`` in the environment takes precedence), and :class:`Trimmer` calls
``malloc_trim(0)`` at most once per interval from the daemon's main loop to release whole
free pages. Where the C library has neither (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Mapping

#: seconds between two trims of the running daemon
TRIM_SECONDS = 60.0
#: malloc arenas the daemon's threads share (glibc's default is eight per core)
ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None


def limit_arenas(environ: Mapping[str, str], count: int = ARENAS) -> bool:
    """Let at most ``count`` malloc arenas serve the threads started from now on (glibc's
    ``mallopt(M_ARENA_MAX)``): fewer arenas, less free memory stranded in each. Left alone
    when ``MALLOC_ARENA_MAX`` is set (glibc applied it at start) or the C library has no
    ``mallopt`` with that parameter; True when the limit was set."""
    if "MALLOC_ARENA_MAX" in environ:
        return False
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    libc = _libc()
    try:
        trim: Callable[[int], int] = libc.malloc_trim  # type: ignore[union-attr]
    except AttributeError:
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


@functools.cache
def _sqlite_lib() -> ctypes.CDLL | None:
    """The SQLite library Python's ``sqlite3`` module runs on: looked up through the module's
    own extension, so it is the same copy whether linked in or loaded beside it."""
    try:
        import _sqlite3

        lib = ctypes.CDLL(_sqlite3.__file__)
        for name in ("sqlite3_memory_used", "sqlite3_memory_highwater"):
            getattr(lib, name).restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    except (ImportError, OSError, AttributeError):
        return None
    return lib


def sqlite_memory() -> tuple[int, int] | None:
    """Bytes SQLite holds in this process now (every connection's page cache, prepared
    statements and schema) and the most it has held; None where it cannot be asked."""
    lib = _sqlite_lib()
    if lib is None:
        return None
    return int(lib.sqlite3_memory_used()), int(lib.sqlite3_memory_highwater(0))


def resident_bytes() -> int | None:
    """This process's resident memory (``VmRSS``), None where ``/proc`` does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
