"""The one waking mechanism: once a transaction that made work due commits, the daemons hear
of it at once instead of at their next fallback scan.

Domain code marks the session (:func:`bulletin.db.wake_after_commit`); this module, hooked
into every SQLAlchemy session when :mod:`bulletin.app` is imported, does the rest:

- before the commit, on PostgreSQL, ``NOTIFY bulletin_due`` (delivered at commit to every
  daemon's listener, on any host);
- after the commit, a datagram on the daemon's Unix socket in the data directory of the
  engine's :class:`~bulletin.app.App` (:func:`register`).

A lost wake-up costs at most one fallback scan interval, never a notice. The socket lives in
the data directory (``bulletin.sock``); Unix socket paths are limited to 107 bytes, so a
longer data directory uses an abstract socket named after the path's hash.
"""

from __future__ import annotations

import hashlib
import socket
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, SessionTransaction

from bulletin.db import WAKE_KEY

NOTIFY_CHANNEL = "bulletin_due"
_MAX_PATH = 107

# the data directory whose daemon each App's engine wakes
_data_dirs: weakref.WeakKeyDictionary[Engine, Path] = weakref.WeakKeyDictionary()


@dataclass
class Wakes:
    """What the wake-ups sent while collecting reached: ``sent`` is None when nothing asked
    for one, else whether a daemon listened to the last."""

    sent: bool | None = None


_collecting: ContextVar[Wakes | None] = ContextVar("bulletin_wakes", default=None)


def socket_address(data_dir: Path) -> str:
    """The daemon's wake-up socket for ``data_dir``."""
    path = str(data_dir / "bulletin.sock")
    if len(path.encode()) <= _MAX_PATH:
        return path
    return "\0bulletin-" + hashlib.sha256(path.encode()).hexdigest()[:32]


def poke(data_dir: Path) -> bool:
    """Tell a running daemon that work may be due; False when none listens."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"wake", socket_address(data_dir))
        return True
    except OSError:
        return False


def register(engine: Engine, data_dir: Path) -> None:
    """Commits through ``engine`` that ask for it wake the daemon of ``data_dir``."""
    _data_dirs[engine] = data_dir


@contextmanager
def collect() -> Iterator[Wakes]:
    """Note, for the caller, whether the wake-ups sent inside reached a daemon."""
    wakes = Wakes()
    token = _collecting.set(wakes)
    try:
        yield wakes
    finally:
        _collecting.reset(token)


def _engine_of(session: Session) -> Engine | None:
    bind = session.get_bind()
    if isinstance(bind, Connection):
        return bind.engine
    return bind if isinstance(bind, Engine) else None


def _before_commit(session: Session) -> None:
    if not session.info.get(WAKE_KEY):
        return
    engine = _engine_of(session)
    if engine is not None and engine.dialect.name == "postgresql":
        # the payload names the schema, so a listener can tell this instance's wake-ups from
        # another's on the same database
        session.execute(
            sa.text("SELECT pg_notify(:channel, current_schema())"), {"channel": NOTIFY_CHANNEL}
        )


def _after_commit(session: Session) -> None:
    if not session.info.pop(WAKE_KEY, False):
        return
    engine = _engine_of(session)
    data_dir = _data_dirs.get(engine) if engine is not None else None
    if data_dir is None:
        return
    sent = poke(data_dir)
    wakes = _collecting.get()
    if wakes is not None:
        wakes.sent = sent


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:  # the whole transaction is gone, and its wish with it
        session.info.pop(WAKE_KEY, None)


def install() -> None:
    """Hook the outbox into every session (once; importing :mod:`bulletin.app` does it)."""
    for name, hook in (
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_soft_rollback", _after_soft_rollback),
    ):
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)
