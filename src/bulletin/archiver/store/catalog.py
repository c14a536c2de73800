"""The retention catalog of the local store: one SQLite database in the store root.

One row per object: ``objects(key, sha256, size, retain_until, legal_hold)``. ``retain_until``
is fixed-width ISO 8601 UTC text (``2040-01-01T00:00:00.000000Z``), so it sorts and compares as
text and reads plainly with the ``sqlite3`` tool. The database runs in WAL mode with
``synchronous=FULL``: a committed transaction is on disk when :meth:`Catalog.commit` returns.
A whole flushed batch is one transaction (one fsync of the WAL).

Rows only ever extend retention: :meth:`Catalog.upsert` keeps the later retain-until and any
hold already set. Which objects exist is decided by the files, never by the catalog: a row
without its file (a crash after the commit, before the rename) is an orphan that a later put of
the same key merges with; a file without a row is retained indefinitely.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bulletin.archiver.store.base import ObjectInfo
from bulletin.timeparse import iso_utc, parse_iso

CATALOG = ".retention.db"
LAYOUT = "2"  # 1: a .meta.json sidecar per object; 2: this catalog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    retain_until TEXT NOT NULL,
    legal_hold INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_info (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

_UPSERT = """
INSERT INTO objects (key, sha256, size, retain_until, legal_hold) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    sha256 = excluded.sha256,
    size = excluded.size,
    retain_until = max(objects.retain_until, excluded.retain_until),
    legal_hold = max(objects.legal_hold, excluded.legal_hold)
"""


@functools.lru_cache(maxsize=64)  # a batch's objects mostly share a few retain-until times
def iso(when: datetime) -> str:
    """Fixed-width ISO 8601 UTC text of ``when`` (sorts as text)."""
    return iso_utc(when, "microseconds")


@dataclass
class Meta:
    """What the catalog holds about one object."""

    key: str
    sha256: str
    size: int
    retain_until: datetime
    legal_hold: bool

    def info(self, version_id: str | None = None) -> ObjectInfo:
        return ObjectInfo(self.key, self.size, self.retain_until, self.legal_hold, version_id)

    def row(self) -> tuple[str, str, int, str, int]:
        return (self.key, self.sha256, self.size, iso(self.retain_until), int(self.legal_hold))


class Catalog:
    """The retention rows of one store root; not thread-safe (the store holds a lock).

    :raises sqlite3.Error: the database cannot be opened or written.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / CATALOG
        self._conn: sqlite3.Connection | None = None
        self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), durable when the block ends."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    def get(self, key: str, conn: sqlite3.Connection | None = None) -> Meta | None:
        """The row of ``key``, or None."""
        row = (
            (conn or self._connect())
            .execute(
                "SELECT sha256, size, retain_until, legal_hold FROM objects WHERE key = ?", (key,)
            )
            .fetchone()
        )
        if row is None:
            return None
        return Meta(key, str(row[0]), int(row[1]), parse_iso(str(row[2])), bool(row[3]))

    def get_many(self, keys: Sequence[str]) -> dict[str, Meta]:
        """The rows of those of ``keys`` that have one."""
        conn = self._connect()
        found: dict[str, Meta] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))  # only placeholders are formatted in
            query = f"SELECT key, sha256, size, retain_until, legal_hold FROM objects WHERE key IN ({marks})"  # noqa: E501, S608
            for key, sha, size, until, hold in conn.execute(query, chunk):
                found[key] = Meta(key, str(sha), int(size), parse_iso(str(until)), bool(hold))
        return found

    def upsert(self, metas: Iterable[Meta], conn: sqlite3.Connection | None = None) -> None:
        """Add or merge rows (retention extends, holds stay); one transaction unless in one.

        The rows go in key order: keys are hashes, so a batch in arrival order lands on
        pages all over the table, in key order it walks them once, front to back.
        """
        rows = sorted(m.row() for m in metas)
        if conn is not None:
            conn.executemany(_UPSERT, rows)
            return
        with self.transaction() as tx:
            tx.executemany(_UPSERT, rows)

    @staticmethod
    def put_row(conn: sqlite3.Connection, meta: Meta) -> None:
        """Write one row as given (the caller checked, in ``conn``, that retention extends)."""
        conn.execute(
            "INSERT OR REPLACE INTO objects (key, sha256, size, retain_until, legal_hold) "
            "VALUES (?, ?, ?, ?, ?)",
            meta.row(),
        )

    def set_content(self, key: str, sha256: str, size: int) -> None:
        """Correct a row's hash and size to the bytes actually stored under ``key``."""
        with self.transaction() as tx:
            tx.execute("UPDATE objects SET sha256 = ?, size = ? WHERE key = ?", (sha256, size, key))

    def info(self, name: str) -> str | None:
        """A value of the ``store_info`` table (``layout``: which layout the root is in)."""
        row = (
            self._connect()
            .execute("SELECT value FROM store_info WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set_info(self, name: str, value: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO store_info (name, value) VALUES (?, ?)", (name, value)
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def is_full(e: sqlite3.Error) -> bool:
    """Whether SQLite failed for lack of space."""
    return getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
