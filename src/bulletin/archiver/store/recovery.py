"""What a crash or an older layout leaves in a local store's root, cleaned up when it opens.

Each open store names its temporary files after a token (``<pid>-<hex>``) and keeps a marker
``.staging/<token>.open``; a marker whose process has gone means a crash, and the temporary
files of that token are removed (:func:`remove_stale_temp_files`).

Stores written before the catalog existed kept a sidecar ``<file>.meta.json`` per object. The
first open of such a root imports every sidecar into the catalog (merging as a put does: the
later retain-until and any hold win) in one transaction, then removes the sidecars, then marks
the root as migrated; a crash in between imports what is left again at the next open
(:func:`import_sidecars`). Do not run an older version against a migrated root: it would read
every object as lacking its sidecar, hence retained indefinitely.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Set
from pathlib import Path

from bulletin.archiver.store.catalog import LAYOUT, Catalog, Meta
from bulletin.archiver.store.files import barrier, pid_alive
from bulletin.archiver.store.layout import META_SUFFIX, file_of
from bulletin.errors import ArchiveError
from bulletin.timeparse import parse_iso

_TOKEN = re.compile(r"^(\d+)-[0-9a-f]+")


def remove_stale_temp_files(root: Path, staging: Path, live: Set[str]) -> int:
    """Remove the temporary files of stores whose process has gone (a crash); ``live`` are the
    tokens of the stores open in this process.

    Cheap when nothing crashed: only ``staging`` is read. Returns how many were removed.
    """
    stale: set[str] = set()
    entries = list(os.scandir(staging))
    for entry in entries:
        match = _TOKEN.match(entry.name)
        if match is None:
            continue
        token, pid = match.group(0), int(match.group(1))
        if token in live or (pid != os.getpid() and pid_alive(pid)):
            continue
        stale.add(token)
    if not stale:
        return 0
    removed = 0
    prefixes = tuple(f".{token}-" for token in stale)
    for directory, folders, names in os.walk(root):
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


def import_sidecars(root: Path, catalog: Catalog) -> int:
    """Move the sidecars of the layout before the catalog into it; returns how many.

    Runs at open until the root is marked migrated: every readable ``*.meta.json`` is merged
    into the catalog in one transaction, then removed, then the root is marked. An unreadable
    sidecar is left in place (its object reads as retained indefinitely).
    """
    if catalog.info("layout") == LAYOUT:
        return 0
    metas: list[Meta] = []
    sidecars: list[str] = []
    top = os.fspath(root)
    for directory, folders, names in os.walk(root):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in names:
            if not name.endswith(META_SUFFIX) or name.startswith("."):
                continue
            path = os.path.join(directory, name)
            meta = _read_sidecar(path)
            try:
                known = meta is not None and file_of(top, meta.key) + META_SUFFIX == path
            except ArchiveError:
                known = False
            if meta is not None and known:
                metas.append(meta)
                sidecars.append(path)
    if metas:
        catalog.upsert(metas)
        for path in sidecars:
            os.unlink(path)
        barrier(root, [], {os.path.dirname(p) for p in sidecars})
    catalog.set_info("layout", LAYOUT)
    return len(metas)


def _read_sidecar(path: str) -> Meta | None:
    """The contents of a sidecar of the layout before the catalog, or None if unreadable."""
    try:
        with open(path, "rb") as file:
            body = json.loads(file.read())
        return Meta(
            key=str(body["key"]),
            sha256=str(body["sha256"]),
            size=int(body["size"]),
            retain_until=parse_iso(str(body["retain_until"])),
            legal_hold=bool(body["legal_hold"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
