"""The application context: settings, clock, database, store and connectors, built once and
passed down. Used by the command line and the daemon alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulletin.app import outbox
from bulletin.clock import Clock, SystemClock
from bulletin.db import check_schema, make_engine

if TYPE_CHECKING:  # the archive and the connectors are imported when first used
    from sqlalchemy.engine import Engine

    from bulletin.archiver.archive import Archiver
    from bulletin.archiver.store.base import WormStore
    from bulletin.config.settings import Settings
    from bulletin.connectors.base import Connector


@dataclass
class App:
    """Everything a command needs. Close it when done."""

    settings: Settings
    environ: Mapping[str, str]
    clock: Clock = field(default_factory=SystemClock)
    _engine: Engine | None = None
    _store: WormStore | None = None
    _local: threading.local = field(default_factory=threading.local)
    generation: int = 0  # bumped on reload; per-thread connector caches follow it
    connector_options: dict[str, Any] = field(default_factory=dict)  # retry=, timeout=
    # open the database read-only (commands that only read; see bulletin.db.make_engine)
    read_only: bool = False
    # check the schema once, not at every checked_engine() (a command: it runs against one
    # schema; the daemon and the web console check each time, so they see an upgrade)
    check_schema_once: bool = False
    _schema_checked: bool = False
    # where the engine comes from, by read_only, when it is not made here: the daemon's
    # commands share its engines (and their statement caches); close() leaves them open
    engines: Callable[[bool], Engine] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None and self.engines is not None:
            self._engine = self.engines(self.read_only)
        if self._engine is None:
            self._engine = make_engine(
                self.settings.database_url,
                self.settings.database.busy_timeout,
                read_only=self.read_only,
            )
            outbox.register(self._engine, self.settings.data_dir)
        return self._engine

    def checked_engine(self) -> Engine:
        """The engine, after making sure the schema is current (else DatabaseError); with
        ``check_schema_once``, only the first call checks."""
        if not self._schema_checked:
            check_schema(self.engine)
            self._schema_checked = self.check_schema_once
        return self.engine

    @property
    def store(self) -> WormStore:
        if self._store is None:
            from bulletin.archiver.store import open_store

            self._store = open_store(self.settings)
        return self._store

    def store_backlog(self) -> int:
        """Objects waiting for the archive store; read from the spool's files without opening
        the store (which writes) when the app is read-only."""
        if not self.read_only:
            return self.store.backlog()
        if self.settings.archive.store != "s3":
            return 0
        from bulletin.archiver.store.spool import spooled_count

        return spooled_count(self.settings.data_dir / "spool")

    @property
    def archiver(self) -> Archiver:
        from bulletin.archiver.archive import Archiver

        return Archiver(self.engine, self.store, self.settings, self.clock)

    def connector(self, account: str) -> Connector:
        """The connector for ``account``, one per thread (connectors are not thread-safe)."""
        if self._local.__dict__.get("generation") != self.generation:
            self.drop_connectors()
            self._local.generation = self.generation
        cache: dict[str, Connector] = self._local.__dict__.setdefault("connectors", {})
        if account not in cache:
            from bulletin.connectors.registry import build_connector

            cache[account] = build_connector(
                account, self.settings, self.environ, clock=self.clock, **self.connector_options
            )
        return cache[account]

    def drop_connectors(self) -> None:
        """Forget this thread's connectors (after a configuration reload)."""
        cache: dict[str, Connector] = self._local.__dict__.pop("connectors", {})
        for connector in cache.values():
            connector.close()

    def replace_settings(self, settings: Settings) -> None:
        """Use new settings from now on (SIGHUP); connectors are rebuilt on next use."""
        self.settings = settings
        self.generation += 1

    def close(self) -> None:
        self.drop_connectors()
        if self._store is not None:
            self._store.close()
        if self._engine is not None and self.engines is None:
            self._engine.dispose()
