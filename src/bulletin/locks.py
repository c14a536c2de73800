"""Exclusive periodic jobs across daemons: a PostgreSQL advisory lock per job name.

With several daemons on one PostgreSQL database each capture sweep and periodic job runs in
exactly one of them at a time; the others skip that round. SQLite is single-instance, so the
lock is always granted there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# Advisory locks are database-wide: the key includes the schema, so that Bulletin instances
# sharing one PostgreSQL database in separate schemas never block each other.
KEY_SQL = "hashtextextended(current_schema() || ':' || :name, 0)"


@contextmanager
def exclusive_job(engine: Engine, name: str) -> Iterator[bool]:
    """Yields True when this process may run job ``name`` now (held until the block ends)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        got = bool(
            conn.execute(
                sa.text(f"SELECT pg_try_advisory_lock({KEY_SQL})"), {"name": name}
            ).scalar()
        )
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(sa.text(f"SELECT pg_advisory_unlock({KEY_SQL})"), {"name": name})
                conn.commit()
