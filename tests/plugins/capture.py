"""A Bulletin with sandbox X and Facebook accounts, and helpers to drive capture."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bulletin.archiver.capture.sweep import SweepResult, sweep
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, DEFAULT_X_ACCOUNT, SandboxServer
from bulletin.models import CaptureThread, Record
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts


@pytest.fixture
def site(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with sandbox X and Facebook accounts, fast retries, on each database."""
    inst = make_instance(
        tmp_path, db_url, sandbox_accounts(sandbox.url, x_extra="monthly_budget = 100.0")
    )
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps comments with the wall clock
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    Daemon(inst.app).prepare()  # accounts mirrored into the database
    inst.app.close()
    yield inst
    inst.app.close()


def fb_post(sandbox: SandboxServer, text: str = "Road closed: Main St") -> str:
    post = sandbox.state.add_fb_post(DEFAULT_FB_PAGE["id"], text)
    sandbox.state.save()
    return str(post["id"])


def x_post(sandbox: SandboxServer, text: str = "Road closed: Main St") -> str:
    tweet = sandbox.state.add_tweet(DEFAULT_X_ACCOUNT["id"], text)
    sandbox.state.save()
    return str(tweet["id"])


def comments(control: Control, post_id: str, count: int = 1, **extra: Any) -> list[str]:
    ids: list[str] = control.post(
        "fb/comments", {"post_id": post_id, "count": count, "message": "comment", **extra}
    )["ids"]
    return ids


def replies(control: Control, tweet_id: str, count: int = 1, **extra: Any) -> list[str]:
    ids: list[str] = control.post(
        "x/replies", {"tweet_id": tweet_id, "count": count, "text": "reply", **extra}
    )["ids"]
    return ids


def run(inst: Instance, account: str, **options: Any) -> SweepResult:
    app = inst.app
    return sweep(app.archiver, app.connector(account), account, inst.clock, **options)


def records(inst: Instance, **where: str) -> list[Record]:
    query = select(Record).order_by(col(Record.id))
    for name, value in where.items():
        query = query.where(getattr(Record, name) == value)
    with Session(inst.app.engine) as session:
        return list(session.exec(query).all())


def thread_row(inst: Instance, account: str, thread_id: str) -> CaptureThread:
    with Session(inst.app.engine) as session:
        row = session.get(CaptureThread, (account, thread_id))
    assert row is not None
    return row


def exactly_once(inst: Instance, expected: list[str]) -> None:
    found = [r.remote_id for r in records(inst, kind="comment")]
    assert sorted(found) == sorted(expected), "a comment is missing or archived twice"
