"""Databases for tests: a fresh SQLite file, and a fresh schema on PostgreSQL.

PostgreSQL comes from ``BULLETIN_TEST_PG_URL`` (default: the local server's ``test``
database). Each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from bulletin.db import make_engine, migrate
from tests.plugins.environment import require

PG_URL = os.environ.get("BULLETIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@cache
def postgres_available() -> bool:
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh PostgreSQL schema."""
    require(postgres_available(), f"PostgreSQL at {PG_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each database backend, empty."""
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("db")
        return f"sqlite:///{directory / 'bulletin.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@cache
def _migrated_sqlite_template() -> Path:
    """An empty SQLite database at the newest revision, migrated once per test process (running
    Alembic for every test costs more than copying a file)."""
    directory = tempfile.mkdtemp(prefix="bulletin-template-")
    atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / "bulletin.db"
    engine = make_engine(f"sqlite:///{path}", 5)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    with sqlite3.connect(path) as conn:  # everything in the main file: copying it is enough
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def put_migrated_sqlite(path: Path) -> None:
    """Make ``path`` a migrated, empty SQLite database (a copy of the per-process template)
    unless a database is there already."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_sqlite_template(), path)
