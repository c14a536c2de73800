"""Whether this process can serve: the database answers and the archive store is reachable.
Says nothing else (no URL, no path, no error text): health answers are public."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.app.context import App
from bulletin.archiver.store.base import object_key


@dataclass(frozen=True)
class Readiness:
    database: bool
    store: bool

    @property
    def ready(self) -> bool:
        return self.database and self.store


def readiness(app: App) -> Readiness:
    """Try the database (a current schema, one query) and the store (one lookup)."""
    try:
        with app.checked_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        database = True
    except Exception:
        database = False
    try:
        app.store.exists(object_key("0" * 64))
        store = True
    except Exception:
        store = False
    return Readiness(database, store)
