"""Alembic environment: runs on the engine Bulletin hands over in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bulletin.models  # noqa: F401 - registers the tables on SQLModel.metadata
from bulletin import events  # noqa: F401 - the webhook tables
from bulletin.cap import models as cap_models  # noqa: F401 - the cap_alerts table
from bulletin.errors import DatabaseError
from bulletin.notify import links as notify_links  # noqa: F401 - approval links, keys
from bulletin.notify import outbox as notify_outbox  # noqa: F401 - the email outbox
from bulletin.users import models as user_models  # noqa: F401 - accounts of people

target_metadata = SQLModel.metadata


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave the hand-written full-text search objects out of autogenerate: SQLite's
    ``records_fts`` tables (0004) and PostgreSQL's generated ``records.search_vector`` with
    its index ``ix_records_search``, and ``ix_records_author`` on ``lower(author), id`` (0024)."""
    if type_ == "index" and name in {"ix_records_search", "ix_records_author"}:
        return False
    if type_ == "column" and isinstance(parent_names, dict):
        return not (parent_names.get("table_name") == "records" and name == "search_vector")
    return not (type_ == "table" and name is not None and name.startswith("records_fts"))


def run() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        # A table rebuilt by batch mode on SQLite is dropped and renamed; with foreign keys on,
        # dropping a table that others refer to fails. They are off for the migration (the
        # pragma only takes effect outside a transaction) and checked before it commits.
        raw = connection.connection.driver_connection if sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                include_name=_include_name,
            )
            with context.begin_transaction():
                context.run_migrations()
                if raw is not None:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise DatabaseError(f"the migration broke a foreign key: {tuple(broken)}")
            connection.commit()
        finally:
            if raw is not None:
                connection.rollback()
                raw.execute("PRAGMA foreign_keys=ON")


run()
