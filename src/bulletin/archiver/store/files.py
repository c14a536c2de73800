"""File primitives the local store is built from: create without replacing, move without
replacing, and durability barriers (``syncfs(2)`` where Linux offers it, else an fsync of each
file and folder, :mod:`bulletin.files`)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bulletin.files import fsync_dir, fsync_file


def _libc(name: str) -> Any:
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc("syncfs")
_MALLOC_TRIM = _libc("malloc_trim")
_RENAMEAT2 = _libc("renameat2")
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def write_new(path: str, data: bytes) -> None:
    """Create ``path`` read-only (0o444) holding ``data``; FileExistsError if it exists.

    A write that fails (a full disk) removes the file it created, so no partial file is left
    under ``path`` by this call. Not durable on its own: see :func:`barrier`.
    """
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444)
    try:
        written = os.write(fd, data)
        if written < len(data):  # rare: a short write, carry on from where it stopped
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def rename_no_replace(source: str, target: str) -> bool:
    """Move ``source`` to ``target`` unless ``target`` exists (then False, nothing moved).

    ``renameat2(RENAME_NOREPLACE)`` where the file system has it, else link and unlink (a link
    never replaces either).
    """
    if _RENAMEAT2 is not None:
        done = _RENAMEAT2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if done == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            return False
        if err not in {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP}:
            raise OSError(err, os.strerror(err), target)
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    os.unlink(source)
    return True


#: a store's batch of this many files and folders or fewer is made durable file by file (see
#: :func:`barrier`)
FEW = 4


def barrier(
    root: Path,
    files: Iterable[str | Path],
    dirs: Iterable[str | Path] = (),
    *,
    one_by_one: int = 0,
) -> None:
    """One durability barrier for ``files`` and ``dirs``, written under ``root``.

    ``syncfs`` on the file system of ``root`` (one call for any number of files); where it is
    missing or fails, or for ``one_by_one`` files and folders or fewer, an fsync of each of
    ``files`` and then of each of ``dirs`` (a small batch, such as a ledger segment, then waits
    for its own writes only, not for every dirty page of other processes on that file system).
    """
    files, dirs = list(files), list(dirs)
    if _SYNCFS is not None and len(files) + len(dirs) > one_by_one:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in files:
        fsync_file(path)
    for directory in dirs:
        fsync_dir(directory)


def trim_heap() -> None:
    """Give the memory the C heap holds free back to the system (glibc's ``malloc_trim``;
    nothing elsewhere): a long run that allocates in several threads otherwise keeps what
    it freed in each thread's arena, and its resident size creeps up with the work done."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
