"""X replies in near real time: the filtered stream with one ``conversation_id:`` rule per
young thread, over HTTP against the sandbox, with recent search filling the gaps of a
disconnect or a refused connection. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bulletin.archiver.capture.threads import register_threads
from bulletin.archiver.capture.xstream import ReplyStream
from bulletin.connectors.base import OutgoingPost
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.x import XConnector
from bulletin.db import session_scope
from bulletin.models import Record
from bulletin.publisher.notices import sync_account
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke
from tests.plugins.sandbox import Control, sandbox_accounts

STREAMED = """
bearer_token_env = "SANDBOX_X_BEARER_TOKEN"
stream = true
"""


def wait_for(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@dataclass
class Streaming:
    """A Bulletin whose X account follows its young threads on the sandbox's stream."""

    inst: Instance
    control: Control
    connector: XConnector
    listener: ReplyStream
    post_id: str

    def reply(self, text: str, count: int = 1) -> list[str]:
        body = {"tweet_id": self.post_id, "text": text, "count": count}
        ids: list[str] = self.control.post("x/replies", body)["ids"]
        return ids

    def versions(self) -> dict[str, int]:
        """remote id -> how many versions of each comment are archived."""
        with Session(self.inst.app.engine) as session:
            rows = session.exec(select(Record.remote_id).where(col(Record.kind) == "comment")).all()
        out: dict[str, int] = {}
        for rid in rows:
            out[rid] = out.get(rid, 0) + 1
        return out


@pytest.fixture
def streaming(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Streaming]:
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url, x_extra=STREAMED))
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps posts with the real time
    control = Control(sandbox.url)
    control.post("settings", {"x_stream_keepalive": 0.2})
    with session_scope(inst.app.engine) as session:
        sync_account(session, inst.app.settings, "x")
    connector = inst.app.connector("x")
    assert isinstance(connector, XConnector)
    post = connector.publish(OutgoingPost("s1", "Missing child: have you seen Ana?"))
    listener = ReplyStream(
        inst.app.archiver, connector, "x", inst.clock, stall_seconds=5, rules_every=0.5
    )
    # the post is a thread to follow (an emergency notice's, as if published from one)
    register_threads(
        inst.app.engine, "x", inst.clock, [(post.remote_id, inst.clock.now(), "emergency")]
    )
    yield Streaming(inst, control, connector, listener, post.remote_id)
    inst.app.close()


@pytest.fixture
def running(streaming: Streaming) -> Iterator[Streaming]:
    thread = threading.Thread(target=streaming.listener.run, daemon=True)
    thread.start()
    wait_for(lambda: streaming.listener.stats.catch_ups >= 1)  # connected, gap listed
    yield streaming
    streaming.listener.stop.set()
    thread.join(15)
    assert not thread.is_alive()


def test_each_young_thread_gets_one_rule_and_old_rules_go(streaming: Streaming) -> None:
    """Given a thread to follow and a rule of another tool, when the rules are synced twice,
    then the thread has one ``conversation_id:`` rule, the other tool's rule stays, and a
    thread no longer followed loses its rule."""
    streaming.connector.change_stream_rules(add=[{"value": "from:someone", "tag": "other"}])
    assert streaming.listener.sync_rules() == {streaming.post_id}
    assert streaming.listener.sync_rules() == set()
    rules = streaming.connector.stream_rules()
    assert sorted(r["value"] for r in rules) == [
        f"conversation_id:{streaming.post_id}",
        "from:someone",
    ]
    streaming.inst.clock.advance(timedelta(days=3))  # the thread is no longer young
    streaming.listener.sync_rules()
    assert [r["value"] for r in streaming.connector.stream_rules()] == ["from:someone"]


def test_a_reply_is_captured_from_the_stream(running: Streaming) -> None:
    """Given the listener connected, when a visitor replies, then the reply is archived
    from the stream with no sweep of the thread."""
    [reply] = running.reply("I saw her near the library")
    wait_for(lambda: running.listener.stats.archived == 1)
    assert running.versions() == {reply: 1}
    assert running.listener.stats.catch_ups == 1  # the one at connection, nothing since


def test_replies_posted_while_disconnected_are_backfilled_once_each(running: Streaming) -> None:
    """Given the stream cut while replies keep coming (the stream never delivers them), when
    the listener reconnects, then recent search lists the gap: every reply archived, each
    exactly once, those the stream did deliver included."""
    before = running.reply("before the cut", count=3)
    wait_for(lambda: all(running.versions().get(r) == 1 for r in before))
    connections = running.listener.stats.connections
    running.control.fault("delay", "/2/tweets/search/stream$", seconds=1.0)  # a slow reconnect
    assert running.control.post("x/stream/disconnect")["disconnected"] == 1
    during = running.reply("during the cut", count=5)
    wait_for(lambda: running.listener.stats.connections > connections)
    after = running.reply("after the cut", count=2)
    wait_for(lambda: all(running.versions().get(r) for r in before + during + after))
    time.sleep(1)  # another catch-up, if any, would add nothing
    versions = running.versions()
    assert {r: versions[r] for r in before + during + after} == {
        r: 1 for r in before + during + after
    }


def test_a_refused_connection_is_retried_and_the_gap_listed(streaming: Streaming) -> None:
    """Given two connections refused with 429, when the listener starts, then it waits,
    connects, and replies posted before it connected are listed by recent search."""
    streaming.control.fault("rate_limit", "/2/tweets/search/stream$", count=2, seconds=1)
    early = streaming.reply("posted before the stream was up", count=2)
    thread = threading.Thread(target=streaming.listener.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: streaming.listener.stats.connections >= 1, seconds=30)
        assert streaming.listener.stats.errors >= 2
        wait_for(lambda: all(streaming.versions().get(r) == 1 for r in early))
    finally:
        streaming.listener.stop.set()
        thread.join(15)


