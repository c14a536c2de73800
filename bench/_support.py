"""Shared set-up for the benchmark and chaos scripts: a configured Bulletin in a temporary
directory (SQLite, or a PostgreSQL schema of its own), an in-process sandbox, bulk seeding."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import col

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from bulletin.app import App  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, SandboxServer  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.models import Delivery, Notice, Record  # noqa: E402

PG_URL = os.environ.get("BULLETIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

CONFIG = """
[agency]
name = "Bench Police Department"
languages = ["en", "es"]
[paths]
data_dir = "{data_dir}"
[database]
url = "{db_url}"
[daemon]
lease_seconds = {lease}
[accounts.feed]
platform = "feed"
capture_interval = 3600
[accounts.x]
platform = "x"
base_url = "{url}"
capture_interval = 3600
consumer_key_env = "SANDBOX_X_CONSUMER_KEY"
consumer_secret_env = "SANDBOX_X_CONSUMER_SECRET"
access_token_env = "SANDBOX_X_ACCESS_TOKEN"
access_token_secret_env = "SANDBOX_X_ACCESS_TOKEN_SECRET"
[accounts.facebook]
platform = "facebook"
base_url = "{url}"
capture_interval = 3600
page_id = "{page}"
token_env = "SANDBOX_FACEBOOK_PAGE_TOKEN"
[accounts.mastodon]
platform = "mastodon"
base_url = "{url}"
instance = "https://sandbox.social"
capture_interval = 3600
token_env = "SANDBOX_MASTODON_TOKEN"
[accounts.bluesky]
platform = "bluesky"
base_url = "{url}"
handle = "bulletin.sandbox.test"
capture_interval = 3600
app_password_env = "SANDBOX_BLUESKY_APP_PASSWORD"
[accounts.threads]
platform = "threads"
base_url = "{url}"
user_id = "27000000000000001"
capture_interval = 3600
token_env = "SANDBOX_THREADS_TOKEN"
"""


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A URL for an empty database of ``kind`` (sqlite | postgres), removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'data' / 'bulletin.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def configure(tmp: Path, db_url: str, sandbox_url: str, lease: int = 30) -> tuple[Path, App]:
    """Write a config file and initialise the database; returns (config path, app)."""
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = tmp / "bulletin.toml"
    config.write_text(
        CONFIG.format(
            data_dir=data_dir,
            db_url=db_url,
            url=sandbox_url,
            page=DEFAULT_FB_PAGE["id"],
            lease=lease,
        )
    )
    app = App(load_settings(config, environ={}), environ={})
    migrate(app.engine)
    return config, app


def start_sandbox() -> SandboxServer:
    return SandboxServer().start()


def insert_records(app: App, rows: list[dict[str, object]]) -> None:
    """Insert ``rows`` straight into ``records`` in one transaction, adding them to SQLite's
    full-text index by one statement as the archiver does (PostgreSQL's GIN index follows by
    itself); no store objects, ledger or audit rows."""
    with app.engine.begin() as conn:
        before = conn.execute(sa.select(sa.func.max(Record.id))).scalar() or 0
        conn.execute(sa.insert(Record), rows)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "INSERT INTO records_fts(rowid, text, author) "
                "SELECT id, text, author FROM records WHERE id > ?",
                (before,),
            )


def seed_future_notices(app: App, count: int, account: str, start: datetime) -> None:
    """``count`` approved notices due between one and thirty days from ``start`` (bulk)."""
    from sqlmodel import Session

    from bulletin.publisher.notices import sync_account

    with Session(app.engine) as session:
        sync_account(session, app.settings, account)
        session.commit()
    batch = 5000
    for first in range(0, count, batch):
        n = min(batch, count - first)
        due = [start + timedelta(days=1, seconds=(first + i) * 25) for i in range(n)]
        with app.engine.begin() as conn:
            ids = (
                conn.execute(
                    sa.insert(Notice).returning(col(Notice.id), sort_by_parameter_order=True),
                    [
                        {
                            "category": "crime-prevention",
                            "priority": "community",
                            "title": "",
                            "text": f"Weekly tip {first + i}: lock your car.",
                            "state": "approved",
                            "author": "bench",
                            "created_at": start,
                            "publish_at": d,
                            "approved_by": "bench",
                            "approved_at": start,
                        }
                        for i, d in enumerate(due)
                    ],
                )
                .scalars()
                .all()
            )
            conn.execute(
                sa.insert(Delivery),
                [
                    {
                        "notice_id": nid,
                        "account": account,
                        "state": "pending",
                        "due_at": d,
                        "attempts": 0,
                    }
                    for nid, d in zip(ids, due, strict=True)
                ],
            )


class Daemon:
    """``bulletin daemon`` as a subprocess."""

    def __init__(
        self,
        config: Path,
        log: Path,
        env: dict[str, str] | None = None,
        runner: list[str] | None = None,
    ) -> None:
        self.config = config
        self.log = log
        self.env = env or {}  # added to the daemon's environment
        # what runs ``-m bulletin``: the interpreter, or a profiler such as memray's ``run``
        self.runner = runner or [sys.executable]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in = 0.0

    def start(self, timeout: float = 60.0) -> Daemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
        env["BULLETIN_CONFIG"] = str(self.config)
        env.update(self.env)
        handle = self.log.open("ab")
        offset = self.log.stat().st_size if self.log.exists() else 0
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            [*self.runner, "-m", "bulletin", "daemon", "--log-level", "warning"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.config.parent,
        )
        handle.close()
        ready = self.config.parent / "data" / "bulletin.sock"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_bytes()[offset:].decode(errors="replace"))
            if _socket_ready(ready):
                self.started_in = time.perf_counter() - began
                commands = ready.parent / "command.sock"  # comes last; an older tree has none
                until = time.monotonic() + 5
                while not commands.exists() and time.monotonic() < until:
                    time.sleep(0.01)
                return self
            time.sleep(0.01)
        self.kill()
        raise RuntimeError("daemon did not start")

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=timeout)


def _socket_ready(path: Path) -> bool:
    from bulletin.app.outbox import socket_address

    address = socket_address(path.parent)
    if address.startswith("\0"):
        return path.parent.joinpath("daemon.lock").exists()
    return Path(address).exists()
