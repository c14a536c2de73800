"""Writing a bag (RFC 8493) as it streams, hashing each payload file as it is written.

bagit-python's ``make_bag`` reads every payload file again after it is written; here each
file's sha256 is computed once, from the bytes on their way to disk (or taken from the store,
which has just checked them against it: :meth:`BagWriter.write_verified`), and its manifest
line appended to a manifest part. Files written by appending (load files, manifests, thread
pages) and the manifest part itself are hashed as they grow; nothing written is read back,
except the part of an appended file that an interrupted run left, once, when the export
resumes. The tag files are written last, the tag manifest from the bytes just written; the
result validates with ``bagit.Bag(path).validate()``.

Durability is by batch: :meth:`BagWriter.checkpoint` makes everything written so far durable
with one ``syncfs`` (or, where there is none, an fsync of each file and new folder written
since the last checkpoint) before the caller's journal may name it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

from bulletin.archiver.store.files import barrier

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
MANIFEST = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
_CHUNK = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
PRIVATE_FILE = 0o600  # every file and folder of a bag is created private (see finish)
PRIVATE_DIR = 0o700


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size of ``path``, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _Appender:
    """A payload file written by appending, hashed as it grows."""

    def __init__(self, path: str, fresh: bool) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        if not fresh:  # what an interrupted run left (already cut back to its checkpoint)
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    self.digest.update(chunk)
                    self.size += len(chunk)
        flags = _CREATE if fresh else os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self.handle: BinaryIO = os.fdopen(os.open(path, flags, PRIVATE_FILE), "wb")
        # what was appended since the last flush: written and hashed in one piece
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write out and hash what was appended; then the file holds ``size`` bytes."""
        if self._pending:
            blob = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            self.digest.update(blob)
            self.handle.write(blob)
        self.handle.flush()

    def close(self) -> None:
        self.flush()
        self.handle.close()


