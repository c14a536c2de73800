"""Outbound webhooks: events recorded with the change, signed per Standard Webhooks, retried
with backoff, disabled after a day of failures, each delivery sent once."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select
from standardwebhooks.webhooks import Webhook as Verifier
from structlog.testing import capture_logs

from bulletin.app import Actor
from bulletin.app.webhooks import add_webhook
from bulletin.archiver import holds, requests
from bulletin.archiver.archive import Capture
from bulletin.archiver.store.base import object_key
from bulletin.connectors.base import RemoteItem
from bulletin.db import session_scope
from bulletin.errors import Refused
from bulletin.events import Webhook, WebhookDelivery, WebhookEvent, record_event, record_events
from bulletin.models import AuditEvent
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon, running
from bulletin.service.instances import HEARTBEAT_SECONDS
from bulletin.service.maintenance import Maintenance
from bulletin.service.metrics import StatusCollector
from bulletin.webhooks.registry import prune
from bulletin.webhooks.send import Sender, backoff
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke, run
from tests.test_metrics import scrape

ADMIN = Actor("root")
TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."


@dataclass
class Receiver:
    """An HTTP endpoint on a free port: answers with ``statuses`` in turn (then 200) and
    keeps what it received (once it answers). While ``answering`` is clear it holds each
    request unanswered, for :data:`HANG` seconds at most."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    answering: threading.Event = field(default_factory=threading.Event)


HANG = 60.0  # seconds a held request waits: far longer than any read timeout given here


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver in a thread."""
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got = box[0]
            body = self.rfile.read(int(self.headers["content-length"]))
            time.sleep(got.delay)
            got.answering.wait(HANG)
            with got.lock:
                got.received.append((dict(self.headers.items()), body))
                status = got.statuses.pop(0) if got.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/bulletin"))
    box[0].answering.set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    box[0].answering.set()  # a request still held ends now
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    """A URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


def add(inst: Instance, url: str, *events: str, fmt: str = "standard") -> tuple[int, str]:
    added = add_webhook(inst.app, ADMIN, url, events, fmt)
    return added.webhook.id, added.secret


def draft_notice(inst: Instance, author: str = "dana") -> int:
    draft = NoticeDraft(category="road-closure", text=TEXT, targets=("feed",))
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft, author)
    assert notice.id is not None
    return notice.id


def comment_capture() -> Capture:
    item = RemoteItem(
        kind="comment",
        remote_id="c1",
        text="a visitor's words",
        author="visitor",
        posted_at=datetime(2026, 11, 1, tzinfo=UTC),
        parent_id="p1",
        thread_id="p1",
        raw=b'{"id":"c1"}',
    )
    return Capture("feed", "feed", item)


def sender(inst: Instance) -> Sender:
    return Sender(inst.app.engine, inst.clock)


def deliveries(inst: Instance) -> list[WebhookDelivery]:
    with Session(inst.app.engine) as session:
        return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))))