def test_the_daemon_runs_the_listener_of_a_streamed_account(streaming: Streaming) -> None:
    """Given the daemon running with a streamed X account, when a visitor replies, then the
    reply is archived (by the stream or its first catch-up) and the daemon stops cleanly."""
    from bulletin.service.daemon import running

    with running(streaming.inst.app) as daemon:
        assert [t.name for t in daemon._streams.threads] == ["x-stream-x"]
        wait_for(lambda: bool(streaming.connector.stream_rules()))
        [reply] = streaming.reply("seen at the bus stop")
        wait_for(lambda: streaming.versions().get(reply) == 1, seconds=30)
    assert daemon._streams.threads == []


def test_posts_matched_by_other_rules_of_the_app_are_not_archived(running: Streaming) -> None:
    """Given another tool's rule on the app's one stream matching every reply, when a
    visitor replies in a thread this account does not follow and then in one it follows,
    then only the followed thread's reply is archived."""
    running.connector.change_stream_rules(add=[{"value": "is:reply", "tag": "other-tool"}])
    other = running.connector.publish(OutgoingPost("s2", "Not followed by capture"))
    stray: list[str] = running.control.post(
        "x/replies", {"tweet_id": other.remote_id, "text": "elsewhere"}
    )["ids"]
    [ours] = running.reply("in the followed thread")
    wait_for(lambda: running.listener.stats.archived == 1)
    assert running.versions() == {ours: 1} and stray[0] not in running.versions()


def test_the_capture_lag_counts_stream_and_catch_up_captures_apart(streaming: Streaming) -> None:
    """Given a reply posted before the listener connects (listed by the catch-up sweep) and
    one the stream delivers, then the capture lag counts one under ``sweep`` and one under
    ``stream``, in :func:`capture_lags`, the metrics scrape and ``bulletin archive status``."""
    from bulletin.archiver.capture.lag import capture_lags
    from bulletin.service.instances import HEARTBEAT_SECONDS
    from bulletin.service.metrics import StatusCollector
    from tests.test_metrics import scrape

    [early] = streaming.reply("posted before the stream was up")
    thread = threading.Thread(target=streaming.listener.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: streaming.versions().get(early) == 1)
        [live] = streaming.reply("seen at the bus stop")
        wait_for(lambda: streaming.listener.stats.archived == 1)
        assert streaming.versions() == {early: 1, live: 1}
    finally:
        streaming.listener.stop.set()
        thread.join(15)
    lags = capture_lags(streaming.inst.app.engine)
    assert sorted(lags) == [("x", "stream"), ("x", "sweep")]
    assert [len(v) for v in lags.values()] == [1, 1]
    got = scrape(StatusCollector(streaming.inst.app, HEARTBEAT_SECONDS))
    for path in ("stream", "sweep"):
        labels = (("account", "x"), ("path", path))
        assert got[("bulletin_capture_lag_seconds_count", labels)] == 1
    shown = invoke(streaming.inst, "archive", "status")
    assert shown.exit_code == 0, shown.output
    assert re.search(r"\n  x +stream +1, [\d.]+ s, [\d.]+ s\n", shown.output)
    assert re.search(r"\n  x +sweep +1, [\d.]+ s, [\d.]+ s\n", shown.output)


def test_upgrade_from_0026_adds_stream_captures(db_url: str) -> None:
    """A database at 0026 upgrades to the newest revision: ``stream_captures`` exists and
    names records; a record is marked once."""
    from alembic import command
    from sqlalchemy.exc import IntegrityError

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine, migrate

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0026")
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO stream_captures (record_id) VALUES (7)")
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO stream_captures (record_id) VALUES (7)")
    finally:
        engine.dispose()


def test_stream_marks_are_pruned_once_the_capture_lag_no_longer_reads_them(
    streaming: Streaming,
) -> None:
    """Given a reply the stream captured, the daily capture-log job keeps its mark while the
    record is among the newest the capture lag reads, and drops the mark (never the record)
    once newer records leave it behind."""
    from bulletin.archiver import ledger
    from bulletin.archiver.capture.lag import capture_lags, prune
    from bulletin.models import StreamCapture
    from bulletin.service.daemon import Daemon
    from bulletin.service.jobs import CAPTURE_LOG_PRUNE_JOB, table

    thread = threading.Thread(target=streaming.listener.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: streaming.listener.stats.catch_ups >= 1)
        [live] = streaming.reply("seen near the library")
        wait_for(lambda: streaming.listener.stats.archived == 1)
    finally:
        streaming.listener.stop.set()
        thread.join(15)
    engine = streaming.inst.app.engine
    with Session(engine) as session:
        [record] = session.exec(select(Record).where(col(Record.remote_id) == live)).all()
        head = ledger.head(session)
    assert head is not None and record.ledger_seq is not None
    behind = head.seq - record.ledger_seq  # newer records than this one

    def marks() -> int:
        with Session(engine) as session:
            return len(session.exec(select(StreamCapture)).all())

    job = {j.id: j for j in table(Daemon(streaming.inst.app))}[CAPTURE_LOG_PRUNE_JOB]
    assert job.run() == 0 and marks() == 1  # far inside the default window
    assert prune(engine, recent=behind + 1) == 0 and marks() == 1
    assert capture_lags(engine, recent=behind + 1)[("x", "stream")] != []
    assert prune(engine, recent=behind) == 1 and marks() == 0
    assert streaming.versions() == {live: 1}  # the record stays
