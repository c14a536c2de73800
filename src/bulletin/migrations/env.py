"""Alembic environment: runs on the engine Bulletin hands over in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bulletin.models  # noqa: F401 - registers the tables on SQLModel.metadata
from bulletin.publisher import cap_models  # noqa: F401 - the cap_alerts table

target_metadata = SQLModel.metadata


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave the hand-written full-text search objects (see 0004) out of autogenerate."""
    return not (type_ == "table" and name is not None and name.startswith("records_fts"))


def run() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_name=_include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
