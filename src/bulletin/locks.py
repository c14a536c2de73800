"""Locks: exclusive periodic jobs across daemons (a PostgreSQL advisory lock per job name),
and the one-daemon lock of a SQLite database.

With several daemons on one PostgreSQL database each capture sweep and periodic job runs in
exactly one of them at a time; the others skip that round. SQLite is single-instance, so the
job lock is always granted there, and a file lock in the data directory keeps a second daemon
(or a restore) from running beside the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bulletin.errors import Refused

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


def take_instance_lock(data_dir: Path, purpose: str) -> IO[str]:
    """Hold ``<data_dir>/daemon.lock`` (released by :func:`release_instance_lock` or exit).

    :raises Refused: another process holds it; the message names it.
    """
    handle = open(data_dir / "daemon.lock", "a+")  # noqa: SIM115 - held by the caller
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise Refused(f"the database is in use by {holder}") from None
    with contextlib.suppress(OSError):  # the note is for people; a full disk must not stop us
        handle.seek(0)
        handle.truncate()
        handle.write(f"{purpose}, pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
    return handle


def release_instance_lock(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):  # a note a full disk kept from being written
        handle.close()
