"""The daemon's side of waking: a datagram on its Unix socket in the data directory, and
PostgreSQL notifications (the sending side is :mod:`bulletin.app.outbox`).
A lost poke costs at most one fallback scan interval, never a notice.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

from bulletin.app.outbox import NOTIFY_CHANNEL, socket_address


class Waker:
    """Listens for pokes and sets ``event``; runs in its own thread."""

    def __init__(self, data_dir: Path, event: threading.Event) -> None:
        self.address = socket_address(data_dir)
        self.event = event
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if not self.address.startswith("\0"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)
        sock.bind(self.address)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._listen, name="waker", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                self._sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            self.event.set()

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        if not self.address.startswith("\0"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)


class PgListener:
    """LISTENs on PostgreSQL for approvals made from any host and sets ``event``."""

    def __init__(self, engine: object, event: threading.Event) -> None:
        self.engine = engine
        self.event = event
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="pg-listener", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        import psycopg
        from sqlalchemy.engine import Engine

        assert isinstance(self.engine, Engine)
        while not self._stopping:
            try:
                raw = self.engine.raw_connection()
                try:
                    conn = raw.driver_connection
                    assert isinstance(conn, psycopg.Connection)
                    conn.autocommit = True
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stopping:
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.event.set()
                finally:
                    raw.invalidate()
            except Exception:  # the fallback scan still runs; try again quietly
                if not self._stopping:
                    threading.Event().wait(2)

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(timeout=3)
