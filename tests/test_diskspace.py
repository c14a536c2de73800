"""Free space and inodes where Bulletin writes: shown by `bulletin status`, warned of hourly."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bulletin.service.daemon import Daemon
from bulletin.service.diskspace import measure
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke


def status(inst: Instance) -> tuple[str, list[dict[str, object]]]:
    text = invoke(inst, "status")
    data = invoke(inst, "status", "--json")
    assert text.exit_code == 0 and data.exit_code == 0, text.output + data.output
    disks: list[dict[str, object]] = json.loads(data.stdout)["disk"]
    return text.stdout, disks


def test_one_file_system_is_reported_once_with_its_roles(sqlite_instance: Instance) -> None:
    """Data directory, database and store on one file system: one line naming all three,
    with figures that agree with statvfs itself."""
    [space] = measure(sqlite_instance.settings)
    assert space.roles == ("data directory", "database", "archive store")
    stats = os.statvfs(space.path)
    assert space.total_bytes == stats.f_blocks * stats.f_frsize
    assert 0 <= space.free_bytes <= space.total_bytes
    assert 0 <= space.free_inodes <= space.total_inodes or space.total_inodes == 0
    text, disks = status(sqlite_instance)
    [line] = [line for line in text.splitlines() if line.startswith("disk: ")]
    assert "data directory, database, archive store" in line and "free of" in line
    assert len(disks) == 1 and disks[0]["roles"] == list(space.roles)


@pytest.fixture
def store_on_small_disk(tmp_path: Path, small_disk: Path) -> Iterator[Instance]:
    """A Bulletin whose archive store is on a 1 MiB tmpfs, nearly full."""
    inst = make_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        f'\n[archive.local]\npath = "{small_disk / "archive"}"\n',
    )
    (small_disk / "ballast").write_bytes(b"\0" * (960 * 1024))
    yield inst
    inst.app.close()


def test_a_filling_store_is_low_in_status_and_warned_of_by_the_daemon(
    store_on_small_disk: Instance,
) -> None:
    """The store's file system under 10% free: `bulletin status` marks it LOW (and only it),
    and the daemon's check logs a warning naming the archive store."""
    inst = store_on_small_disk
    text, disks = status(inst)
    low = [d for d in disks if d["low"]]
    assert [d["roles"] for d in low] == [["archive store"]]
    [line] = [line for line in text.splitlines() if "archive store" in line]
    assert "LOW (under 10%)" in line
    assert not any("LOW" in x for x in text.splitlines() if "data directory" in x)
    with capture_logs() as logged:
        [warned] = Daemon(inst.app).maintenance.check_disk_space()
    assert warned.roles == ("archive store",)
    [entry] = [e for e in logged if e["event"].startswith("disk space low")]
    assert entry["log_level"] == "warning" and entry["where"] == "archive store"


def test_the_warning_can_be_turned_off(tmp_path: Path, small_disk: Path) -> None:
    """[paths] warn_free_percent = 0: nothing is low, however full."""
    inst = make_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        f'\n[archive.local]\npath = "{small_disk / "archive"}"\n',
    )
    try:
        (small_disk / "ballast").write_bytes(b"\0" * (960 * 1024))
        text = inst.config.read_text().replace("[paths]\n", "[paths]\nwarn_free_percent = 0\n", 1)
        inst.config.write_text(text)
        out, disks = status(inst)
        assert not any(d["low"] for d in disks) and "LOW" not in out
    finally:
        inst.app.close()
