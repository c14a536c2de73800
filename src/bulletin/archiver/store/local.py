"""The local directory WORM store: plain files, written once, hash-checked. Where each key
lives on disk: :mod:`.layout`; what a crash or an older layout leaves, cleaned up at open:
:mod:`.recovery`.

Which keys exist is decided by the files alone; the catalog only says how long each is kept.

Durability is by :meth:`LocalStore.flush` (group commit).

**Objects in place.** A content-addressed object (``sha256/<hex>``) is created under its final
name: one ``open(O_CREAT | O_EXCL)`` and one write, mode 0o444, no look-up first (the create
is the look-up: a name already taken is only then read and compared). Its name is its hash, so
a reader can always tell a whole object from a torn one. ``flush`` then, for the whole batch:

1. makes every new file durable with one barrier (``syncfs(2)`` on Linux, else an fsync of
   each file and of its folder);
2. commits every staged object's catalog row in one transaction (``synchronous=FULL``: one
   fsync of the WAL). A row only ever extends what is there: the later retain-until and any
   hold already set are kept.

A row is written only after its object's bytes are durable, so a row is the proof that the
object under it was whole. What a crash leaves: objects without rows, each whole or torn (a
write cut short). Neither was acknowledged (flush had not returned); both are orphans that
nothing in the index refers to (``verify`` notes them). A later put of the same bytes finds
the name taken and reads it: whole bytes without a row get their row at the next flush; bytes
that do not hash to the name and have no row are a torn write, replaced (a temporary file,
fsynced, renamed over it, so the name never holds less than before). Bytes that do not hash to
the name but have a row were altered after they were stored: ``IntegrityError``, as for any
other key. The put of a write that fails (a full disk) removes the file it created. Another
store on the same root sees an object in place from its put on, without a row until the
flush (so retained indefinitely, as below), and stores its own row if it puts the same bytes.

**Other keys** (``ledger/``, ``checkpoints/``: their name does not prove their bytes). ``put``
writes the bytes to a new temporary file beside their final name (``.<token>-<n>.tmp``,
``O_CREAT | O_EXCL``, mode 0o444) and returns. ``flush`` then: the barrier and the catalog
commit above, then moves each such file into place without replacing anything
(``renameat2(RENAME_NOREPLACE)``, else link + unlink), then makes the new names durable with a
second barrier (``syncfs`` or an fsync of each folder). What a crash leaves, by the step it
interrupts:

- before the catalog commit: dot-named temporary files only, no rows. Nothing is visible under
  a key; the next open removes the temporary files (each open store keeps a marker in
  ``.staging``; a marker whose process has gone means a crash). The batch was never
  acknowledged, so the caller puts it again.
- after the commit, before the names are durable: the rows are durable; some names may be
  missing. A row without its file is an orphan: ``head`` and ``get`` answer "no such key", the
  temporary file is removed at the next open, and a later put of the key merges with the row
  (the longer retention and any hold win). Such a key never appears without its row, and never
  with torn bytes.
- after the second barrier: the batch is durable and flush returns.

Puts that were not flushed are lost by a crash; callers flush per batch before advancing a
cursor or acknowledging anything. ``extend_retention``, ``set_legal_hold`` and ``delete`` are
durable when they return (each one transaction; ``delete`` removes the file and makes that
durable before the row goes, so a crash between leaves only an orphan row).

An object whose row is missing (a catalog lost or restored from an old copy, or an object
copied in by hand) reads as retained indefinitely with no hold, so it can never be deleted,
until a put of the same bytes writes the row again. A put of bytes already stored leaves their
retention as it is: extend it with :meth:`LocalStore.extend_retention` and
:meth:`LocalStore.set_legal_hold`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from heapq import merge
from pathlib import Path

from bulletin.archiver.store.base import (
    OBJECT_PREFIX,
    NewObject,
    ObjectInfo,
    PutResult,
    WormStore,
    digest_of_key,
    sha256_hex,
)
from bulletin.archiver.store.catalog import Catalog, Meta, is_full, iso
from bulletin.archiver.store.files import FEW, barrier, rename_no_replace, write_new
from bulletin.archiver.store.layout import file_of, walk_keys
from bulletin.archiver.store.recovery import import_sidecars, remove_stale_temp_files
from bulletin.clock import utc
from bulletin.errors import (
    ArchiveError,
    IntegrityError,
    NotFound,
    RetentionViolation,
    StoreUnavailable,
)
from bulletin.files import fsync_dir, fsync_file

STAGING = ".staging"
FOREVER = datetime.max.replace(tzinfo=UTC)
_LIVE_TOKENS: set[str] = set()  # tokens of the stores open in this process
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


@dataclass
class _Staged:
    """A put not yet flushed: its bytes are in ``temp`` (None: already at ``path``, a
    content-addressed object); its row is in memory."""

    path: str
    parent: str
    temp: str | None
    meta: Meta


class LocalStore(WormStore):
    """A WORM store in a local directory. Durability is by :meth:`flush`; see the module doc.

    :raises StoreUnavailable: ``root`` cannot be created or written (full disk, a path under a
        regular file, a read-only file system), or its catalog cannot be opened.
    """

    kind = "local"
    quick_puts = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._staging = self.root / STAGING
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._counter = 0
        self._staged: dict[str, _Staged] = {}
        self._root = os.fspath(self.root)
        self._known_dirs: set[str] = set()
        self._unsynced: set[str] = set()
        self._lock = threading.RLock()
        _LIVE_TOKENS.add(self._token)
        self._marker = self._staging / f"{self._token}.open"
        catalog: Catalog | None = None
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
            self.remove_stale_temp_files()
            catalog = Catalog(self.root)
            self._catalog = catalog
            self.import_sidecars()
            write_new(str(self._marker), b"")
            fsync_file(self._marker)
            fsync_dir(self._staging)
        except (OSError, sqlite3.Error) as e:
            _LIVE_TOKENS.discard(self._token)
            if catalog is not None:
                catalog.close()
            raise self._unavailable("cannot be opened for writing", e) from e

    # -- paths -------------------------------------------------------------------------------

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (it may not exist yet).

        :raises ArchiveError: ``key`` is not a valid key.
        """
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        return file_of(self._root, key)

    def _object_temp(self, directory: str) -> str:
        self._counter += 1
        return f"{directory}/.{self._token}-{self._counter}.tmp"

    def _unavailable(self, what: str, e: OSError | sqlite3.Error) -> StoreUnavailable:
        if isinstance(e, sqlite3.Error):
            reason = "disk full" if is_full(e) else f"retention catalog: {e}"
            return StoreUnavailable(f"archive store {self.root} {what}: {reason}")
        code = errno.errorcode.get(e.errno or 0, "error")
        full = e.errno in {errno.ENOSPC, errno.EDQUOT}
        return StoreUnavailable(
            f"archive store {self.root} {what}: {'disk full' if full else e.strerror} ({code})"
        )

    # -- WormStore ---------------------------------------------------------------------------

    def put(
        self, key: str, data: bytes, *, retain_until: datetime, legal_hold: bool = False
    ) -> PutResult:
        """Stage ``data`` under ``key``; durable after the next :meth:`flush`."""
        return self._put(key, data, sha256_hex(data), utc(retain_until), legal_hold)

    def put_objects(self, objects: Sequence[NewObject]) -> list[tuple[str, PutResult]]:
        """:meth:`put_object` of each, each hashed once (its :attr:`NewObject.sha256`)."""
        out = []
        with self._lock:
            for o in objects:
                digest = o.sha256
                key = OBJECT_PREFIX + digest
                staged = self._staged.get(key)
                if staged is not None:  # twice in one batch: no system call at all
                    out.append((digest, PutResult(key, created=False)))
                    continue
                parent = f"{self._root}/sha256/{digest[:2]}"  # our own hash: a valid key
                until = o.retain_until
                if until.tzinfo is not UTC:
                    until = utc(until)
                meta = Meta(key, digest, len(o.data), until, o.legal_hold)
                out.append(
                    (digest, self._put_in_place(key, f"{parent}/{digest}", parent, o.data, meta))
                )
        return out

    def _put(
        self, key: str, data: bytes, digest: str, retain_until: datetime, legal_hold: bool
    ) -> PutResult:
        """:meth:`put` of bytes whose sha256 is ``digest``. A content-addressed object is
        created under its own name (``O_EXCL``); any other key goes through a temporary file
        that flush moves into place."""
        promised = digest_of_key(key)
        if promised is not None and promised != digest:
            raise IntegrityError(f"key {key} does not match the sha256 of its bytes ({digest})")
        path = self._file(key)
        meta = Meta(key, digest, len(data), retain_until, legal_hold)
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None:
                if staged.meta.sha256 != digest:
                    raise IntegrityError(f"key {key} already holds other bytes")
                return PutResult(key, created=False)
            parent = os.path.dirname(path)
            if promised is not None:
                return self._put_in_place(key, path, parent, data, meta)
            if self._exists(path, key, writing=True):
                if self._read(path, key) != data:
                    raise IntegrityError(f"key {key} already holds other bytes")
                if self._row(key) is None:  # repair a row that was lost
                    try:
                        self._catalog.upsert([meta])
                    except sqlite3.Error as e:
                        raise self._unavailable(f"cannot restore the row of {key}", e) from e
                return PutResult(key, created=False)
            temp = self._object_temp(parent)
            try:
                self._ensure_dir(parent, key)
                write_new(temp, data)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise self._unavailable(f"cannot write {key}", e) from e
            self._staged[key] = _Staged(path, parent, temp, meta)
            return PutResult(key, created=True)

    def _put_in_place(self, key: str, path: str, parent: str, data: bytes, meta: Meta) -> PutResult:
        """Create the content-addressed ``key`` under its final name: one ``open(O_EXCL)``
        and one write, no look-up first (the create is the look-up). Only when the name is
        taken are its bytes read (see the module doc: "Objects in place")."""
        try:
            if parent not in self._known_dirs:
                self._ensure_dir(parent, key)
            write_new(path, data)  # a failed write removes the file it made: never torn
        except FileExistsError:
            return self._put_existing(key, path, parent, data, meta)
        except OSError as e:
            raise self._unavailable(f"cannot write {key}", e) from e
        self._staged[key] = _Staged(path, parent, None, meta)
        return PutResult(key, created=True)

    def _put_existing(self, key: str, path: str, parent: str, data: bytes, meta: Meta) -> PutResult:
        """The name of content-addressed ``key`` is taken: the same bytes are kept (their row
        written at the next flush if it is missing); bytes that do not hash to the key
        and have no row were never flushed (a crash in the middle of a write) and are
        replaced; bytes with a row that do not hash to the key were altered."""
        if not self._exists(path, key, writing=True):  # pragma: no cover - removed meanwhile
            return self._put_in_place(key, path, parent, data, meta)
        there = self._read(path, key)
        if there == data:
            if self._row(key) is None:  # lost, or its writer has not flushed yet
                self._staged[key] = _Staged(path, parent, None, meta)
            return PutResult(key, created=False)
        if self._row(key) is not None:
            raise IntegrityError(f"key {key} already holds other bytes (altered on disk)")
        temp = self._object_temp(parent)
        try:  # durable before it replaces the torn file, so the name never holds less
            write_new(temp, data)
            fsync_file(temp)
            os.replace(temp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise self._unavailable(f"cannot repair {key}", e) from e
        self._staged[key] = _Staged(path, parent, None, meta)
        return PutResult(key, created=True)

    def get(self, key: str, *, verify: bool = True) -> bytes:
        """The bytes of ``key``; ``verify`` checks them against the key or the row's sha256."""
        path = self._file(key)
        expected: str | None = digest_of_key(key)
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None:
                data = self._read(staged.temp or staged.path, key)
                expected = staged.meta.sha256
            else:
                data = self._read(path, key)
                if verify and expected is None:
                    meta = self._row(key)
                    expected = meta.sha256 if meta else None
        if verify and expected is not None and sha256_hex(data) != expected:
            raise IntegrityError(f"object {key} does not match its sha256 (altered on disk)")
        return data

    def read_object(self, key: str) -> bytes:
        """The object's file read directly, without the store's lock or catalog (the key is
        the hash it is checked against); an object not yet flushed is read by :meth:`get`."""
        digest = digest_of_key(key)
        if digest is None:
            raise ArchiveError(f"invalid key {key!r}: not a content-addressed object")
        try:
            fd = os.open(self._file(key), os.O_RDONLY)
        except FileNotFoundError:
            return self.get(key, verify=True)
        except OSError as e:
            raise self._unavailable(f"cannot read {key}", e) from e
        try:
            size = os.fstat(fd).st_size
            # one byte more than the file holds: a file longer than it says is read long
            # (and fails its hash); one that reads whole needs no second read to find its end
            data = os.read(fd, size + 1)
            while len(data) < size and (more := os.read(fd, 1 << 20)):
                data += more
        except OSError as e:
            raise self._unavailable(f"cannot read {key}", e) from e
        finally:
            os.close(fd)
        if sha256_hex(data) != digest:
            raise IntegrityError(f"object {key} does not match its sha256 (altered on disk)")
        return data

    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``; a missing row reads as retained indefinitely."""
        path = self._file(key)
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None:
                return staged.meta.info()
            size = self._size(path, key)
            if size is None:
                return None
            meta = self._row(key)
            if meta is None:
                return ObjectInfo(key, size, FOREVER, legal_hold=False)
            return meta.info()

    def heads(self, keys: Sequence[str]) -> dict[str, ObjectInfo | None]:
        """:meth:`head` of each of ``keys``, their rows read together."""
        with self._lock:
            try:
                rows = self._catalog.get_many([k for k in keys if k not in self._staged])
            except sqlite3.Error as e:
                raise self._unavailable("cannot read the retention of its objects", e) from e
            found: dict[str, ObjectInfo | None] = {}
            for key in keys:
                staged = self._staged.get(key)
                size = None if staged else self._size(self._file(key), key)
                meta = staged.meta if staged else rows.get(key)
                if meta is not None and (staged or size is not None):
                    found[key] = meta.info()
                else:
                    found[key] = None if size is None else ObjectInfo(key, size, FOREVER, False)
        return found

    def extend_retention(self, key: str, retain_until: datetime) -> ObjectInfo:
        """Extend retain-until (durable on return); an earlier value raises RetentionViolation."""
        wanted = utc(retain_until)

        def change(meta: Meta) -> bool:
            if wanted < meta.retain_until:
                raise RetentionViolation(
                    f"{key} is retained until {_when(meta.retain_until)}; "
                    f"retention cannot be shortened to {iso(wanted)}"
                )
            changed = wanted != meta.retain_until
            meta.retain_until = wanted
            return changed

        return self._update(key, change)

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        """Place or release a legal hold (durable on return)."""

        def change(meta: Meta) -> bool:
            changed = meta.legal_hold != on
            meta.legal_hold = on
            return changed

        return self._update(key, change)

    def delete(self, key: str, *, now: datetime) -> None:
        """Remove ``key`` (durable on return) once retention has passed and no hold is on."""
        path = self._file(key)
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None and staged.temp is None:
                self.flush()  # in place already: delete it as a flushed object
            elif staged is not None and staged.temp is not None:
                self._check_deletable(key, staged.meta, now)
                try:
                    os.unlink(staged.temp)
                except OSError as e:
                    raise self._unavailable(f"cannot delete {key}", e) from e
                del self._staged[key]
                return
            try:
                # the write lock keeps other processes from placing a hold meanwhile
                with self._catalog.transaction() as tx:
                    size = self._size(path, key)
                    if size is None:
                        raise NotFound(f"no object {key} in the archive")
                    meta = self._catalog.get(key, tx)
                    if meta is None:
                        raise RetentionViolation(
                            f"{key} is retained indefinitely (its retention row is missing); "
                            "it cannot be deleted yet"
                        )
                    self._check_deletable(key, meta, now)
                    os.unlink(path)
                    fsync_dir(os.path.dirname(path))
                    tx.execute("DELETE FROM objects WHERE key = ?", (key,))
            except (OSError, sqlite3.Error) as e:
                raise self._unavailable(f"cannot delete {key}", e) from e

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Logical keys starting with ``prefix`` in lexical order, staged puts included."""
        with self._lock:
            staged = sorted(k for k in self._staged if k.startswith(prefix))
        seen = set(staged)
        on_disk = (k for k in self._on_disk(prefix) if k not in seen)
        yield from merge(on_disk, staged)

    def flush(self) -> None:
        """Make every put since the last flush durable: two barriers and one catalog commit for
        the whole batch (see the module doc for the order and what a crash leaves).

        :raises StoreUnavailable: the disk refused; what was not moved into place stays staged
            for the next flush.
        """
        with self._lock:
            if not self._staged and not self._unsynced:
                return
            batch = list(self._staged.items())
            conflicts: list[str] = []
            try:
                if batch:
                    # objects in place need their folder's new entries durable too (fallback)
                    barrier(
                        self.root,
                        [s.temp or s.path for _, s in batch],
                        {s.parent for _, s in batch if s.temp is None},
                        one_by_one=FEW,
                    )
                    self._catalog.upsert(s.meta for _, s in batch)
                for key, staged in batch:
                    if staged.temp is not None:
                        if not self._publish(staged):
                            conflicts.append(key)
                        self._unsynced.add(staged.parent)
                    del self._staged[key]
                if self._unsynced:
                    barrier(self.root, [], self._unsynced, one_by_one=FEW)
                    self._unsynced.clear()
            except (OSError, sqlite3.Error) as e:
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
            self._catalog.close()

    # -- housekeeping ------------------------------------------------------------------------

    def remove_stale_temp_files(self) -> int:
        """Remove the temporary files of stores whose process has gone (a crash); returns how
        many (:func:`~bulletin.archiver.store.recovery.remove_stale_temp_files`)."""
        return remove_stale_temp_files(self.root, self._staging, _LIVE_TOKENS)

    def import_sidecars(self) -> int:
        """Move the sidecars of the layout before the catalog into it; returns how many
        (:func:`~bulletin.archiver.store.recovery.import_sidecars`)."""
        return import_sidecars(self.root, self._catalog)

    # -- internals ---------------------------------------------------------------------------

    def _row(self, key: str) -> Meta | None:
        try:
            return self._catalog.get(key)
        except sqlite3.Error as e:
            raise self._unavailable(f"cannot read the retention of {key}", e) from e

    def _update(self, key: str, change: Callable[[Meta], bool]) -> ObjectInfo:
        """Apply ``change`` to the row of ``key`` in one transaction (durable on return).

        A staged key changes in memory (its row is written at flush). A missing row starts
        from "retained indefinitely, no hold".
        """
        with self._lock:
            staged = self._staged.get(key)
            if staged is not None:
                change(staged.meta)
                return staged.meta.info()
            path = self._file(key)
            try:
                with self._catalog.transaction() as tx:
                    if self._size(path, key) is None:
                        raise NotFound(f"no object {key} in the archive")
                    meta = self._catalog.get(key, tx)
                    if meta is None:
                        data = self.get(key)
                        meta = Meta(key, sha256_hex(data), len(data), FOREVER, False)
                        change(meta)
                        self._catalog.put_row(tx, meta)
                    elif change(meta):
                        self._catalog.put_row(tx, meta)
            except (OSError, sqlite3.Error) as e:
                raise self._unavailable(f"cannot update the retention of {key}", e) from e
            return meta.info()

    @staticmethod
    def _check_deletable(key: str, meta: Meta, now: datetime) -> None:
        if meta.legal_hold:
            raise RetentionViolation(f"{key} is on legal hold; release the hold first")
        if meta.retain_until > utc(now):
            raise RetentionViolation(
                f"{key} is retained {_when(meta.retain_until)}; it cannot be deleted yet"
            )

    def _size(self, path: str, key: str) -> int | None:
        """The size of the object file at ``path``, or None when there is none."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:  # pragma: no cover - stat on a broken disk
            raise self._unavailable(f"cannot read {key}", e) from e
        return st.st_size if stat.S_ISREG(st.st_mode) else None

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

    def _read(self, path: str, key: str) -> bytes:
        try:
            with open(path, "rb") as file:
                return file.read()
        except _ABSENT as e:
            raise NotFound(f"no object {key} in the archive") from e
        except OSError as e:
            raise self._unavailable(f"cannot read {key}", e) from e

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

    def _publish(self, staged: _Staged) -> bool:
        """Move one staged object into place; False if the key holds other bytes.

        Runs after the first barrier and the catalog commit, so the bytes and the row are
        durable before the name appears.
        """
        assert staged.temp is not None
        if rename_no_replace(staged.temp, staged.path):
            return True
        key = staged.meta.key
        there = self._read(staged.path, key)
        ours = self._read(staged.temp, key)
        os.unlink(staged.temp)
        if there == ours:
            return True
        # another writer won the name with other bytes: the row must describe those bytes
        self._catalog.set_content(key, sha256_hex(there), len(there))
        return False

    def _on_disk(self, prefix: str) -> Iterator[str]:
        try:
            yield from walk_keys(self.root, prefix)
        except OSError as e:
            raise self._unavailable("cannot be listed", e) from e


def _when(until: datetime) -> str:
    if until == FOREVER:
        return "indefinitely (its retention row is missing)"
    return f"until {iso(until)}"
