"""The administrator's set-up action: create or upgrade the data directory, database and
archive. Needs no role: it runs before any user exists, and is safe to run again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.db import migrate, session_scope
from bulletin.errors import DatabaseError
from bulletin.publisher.notices import sync_account
from bulletin.users.directory import seed_from_config


@dataclass(frozen=True)
class Initialised:
    """Where everything is: the data directory, the database (its URL, unmasked) at schema
    revision ``schema``, the kind of archive store, the configured accounts (sorted)."""

    data_dir: Path
    database_url: str
    schema: str
    store: str
    accounts: list[str]


@acts
def initialise(app: App, actor: Actor) -> Initialised:
    """Create the data directory, bring the database schema up to date, open the archive store
    and record the configured accounts; each ``[users.NAME]`` without an account gets one.

    :raises DatabaseError: the data directory is not writable, or the database unreachable.
    """
    settings = app.settings
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".bulletin-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise DatabaseError(f"data directory {data_dir} is not writable: {e.strerror}") from None
    revision = migrate(app.engine, settings.agency.languages[0])
    store = app.store
    with session_scope(app.engine) as session:
        for name in settings.accounts:
            sync_account(session, settings, name)
        seed_from_config(session, settings, app.clock.now())
    return Initialised(
        data_dir, settings.database_url, revision, store.kind, sorted(settings.accounts)
    )
