"""Opt-in memory tracing of the daemon, for soak runs and leak hunts.

``BULLETIN_TRACEMALLOC=DIR`` in the daemon's environment starts :mod:`tracemalloc` when the
daemon starts (``BULLETIN_TRACEMALLOC_FRAMES``, default 1, frames kept per allocation) and
writes a snapshot into ``DIR`` on each SIGUSR2 and once at the end:
``snapshot-NNNN.trace`` (load it with ``tracemalloc.Snapshot.load``) and one JSON line per
snapshot in ``DIR/snapshots.jsonl`` (the file, when, the traced size and tracemalloc's own
memory, to subtract from RSS). Unset (the default), nothing is imported or started and the
daemon pays one ``None`` check per loop turn.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

ENV = "BULLETIN_TRACEMALLOC"
FRAMES_ENV = "BULLETIN_TRACEMALLOC_FRAMES"


class MemTrace:
    """Snapshots on request into one directory; :meth:`request` is safe in a signal handler."""

    def __init__(self, directory: Path, frames: int = 1) -> None:
        self.directory = directory
        self.frames = max(1, frames)
        self.taken = 0
        self._wanted = threading.Event()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MemTrace | None:
        """The tracer ``BULLETIN_TRACEMALLOC`` asks for, or None when it is unset or empty."""
        directory = environ.get(ENV, "")
        if not directory:
            return None
        frames = environ.get(FRAMES_ENV, "1")
        return cls(Path(directory), int(frames) if frames.isdigit() else 1)

    def start(self) -> None:
        import tracemalloc

        self.directory.mkdir(parents=True, exist_ok=True)
        tracemalloc.start(self.frames)

    def request(self) -> None:
        """Ask for a snapshot at the next :meth:`dump_if_requested` (signal-safe)."""
        self._wanted.set()

    def dump_if_requested(self) -> Path | None:
        if not self._wanted.is_set():
            return None
        self._wanted.clear()
        return self.dump()

    def dump(self) -> Path:
        """Write a snapshot now; returns its path."""
        import tracemalloc

        self.taken += 1
        path = self.directory / f"snapshot-{self.taken:04d}.trace"
        snapshot = tracemalloc.take_snapshot()
        snapshot.dump(str(path))
        current, peak = tracemalloc.get_traced_memory()
        line = {
            "file": path.name,
            "at": time.time(),
            "pid": os.getpid(),
            "traced": current,
            "traced_peak": peak,
            "tracemalloc_overhead": tracemalloc.get_tracemalloc_memory(),
        }
        with (self.directory / "snapshots.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        return path

    def stop(self) -> None:
        import tracemalloc

        self.dump()
        tracemalloc.stop()
