"""The local directory store beyond the shared contract: files on disk, crashes, full disks."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bulletin.archiver.store import open_store
from bulletin.archiver.store.base import object_key, sha256_hex
from bulletin.archiver.store.local import FOREVER, LocalStore
from bulletin.config.settings import ArchiveSettings, LocalStoreSettings, Settings
from bulletin.errors import ArchiveError, IntegrityError, RetentionViolation, StoreUnavailable
from tests.plugins.environment import IN_CI

UNTIL = datetime(2040, 1, 1, tzinfo=UTC)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalStore]:
    """An empty local store."""
    store = LocalStore(tmp_path / "archive")
    yield store
    store.close()


def test_objects_are_plain_read_only_files(local: LocalStore) -> None:
    """An object is its bytes in a 0o444 file, with a JSON sidecar a person can read."""
    digest, _ = local.put_object(b'{"a":1}', retain_until=UNTIL, legal_hold=True)
    local.flush()
    path = local.root / "sha256" / digest[:2] / digest
    assert path.read_bytes() == b'{"a":1}'
    assert path.stat().st_mode & 0o777 == 0o444
    meta = json.loads(Path(f"{path}.meta.json").read_text())
    assert meta == {
        "key": object_key(digest),
        "legal_hold": True,
        "retain_until": "2040-01-01T00:00:00Z",
        "sha256": digest,
        "size": 7,
    }


def test_open_store_builds_the_local_store(tmp_path: Path) -> None:
    """open_store gives a LocalStore at the configured path."""
    settings = Settings(
        archive=ArchiveSettings(local=LocalStoreSettings(path=tmp_path / "a")),
    )
    store = open_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "a"
    store.close()


def test_tampered_file_is_detected(local: LocalStore) -> None:
    """Flipping one byte of an object on disk makes get(verify=True) raise, naming the key."""
    digest, _ = local.put_object(b"evidence", retain_until=UNTIL)
    local.put("ledger/000001", b"entry", retain_until=UNTIL)
    local.flush()
    for key in (object_key(digest), "ledger/000001"):
        path = local.path_of(key)
        raw = bytearray(path.read_bytes())
        raw[0] ^= 0x01
        path.chmod(0o644)
        path.write_bytes(bytes(raw))
        with pytest.raises(IntegrityError, match=key):
            local.get(key)
        assert local.get(key, verify=False) == bytes(raw)


def test_unflushed_puts_are_not_visible_to_another_store(local: LocalStore) -> None:
    """Until flush, a put lives only in staging: another store on the same root sees nothing."""
    local.put("ledger/1", b"x", retain_until=UNTIL)
    other = LocalStore(local.root)
    assert other.head("ledger/1") is None
    local.flush()
    assert other.get("ledger/1") == b"x"
    other.close()


def test_crash_before_flush_leaves_nothing_under_a_key(tmp_path: Path) -> None:
    """A process killed before flush leaves only staged files, removed at the next open."""
    root = tmp_path / "archive"
    script = (
        "import os, sys\n"
        "from datetime import datetime, UTC\n"
        "from bulletin.archiver.store.local import LocalStore\n"
        "s = LocalStore(__import__('pathlib').Path(sys.argv[1]))\n"
        "s.put('ledger/flushed', b'a', retain_until=datetime(2040, 1, 1, tzinfo=UTC))\n"
        "s.flush()\n"
        "s.put('ledger/lost', b'b', retain_until=datetime(2040, 1, 1, tzinfo=UTC))\n"
        "os._exit(9)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", *sys.path])}
    done = subprocess.run([sys.executable, "-c", script, str(root)], env=env, check=False)
    assert done.returncode == 9
    leftovers = [p.name for p in (root / "ledger").iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1
    store = LocalStore(root)
    assert list(store.keys()) == ["ledger/flushed"]
    assert sorted(p.name for p in (root / "ledger").iterdir()) == ["flushed", "flushed.meta.json"]
    assert [p.name for p in (root / ".staging").iterdir()] == [f"{store._token}.open"]
    store.close()
    assert list((root / ".staging").iterdir()) == []


def test_stray_temp_files_are_ignored(local: LocalStore) -> None:
    """Dot-files beside objects (an editor's or a crashed tool's) are never listed as keys."""
    local.put("ledger/1", b"x", retain_until=UNTIL)
    local.flush()
    (local.root / "ledger" / ".1.tmp").write_bytes(b"partial")
    (local.root / "sha256").mkdir()
    (local.root / "sha256" / ".tmp-123").write_bytes(b"partial")
    assert list(local.keys()) == ["ledger/1"]


def test_missing_sidecar_reads_as_retained_and_is_repaired(local: LocalStore) -> None:
    """An object whose sidecar was lost is never deletable; putting the bytes again repairs it."""
    digest, _ = local.put_object(b"x", retain_until=UNTIL)
    local.flush()
    key = object_key(digest)
    Path(f"{local.path_of(key)}.meta.json").unlink()
    info = local.head(key)
    assert info is not None
    assert info.retain_until == FOREVER
    with pytest.raises(RetentionViolation, match="indefinitely"):
        local.delete(key, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert not local.put_object(b"x", retain_until=UNTIL)[1].created
    assert local.head(key).retain_until == UNTIL  # type: ignore[union-attr]


def test_unwritable_root_is_unavailable(tmp_path: Path) -> None:
    """A root under a regular file raises StoreUnavailable with a one-line message."""
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreUnavailable) as caught:
        LocalStore(tmp_path / "file" / "archive")
    assert "\n" not in str(caught.value)


def test_invalid_keys_are_refused(local: LocalStore) -> None:
    """Keys that would escape the root or collide with store files are refused."""
    for key in ("../x", "/abs", "a//b", "ledger/.hidden", "a/b.meta.json", "sha256/zz"):
        with pytest.raises(ArchiveError, match=r"invalid key|does not match"):
            local.put(key, b"x", retain_until=UNTIL)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only); skipped where it cannot be mounted unless under CI."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs under CI: {done.stderr.decode().strip()}")
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_is_unavailable_and_leaves_no_partial_object(small_disk: Path) -> None:
    """On a full disk, put raises StoreUnavailable; no partial object or staged file remains."""
    store = LocalStore(small_disk / "archive")
    stored: list[str] = []

    def fill() -> None:
        for _ in range(200):
            blob = uuid.uuid4().bytes * 4096  # 64 KiB
            stored.append(store.put_object(blob, retain_until=UNTIL)[0])
            store.flush()

    with pytest.raises(StoreUnavailable, match="disk full"):
        fill()
    assert stored
    assert not [p for p in (small_disk / "archive").rglob(".*.tmp")]
    keys = list(store.keys())
    assert keys == sorted(object_key(d) for d in stored)
    for key in keys:
        assert sha256_hex(store.get(key)) == key.removeprefix("sha256/")
    store.close()


def test_delete_after_retention_removes_object_and_sidecar(local: LocalStore) -> None:
    """Disposition removes both files once retention has passed."""
    local.put("ledger/1", b"x", retain_until=UNTIL)
    local.flush()
    path = local.path_of("ledger/1")
    local.delete("ledger/1", now=UNTIL + timedelta(seconds=1))
    assert not path.exists()
    assert not Path(f"{path}.meta.json").exists()


def test_fallbacks_without_syncfs_and_renameat2(
    local: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without syncfs or renameat2 the store fsyncs each file and links without replacing."""
    from bulletin.archiver.store import files

    monkeypatch.setattr(files, "_SYNCFS", None)
    monkeypatch.setattr(files, "_RENAMEAT2", None)
    digest, _ = local.put_object(b"fallback", retain_until=UNTIL)
    local.put("ledger/1", b"x", retain_until=UNTIL)
    local.flush()
    assert list(local.keys()) == ["ledger/1", object_key(digest)]
    assert local.get(object_key(digest)) == b"fallback"
    assert not list(local.root.rglob(".*.tmp"))


def test_a_key_cannot_shadow_a_folder_of_keys(local: LocalStore) -> None:
    """A key that is a folder of other keys on disk reads as absent and cannot be written."""
    local.put("ledger/a/1", b"x", retain_until=UNTIL)
    local.flush()
    assert local.head("ledger/a") is None
    with pytest.raises(ArchiveError, match="folder"):
        local.put("ledger/a", b"y", retain_until=UNTIL)
    with pytest.raises(ArchiveError, match="under an existing object"):
        local.put("ledger/a/1/2", b"z", retain_until=UNTIL)
