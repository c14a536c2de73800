"""Writing a bag (RFC 8493) as it streams, hashing each payload file as it is written.

bagit-python's ``make_bag`` reads every payload file again after it is written; here each
file's sha256 is computed from the bytes on their way to disk and its manifest line appended
to a manifest part, so the payload is read back only for the few files written by appending
(load files, manifests, thread pages), once, when they are complete. The tag files are
written last; the result validates with ``bagit.Bag(path).validate()``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from bulletin.archiver.store.files import barrier

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
MANIFEST = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
_CHUNK = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size of ``path``, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
        self._appenders: dict[str, BinaryIO] = {}
        self.files = 0
        self.bytes = 0
        self.data.mkdir(parents=True, exist_ok=True)
        self._part = open(part, "ab")  # noqa: SIM115 - closed by close()

    # -- payload files written whole -----------------------------------------------------------

    def _parent(self, rel: str) -> str:
        full = f"{self.data}/{rel}"
        parent = os.path.dirname(full)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        return full

    def write(self, rel: str, data: bytes) -> str:
        """Write a payload file whole; returns its sha256 (listed in the manifest)."""
        digest = self.write_unlisted(rel, data)
        self.list(rel, digest, len(data))
        return digest

    def write_unlisted(self, rel: str, data: bytes) -> str:
        """Write a payload file whole and return its sha256; the caller lists it with
        :meth:`list`. Safe to call from several threads at once."""
        full = self._parent(rel)
        fd = os.open(full, _CREATE, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return hashlib.sha256(data).hexdigest()

    def list(self, rel: str, digest: str, size: int) -> None:
        """Name a payload file and its hash in the manifest (one thread only)."""
        self._part.write(f"{digest}  data/{rel}\n".encode())
        self.files += 1
        self.bytes += size

    # -- payload files written by appending ----------------------------------------------------

    def open_append(self, rel: str, fresh: bool) -> None:
        """Start (``fresh``) or continue appending to ``rel``."""
        full = self._parent(rel)
        self._appenders[rel] = open(full, "wb" if fresh else "ab")  # noqa: SIM115

    def append(self, rel: str, data: bytes) -> None:
        self._appenders[rel].write(data)

    def close_append(self, rel: str) -> None:
        """Finish ``rel``: hash it and list it in the manifest."""
        handle = self._appenders.pop(rel)
        handle.close()
        digest, size = hash_file(self.data / rel)
        self.list(rel, digest, size)

    def appended_sizes(self) -> dict[str, int]:
        """The size of every open appended file, after writing out its buffer."""
        sizes = {}
        for rel, handle in self._appenders.items():
            handle.flush()
            sizes[rel] = handle.tell()
        return sizes

    # -- checkpoints and the end ---------------------------------------------------------------

    def checkpoint(self) -> int:
        """Make everything written so far durable; returns the manifest part's size."""
        self.appended_sizes()
        self._part.flush()
        files: list[Path] = [self.part_path]
        barrier(self.root, files)
        return self._part.tell()

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
        self._part.flush()
        self._part.close()
        shutil.copyfile(self.part_path, self.root / MANIFEST)  # streamed: it can be large
        manifest_sha, _ = hash_file(self.root / MANIFEST)
        extra = tags(manifest_sha) if tags is not None else []
        for rel, data in extra:
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_bytes(data)
        (self.root / "bagit.txt").write_bytes(BAGIT_TXT)
        lines = [f"{k}: {_one_line(v)}" for k, v in info]
        lines.append(f"Payload-Oxum: {self.bytes}.{self.files}")
        lines.append(f"Bag-Size: {_human(self.bytes)}")
        (self.root / "bag-info.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        lines = []
        names = ["bagit.txt", "bag-info.txt", MANIFEST, *(rel for rel, _ in extra)]
        for name in names:
            digest, _ = hash_file(self.root / name)
            lines.append(f"{digest}  {name}\n")
        (self.root / TAG_MANIFEST).write_text("".join(lines), encoding="utf-8")
        barrier(self.root, [self.root / n for n in names])
        return manifest_sha

    def close(self) -> None:
        for handle in self._appenders.values():
            handle.close()
        self._appenders.clear()
        if not self._part.closed:
            self._part.close()


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
