"""Exclusive periodic jobs across daemons: a PostgreSQL advisory lock per job name.

With several daemons on one PostgreSQL database each capture sweep and periodic job runs in
exactly one of them at a time; the others skip that round. SQLite is single-instance, so the
lock is always granted there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive_job(engine: Engine, name: str) -> Iterator[bool]:
    """Yields True when this process may run job ``name`` now (held until the block ends)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    with engine.connect() as conn:
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
