"""``bulletin restore``: put a SQLite backup back, without losing or doubling anything.

In order, with the daemon stopped (the data directory's daemon lock is held throughout):

1. the backup is checked (``PRAGMA integrity_check``, a Bulletin schema) before anything moves;
2. the current database files (``bulletin.db`` and its ``-wal``/``-shm``) are moved aside as
   ``*.before-restore-<UTC time>``, never deleted (a stale ``-wal`` beside the restored file
   would otherwise be replayed into it);
3. the backup is copied into place as ``bulletin backup`` copies, and the schema upgraded;
4. every delivery the backup shows as due but not done is marked ``uncertain``: the daemon
   looks for it on its platform before posting, so what went out after the backup was taken
   is recorded as published, not posted twice;
5. the archive index is rebuilt from the WORM store (``archive rebuild-index --replace``), so
   records captured after the backup come back with their holds, redactions and requests;
6. ids go on above every one the store and the platforms know (archived posts' notices and
   deliveries, the feed's delivery keys, the ledger's records) and, on SQLite, above every
   one the database put aside had handed out (its ``sqlite_sequence``: notices drafted,
   deliveries, webhooks added since the backup): an id that left the database after the
   backup was taken is never given to another.

What the backup cannot bring back: notices drafted or approved after it was taken (they never
reached the store). The command says so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

from bulletin import audit
from bulletin.archiver.rebuild import RebuildReport, rebuild_index
from bulletin.archiver.store import open_store
from bulletin.config.settings import Settings
from bulletin.db import (
    is_sqlite,
    make_engine,
    migrate,
    reset_id_sequences,
    session_scope,
    sqlite_path,
)
from bulletin.errors import BulletinError, DatabaseError, Refused, UsageError
from bulletin.locks import release_instance_lock, take_instance_lock
from bulletin.models import Delivery
from bulletin.publisher.delivery import highest_notice_on_platforms
from bulletin.service.backup import Backup, backup_sqlite, open_sqlite
from bulletin.states import DeliveryState
from bulletin.timeparse import iso_basic

UNDONE = (DeliveryState.PENDING, DeliveryState.IN_FLIGHT)
SIDECARS = ("-wal", "-shm")


@dataclass(frozen=True)
class Restored:
    """What a restore did."""

    moved_aside: list[Path]
    copy: Backup
    schema: str
    uncertain: int
    rebuilt: RebuildReport


def restore_sqlite(
    settings: Settings,
    backup: Path,
    actor: str,
    now: datetime,
    environ: Mapping[str, str] | None = None,
) -> Restored:
    """Restore the SQLite database from ``backup``; see the module doc. ``environ`` gives
    the credentials of the platforms read for the delivery keys they hold.

    :raises UsageError: not a SQLite database, or ``backup`` is not a Bulletin backup.
    :raises Refused: a daemon (or another restore) is running on this data directory.
    :raises DatabaseError: the backup fails its check or cannot be copied.
    """
    url = settings.database_url
    if not is_sqlite(url):
        raise UsageError(
            "bulletin restore puts back a SQLite backup; use pg_restore for PostgreSQL"
        )
    database = sqlite_path(url)
    assert database is not None
    _check(backup)
    try:
        lock = take_instance_lock(settings.data_dir, "restore")
    except Refused as e:
        raise Refused(f"{e}: stop the daemon first") from None
    try:
        handed_out = ids_handed_out(database)  # read before it moves: its -wal goes with it
        stamp = iso_basic(now)
        owner = database.stat() if database.exists() else settings.data_dir.stat()
        moved: list[tuple[Path, Path]] = []  # (where it was, where it is now)
        try:
            for path in (database, *(database.with_name(database.name + s) for s in SIDECARS)):
                if path.exists():
                    aside = path.with_name(f"{path.name}.before-restore-{stamp}")
                    path.rename(aside)
                    moved.append((path, aside))
            copy = backup_sqlite(f"sqlite:///{backup.resolve()}", database, now)
            _same_owner(database, owner)
        except (BulletinError, OSError) as e:
            for was, aside in reversed(moved):  # put everything back as it was
                with contextlib.suppress(OSError):
                    aside.rename(was)
            if isinstance(e, BulletinError):
                raise
            raise DatabaseError(f"restore into {database} failed: {e.strerror or e}") from None
        schema, uncertain, rebuilt = _settle(
            settings, actor, now, backup.name, environ or {}, handed_out
        )
    finally:
        release_instance_lock(lock)
    return Restored([aside for _, aside in moved], copy, schema, uncertain, rebuilt)


def settle_in_place(
    settings: Settings, actor: str, now: datetime, environ: Mapping[str, str] | None = None
) -> tuple[int, RebuildReport]:
    """Steps 4 to 6 of a restore on a database already put back by other means (``pg_restore``
    on PostgreSQL, a file copied by hand): due deliveries become ``uncertain`` and the archive
    index is rebuilt from the store. Returns how many deliveries and the rebuild's report.

    :raises Refused: a daemon is running on this SQLite database.
    """
    lock = None
    if is_sqlite(settings.database_url):
        try:
            lock = take_instance_lock(settings.data_dir, "restore")
        except Refused as e:
            raise Refused(f"{e}: stop the daemon first") from None
    try:
        _, uncertain, rebuilt = _settle(settings, actor, now, "in place", environ or {})
    finally:
        if lock is not None:
            release_instance_lock(lock)
    return uncertain, rebuilt


def ids_handed_out(database: Path) -> dict[str, int]:
    """The highest id each AUTOINCREMENT table of the SQLite database at ``database`` ever
    handed out (its ``sqlite_sequence``; the tables whose ids leave the database are
    AUTOINCREMENT). Empty when there is none or it cannot be read: a damaged database is a
    reason to restore, never a reason to refuse."""
    if not database.is_file():
        return {}
    try:
        with open_sqlite(database, "ro") as conn:
            rows = conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    except sqlite3.Error:
        return {}
    return {str(name): seq for name, seq in rows if isinstance(seq, int) and seq > 0}


def _continue_above(engine: sa.Engine, handed_out: Mapping[str, int]) -> None:
    """Next ids above ``handed_out`` (of tables the restored schema has: the names come from
    a file, so only those go into SQL)."""
    with session_scope(engine) as session:
        tables = set(sa.inspect(session.connection()).get_table_names())
        floors = {t: v for t, v in handed_out.items() if t in tables}
        reset_id_sequences(session, tuple(sorted(floors)), floors)


def _settle(
    settings: Settings,
    actor: str,
    now: datetime,
    source: str,
    environ: Mapping[str, str],
    handed_out: Mapping[str, int] | None = None,
) -> tuple[str, int, RebuildReport]:
    engine = make_engine(settings.database_url, settings.database.busy_timeout)
    try:
        schema = migrate(engine, settings.agency.languages[0])
        uncertain = _mark_undone(engine, actor, now, source)
        on_platforms, unread = highest_notice_on_platforms(settings, environ)
        store = open_store(settings)
        try:
            rebuilt = rebuild_index(
                engine,
                store,
                now,
                replace=True,
                time_zone=settings.agency.time_zone,
                notice_floor=on_platforms,
            )
        finally:
            store.close()
        rebuilt.problems += unread
        _continue_above(engine, handed_out or {})
    finally:
        engine.dispose()
    return schema, uncertain, rebuilt


def _same_owner(path: Path, like: os.stat_result) -> None:
    """Give the restored file the owner and group of the one it replaces (or of the data
    directory), so the daemon's user can open it when root restored it; group access as the
    daemon's own files have it."""
    with contextlib.suppress(PermissionError):  # not root: the file is already ours
        os.chown(path, like.st_uid, like.st_gid)
    os.chmod(path, 0o640 if like.st_mode & stat.S_IRGRP else 0o600)


