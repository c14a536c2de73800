"""The local directory WORM store: plain files, written once, hash-checked.

Layout under ``root``::

    sha256/ab/<hex>             a content-addressed object (the bytes as given)
    sha256/ab/<hex>.meta.json   its sidecar: retain_until (ISO UTC), legal_hold, sha256, size
    ledger/<...>                objects with meaningful keys, stored at their key
    .staging/                   one marker per open store; sidecars being replaced

Content-addressed objects fan out by the first two hex digits (256 directories, as git does);
:meth:`LocalStore.keys` still yields the logical key ``sha256/<hex>``. Every file can be read
with standard tools (``cat``, ``jq``, ``sha256sum``).

Durability is by :meth:`LocalStore.flush` (group commit). ``put`` writes the bytes to a new
temporary file beside their final name (``.<token>-<n>.tmp``, ``O_CREAT | O_EXCL``, mode 0o444)
and returns; ``flush`` makes every staged file durable with one barrier (``syncfs(2)`` on
Linux, else an fsync of each file), writes each sidecar, moves each object into place without
replacing anything (``renameat2(RENAME_NOREPLACE)``, else link + unlink), and makes the new
names durable with a second barrier. So an object is visible under its key only once its bytes
are on disk: a crash never leaves a torn object under a key, only dot-named temporary files,
which :meth:`LocalStore.keys` never lists and the next open removes (each open store keeps a
marker in ``.staging``; a marker whose process has gone means a crash). Puts that were not
flushed are lost by a crash; callers flush per batch before advancing a cursor or
acknowledging anything.

A sidecar is only replaced atomically (temporary file, fsync, rename) and only ever extends
retention. An object whose sidecar is missing or unreadable (a crash before the second
barrier) is treated as retained indefinitely until a put of the same bytes writes the sidecar
again. A put of bytes already stored leaves their retention as it is: extend it with
:meth:`LocalStore.extend_retention` and :meth:`LocalStore.set_legal_hold`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from heapq import merge
from pathlib import Path

from bulletin.archiver.store.base import (
    OBJECT_PREFIX,
    ObjectInfo,
    PutResult,
    WormStore,
    digest_of_key,
    sha256_hex,
)
from bulletin.archiver.store.files import (
    barrier,
    fsync_dir,
    fsync_file,
    pid_alive,
    rename_no_replace,
    write_new,
)
from bulletin.clock import utc
from bulletin.errors import (
    ArchiveError,
    IntegrityError,
    NotFound,
    RetentionViolation,
    StoreUnavailable,
)

META_SUFFIX = ".meta.json"
STAGING = ".staging"
FOREVER = datetime.max.replace(tzinfo=UTC)
_HEX = frozenset("0123456789abcdef")
_LIVE_TOKENS: set[str] = set()  # tokens of the stores open in this process
_TOKEN = re.compile(r"^(\d+)-[0-9a-f]+")


def _iso(when: datetime) -> str:
    return utc(when).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


@dataclass
class _Meta:
    """The sidecar of one object."""

    key: str
    sha256: str
    size: int
    retain_until: datetime
    legal_hold: bool

    def encode(self) -> bytes:
        body = {
            "key": self.key,
            "legal_hold": self.legal_hold,
            "retain_until": _iso(self.retain_until),
            "sha256": self.sha256,
            "size": self.size,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def decode(cls, raw: bytes) -> _Meta:
        body = json.loads(raw)
        return cls(
            key=str(body["key"]),
            sha256=str(body["sha256"]),
            size=int(body["size"]),
            retain_until=_parse_iso(str(body["retain_until"])),
            legal_hold=bool(body["legal_hold"]),
        )

    def info(self, version_id: str | None = None) -> ObjectInfo:
        return ObjectInfo(self.key, self.size, self.retain_until, self.legal_hold, version_id)


@dataclass
class _Staged:
    """A put not yet flushed: its bytes are in ``temp``; its sidecar is in memory."""

    path: str
    temp: str
    meta: _Meta


class LocalStore(WormStore):
    """A WORM store in a local directory. Durability is by :meth:`flush`; see the module doc.

    :raises StoreUnavailable: ``root`` cannot be created or written (full disk, a path under a
        regular file, a read-only file system).
    """

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._staging = self.root / STAGING
        self._staging_dir = str(self._staging)
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._counter = 0
        self._staged: dict[str, _Staged] = {}
        self._root = os.fspath(self.root)
        self._known_dirs: set[str] = set()
        self._unsynced: set[str] = set()
        self._lock = threading.RLock()
        _LIVE_TOKENS.add(self._token)
        self._marker = self._staging / f"{self._token}.open"
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
            self.remove_stale_temp_files()
            write_new(str(self._marker), b"")
            fsync_file(self._marker)
            fsync_dir(self._staging)
        except OSError as e:
            _LIVE_TOKENS.discard(self._token)
            raise self._unavailable("cannot be opened for writing", e) from e

    # -- paths -------------------------------------------------------------------------------

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (it may not exist yet).

        :raises ArchiveError: ``key`` is not a valid key.
        """
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        digest = digest_of_key(key)
        if digest is not None:
            if len(digest) != 64 or not set(digest) <= _HEX:
                raise ArchiveError(f"invalid key {key!r}: not sha256/ and 64 lowercase hex")
            return f"{self._root}/sha256/{digest[:2]}/{digest}"
        parts = key.split("/")
        for part in parts:
            if not part or part in {".", ".."} or part.startswith(".") or "\\" in part:
                raise ArchiveError(f"invalid key {key!r}: empty, dot or backslash segment")
            if part.endswith(META_SUFFIX) or "\0" in part:
                raise ArchiveError(f"invalid key {key!r}: reserved name")
        return os.path.join(self._root, *parts)

    @staticmethod
    def _meta_path(path: str) -> str:
        return path + META_SUFFIX

    def _new_temp(self, kind: str) -> str:
        self._counter += 1
        return f"{self._staging_dir}/{self._token}-{self._counter}.{kind}"

    def _object_temp(self, directory: str) -> str:
        self._counter += 1
        return f"{directory}/.{self._token}-{self._counter}.tmp"

    def _unavailable(self, what: str, e: OSError) -> StoreUnavailable:
        code = errno.errorcode.get(e.errno or 0, "error")
        reason = "disk full" if e.errno in {errno.ENOSPC, errno.EDQUOT} else e.strerror
        return StoreUnavailable(f"archive store {self.root} {what}: {reason} ({code})")

    # -- WormStore ---------------------------------------------------------------------------

    def put(
        self, key: str, data: bytes, *, retain_until: datetime, legal_hold: bool = False
    ) -> PutResult:
        """Stage ``data`` under ``key``; durable after the next :meth:`flush`."""
        digest = sha256_hex(data)
        promised = digest_of_key(key)
        if promised is not None and promised != digest:
            raise IntegrityError(f"key {key} does not match the sha256 of its bytes ({digest})")
        path = self._file(key)
        meta = _Meta(key, digest, len(data), utc(retain_until), legal_hold)
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None:
                if staged.meta.sha256 != digest:
                    raise IntegrityError(f"key {key} already holds other bytes")
                return PutResult(key, created=False)
            if self._exists(path, key, writing=True):
                if self._read(path, key) != data:
                    raise IntegrityError(f"key {key} already holds other bytes")
                if self._read_meta(path) is None:
                    self._replace_meta(path, meta)  # repair a sidecar lost in a crash
                return PutResult(key, created=False)
            parent = os.path.dirname(path)
            temp = self._object_temp(parent)
            try:
                self._ensure_dir(parent, key)
                write_new(temp, data)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise self._unavailable(f"cannot write {key}", e) from e
            self._staged[key] = _Staged(path, temp, meta)
            return PutResult(key, created=True)

    def get(self, key: str, *, verify: bool = True) -> bytes:
        """The bytes of ``key``; ``verify`` checks them against the key or the sidecar sha256."""
        path = self._file(key)
        with self._lock:
            staged = self._staged.get(key)
            source = staged.temp if staged is not None else path
            if staged is None and not self._exists(path, key):
                raise NotFound(f"no object {key} in the archive")
            data = self._read(source, key)
            meta = staged.meta if staged is not None else self._read_meta(path)
        if verify:
            expected = digest_of_key(key) or (meta.sha256 if meta else None)
            if expected is not None and sha256_hex(data) != expected:
                raise IntegrityError(f"object {key} does not match its sha256 (altered on disk)")
        return data

    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``; a missing sidecar reads as retained indefinitely."""
        path = self._file(key)
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None:
                return staged.meta.info()
            if not self._exists(path, key):
                return None
            meta = self._read_meta(path)
            if meta is None:
                size = os.stat(path).st_size
                return ObjectInfo(key, size, FOREVER, legal_hold=False)
            return meta.info()

    def extend_retention(self, key: str, retain_until: datetime) -> ObjectInfo:
        """Extend retain-until (durable on return); an earlier value raises RetentionViolation."""
        wanted = utc(retain_until)
        with self._lock:
            meta = self._meta_for_update(key)
            if wanted < meta.retain_until:
                raise RetentionViolation(
                    f"{key} is retained until {_iso(meta.retain_until)}; "
                    f"retention cannot be shortened to {_iso(wanted)}"
                )
            if wanted == meta.retain_until:
                return meta.info()
            meta.retain_until = wanted
            self._store_meta(key, meta)
            return meta.info()

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        """Place or release a legal hold (durable on return)."""
        with self._lock:
            meta = self._meta_for_update(key)
            if meta.legal_hold != on:
                meta.legal_hold = on
                self._store_meta(key, meta)
            return meta.info()

    def delete(self, key: str, *, now: datetime) -> None:
        """Remove ``key`` (durable on return) once retention has passed and no hold is on."""
        with self._lock:
            info = self.head(key)
            if info is None:
                raise NotFound(f"no object {key} in the archive")
            if info.legal_hold:
                raise RetentionViolation(f"{key} is on legal hold; release the hold first")
            if info.retain_until > utc(now):
                until = (
                    "indefinitely (its sidecar is missing)"
                    if info.retain_until == FOREVER
                    else f"until {_iso(info.retain_until)}"
                )
                raise RetentionViolation(f"{key} is retained {until}; it cannot be deleted yet")
            staged = self._staged.pop(key, None)
            try:
                if staged is not None:
                    os.unlink(staged.temp)
                    return
                path = self._file(key)
                os.unlink(path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._meta_path(path))
                fsync_dir(os.path.dirname(path))
            except OSError as e:
                raise self._unavailable(f"cannot delete {key}", e) from e

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Logical keys starting with ``prefix`` in lexical order, staged puts included."""
        with self._lock:
            staged = sorted(k for k in self._staged if k.startswith(prefix))
        seen = set(staged)
        on_disk = (k for k in self._walk(self.root, (), prefix) if k not in seen)
        yield from merge(on_disk, staged)

    def flush(self) -> None:
        """Make every put since the last flush durable, with two barriers for the whole batch.

        :raises StoreUnavailable: the disk refused; what was not linked stays staged for the
            next flush.
        """
        with self._lock:
            if not self._staged and not self._unsynced:
                return
            batch = list(self._staged.items())
            conflicts: list[str] = []
            try:
                if batch:
                    barrier(self.root, [s.temp for _, s in batch])
                for key, staged in batch:
                    if not self._publish(staged):
                        conflicts.append(key)
                    self._unsynced.add(os.path.dirname(staged.path))
                    del self._staged[key]
                barrier(self.root, [], self._unsynced)
                self._unsynced.clear()
            except OSError as e:
                raise self._unavailable("cannot make the batch durable", e) from e
            if conflicts:
                raise IntegrityError(
                    f"another writer stored other bytes under {', '.join(conflicts)}"
                )

    def close(self) -> None:
        """Flush what is staged and remove this store's open marker."""
        try:
            self.flush()
            with contextlib.suppress(OSError):
                self._marker.unlink()
        finally:
            _LIVE_TOKENS.discard(self._token)

    # -- housekeeping ------------------------------------------------------------------------

    def remove_stale_temp_files(self) -> int:
        """Remove the temporary files of stores whose process has gone (a crash).

        Cheap when nothing crashed: only ``.staging`` is read. Returns how many were removed.
        """
        stale: set[str] = set()
        entries = list(os.scandir(self._staging))
        for entry in entries:
            match = _TOKEN.match(entry.name)
            if match is None:
                continue
            token, pid = match.group(0), int(match.group(1))
            if token in _LIVE_TOKENS or (pid != os.getpid() and pid_alive(pid)):
                continue
            stale.add(token)
        if not stale:
            return 0
        removed = 0
        prefixes = tuple(f".{token}-" for token in stale)
        for directory, folders, names in os.walk(self.root):
            folders[:] = [f for f in folders if not f.startswith(".")]
            for name in names:
                if name.startswith(prefixes):
                    os.unlink(os.path.join(directory, name))
                    removed += 1
        for entry in entries:
            match = _TOKEN.match(entry.name)
            if match is not None and match.group(0) in stale:
                os.unlink(entry.path)
                removed += not entry.name.endswith(".open")
        return removed

    # -- internals ---------------------------------------------------------------------------

    def _exists(self, path: str, key: str, *, writing: bool = False) -> bool:
        """Whether ``key`` is stored; a folder of other keys counts as absent unless writing."""
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:  # pragma: no cover - stat on a broken disk
            raise self._unavailable(f"cannot read {key}", e) from e
        if stat.S_ISDIR(mode) and writing:
            raise ArchiveError(f"key {key} names a folder of other keys")
        return stat.S_ISREG(mode)

    def _read(self, path: Path | str, key: str) -> bytes:
        try:
            with open(path, "rb") as file:
                return file.read()
        except FileNotFoundError as e:
            raise NotFound(f"no object {key} in the archive") from e
        except OSError as e:
            raise self._unavailable(f"cannot read {key}", e) from e

    def _read_meta(self, path: str) -> _Meta | None:
        try:
            with open(self._meta_path(path), "rb") as file:
                return _Meta.decode(file.read())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _ensure_dir(self, directory: str, key: str) -> None:
        if directory in self._known_dirs:
            return
        try:
            os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            if self.root.is_dir() and directory.startswith(self._root + "/"):
                raise ArchiveError(f"key {key} lies under an existing object") from e
            raise
        self._known_dirs.add(directory)

    def _meta_for_update(self, key: str) -> _Meta:
        staged = self._staged.get(key)
        if staged is not None:
            return staged.meta
        info = self.head(key)
        if info is None:
            raise NotFound(f"no object {key} in the archive")
        meta = self._read_meta(self._file(key))
        if meta is None:  # sidecar lost in a crash: rebuild it from the bytes
            data = self.get(key)
            meta = _Meta(key, sha256_hex(data), len(data), FOREVER, False)
        return meta

    def _store_meta(self, key: str, meta: _Meta) -> None:
        if key not in self._staged:  # a staged sidecar is written at flush
            self._replace_meta(self._file(key), meta)

    def _replace_meta(self, path: str, meta: _Meta) -> None:
        """Write the sidecar of ``path`` atomically and durably: temp, fsync, rename, fsync dir."""
        temp = self._new_temp("meta")
        try:
            write_new(temp, meta.encode())
            fsync_file(temp)
            os.replace(temp, self._meta_path(path))
            fsync_dir(os.path.dirname(path))
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise self._unavailable(f"cannot update the retention of {meta.key}", e) from e

    def _publish(self, staged: _Staged) -> bool:
        """Put one staged object in place, sidecar first; False if the key holds other bytes.

        Runs after the first barrier, so the bytes are durable before their name appears.
        """
        path = staged.path
        meta_path = path + META_SUFFIX
        try:
            write_new(meta_path, staged.meta.encode())
        except FileExistsError:  # an orphan sidecar: keep the longer retention and any hold
            old = self._read_meta(staged.path)
            if old is not None:
                staged.meta.retain_until = max(old.retain_until, staged.meta.retain_until)
                staged.meta.legal_hold = old.legal_hold or staged.meta.legal_hold
            temp = self._new_temp("meta")
            write_new(temp, staged.meta.encode())
            os.replace(temp, meta_path)
        if rename_no_replace(staged.temp, path):
            return True
        same = self._read(path, staged.meta.key) == self._read(staged.temp, staged.meta.key)
        os.unlink(staged.temp)
        return same

    def _walk(self, directory: Path, parts: tuple[str, ...], prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        except OSError as e:
            raise self._unavailable("cannot be listed", e) from e
        ordered: list[tuple[str, os.DirEntry[str]]] = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(META_SUFFIX):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            ordered.append((entry.name + "/" if is_dir else entry.name, entry))
        ordered.sort()
        for sort_name, entry in ordered:
            sub = (*parts, entry.name)
            if sort_name.endswith("/"):
                logical = _logical_dir(sub)
                if logical.startswith(prefix) or prefix.startswith(logical):
                    yield from self._walk(Path(entry.path), sub, prefix)
                continue
            key = _logical_key(sub)
            if key is not None and key.startswith(prefix):
                yield key


def _logical_dir(parts: tuple[str, ...]) -> str:
    """The key prefix every key under the folder ``parts`` starts with."""
    if parts[0] == "sha256" and len(parts) == 2:
        return OBJECT_PREFIX + parts[1]
    return "/".join(parts) + "/"


def _logical_key(parts: tuple[str, ...]) -> str | None:
    """The key stored in the file ``parts``, or None for a stray file in the fan-out."""
    if parts[0] == "sha256":
        return OBJECT_PREFIX + parts[2] if len(parts) == 3 else None
    return "/".join(parts)
