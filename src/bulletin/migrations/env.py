"""Alembic environment: runs on the engine Bulletin hands over in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bulletin.models  # noqa: F401 - registers the tables on SQLModel.metadata
from bulletin.publisher import cap_models  # noqa: F401 - the cap_alerts table

target_metadata = SQLModel.metadata


def run() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
