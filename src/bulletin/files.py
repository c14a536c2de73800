"""Durable files: fsync a file or a folder's entries, and replace a file whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_file(path: str | Path) -> None:
    """Make the contents of ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: str | Path) -> None:
    """Make the entries of ``directory`` (names created, renamed, removed) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """``data`` in ``path``, durably, whole or not at all: a temporary file beside it
    (``.<name>.<random>``), fsynced, given ``mode`` (None: the temporary file's 0o600), renamed
    over ``path``; then the folder's entries are fsynced. A crash leaves the old file or the
    new one, and perhaps a dot-named temporary file.

    :raises OSError: the folder is missing or cannot be written (nothing is left behind).
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