class BagWriter:
    """Payload files under ``root/data``; the manifest part lives in ``part`` until the end.

    :param root: the bag directory.
    :param part: the file collecting payload manifest lines (outside the bag).
    """

    def __init__(self, root: Path, part: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.part_path = part
        self._dirs: set[str] = set()
        self._appenders: dict[str, _Appender] = {}
        self.files = 0
        self.bytes = 0
        _mkdir(root)
        _mkdir(self.data)
        # the manifest part, hashed as it grows: the payload manifest is a copy of it
        self._part = _Appender(str(part), not part.exists())
        # written since the last checkpoint: what a barrier without syncfs must fsync
        self._unsynced: list[str] = []
        self._new_dirs: list[str] = []

    # -- payload files written whole -----------------------------------------------------------

    def _parent(self, rel: str) -> str:
        full = f"{self.data}/{rel}"
        parent = os.path.dirname(full)
        if parent not in self._dirs:
            missing = []
            up = parent
            while not os.path.isdir(up):
                missing.append(up)
                up = os.path.dirname(up)
            for directory in reversed(missing):
                _mkdir(directory)
            self._dirs.add(parent)
            # a new folder's entry is durable once the folder holding it is synced
            self._new_dirs += [os.path.dirname(d) for d in missing]
        return full

    def write(self, rel: str, data: bytes) -> str:
        """Write a payload file whole; returns its sha256 (listed in the manifest)."""
        digest = self.write_unlisted(rel, data)
        self.list(rel, digest, len(data))
        return digest

    def write_unlisted(self, rel: str, data: bytes) -> str:
        """Write a payload file whole and return its sha256; the caller lists it with
        :meth:`list`. Safe to call from several threads at once."""
        digest = hashlib.sha256(data).hexdigest()
        self.write_verified(rel, data, digest)
        return digest

    def write_verified(self, rel: str, data: bytes, digest: str) -> None:
        """Write a payload file whole whose sha256 the caller has just checked to be
        ``digest`` (an object read from the store): it is not hashed again. The caller lists
        it with :meth:`list`. Safe to call from several threads at once."""
        full = self._parent(rel)
        fd = os.open(full, _CREATE, PRIVATE_FILE)
        try:
            written = os.write(fd, data)
            if written < len(data):  # rare: a short write, carry on from where it stopped
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self._unsynced.append(full)  # list.append is atomic: safe across threads

    def list(self, rel: str, digest: str, size: int) -> None:
        """Name a payload file and its hash in the manifest (one thread only)."""
        self._part.write(f"{digest}  data/{rel}\n".encode())
        self.files += 1
        self.bytes += size

    def list_many(self, listed: Sequence[tuple[str, str, int]]) -> None:
        """:meth:`list` each of ``listed`` (path, sha256, size), in order, in one piece."""
        if listed:
            self._part.write("".join([f"{d}  data/{r}\n" for r, d, _ in listed]).encode())
            self.files += len(listed)
            self.bytes += sum([size for _, _, size in listed])

    # -- payload files written by appending ----------------------------------------------------

    def open_append(self, rel: str, fresh: bool) -> None:
        """Start (``fresh``) or continue appending to ``rel`` (what is there is hashed once,
        to continue its hash)."""
        full = self._parent(rel)
        self._appenders[rel] = _Appender(full, fresh)
        self._unsynced.append(full)

    def append(self, rel: str, data: bytes) -> None:
        self._appenders[rel].write(data)

    def close_append(self, rel: str) -> None:
        """Finish ``rel`` and list it in the manifest with the hash of what was appended."""
        appender = self._appenders.pop(rel)
        appender.close()
        self.list(rel, appender.digest.hexdigest(), appender.size)

    def appended_sizes(self) -> dict[str, int]:
        """The size of every open appended file, after writing out its buffer."""
        sizes = {}
        for rel, appender in self._appenders.items():
            appender.flush()
            sizes[rel] = appender.size
        return sizes

    # -- checkpoints and the end ---------------------------------------------------------------

    def checkpoint(self) -> int:
        """Make everything written so far durable (one barrier for the batch); returns the
        manifest part's size. Only then may a journal name what was written."""
        size, sync = self.checkpoint_begin()
        sync()
        return size

    def checkpoint_begin(self) -> tuple[int, Callable[[], None]]:
        """Hand everything written so far to the system; returns the manifest part's size
        and the barrier that makes all of it durable, to be called once, from any thread
        (what is written after this call is left to the next checkpoint). Only once that
        barrier has returned may a journal name what was written. No file of the bag may be
        being written during this call."""
        self.appended_sizes()
        self._part.flush()
        return self._part.size, self._taken()

    def _barrier(self, more: Sequence[str | Path] = ()) -> None:
        self._taken(more)()

    def _taken(self, more: Sequence[str | Path] = ()) -> Callable[[], None]:
        # without syncfs: every file written since the last barrier (an appended file
        # written again and again is fsynced once per barrier), then the folders holding
        # their names: each file's own folder and the parents of new folders
        files = [*dict.fromkeys(map(str, [*self._unsynced, self.part_path, *more]))]
        dirs = [*dict.fromkeys([*map(os.path.dirname, files), *self._new_dirs])]
        self._unsynced = [f"{self.data}/{rel}" for rel in self._appenders]  # still growing
        self._new_dirs = []
        return partial(barrier, self.root, files, dirs)

    def finish(
        self,
        info: Iterable[tuple[str, str]],
        tags: Callable[[str], Sequence[tuple[str, bytes]]] | None = None,
    ) -> str:
        """Write the tag files (bag-info with ``info`` and Payload-Oxum); returns the sha256 of
        the payload manifest, which names every payload file and its hash. ``tags(sha256)``,
        called once the payload manifest is written, gives more tag files (path, bytes), which
        the tag manifest lists too."""
        for rel in list(self._appenders):
            self.close_append(rel)
        self._part.close()
        fd = os.open(self.root / MANIFEST, _CREATE, PRIVATE_FILE)
        with open(self.part_path, "rb") as source, os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(source, target, _CHUNK)  # streamed: it can be large
        manifest_sha = self._part.digest.hexdigest()
        extra = tags(manifest_sha) if tags is not None else []
        info_lines = [f"{k}: {_one_line(v)}" for k, v in info]
        info_lines.append(f"Payload-Oxum: {self.bytes}.{self.files}")
        info_lines.append(f"Bag-Size: {_human(self.bytes)}")
        written = [
            *extra,
            ("bagit.txt", BAGIT_TXT),
            ("bag-info.txt", ("\n".join(info_lines) + "\n").encode("utf-8")),
        ]
        for rel, data in written:
            _mkdir((self.root / rel).parent)
            _write_private(self.root / rel, data)
        digests = {rel: hashlib.sha256(data).hexdigest() for rel, data in written}
        digests[MANIFEST] = manifest_sha
        names = ["bagit.txt", "bag-info.txt", MANIFEST, *(rel for rel, _ in extra)]
        tag_manifest = "".join(f"{digests[name]}  {name}\n" for name in names)
        _write_private(self.root / TAG_MANIFEST, tag_manifest.encode("utf-8"))
        self._barrier([self.root / n for n in [*names, TAG_MANIFEST]])
        return manifest_sha

    def close(self) -> None:
        """Close every file (after :meth:`finish`, or to abandon the run: what was appended
        since the last checkpoint may be dropped, a resumed export writes it again)."""
        for appender in self._appenders.values():
            appender.handle.close()
        self._appenders.clear()
        self._part.handle.close()


def _mkdir(path: str | Path) -> None:
    """A private folder (its parent exists); one that is there already is left as it is."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, PRIVATE_DIR)


def _write_private(path: Path, data: bytes) -> None:
    with os.fdopen(os.open(path, _CREATE, PRIVATE_FILE), "wb") as handle:
        handle.write(data)


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (a resumed export's appended files)."""
    with open(path, "r+b") as handle:
        handle.truncate(size)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"
