"""Engine, sessions and migrations. SQLite (WAL) by default, PostgreSQL for several instances."""

from __future__ import annotations

import os
import pwd
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from bulletin.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# The newest migration; a test checks it against alembic's head, so start-up need not load
# alembic just to compare.
SCHEMA_REVISION = "0036"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, or None for memory/other databases."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def masked_url(url: str) -> str:
    """``url`` with any password masked, fit to print."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


def make_engine(
    url: str, busy_timeout: float = 30.0, *, read_only: bool = False, **kwargs: Any
) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout and foreign keys.

    ``read_only`` opens a SQLite file with ``mode=ro``: nothing can be written through it, and
    a user who may only read the file (a member of the service's group) can use it. Other
    databases ignore it (their own grants decide).

    :raises DatabaseError: the SQLite file's directory does not exist, or (not read-only) the
        file exists and this user may not write it.
    """
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None and not path.parent.is_dir():
            raise DatabaseError(
                f"database directory {path.parent} does not exist (run bulletin init)"
            )
        if path is not None and read_only:
            return _read_only_sqlite(path, busy_timeout, **kwargs)
        if path is not None:
            _refuse_unwritable(path)
        engine = sa.create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling would defer BEGIN; we want BEGIN IMMEDIATE
        # for writers so that two writers never deadlock on upgrade.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _wal_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def _refuse_unwritable(path: Path) -> None:
    """Say who may write ``path`` before SQLite says "attempt to write a readonly database"."""
    needed = [p for p in (path, *_wal_files(path)) if p.exists()]
    if not needed:
        return  # a new database: creating it is the test
    needed.append(path.parent)  # SQLite creates and removes the -wal and -shm files there
    if all(os.access(p, os.W_OK) for p in needed):
        return
    try:
        owner = f"the {pwd.getpwuid(path.stat().st_uid).pw_name} user"
    except (KeyError, OSError):
        owner = "the user that owns it"
    raise DatabaseError(f"cannot write the database {path}: permission denied; run as {owner}")


class _AsItStood(sqlite3.Connection):
    """A read-only connection that reads the file as it stood (``immutable``): made while
    no writer had the database open."""


def _read_only_sqlite(path: Path, busy_timeout: float, **kwargs: Any) -> Engine:
    if not path.is_file():
        raise DatabaseError("database is not initialised (run bulletin init)")
    uri = f"{path.absolute().as_uri()}?mode=ro"

    # A WAL database is read through its -shm file. While a writer has the database open it
    # exists. When none has, the file is the whole database: read it as it stands
    # (immutable), because a read-only connection would create -wal and -shm, owned by the
    # reader, and leave them behind for the daemon to trip over (or fail to, in a group
    # member's case, for want of write permission on the directory). Decided for each
    # connection, and a pooled immutable one is replaced once a writer has opened the
    # database: it would not see what the writer has in its WAL.
    def writer_open() -> bool:
        return any(p.exists() for p in _wal_files(path))

    def connect() -> sqlite3.Connection:
        if writer_open():
            return sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)
        return sqlite3.connect(
            uri + "&immutable=1",
            uri=True,
            timeout=busy_timeout,
            check_same_thread=False,
            factory=_AsItStood,
        )

    def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_conn, _AsItStood) and writer_open():
            raise sa.exc.DisconnectionError("a writer opened the database: read through its WAL")

    engine = sa.create_engine(f"sqlite:///{path}", creator=connect, **kwargs)
    event.listen(engine, "connect", _sqlite_read_only_pragmas)
    event.listen(engine, "begin", _sqlite_read_begin)
    event.listen(engine, "checkout", checkout)
    return engine


def _sqlite_read_only_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    dbapi_conn.execute("PRAGMA query_only=ON")


def _sqlite_read_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")  # deferred: one consistent snapshot, no write lock


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get(_DEFERRED):
        conn.exec_driver_sql("BEGIN")  # a snapshot: no write lock while it reads
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_DEFERRED = "bulletin_deferred"


def reading(conn: sa.Connection) -> sa.Connection:
    """``conn``, not yet in a transaction, made to begin its transactions deferred on SQLite
    (elsewhere nothing changes): a long read, which may write its own TEMP tables but nothing
    else, then holds a snapshot and never the write lock, so that the daemon's writes
    (an approval, an archived batch) go on meanwhile. A write to a table of the database
    through it may fail with "database is locked" where another writer is: use it to read."""
    return conn.execution_options(**{_DEFERRED: True})


@contextmanager
def reading_session(engine: Engine) -> Iterator[Session]:
    """A session for a long read, such as ``verify`` (see :func:`reading`): on SQLite its
    transaction holds a snapshot and never the write lock, however long it reads."""
    with reading(engine.connect()) as conn, Session(bind=conn) as session:
        yield session


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as e:
            session.rollback()
            raise DatabaseError(f"database error: {_first_line(e)}") from e
        except BaseException:
            session.rollback()
            raise


WAKE_KEY = "bulletin.wake"


def wake_after_commit(session: Session) -> None:
    """Ask that the daemon's due-scan be woken once this session's transaction commits: the
    one waking mechanism (the application layer's outbox, :mod:`bulletin.app.outbox`, sends
    the wake-up; nothing else pokes the daemon)."""
    session.info[WAKE_KEY] = True


def _first_line(e: Exception) -> str:
    orig = getattr(e, "orig", None)
    return str(orig or e).strip().splitlines()[0]


def _alembic_config(engine: Engine, language: str = "en") -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("bulletin") / "migrations"))
    cfg.attributes["engine"] = engine
    cfg.attributes["language"] = language
    return cfg


