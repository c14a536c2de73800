"""Where the local store keeps each key, under its ``root``::

    sha256/ab/<hex>     a content-addressed object (the bytes as given, mode 0o444)
    ledger/<...>        objects with meaningful keys, stored at their key
    .retention.db       the retention catalog (SQLite, WAL): one row per object with its
                        sha256, size, retain_until (ISO UTC) and legal_hold; see
                        :mod:`bulletin.archiver.store.catalog`
    .staging/           one marker per open store

Content-addressed objects fan out by the first two hex digits (256 directories, as git does);
:func:`walk_keys` still yields the logical key ``sha256/<hex>``. Every object can be read with
standard tools (``cat``, ``jq``, ``sha256sum``), and the catalog with ``sqlite3``
(``SELECT * FROM objects WHERE key = 'sha256/…'``). One object costs one file creation.
Dot-named entries and the sidecars of the layout before the catalog are never keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from bulletin.archiver.store.base import OBJECT_PREFIX, digest_of_key
from bulletin.errors import ArchiveError

META_SUFFIX = ".meta.json"  # the sidecars of the layout before the catalog
_HEX = frozenset("0123456789abcdef")


def file_of(root: str, key: str) -> str:
    """The file under ``root`` that holds ``key`` (it may not exist yet).

    :raises ArchiveError: ``key`` is not a valid key.
    """
    digest = digest_of_key(key)
    if digest is not None:
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise ArchiveError(f"invalid key {key!r}: not sha256/ and 64 lowercase hex")
        return f"{root}/sha256/{digest[:2]}/{digest}"
    parts = key.split("/")
    for part in parts:
        if not part or part in {".", ".."} or part.startswith(".") or "\\" in part:
            raise ArchiveError(f"invalid key {key!r}: empty, dot or backslash segment")
        if part.endswith(META_SUFFIX) or "\0" in part:
            raise ArchiveError(f"invalid key {key!r}: reserved name")
    return os.path.join(root, *parts)


def walk_keys(directory: Path, prefix: str, parts: tuple[str, ...] = ()) -> Iterator[str]:
    """The keys stored under ``directory`` (the root, or the folder ``parts`` below it) that
    start with ``prefix``, in lexical order; only the folders that may hold such keys are read.

    :raises OSError: a folder cannot be listed (one that is gone is skipped).
    """
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
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
                yield from walk_keys(Path(entry.path), prefix, sub)
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
