"""Free space and free inodes where Bulletin writes, so that a filling disk is seen early.

The places are the data directory (spool, sandbox state), the SQLite database when it lies
elsewhere, and the local archive store, which keeps one file per object (about two per
captured comment), so it can run out of inodes before it runs out of bytes. Places on one file
system are reported once. Free means free to an unprivileged user (``f_bavail``): Bulletin
runs as a service user, and the blocks reserved for root are not its to use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from bulletin.config.settings import Settings
from bulletin.db import sqlite_path


@dataclass(frozen=True)
class Space:
    """One file system Bulletin writes to, by the roles it plays."""

    roles: tuple[str, ...]
    path: str
    total_bytes: int
    free_bytes: int
    total_inodes: int  # 0 where the file system does not count inodes (btrfs)
    free_inodes: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 100.0

    @property
    def free_inode_percent(self) -> float | None:
        return 100.0 * self.free_inodes / self.total_inodes if self.total_inodes else None

    def low(self, warn_percent: float) -> bool:
        """Less than ``warn_percent`` of the bytes or of the inodes is free."""
        inodes = self.free_inode_percent
        return self.free_percent < warn_percent or (inodes is not None and inodes < warn_percent)

    def text(self, warn_percent: float) -> str:
        """e.g. ``data directory, archive store (/var/lib/bulletin): 41.2 GiB free of
        50.0 GiB (82%), 3,100,000 inodes free (95%)``, with ``LOW`` when it is."""
        line = (
            f"{', '.join(self.roles)} ({self.path}): {_size(self.free_bytes)} free of "
            f"{_size(self.total_bytes)} ({self.free_percent:.0f}%)"
        )
        inodes = self.free_inode_percent
        if inodes is not None:
            line += f", {self.free_inodes:,} inodes free ({inodes:.0f}%)"
        if self.low(warn_percent):
            line += f"  LOW (under {warn_percent:g}%)"
        return line


def places(settings: Settings) -> list[tuple[str, Path]]:
    """What Bulletin writes where, by role."""
    out = [("data directory", settings.data_dir)]
    database = sqlite_path(settings.database_url)
    if database is not None:
        out.append(("database", database.parent))
    if settings.archive.store == "local":
        out.append(("archive store", settings.archive_path))
    return out


def measure(settings: Settings) -> list[Space]:
    """One :class:`Space` per file system among :func:`places`, in their order. A place that
    does not exist yet is measured at its nearest existing parent; one that cannot be
    measured at all is left out."""
    found: dict[int, Space] = {}
    for role, path in places(settings):
        existing = _existing(path.absolute())
        try:
            device = os.stat(existing).st_dev
            stats = os.statvfs(existing)
        except OSError:
            continue
        if device in found:
            known = found[device]
            if role not in known.roles:
                found[device] = replace(known, roles=(*known.roles, role))
            continue
        found[device] = Space(
            (role,),
            str(existing),
            stats.f_blocks * stats.f_frsize,
            stats.f_bavail * stats.f_frsize,
            stats.f_files,
            stats.f_favail,
        )
    return list(found.values())


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
