"""A disk that fills while a command runs: one line and a non-zero exit, never a traceback,
whichever write (the database, the store's batch, its catalog) meets the full disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.bulletin_app import write_config
from tests.plugins.environment import tmpfs


def _bulletin(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["bulletin", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def _fill(disk: Path, leave_kib: int) -> None:
    """Fill ``disk`` up to ``leave_kib`` KiB free."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave_kib * 1024))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_publishing_onto_a_full_disk_ends_in_one_line(tmp_path: Path) -> None:
    """Drafted, approved, then published with the disk filling: each run exits 1 with
    ``bulletin: error:`` lines and no traceback, and the notice is never lost."""
    with tmpfs(tmp_path / "disk", "4m") as disk:
        _publish_onto_a_filling_disk(disk, tmp_path)


def _publish_onto_a_filling_disk(small_disk: Path, tmp_path: Path) -> None:
    data_dir = small_disk / "data"
    config = write_config(
        tmp_path / "bulletin.toml", data_dir, f"sqlite:///{data_dir / 'bulletin.db'}"
    )
    assert _bulletin(config, "init").returncode == 0
    tracebacks, drafted = [], 0
    for runs, leave in enumerate((96, 128, 160, 64)):
        (small_disk / "filler").unlink(missing_ok=True)
        added = _bulletin(
            config, "notice", "add", "--category", "road-closure", "--target", "feed",
            "--text", f"Elm St closed until {leave} pm.", "--as", "dana", "--json",
        )  # fmt: skip
        if added.returncode != 0 and runs:  # the database itself has filled the disk
            assert "disk is full" in added.stderr and "Traceback" not in added.stderr
            break
        assert added.returncode == 0, added.stderr
        drafted += 1
        notice = json.loads(added.stdout)["id"]
        assert _bulletin(config, "notice", "approve", str(notice), "--by", "chief").returncode == 0
        _fill(small_disk, leave)
        done = _bulletin(config, "daemon", "--once")
        if "Traceback" in done.stderr + done.stdout:
            tracebacks.append((leave, done.stderr))
        elif done.returncode != 0:
            assert any(line.startswith("bulletin: error:") for line in done.stderr.splitlines())
    (small_disk / "filler").unlink(missing_ok=True)
    assert tracebacks == []
    listed = json.loads(_bulletin(config, "notice", "list", "--json").stdout)["notices"]
    assert len(listed) == drafted
