"""A configured Bulletin instance: settings file, initialised database and store, a clock."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from bulletin.app import App
from bulletin.clock import ManualClock
from bulletin.config import Settings, load_settings
from bulletin.db import migrate, sqlite_path
from bulletin.models import Delivery, Notice
from bulletin.publisher.delivery import delivery_key
from tests.plugins.database import put_migrated_sqlite

START = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

BASE_CONFIG = """
[agency]
name = "Lexington Police Department"
time_zone = "America/New_York"
website = "https://lexingtonma.gov/police"

[paths]
data_dir = "{data_dir}"

[database]
url = "{db_url}"

[accounts.feed]
platform = "feed"
title = "Lexington Police: public notices"
"""


def write_config(path: Path, data_dir: Path, db_url: str, extra: str = "") -> Path:
    path.write_text(BASE_CONFIG.format(data_dir=data_dir, db_url=db_url) + extra)
    return path


@dataclass
class Instance:
    """One Bulletin: its config file, data directory, settings and app."""

    config: Path
    data_dir: Path
    settings: Settings
    app: App
    clock: ManualClock

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for running ``bulletin`` as a subprocess against this instance."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
        env.update(BULLETIN_CONFIG=str(self.config), **extra)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        return env


def make_instance(tmp_path: Path, db_url: str, extra: str = "") -> Instance:
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path / "bulletin.toml", data_dir, db_url, extra)
    settings = load_settings(config, environ={})
    clock = ManualClock(START)
    database = sqlite_path(db_url)
    if database is not None:
        put_migrated_sqlite(database)
    app = App(settings, environ={}, clock=clock)
    migrate(app.engine)  # a no-op on the copy; creates the schema on PostgreSQL
    return Instance(config, data_dir, settings, app, clock)


@pytest.fixture
def instance(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database backend with a feed account and a manual clock."""
    inst = make_instance(tmp_path, db_url)
    yield inst
    inst.app.close()


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> Iterator[Instance]:
    """A Bulletin on SQLite only (for tests about files and processes)."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    yield inst
    inst.app.close()


def feed_entry_id(inst: Instance, notice_id: int, account: str = "feed") -> str:
    """The feed entry id of notice ``notice_id``'s post (its key carries the notice's token)."""
    with Session(inst.app.engine) as session:
        notice = session.get(Notice, notice_id)
    assert notice is not None
    key = delivery_key(notice, Delivery(notice_id=notice_id, account=account))
    return f"urn:bulletin:{account}:{key}"