def test_an_approved_notice_is_published_and_the_signed_event_delivered(
    instance: Instance, receiver: Receiver
) -> None:
    """Given a webhook for notice.published, when a notice is approved and published, the
    receiver gets one event whose signature standardwebhooks verifies with the secret."""
    hook, secret = add(instance, receiver.url, "notice.published")
    notice_id = draft_notice(instance)
    approve_notice(instance.app.engine, instance.settings, instance.clock, notice_id, "chief")
    assert sender(instance).run() == []  # approved, not published yet: nothing to send
    daemon = Daemon(instance.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    sent = sender(instance).run()
    assert [(s.result, s.status) for s in sent] == [("delivered", 200)]
    ((headers, body),) = receiver.received
    event = Verifier(secret).verify(body, headers)
    assert event["type"] == "notice.published"
    assert event["data"]["notice"] == notice_id
    assert event["data"]["state"] == "published"
    assert [p["account"] for p in event["data"]["posts"]] == ["feed"]
    assert TEXT not in body.decode()
    assert headers["webhook-id"].startswith("msg_")
    with Session(instance.app.engine) as session:  # only the subscribed type was recorded
        assert [e.type for e in session.exec(select(WebhookEvent))] == ["notice.published"]
    assert sent[0].webhook_id == hook
    assert sender(instance).run() == []  # delivered once


def test_a_failed_post_is_retried_with_backoff_and_the_log_shows_each_status(
    instance: Instance, receiver: Receiver
) -> None:
    """Given a receiver that answers 500 then 200, the delivery is retried after the backoff
    (not before) and the log shows both status codes."""
    receiver.statuses = [500]
    hook, _ = add(instance, receiver.url, "notice.drafted", "notice.approval_needed")
    draft_notice(instance)
    # a failing webhook is left alone for the rest of a run
    assert [(s.result, s.status) for s in sender(instance).run()] == [("retry", 500)]
    assert [(s.result, s.status) for s in sender(instance).run()] == [("delivered", 200)]
    assert sender(instance).run() == []  # the first is not due again yet
    instance.clock.advance(backoff(1))
    assert [(s.result, s.status) for s in sender(instance).run()] == [("delivered", 200)]
    log = json.loads(run(instance, "webhook", "log", str(hook), "--json", clock=instance.clock))
    retried = next(d for d in log["deliveries"] if d["attempts"] == 2)
    assert [a["status"] for a in retried["history"]] == [500, 200]
    assert retried["state"] == "delivered"
    assert "2 attempts: 500, 200" in run(instance, "webhook", "log", clock=instance.clock)
    assert len(receiver.received) == 3
    with Session(instance.app.engine) as session:
        types = sorted(e.type for e in session.exec(select(WebhookEvent)))
    assert types == ["notice.approval_needed", "notice.drafted"]


def test_a_receiver_down_for_a_day_fails_the_delivery_and_disables_the_webhook(
    instance: Instance,
) -> None:
    """Given a receiver that never answers, the delivery is retried for 24 hours, then fails;
    the webhook is disabled, and status --check names it."""
    url = closed_port_url()
    hook, _ = add(instance, url, "hold.placed")
    with session_scope(instance.app.engine) as session:
        record_event(session, "hold.placed", {"hold": 1}, at=instance.clock.now())
    start = instance.clock.now()
    results = []
    for _ in range(100):
        results += [s.result for s in sender(instance).run()]
        (row,) = deliveries(instance)
        if row.next_attempt_at is None:
            break
        instance.clock.set(row.next_attempt_at)
    assert results[-1] == "failed" and set(results[:-1]) == {"retry"}
    assert row.failed_at is not None and row.failed_at - start >= timedelta(hours=24)
    assert row.last_status is None and row.last_error == "connection failed"
    listed = json.loads(run(instance, "webhook", "list", "--json", clock=instance.clock))
    (shown,) = listed["webhooks"]
    assert shown["enabled"] is False and shown["disabled_at"] is not None
    checked = invoke(instance, "status", "--check", clock=instance.clock)
    assert checked.exit_code == 1
    assert f"CHECK: webhook {hook} (http://127.0.0.1:" in checked.output
    assert "disabled after failing since" in checked.output
    metrics = scrape(StatusCollector(instance.app, HEARTBEAT_SECONDS))
    assert metrics[("bulletin_webhooks_disabled", ())] == 1
    with session_scope(instance.app.engine) as session:  # a disabled webhook gets nothing new
        assert record_event(session, "hold.placed", {"hold": 2}, at=instance.clock.now()) is None
    run(instance, "webhook", "enable", str(hook), clock=instance.clock)
    assert "CHECK: webhook" not in invoke(instance, "status", "--check").output


def test_an_event_of_a_rolled_back_transaction_is_never_sent(
    instance: Instance, receiver: Receiver
) -> None:
    """An event recorded in a transaction that rolls back leaves nothing to send; one that
    commits is sent."""
    add(instance, receiver.url, "hold.placed")
    now = instance.clock.now()

    def failing_change() -> None:
        with session_scope(instance.app.engine) as session:
            assert record_event(session, "hold.placed", {"hold": 1}, at=now) is not None
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert sender(instance).run() == []
    assert deliveries(instance) == [] and receiver.received == []
    with session_scope(instance.app.engine) as session:
        record_event(session, "hold.placed", {"hold": 2}, at=now)
    assert [s.result for s in sender(instance).run()] == ["delivered"]
    assert json.loads(receiver.received[0][1])["data"] == {"hold": 2}


def test_two_senders_never_send_one_delivery_twice(instance: Instance, receiver: Receiver) -> None:
    """Two senders working the same outbox at once post each delivery exactly once."""
    add(instance, receiver.url, "comment.captured")
    receiver.delay = 0.01
    with session_scope(instance.app.engine) as session:
        payloads = [{"record": n} for n in range(30)]
        record_events(session, "comment.captured", payloads, at=instance.clock.now())
    done: list[list[Any]] = [[], []]
    go = threading.Barrier(2)

    def work(i: int) -> None:
        go.wait()
        done[i] = sender(instance).run()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [h["webhook-id"] for h, _ in receiver.received]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert sorted(json.loads(b)["data"]["record"] for _, b in receiver.received) == list(range(30))
    assert sum(len(d) for d in done) == 30
    assert all(d.delivered_at is not None and d.attempts == 1 for d in deliveries(instance))


def test_secrets_stay_out_of_logs_lists_and_the_audit_trail(
    instance: Instance, receiver: Receiver
) -> None:
    """The secret is printed once, by add; a chat URL's credential path is never listed,
    logged or shown in the webhook's repr."""
    url = receiver.url + "/T000/B000/XXXXSECRETPATH"
    added = run(instance, "webhook", "add", url, "--event", "hold.placed", "--format", "chat")
    secret = next(w for w in added.split() if w.startswith("whsec_"))
    assert "XXXXSECRETPATH" not in added
    receiver.statuses = [500]
    with session_scope(instance.app.engine) as session:
        record_event(session, "hold.placed", {"hold": 7}, at=instance.clock.now())
    with capture_logs() as logged:
        sender(instance).run()
        instance.clock.advance(timedelta(minutes=1))
        sender(instance).run()
    outputs = [
        str(logged),
        run(instance, "webhook", "list"),
        run(instance, "webhook", "list", "--json"),
        run(instance, "webhook", "log"),
        run(instance, "webhook", "log", "--json"),
    ]
    with Session(instance.app.engine) as session:
        outputs += [str(a.detail) for a in session.exec(select(AuditEvent))]
        outputs += [repr(w) for w in session.exec(select(Webhook))]  # what a traceback shows
    for text in outputs:
        assert secret not in text and secret[6:] not in text
        assert "XXXXSECRETPATH" not in text
    assert any(e["event"] == "webhook retry" for e in logged)
    headers, body = receiver.received[-1]
    assert Verifier(secret).verify(body, headers) == {"text": "Bulletin hold.placed: hold 7"}


def test_webhook_test_sends_a_ping_now(instance: Instance, receiver: Receiver) -> None:
    """``webhook test ID`` posts a signed ping at once and shows the answer."""
    out = json.loads(
        run(
            instance,
            "webhook",
            "add",
            receiver.url,
            "--event",
            "verify.problem",
            "--json",
            stdout=True,
        )
    )
    tested = json.loads(run(instance, "webhook", "test", str(out["id"]), "--json", stdout=True))
    assert tested["event"] == "ping" and tested["state"] == "delivered"
    assert tested["last_status"] == 200
    ((headers, body),) = receiver.received
    assert Verifier(out["secret"]).verify(body, headers)["type"] == "ping"


def test_only_http_urls_and_known_events_are_taken(instance: Instance) -> None:
    """Another URL scheme is refused in one line; so is an unknown event."""
    bad = invoke(instance, "webhook", "add", "ftp://example.org/x", "--event", "hold.placed")
    assert bad.exit_code == 2
    (line,) = [x for x in bad.output.splitlines() if "error" in x]
    assert "http:// or https://" in line
    unknown = invoke(instance, "webhook", "add", "https://example.org", "--event", "nope")
    assert unknown.exit_code == 2
    assert run(instance, "webhook", "list") == "no webhooks\n"


def test_only_an_admin_manages_webhooks(tmp_path: Path, db_url: str) -> None:
    """With [users], a dispatcher may not add or list webhooks."""
    inst = make_instance(
        tmp_path,
        db_url,
        '[users.dana]\nroles = ["dispatcher"]\nos_user = "dana"\n[users.root]\nroles = ["admin"]\n',
    )
    try:
        with pytest.raises(Refused, match="admin"):
            add_webhook(inst.app, Actor("dana"), "https://example.org/h", ["hold.placed"])
        assert add_webhook(inst.app, ADMIN, "https://example.org/h", ["hold.placed"]).secret
        out = invoke(inst, "webhook", "list", login="dana")
        assert out.exit_code == 1 and "does not hold the admin role" in out.output
    finally:
        inst.app.close()


def test_holds_and_comments_record_their_events(instance: Instance) -> None:
    """A hold placed and a comment captured are events, the comment without its text."""
    add(instance, "https://example.org/h", "hold.placed", "comment.captured")
    instance.app.archiver.archive([comment_capture()])
    holds.create_hold(
        instance.app.engine,
        instance.app.store,
        name="Smith v. City",
        query=holds.parse_query("account:feed"),
        reason="litigation",
        actor="clerk",
        now=instance.clock.now(),
        time_zone="UTC",
    )
    with Session(instance.app.engine) as session:
        events = {e.type: e.payload for e in session.exec(select(WebhookEvent))}
    assert events["comment.captured"]["thread_id"] == "p1"
    assert events["comment.captured"]["remote_id"] == "c1"
    assert "a visitor's words" not in json.dumps(events)
    assert events["hold.placed"]["by"] == "clerk"


def test_a_stopping_daemon_sends_nothing_more(instance: Instance, receiver: Receiver) -> None:
    """A sender told to stop posts nothing; a receiver that does not answer costs the sender
    its read timeout, never the receiver's time: it gives up while the request is still held."""
    add(instance, receiver.url, "hold.placed")
    with session_scope(instance.app.engine) as session:
        record_event(session, "hold.placed", {"hold": 1}, at=instance.clock.now())
    stop = threading.Event()
    stop.set()
    assert Sender(instance.app.engine, instance.clock, stop=stop).run() == []
    assert receiver.received == []
    receiver.answering.clear()  # held for HANG seconds: waiting for it would be answered 200
    (sent,) = Sender(instance.app.engine, instance.clock, timeout=(10, 0.5)).run()
    assert (sent.result, sent.error) == ("retry", "read timeout")
    assert receiver.received == []  # the receiver had not answered when the sender gave up


def test_the_daemon_announces_requests_due_soon_and_verify_problems(instance: Instance) -> None:
    """The morning deadline warning and a nightly verify that finds a problem are events;
    the request's requester and description are not in them."""
    add(instance, "https://example.org/h", "request.due_soon", "verify.problem")
    received = (instance.clock.now() - timedelta(days=30)).date()
    requests.open_request(
        instance.app.engine,
        instance.app.store,
        instance.settings,
        requester="Lexington Minuteman",
        received=received,
        description="every comment on the parade notice",
        query=holds.parse_query("account:feed"),
        litigation=False,
        actor="clerk",
        now=instance.clock.now(),
        allow_empty=True,
    )
    (record,) = instance.app.archiver.archive([comment_capture()])
    instance.app.store.path_of(object_key(record.object_sha256)).unlink()  # type: ignore[attr-defined]
    work = Maintenance(instance.app)
    assert work.warn_deadlines(announce=False)  # at start: logged only
    with Session(instance.app.engine) as session:
        assert session.exec(select(WebhookEvent)).all() == []
    assert work.warn_deadlines()
    work.nightly()
    with Session(instance.app.engine) as session:
        events = {e.type: e.payload for e in session.exec(select(WebhookEvent))}
    assert events["request.due_soon"]["days_left"] < 0
    assert "Minuteman" not in json.dumps(events) and "parade" not in json.dumps(events)
    assert events["verify.problem"]["problems"] >= 1
    assert "object-missing" in events["verify.problem"]["kinds"]


def test_the_log_is_pruned_after_30_days_and_goes_with_its_webhook(
    instance: Instance, receiver: Receiver
) -> None:
    """Finished deliveries are kept 30 days; removing a webhook removes its log."""
    hook, _ = add(instance, receiver.url, "hold.placed")
    with session_scope(instance.app.engine) as session:
        record_events(session, "hold.placed", [{"hold": 1}, {"hold": 2}], at=instance.clock.now())
    assert [s.result for s in sender(instance).run(limit=1)] == ["delivered"]
    assert prune(instance.app.engine, instance.clock.now()) == 0
    instance.clock.advance(timedelta(days=31))
    assert prune(instance.app.engine, instance.clock.now()) == 1
    assert len(deliveries(instance)) == 1  # the one not sent yet stays
    run(instance, "webhook", "remove", str(hook), clock=instance.clock)
    assert deliveries(instance) == []
    with Session(instance.app.engine) as session:
        assert session.exec(select(WebhookEvent)).all() == []
    assert invoke(instance, "webhook", "log", str(hook)).exit_code == 1


def test_the_running_daemon_sends_webhooks_and_stops_promptly(
    instance: Instance, receiver: Receiver
) -> None:
    """Given a running daemon, an approved notice is published and its notice.published
    event posted by the daemon's webhooks job; stopping does not wait for a slow receiver's
    retries."""
    _, secret = add(instance, receiver.url, "notice.published")
    with running(instance.app):
        notice_id = draft_notice(instance)
        approve_notice(instance.app.engine, instance.settings, instance.clock, notice_id, "chief")
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.2)
        ((headers, body),) = receiver.received
        assert Verifier(secret).verify(body, headers)["data"]["notice"] == notice_id
        receiver.statuses = [500] * 10
        with session_scope(instance.app.engine) as session:
            record_events(session, "notice.published", [{"n": n} for n in range(5)],
                          at=instance.clock.now())  # fmt: skip
        began = time.monotonic()
    assert time.monotonic() - began < 10
