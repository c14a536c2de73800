"""The daemon's opt-in memory tracing: off unless ``BULLETIN_TRACEMALLOC`` names a folder."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from bulletin.config.loader import _env_overrides
from bulletin.service.memtrace import MemTrace


def test_off_unless_asked() -> None:
    assert MemTrace.from_environ({}) is None
    assert MemTrace.from_environ({"BULLETIN_TRACEMALLOC": ""}) is None


def test_snapshots_on_request_and_at_the_end(tmp_path: Path) -> None:
    trace = MemTrace.from_environ(
        {"BULLETIN_TRACEMALLOC": str(tmp_path / "t"), "BULLETIN_TRACEMALLOC_FRAMES": "3"}
    )
    assert trace is not None and trace.frames == 3
    was_tracing = tracemalloc.is_tracing()
    trace.start()
    try:
        assert trace.dump_if_requested() is None  # nothing asked yet
        trace.request()
        first = trace.dump_if_requested()
        assert first is not None and trace.dump_if_requested() is None
        assert len(tracemalloc.Snapshot.load(str(first)).traces) > 0
    finally:
        trace.stop()
        if was_tracing:
            tracemalloc.start()
    lines = (tmp_path / "t" / "snapshots.jsonl").read_text().splitlines()
    assert [json.loads(line)["file"] for line in lines] == [
        "snapshot-0001.trace",
        "snapshot-0002.trace",
    ]
    assert json.loads(lines[0])["tracemalloc_overhead"] > 0


def test_the_variables_are_not_settings() -> None:
    env = {"BULLETIN_TRACEMALLOC": "/tmp/x", "BULLETIN_TRACEMALLOC_FRAMES": "4"}
    overrides, unknown = _env_overrides(env)
    assert overrides == {} and unknown == []
