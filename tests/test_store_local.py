"""The local directory store beyond the shared contract: files on disk, crashes, full disks."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bulletin.archiver.store import open_store
from bulletin.archiver.store.base import NewObject, ObjectInfo, object_key, sha256_hex
from bulletin.archiver.store.local import FOREVER, LocalStore
from bulletin.config.archive import ArchiveSettings, LocalStoreSettings
from bulletin.config.settings import Settings
from bulletin.errors import ArchiveError, IntegrityError, RetentionViolation, StoreUnavailable

UNTIL = datetime(2040, 1, 1, tzinfo=UTC)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalStore]:
    """An empty local store."""
    store = LocalStore(tmp_path / "archive")
    yield store
    store.close()


def catalog_row(store: LocalStore, key: str) -> tuple[object, ...] | None:
    """The catalog row of ``key`` as the sqlite3 tool would show it."""
    with contextlib.closing(sqlite3.connect(store.root / ".retention.db")) as db:
        row: tuple[object, ...] | None = db.execute(
            "SELECT key, sha256, size, retain_until, legal_hold FROM objects WHERE key = ?",
            (key,),
        ).fetchone()
    return row


def test_objects_are_plain_read_only_files(local: LocalStore) -> None:
    """An object is its bytes in one 0o444 file; its retention is a catalog row a person can
    read with the sqlite3 tool."""
    digest, _ = local.put_object(b'{"a":1}', retain_until=UNTIL, legal_hold=True)
    local.flush()
    path = local.root / "sha256" / digest[:2] / digest
    assert path.read_bytes() == b'{"a":1}'
    assert path.stat().st_mode & 0o777 == 0o444
    assert [p.name for p in path.parent.iterdir()] == [digest]
    assert catalog_row(local, object_key(digest)) == (
        object_key(digest),
        digest,
        7,
        "2040-01-01T00:00:00.000000Z",
        1,
    )


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
    assert sorted(p.name for p in (root / "ledger").iterdir()) == ["flushed"]
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


def test_missing_row_reads_as_retained_and_is_repaired(local: LocalStore) -> None:
    """An object whose catalog row was lost is never deletable; putting the bytes again
    repairs it."""
    digest, _ = local.put_object(b"x", retain_until=UNTIL)
    local.flush()
    key = object_key(digest)
    with contextlib.closing(sqlite3.connect(local.root / ".retention.db")) as db, db:
        db.execute("DELETE FROM objects WHERE key = ?", (key,))
    info = local.head(key)
    assert info is not None
    assert info.retain_until == FOREVER
    assert info.size == 1
    with pytest.raises(RetentionViolation, match="indefinitely"):
        local.delete(key, now=datetime(2100, 1, 1, tzinfo=UTC))
    with pytest.raises(RetentionViolation):
        local.extend_retention(key, UNTIL)
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


def test_delete_after_retention_removes_object_and_row(local: LocalStore) -> None:
    """Disposition removes the file and its catalog row once retention has passed."""
    local.put("ledger/1", b"x", retain_until=UNTIL)
    local.flush()
    path = local.path_of("ledger/1")
    local.delete("ledger/1", now=UNTIL + timedelta(seconds=1))
    assert not path.exists()
    assert catalog_row(local, "ledger/1") is None


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


def old_layout_object(root: Path, key: str, data: bytes, until: str, hold: bool) -> Path:
    """Write ``data`` under ``key`` as stores before the catalog did: file plus sidecar."""
    digest = sha256_hex(data)
    name = key.removeprefix("sha256/")
    path = root / "sha256" / name[:2] / name if key.startswith("sha256/") else root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    sidecar = {"key": key, "legal_hold": hold, "retain_until": until, "sha256": digest}
    Path(f"{path}.meta.json").write_text(json.dumps({**sidecar, "size": len(data)}))
    return path


def test_old_layout_with_sidecars_is_imported_on_open(tmp_path: Path) -> None:
    """A root written with per-object sidecars opens with the same retention and holds; the
    sidecars move into the catalog; objects without a readable sidecar stay indefinite."""
    root = tmp_path / "archive"
    held = object_key(sha256_hex(b"held"))
    short = object_key(sha256_hex(b"short"))
    bare = object_key(sha256_hex(b"bare"))
    broken = object_key(sha256_hex(b"broken"))
    old_layout_object(root, held, b"held", "2040-01-01T00:00:00Z", True)
    old_layout_object(root, short, b"short", "2030-06-01T00:00:00Z", False)
    old_layout_object(root, "ledger/000001-000002.jsonl", b"entries", "2126-01-01T00:00:00Z", True)
    old_layout_object(root, bare, b"bare", "2030-01-01T00:00:00Z", False)
    Path(f"{old_layout_object(root, broken, b'broken', 'x', False)}.meta.json").write_text("{")
    Path(f"{root / 'sha256' / bare[7:9] / bare[7:]}.meta.json").unlink()

    store = LocalStore(root)
    assert store.head(held) == ObjectInfo(held, 4, UNTIL, legal_hold=True)
    assert store.head(short) == ObjectInfo(short, 5, datetime(2030, 6, 1, tzinfo=UTC), False)
    ledger_info = store.head("ledger/000001-000002.jsonl")
    assert ledger_info is not None and ledger_info.legal_hold
    assert store.head(bare) == ObjectInfo(bare, 4, FOREVER, legal_hold=False)
    assert store.head(broken) == ObjectInfo(broken, 6, FOREVER, legal_hold=False)
    assert sorted(store.keys()) == sorted([held, short, bare, broken, "ledger/000001-000002.jsonl"])
    # the imported sha256 still checks a key that is not content-addressed
    ledger_file = store.path_of("ledger/000001-000002.jsonl")
    ledger_file.chmod(0o644)
    ledger_file.write_bytes(b"entrieZ")
    with pytest.raises(IntegrityError):
        store.get("ledger/000001-000002.jsonl")
    # the contract holds on imported objects
    with pytest.raises(RetentionViolation, match="legal hold"):
        store.delete(held, now=datetime(2100, 1, 1, tzinfo=UTC))
    with pytest.raises(RetentionViolation, match="retained until"):
        store.extend_retention(short, datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(RetentionViolation, match="indefinitely"):
        store.delete(bare, now=datetime(2100, 1, 1, tzinfo=UTC))
    store.delete(short, now=datetime(2031, 1, 1, tzinfo=UTC))
    sidecars = sorted(p.name for p in root.rglob("*.meta.json"))
    assert sidecars == [f"{broken[7:]}.meta.json"]  # unreadable: left for a person to see
    store.close()
    again = LocalStore(root)  # migrated once: the sidecar walk does not run again
    assert again.import_sidecars() == 0
    assert again.head(held) == ObjectInfo(held, 4, UNTIL, legal_hold=True)
    again.close()


def test_interrupted_import_merges_again(tmp_path: Path) -> None:
    """A crash after the import committed but before the root was marked: the sidecars left
    are imported again, which only keeps the longer retention and any hold."""
    root = tmp_path / "archive"
    key = object_key(sha256_hex(b"held"))
    old_layout_object(root, key, b"held", "2040-01-01T00:00:00Z", False)
    store = LocalStore(root)
    later = UNTIL + timedelta(days=365)
    store.extend_retention(key, later)
    store.set_legal_hold(key, True)
    store.close()
    old_layout_object(root, "ledger/1", b"x", "2030-01-01T00:00:00Z", False)
    path = store.path_of(key)
    path.chmod(0o644)
    path.unlink()
    old_layout_object(root, key, b"held", "2035-01-01T00:00:00Z", False)  # a stale sidecar
    with contextlib.closing(sqlite3.connect(root / ".retention.db")) as db, db:
        db.execute("DELETE FROM store_info")
    store = LocalStore(root)
    assert store.head(key) == ObjectInfo(key, 4, later, legal_hold=True)
    assert store.head("ledger/1") == ObjectInfo(
        "ledger/1", 1, datetime(2030, 1, 1, tzinfo=UTC), legal_hold=False
    )
    assert not list(root.rglob("*.meta.json"))
    store.close()


def test_crash_after_the_catalog_commit_leaves_an_orphan_row(tmp_path: Path) -> None:
    """Killed after the batch's rows are committed but before any rename: no key appears, the
    temporary file goes at the next open, and a later put keeps the longer retention and hold."""
    root = tmp_path / "archive"
    script = (
        "import os, sys\n"
        "from datetime import datetime, UTC\n"
        "from bulletin.archiver.store import local\n"
        "s = local.LocalStore(__import__('pathlib').Path(sys.argv[1]))\n"
        "local.rename_no_replace = lambda a, b: os._exit(9)\n"
        "s.put('ledger/1', b'a', retain_until=datetime(2045, 1, 1, tzinfo=UTC), legal_hold=True)\n"
        "s.flush()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", *sys.path])}
    done = subprocess.run([sys.executable, "-c", script, str(root)], env=env, check=False)
    assert done.returncode == 9
    store = LocalStore(root)
    assert store.head("ledger/1") is None
    assert list(store.keys()) == []
    assert not [p for p in (root / "ledger").iterdir()]
    assert catalog_row(store, "ledger/1") is not None  # the orphan
    store.put("ledger/1", b"a", retain_until=UNTIL)
    store.flush()
    assert store.head("ledger/1") == ObjectInfo(
        "ledger/1", 1, datetime(2045, 1, 1, tzinfo=UTC), legal_hold=True
    )
    store.close()


def test_other_writer_wins_the_name_with_other_bytes(tmp_path: Path) -> None:
    """Two stores on one root stage different bytes under one key: the second flush raises
    IntegrityError and the row still describes the bytes on disk."""
    first = LocalStore(tmp_path / "archive")
    second = LocalStore(tmp_path / "archive")
    first.put("ledger/1", b"first", retain_until=UNTIL)
    second.put("ledger/1", b"second", retain_until=UNTIL)
    first.flush()
    with pytest.raises(IntegrityError, match="another writer"):
        second.flush()
    assert second.get("ledger/1") == b"first"
    assert first.head("ledger/1") == ObjectInfo("ledger/1", 5, UNTIL, legal_hold=False)
    assert not list(first.root.rglob(".*.tmp"))
    first.close()
    second.close()


def test_an_object_is_created_under_its_own_name(local: LocalStore) -> None:
    """A content-addressed put creates the final file at once (no temporary file, no rename);
    its row is written by the flush."""
    digest, result = local.put_object(b"in place", retain_until=UNTIL)
    key = object_key(digest)
    assert result.created
    assert local.path_of(key).read_bytes() == b"in place"
    assert not list(local.root.rglob(".*.tmp"))
    assert catalog_row(local, key) is None
    local.flush()
    assert catalog_row(local, key) == (key, digest, 8, "2040-01-01T00:00:00.000000Z", 0)


def test_the_same_object_twice_in_a_batch_is_stored_once(local: LocalStore) -> None:
    """put_objects of a batch holding one object twice: one file, the second not created."""
    first = NewObject(b"twice", UNTIL)
    results = local.put_objects([first, NewObject(b"other", UNTIL), NewObject(b"twice", UNTIL)])
    assert [r.created for _, r in results] == [True, True, False]
    local.flush()
    assert sorted(local.keys()) == sorted(object_key(d) for d, _ in results[:2])
    assert local.get(object_key(first.sha256)) == b"twice"


@pytest.mark.parametrize("torn", [b"", b"half of the"])
def test_a_torn_object_without_a_row_is_replaced(local: LocalStore, torn: bytes) -> None:
    """A crash cut a write short: the name holds fewer bytes and no row (it was never
    flushed). Putting the object again replaces it whole; nothing else is touched."""
    data = b"half of the bytes, then the crash"
    path = local.path_of(object_key(sha256_hex(data)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(torn)
    digest, result = local.put_object(data, retain_until=UNTIL, legal_hold=True)
    assert result.created
    local.flush()
    assert local.get(object_key(digest)) == data
    assert local.head(object_key(digest)) == ObjectInfo(object_key(digest), 33, UNTIL, True)
    assert not list(local.root.rglob(".*.tmp"))
    assert oct(path.stat().st_mode & 0o777) == "0o444"


def test_a_whole_object_without_a_row_gets_its_row(local: LocalStore) -> None:
    """A crash after the write but before the flush left the whole object and no row: a put
    of the same bytes does not create it again and the next flush writes its row."""
    data = b"written, never flushed"
    path = local.path_of(object_key(sha256_hex(data)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest, result = local.put_object(data, retain_until=UNTIL)
    assert not result.created
    local.flush()
    assert catalog_row(local, object_key(digest)) is not None
    assert local.head(object_key(digest)) == ObjectInfo(object_key(digest), 22, UNTIL, False)


def test_an_altered_object_with_a_row_is_never_repaired(local: LocalStore) -> None:
    """Bytes changed on disk after the flush (the row proves they were whole): a put of the
    original raises IntegrityError and leaves the altered file for verify to find."""
    digest, _ = local.put_object(b"evidence", retain_until=UNTIL)
    local.flush()
    path = local.path_of(object_key(digest))
    path.chmod(0o644)
    path.write_bytes(b"evidencE")
    with pytest.raises(IntegrityError, match="altered"):
        local.put_objects([NewObject(b"evidence", UNTIL)])
    assert path.read_bytes() == b"evidencE"
    with pytest.raises(IntegrityError):
        local.get(object_key(digest))


def test_killed_between_create_and_write_then_the_put_again_repairs(tmp_path: Path) -> None:
    """A process killed after creating an object's file but before writing it leaves an empty
    file under the object's name; the next store finds it torn (an orphan, never a key any
    row refers to) and the put of the same bytes makes it whole."""
    root = tmp_path / "archive"
    script = (
        "import os, sys\n"
        "from datetime import datetime, UTC\n"
        "from bulletin.archiver.store.local import LocalStore\n"
        "s = LocalStore(__import__('pathlib').Path(sys.argv[1]))\n"
        "s.put_object(b'flushed', retain_until=datetime(2040, 1, 1, tzinfo=UTC))\n"
        "s.flush()\n"
        "os.write = lambda fd, data: os._exit(9)\n"
        "s.put_object(b'cut short', retain_until=datetime(2040, 1, 1, tzinfo=UTC))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", *sys.path])}
    done = subprocess.run([sys.executable, "-c", script, str(root)], env=env, check=False)
    assert done.returncode == 9
    store = LocalStore(root)
    key = object_key(sha256_hex(b"cut short"))
    assert store.path_of(key).read_bytes() == b""
    assert catalog_row(store, key) is None
    assert store.put_object(b"cut short", retain_until=UNTIL)[1].created
    store.flush()
    assert store.get(key) == b"cut short"
    assert store.get(object_key(sha256_hex(b"flushed"))) == b"flushed"
    store.close()