def migrate(engine: Engine, language: str = "en") -> str:
    """Create or upgrade the schema to the newest revision (idempotent); returns it.
    ``language`` is the agency's first language: the notices made before languages existed
    are written in it (0025).

    :raises DatabaseError: unreachable, locked or not writable.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(engine, language)
    try:
        command.upgrade(cfg, "head")
    except OperationalError as e:
        raise DatabaseError(f"cannot initialise database: {_first_line(e)}") from e
    except sa.exc.DBAPIError as e:
        raise DatabaseError(f"cannot initialise database: {_first_line(e)}") from e
    head = ScriptDirectory.from_config(cfg).get_current_head()
    return head or ""


def check_schema(engine: Engine) -> None:
    """Refuse to run against a database that is unreachable or not at the newest revision.

    :raises DatabaseError: with what to do about it.
    """
    head = SCHEMA_REVISION
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                current = None
            else:
                current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as e:
        raise DatabaseError(f"database unreachable: {_first_line(e)}") from e
    if current is None:
        raise DatabaseError("database is not initialised (run bulletin init)")
    if current != head:
        raise DatabaseError(
            f"database schema is at {current}, this version needs {head} (run bulletin init)"
        )


def reset_id_sequences(
    session: Session, tables: tuple[str, ...], floors: Mapping[str, int] | None = None
) -> None:
    """Make the next id of each of ``tables`` (names of ours, never user input) go on above
    its highest id and above ``floors[table]`` (an id known outside the database: in the
    store, on a platform), never lower than it already was.

    PostgreSQL: the id sequence is set. SQLite: an AUTOINCREMENT table's ``sqlite_sequence``
    row is raised; another table goes on after its highest row by itself, so a floor above
    that cannot be kept there (the tables whose ids leave the database are AUTOINCREMENT).
    """
    floors = floors or {}
    dialect = session.get_bind().dialect.name
    for table in tables:
        highest = session.execute(sa.text(f"SELECT max(id) FROM {table}")).scalar()  # noqa: S608
        wanted = max(highest or 0, floors.get(table, 0))
        if dialect == "postgresql":
            sequence = session.execute(
                sa.text(f"SELECT pg_get_serial_sequence('{table}', 'id')")
            ).scalar()
            last, called = session.execute(
                sa.text(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
            ).one()
            used = last if called else last - 1
            if wanted > used:
                session.execute(sa.text("SELECT setval(:s, :v)"), {"s": sequence, "v": wanted})
        elif dialect == "sqlite" and wanted and _autoincrement(session, table):
            updated = session.execute(
                sa.text("UPDATE sqlite_sequence SET seq = max(seq, :v) WHERE name = :t"),
                {"t": table, "v": wanted},
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.execute(
                    sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :v)"),
                    {"t": table, "v": wanted},
                )


def _autoincrement(session: Session, table: str) -> bool:
    sql = session.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
    ).scalar()
    return "AUTOINCREMENT" in (sql or "").upper()


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (all with the keys of the first, each a column of ``table``) with one
    ``executemany`` of the driver: the statement is compiled once per table, dialect and set
    of columns, and each value goes through its column type's bind processor, as SQLAlchemy
    would do, without building its per-row parameter objects.

    Where the compiled statement wants more than the given columns (a column with a Python
    default), the rows go through SQLAlchemy's own ``insert`` instead.
    """
    if not rows:
        return
    columns = tuple(rows[0])
    plan = _insert_plan(conn.dialect, table, columns)
    if plan is None:
        conn.execute(table.insert(), list(rows))
        return
    sql, named, processors = plan
    names = [c for c, _ in processors]
    pick = itemgetter(*names)
    # a batch's rows share a few values per processed column (its capture time, its
    # retain-until, a state, a flag): each distinct value goes through its processor once
    # (equal aware times are the same instant, stored alike; a column holds either flags or
    # numbers, so True and 1 never meet in one memo)
    convert: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]] = [
        (i, p, {}) for i, (_, p) in enumerate(processors) if p is not None
    ]
    params: list[Any] = []
    for row in rows:
        values = list(pick(row)) if len(names) > 1 else [pick(row)]
        for i, process, memo in convert:
            raw = values[i]
            if type(raw) in _MEMO_TYPES:
                done = memo.get(raw, _NOT_SEEN)
                if done is _NOT_SEEN:
                    done = memo[raw] = process(raw)
                values[i] = done
            else:
                values[i] = process(raw)
        params.append(dict(zip(names, values, strict=True)) if named else tuple(values))
    conn.exec_driver_sql(sql, params)


# the value types whose processed form is remembered per column within one insert_rows
_MEMO_TYPES = frozenset({datetime, str, bool, type(None)})
_NOT_SEEN = object()

_Plan = tuple[str, bool, tuple[tuple[str, Callable[[Any], Any] | None], ...]]
_PLANS: dict[tuple[str, str, str, tuple[str, ...]], _Plan | None] = {}


def _insert_plan(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> _Plan | None:
    """The driver SQL of an insert of ``columns`` into ``table``, whether it takes named
    parameters, and each column's bind processor (None when the statement wants more)."""
    key = (dialect.name, dialect.driver, table.name, columns)
    if key in _PLANS:
        return _PLANS[key]
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    plan: _Plan | None = None
    if sorted(names) == sorted(columns):
        order = names if compiled.positional else list(columns)
        processors = tuple(
            (c, table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) for c in order
        )
        plan = (compiled.string, not compiled.positional, processors)
    _PLANS[key] = plan
    return plan
