"""This daemon among the daemons that share one database.

Each daemon has a :class:`~bulletin.models.DaemonInstance` row: written at start, its heartbeat
renewed every :data:`HEARTBEAT_SECONDS`, its stop recorded. On SQLite one daemon runs per
database file (an instance lock on the data directory); on PostgreSQL a daemon refuses to start
beside a live daemon on another host when either writes local files.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import IO

from sqlmodel import Session, col, select

from bulletin import __version__
from bulletin.app import App
from bulletin.db import is_sqlite, session_scope
from bulletin.errors import BulletinError, Refused
from bulletin.locks import release_instance_lock, take_instance_lock
from bulletin.logs import get_logger
from bulletin.models import DaemonInstance

log = get_logger("bulletin.daemon")

HEARTBEAT_SECONDS = 5


class Instance:
    """The running daemon ``owner``'s row and locks."""

    def __init__(self, app: App, owner: str) -> None:
        self.app = app
        self.owner = owner
        self._lock_file: IO[str] | None = None

    @property
    def locked(self) -> bool:
        """Whether this daemon holds the SQLite instance lock (no other daemon runs)."""
        return self._lock_file is not None

    def register(self) -> None:
        """Write this daemon's row, its heartbeat fresh."""
        now = self.app.clock.now()
        with session_scope(self.app.engine) as session:
            session.merge(
                DaemonInstance(
                    owner=self.owner,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    version=__version__,
                    started_at=now,
                    heartbeat_at=now,
                    local_paths=self.local_paths(),
                )
            )

    def heartbeat(self) -> None:
        """Renew this daemon's heartbeat (the periodic job; raises what the database raises)."""
        with session_scope(self.app.engine) as session:
            row = session.get(DaemonInstance, self.owner)
            if row is not None:
                row.heartbeat_at = self.app.clock.now()
                session.add(row)

    def deregister(self) -> None:
        """Record the stop; a failure is logged, never raised."""
        try:
            with session_scope(self.app.engine) as session:
                row = session.get(DaemonInstance, self.owner)
                if row is not None:
                    row.stopped_at = self.app.clock.now()
                    session.add(row)
        except BulletinError as e:
            log.error("could not record the stop", error=str(e))

    def local_paths(self) -> list[str]:
        """The local files this daemon writes that no other host can see: a local archive
        store and the feed files of its enabled feed accounts."""
        settings = self.app.settings
        paths = [str(settings.archive_path)] if settings.archive.store == "local" else []
        return paths + [
            str(settings.feed_path(name))
            for name, account in sorted(settings.accounts.items())
            if account.platform == "feed" and account.enabled
        ]

    def refuse_other_hosts(self) -> None:
        """On PostgreSQL, refuse to start beside a live daemon on another host when either
        writes local files (each host would keep its own archive store or feed).

        :raises Refused: naming the other daemon and the local files.
        """
        if is_sqlite(self.app.settings.database_url):
            return
        fresh = self.app.clock.now() - timedelta(seconds=3 * HEARTBEAT_SECONDS)
        with Session(self.app.engine) as session:
            others = session.exec(
                select(DaemonInstance)
                .where(col(DaemonInstance.stopped_at).is_(None))
                .where(col(DaemonInstance.heartbeat_at) >= fresh)
                .where(col(DaemonInstance.host) != socket.gethostname())
            ).all()
        mine = self.local_paths()
        for other in others:
            theirs = other.local_paths or []
            if mine or theirs:
                files, whose = (mine, "this daemon") if mine else (theirs, "it")
                raise Refused(
                    f"a daemon runs on host {other.host} ({other.owner}) and {whose} writes "
                    f"{', '.join(files)} locally: daemons on several hosts need the S3 store "
                    "and no feed account"
                )

    def take_lock(self) -> None:
        """SQLite supports one daemon per database file; say so when a second one starts.

        :raises Refused: another daemon holds the lock.
        """
        if not is_sqlite(self.app.settings.database_url):
            return
        try:
            self._lock_file = take_instance_lock(self.app.settings.data_dir, "daemon")
        except Refused as e:
            raise Refused(
                f"{e}: SQLite supports one daemon, use PostgreSQL to run several"
            ) from None

    def release_lock(self) -> None:
        """Let another daemon start (no-op without the lock)."""
        if self._lock_file is not None:
            release_instance_lock(self._lock_file)
            self._lock_file = None
