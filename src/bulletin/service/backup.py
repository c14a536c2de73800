"""``bulletin backup``: a consistent copy of the SQLite database while the daemon runs.

The copy is made with SQLite's online backup (the same pages a reader would see in one
transaction, so a daemon writing meanwhile does no harm), written beside its final name,
checked with ``PRAGMA integrity_check``, made durable and only then linked into place, so a
file with the final name is always a whole, checked backup. It is readable by its owner only
(the database holds visitors' comments). PostgreSQL databases are backed up
with ``pg_dump``; the WORM store is copied on its own (it is the record of truth, and the
database's archive index can be rebuilt from it: see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bulletin.db import is_sqlite, sqlite_path
from bulletin.errors import DatabaseError, UsageError
from bulletin.files import fsync_dir, fsync_file
from bulletin.timeparse import iso_basic


@dataclass(frozen=True)
class Backup:
    """A finished backup."""

    path: Path
    size: int
    ledger_head: int
    schema: str | None


def backup_sqlite(database_url: str, out: Path, now: datetime) -> Backup:
    """Copy the SQLite database at ``database_url`` to ``out`` (a file, or a directory that
    gets ``bulletin-<UTC time>.db``). An existing file is never overwritten.

    :raises UsageError: not a SQLite database, or ``out`` already exists as a file.
    :raises DatabaseError: the database cannot be read or the copy cannot be written.
    """
    if not is_sqlite(database_url):
        raise UsageError(
            "bulletin backup copies a SQLite database; back up PostgreSQL with pg_dump "
            "(e.g. pg_dump --format=custom --file=bulletin.dump DBNAME)"
        )
    source = sqlite_path(database_url)
    if source is None or not source.is_file():
        raise DatabaseError(f"no database file at {source} (run bulletin init)")
    if out.is_dir():
        out = out / f"bulletin-{iso_basic(now)}.db"
    if out.exists():
        raise UsageError(f"{out} already exists; a backup never overwrites a file")
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # private
        with open_sqlite(source, "ro") as src, open_sqlite(partial, "rwc") as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise DatabaseError(f"the copy of {source} failed its integrity check: {verdict}")
            head = dst.execute("SELECT coalesce(max(seq), 0) FROM ledger").fetchone()[0]
            schema = _schema(dst)
        fsync_file(partial)
        os.link(partial, out)  # fails rather than replace a file that appeared meanwhile
        partial.unlink()
        fsync_dir(out.parent)
    except BaseException as e:
        partial.unlink(missing_ok=True)  # never leave a half copy, whatever stopped it
        if isinstance(e, sqlite3.Error):
            raise DatabaseError(f"backup of {source} failed: {e}") from None
        if isinstance(e, OSError):
            raise DatabaseError(f"backup to {out} failed: {e.strerror or e}") from None
        raise
    return Backup(out, out.stat().st_size, int(head), schema)


def open_sqlite(path: Path, mode: str) -> contextlib.closing[sqlite3.Connection]:
    """A connection closed on exit (``sqlite3.Connection`` as a context manager only ends a
    transaction); ``mode`` is SQLite's URI mode, ``ro`` or ``rwc``."""
    return contextlib.closing(sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=30))


def _schema(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None