def _check(backup: Path) -> None:
    if not backup.is_file():
        raise UsageError(f"no backup file at {backup}")
    try:
        with open_sqlite(backup, "ro") as conn:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as e:
        raise UsageError(f"{backup} is not a Bulletin database backup: {e}") from None
    if verdict != "ok":
        raise DatabaseError(f"{backup} fails its integrity check: {verdict}")


def _mark_undone(engine: sa.Engine, actor: str, now: datetime, source: str) -> int:
    """Deliveries due by ``now`` but not done in the backup: ``uncertain`` (looked for on
    their platforms before any post). Returns how many."""
    with session_scope(engine) as session:
        ids = [
            row[0]
            for row in session.execute(
                sa.select(col(Delivery.id))
                .where(col(Delivery.state).in_(UNDONE))
                .where(col(Delivery.due_at) <= now)
            )
        ]
        if ids:
            session.execute(
                sa.update(Delivery)
                .where(col(Delivery.id).in_(ids))
                .values(state=DeliveryState.UNCERTAIN, lease_owner=None, lease_expires_at=None)
            )
        audit.record_events(
            session,
            [
                audit.event(
                    at=now,
                    actor=actor,
                    action="restored",
                    object_type="database",
                    object_id=source,
                    uncertain_deliveries=len(ids),
                )
            ],
        )
    return len(ids)
