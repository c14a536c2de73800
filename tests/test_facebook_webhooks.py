"""Facebook Page webhooks: the handshake, signed deliveries stored before the 200, and the
capture job archiving what they report, over HTTP with the real web app on a free port and
the sandbox delivering signed webhooks for the comments changed through it. SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlmodel import Session, col, select

from bulletin.app import Actor, App
from bulletin.app.facebook_webhooks import (
    capture_webhook_events,
    rejected_counts,
    subscribe_page,
)
from bulletin.archiver.capture.webhooks import parse, pending_count
from bulletin.archiver.store.base import object_key
from bulletin.connectors.base import OutgoingPost
from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import FacebookWebhookChange, FacebookWebhookEvent, Record
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke
from tests.plugins.daemon_process import DaemonProcess
from tests.plugins.sandbox import Control, sandbox_accounts
from tests.test_web import serving

APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "test-verify-token"
ENV = {"FB_APP_SECRET": APP_SECRET, "FB_VERIFY_TOKEN": VERIFY_TOKEN}
FACEBOOK = """
[facebook]
app_secret_env = "FB_APP_SECRET"
verify_token_env = "FB_VERIFY_TOKEN"
"""
ADA = Actor("ada", "os-user", "console-1")


@dataclass
class Hooked:
    """A Bulletin serving its web door on a free port, a sandbox delivering webhooks to it,
    and a Page post to comment on."""

    inst: Instance
    app: App
    url: str
    control: Control
    post_id: str

    def comment(self, message: str, author: str = "Pat Visitor") -> str:
        body = {"post_id": self.post_id, "message": message, "author": author}
        ids: list[str] = self.control.post("fb/comments", body)["ids"]
        return ids[0]

    def versions(self, remote_id: str) -> list[Record]:
        with Session(self.app.engine) as session:
            return list(
                session.exec(
                    select(Record)
                    .where(col(Record.remote_id) == remote_id)
                    .order_by(col(Record.version))
                ).all()
            )

    def evidence(self) -> list[Record]:
        with Session(self.app.engine) as session:
            return list(session.exec(select(Record).where(col(Record.kind) == "webhook")).all())

    def received(self) -> int:
        with Session(self.app.engine) as session:
            return len(session.exec(select(FacebookWebhookEvent)).all())


def wait_for(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def with_secrets(inst: Instance) -> App:
    """``inst``'s app, its environment holding the webhook secrets."""
    inst.app.close()
    inst.app = App(inst.settings, environ=ENV, clock=inst.clock)
    return inst.app


@pytest.fixture
def hooked(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Hooked]:
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url) + FACEBOOK)
    app = with_secrets(inst)
    control = Control(sandbox.url)
    with serving(app) as url:
        control.post(
            "fb/webhooks",
            {"callback_url": f"{url}/webhooks/facebook", "app_secret": APP_SECRET},
        )
        subscribe_page(app, ADA, "facebook")
        post = app.connector("facebook").publish(OutgoingPost("k1", "Main St closed today"))
        yield Hooked(inst, app, url, control, post.remote_id)
    app.close()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- the door --------------------------------------------------------------------------------


def test_handshake_echoes_the_challenge_only_with_the_verify_token(hooked: Hooked) -> None:
    """Given the configured verify token, the challenge comes back; any other token, a
    missing one or another mode is refused with 403 and counted."""
    before = rejected_counts().get("bad verify token", 0)
    with httpx.Client(timeout=30, base_url=hooked.url) as web:
        query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
        ok = web.get("/webhooks/facebook", params={**query, "hub.verify_token": VERIFY_TOKEN})
        assert ok.status_code == 200 and ok.text == "1158201444"
        bad = web.get("/webhooks/facebook", params={**query, "hub.verify_token": "guess"})
        assert bad.status_code == 403 and "1158201444" not in bad.text
        none = web.get("/webhooks/facebook", params=query)
        assert none.status_code == 403
        mode = {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN}
        assert web.get("/webhooks/facebook", params={**query, **mode}).status_code == 403
    assert rejected_counts()["bad verify token"] == before + 2


def test_a_delivery_without_a_valid_signature_is_refused_and_not_stored(hooked: Hooked) -> None:
    """Missing, malformed, wrong-secret and tampered signatures get 403 and store nothing;
    the same body correctly signed gets 200 once it is stored."""
    body = json.dumps({"object": "page", "entry": []}).encode()
    before = rejected_counts()
    with httpx.Client(timeout=30, base_url=hooked.url) as web:

        def post(headers: dict[str, str], data: bytes = body) -> int:
            return web.post("/webhooks/facebook", content=data, headers=headers).status_code

        assert post({}) == 403
        assert post({"x-hub-signature-256": "md5=abc"}) == 403
        assert post({"x-hub-signature-256": sign(body, "another-secret")}) == 403
        assert post({"x-hub-signature-256": sign(body)}, body + b" ") == 403
        assert hooked.received() == 0
        assert post({"x-hub-signature-256": sign(body)}) == 200
        assert hooked.received() == 1
        assert web.get("/", follow_redirects=False).status_code == 303  # pages still need sign-in
    after = rejected_counts()
    assert after["missing signature"] == before.get("missing signature", 0) + 1
    assert after["bad signature"] == before.get("bad signature", 0) + 3


def test_the_secrets_never_reach_an_answer_or_the_stored_event(hooked: Hooked) -> None:
    with httpx.Client(timeout=30, base_url=hooked.url) as web:
        answer = web.post("/webhooks/facebook", content=b"{}", headers={"x-hub-signature-256": "x"})
    assert APP_SECRET not in answer.text and VERIFY_TOKEN not in answer.text
    state = hooked.control.get("fb/webhooks")
    assert state["app_secret"] == "***"


# -- capture -----------------------------------------------------------------------------


def test_a_comment_added_is_captured_from_its_webhook(hooked: Hooked) -> None:
    """Given a subscribed Page, when a visitor comments, the sandbox's signed webhook is
    stored and the job archives the comment, read fresh, and the event as evidence."""
    comment_id = hooked.comment("Is the detour signed?")
    wait_for(lambda: hooked.received() == 1)
    assert pending_count(hooked.app.engine) == 1
    result = capture_webhook_events(hooked.app)
    assert result.changes == 1 and result.deferred == 0
    [version] = hooked.versions(comment_id)
    assert (version.kind, version.state, version.text) == (
        "comment",
        "visible",
        "Is the detour signed?",
    )
    assert version.author == "Pat Visitor" and version.thread_id == hooked.post_id
    [evidence] = hooked.evidence()
    snapshot = json.loads(hooked.app.store.get(object_key(evidence.object_sha256)))
    assert snapshot["item"]["extra"]["x_hub_signature_256"].startswith("sha256=")
    raw = hooked.app.store.get(object_key(evidence.raw_sha256 or ""))
    assert [c.remote_id for c in parse(raw)] == [comment_id]  # the body, byte for byte
    assert evidence.series == version.series == "visitor-comments"
    assert pending_count(hooked.app.engine) == 0


def test_a_comment_deleted_before_it_is_read_keeps_its_payload(hooked: Hooked) -> None:
    """Given a comment deleted within seconds, before the job ran, then the webhook's own
    payload is its first version, followed by a deleted version."""
    comment_id = hooked.comment("you are all idiots")
    wait_for(lambda: hooked.received() == 1)
    hooked.control.session.delete(f"{hooked.control.url}/_sandbox/fb/comments/{comment_id}")
    wait_for(lambda: hooked.received() == 2)
    capture_webhook_events(hooked.app)
    versions = hooked.versions(comment_id)
    assert [(v.version, v.state, v.text) for v in versions] == [
        (1, "visible", "you are all idiots"),
        (2, "deleted", "you are all idiots"),
    ]
    assert versions[0].author == "Pat Visitor" and versions[0].posted_at is not None
    assert versions[1].change == "deleted"
    assert len(hooked.evidence()) == 2


def test_a_hidden_comment_gets_a_hidden_version(hooked: Hooked) -> None:
    comment_id = hooked.comment("spam spam spam")
    wait_for(lambda: hooked.received() == 1)
    capture_webhook_events(hooked.app)
    hooked.app.connector("facebook").hide_comment(comment_id)
    wait_for(lambda: hooked.received() == 2)
    capture_webhook_events(hooked.app)
    assert [(v.state, v.change) for v in hooked.versions(comment_id)] == [
        ("visible", "new"),
        ("hidden", "hidden"),
    ]


def test_a_removal_archives_a_deleted_version(hooked: Hooked) -> None:
    comment_id = hooked.comment("a comment that will go")
    wait_for(lambda: hooked.received() == 1)
    capture_webhook_events(hooked.app)
    hooked.app.connector("facebook").delete_comment(comment_id)
    wait_for(lambda: hooked.received() == 2)
    capture_webhook_events(hooked.app)
    assert [v.state for v in hooked.versions(comment_id)] == ["visible", "deleted"]


def test_duplicate_and_reordered_deliveries_add_no_version(hooked: Hooked) -> None:
    """Given every delivery sent twice and four held then sent newest first, the comment
    still has one version (as it is now) and each distinct body one evidence record; a
    second run changes nothing."""
    hooked.control.post("fb/webhooks", {"duplicates": 1, "reorder": 4})
    comment_id = hooked.comment("Whem does it reopen?")
    edit = {"message": "When does it reopen?"}
    hooked.control.session.patch(
        f"{hooked.control.url}/_sandbox/fb/comments/{comment_id}", json=edit
    ).raise_for_status()
    wait_for(lambda: hooked.received() == 4)
    result = capture_webhook_events(hooked.app)
    assert (result.changes, result.duplicates) == (2, 2)
    [version] = hooked.versions(comment_id)
    assert version.text == "When does it reopen?"
    assert len(hooked.evidence()) == 2
    with httpx.Client(
        timeout=30, base_url=hooked.url
    ) as web:  # Meta delivering the same body again
        with Session(hooked.app.engine) as session:
            event = session.exec(select(FacebookWebhookEvent)).first()
        assert event is not None
        headers = {"x-hub-signature-256": event.signature}
        assert (
            web.post("/webhooks/facebook", content=event.body, headers=headers).status_code == 200
        )
    rerun = capture_webhook_events(hooked.app)
    assert (rerun.events, rerun.changes, rerun.archived) == (1, 0, 0)
    assert len(hooked.versions(comment_id)) == 1 and len(hooked.evidence()) == 2


def test_a_delivery_received_before_a_crash_is_captured_after_restart(hooked: Hooked) -> None:
    """Given a delivery answered 200 and then the process gone before its job ran, when a new
    process starts on the same database, then the job captures the comment."""
    comment_id = hooked.comment("captured after a crash")
    wait_for(lambda: hooked.received() == 1)
    hooked.app.close()  # nothing ran: the only trace is the committed event
    restarted = App(hooked.inst.settings, environ=ENV, clock=hooked.inst.clock)
    try:
        assert pending_count(restarted.engine) == 1
        result = capture_webhook_events(restarted)
        assert result.changes == 1
        with Session(restarted.engine) as session:
            [record] = session.exec(select(Record).where(col(Record.remote_id) == comment_id))
        assert record.text == "captured after a crash"
    finally:
        restarted.close()


def test_a_platform_failure_leaves_the_delivery_pending(hooked: Hooked) -> None:
    """Given Graph failing while the job reads the comment, the delivery stays pending and
    the next run captures it."""
    comment_id = hooked.comment("read me later")
    wait_for(lambda: hooked.received() == 1)
    hooked.control.fault("error", f"/{comment_id}$", status=500, count=20)
    first = capture_webhook_events(hooked.app)
    assert first.deferred == 1 and hooked.versions(comment_id) == []
    hooked.control.session.delete(f"{hooked.control.url}/_sandbox/faults")
    second = capture_webhook_events(hooked.app)
    assert second.changes == 1 and len(hooked.versions(comment_id)) == 1


# -- the commands ----------------------------------------------------------------------------


def test_account_subscribe_and_check_through_the_command_line(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    inst = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", sandbox_accounts(sandbox.url)
    )
    try:
        before = invoke(inst, "account", "check", "facebook")
        assert before.exit_code == 1, before.output
        assert "NO  webhooks (subscribed_apps)" in before.output
        done = invoke(inst, "account", "subscribe", "facebook", "--json")
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout.splitlines()[-1]) == {
            "account": "facebook",
            "subscribed": True,
            "fields": ["feed"],
        }
        after = invoke(inst, "account", "check", "facebook")
        assert after.exit_code == 0, after.output
        assert "ok  webhooks (subscribed_apps)" in after.output
    finally:
        inst.app.close()


def test_parse_keeps_comment_and_post_changes_only() -> None:
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "1",
                    "time": 10,
                    "changes": [
                        {"field": "feed", "value": {"item": "reaction", "verb": "add"}},
                        {
                            "field": "feed",
                            "value": {"item": "comment", "verb": "edit", "comment_id": "2_3",
                                      "post_id": "1_2", "created_time": 9},
                        },
                        {"field": "feed", "value": {"item": "status", "verb": "add",
                                                    "post_id": "1_2"}},
                    ],
                }
            ],
        }
    ).encode()  # fmt: skip
    changes = parse(body, 7)
    assert [(c.item, c.verb, c.remote_id, c.event_time) for c in changes] == [
        ("comment", "edited", "2_3", "10/9"),
        ("status", "add", "1_2", "10/0"),
    ]
    with pytest.raises(ValueError, match="not a Page notification"):
        parse(b'{"object": "user"}')


def test_the_running_daemon_captures_a_delivery_it_is_woken_for(hooked: Hooked) -> None:
    """Given the daemon running, when a comment's webhook is received, then the daemon (woken
    after the receipt commits) captures it, with no manual job run."""
    from bulletin.service.daemon import running

    with running(hooked.app):
        comment_id = hooked.comment("seen by the daemon")
        wait_for(lambda: hooked.received() == 1)
        wait_for(lambda: pending_count(hooked.app.engine) == 0, seconds=15)
    with Session(hooked.app.engine) as session:
        applied = session.exec(
            select(FacebookWebhookChange).where(col(FacebookWebhookChange.remote_id) == comment_id)
        ).all()
    assert [c.verb for c in applied] == ["add"]
    assert [v.text for v in hooked.versions(comment_id)] == ["seen by the daemon"]


def test_the_capture_lag_is_measured_by_path(hooked: Hooked) -> None:
    """Given one comment captured from its webhook and one whose webhook was lost and a
    sweep found, then the lag histogram counts one of each, by path; refused requests are
    counted too."""
    from bulletin.archiver.capture.sweep import sweep
    from bulletin.db import session_scope
    from bulletin.publisher.notices import sync_account
    from bulletin.service.instances import HEARTBEAT_SECONDS
    from bulletin.service.metrics import StatusCollector
    from tests.test_metrics import scrape

    hooked.comment("by webhook")
    wait_for(lambda: hooked.received() == 1)
    capture_webhook_events(hooked.app)
    hooked.control.post("fb/webhooks", {"drop": 1})
    hooked.comment("by sweep")
    with session_scope(hooked.app.engine) as session:
        sync_account(session, hooked.app.settings, "facebook")
    sweep(hooked.app.archiver, hooked.app.connector("facebook"), "facebook", hooked.inst.clock)
    with httpx.Client(timeout=30, base_url=hooked.url) as web:
        assert web.post("/webhooks/facebook", content=b"{}").status_code == 403
    got = scrape(StatusCollector(hooked.app, HEARTBEAT_SECONDS))
    for path in ("webhook", "sweep"):
        labels = (("account", "facebook"), ("path", path))
        assert got[("bulletin_capture_lag_seconds_count", labels)] == 1
    refused = ("bulletin_facebook_webhooks_refused_total", (("reason", "missing signature"),))
    assert got[refused] >= 1


def deliver(hooked: Hooked, changes: list[dict[str, object]], at: int) -> None:
    """A signed delivery of ``changes`` on the sandbox Page, as Meta would send it."""
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": hooked.post_id.split("_")[0],
                    "time": at,
                    "changes": [{"field": "feed", "value": v} for v in changes],
                }
            ],
        }
    ).encode()
    with httpx.Client(timeout=30, base_url=hooked.url) as web:
        answer = web.post(
            "/webhooks/facebook", content=body, headers={"x-hub-signature-256": sign(body)}
        )
        assert answer.status_code == 200


def test_a_removal_delivered_before_the_comment_keeps_the_late_text(hooked: Hooked) -> None:
    """Given a comment's removal captured before its (reordered, late) addition arrives, then
    the removal alone is a deleted version without text, and the late addition fills in the
    text as another deleted version: nothing is shown as restored."""
    comment = {"post_id": hooked.post_id, "comment_id": "9_1", "item": "comment",
               "from": {"id": "77", "name": "Lee"}, "parent_id": hooked.post_id}  # fmt: skip
    deliver(hooked, [{**comment, "verb": "remove", "created_time": 1000}], 1001)
    capture_webhook_events(hooked.app)
    message = {"message": "gone in a second", "created_time": 990}
    deliver(hooked, [{**comment, **message, "verb": "add"}], 991)
    capture_webhook_events(hooked.app)
    assert [(v.state, v.text, v.author) for v in hooked.versions("9_1")] == [
        ("deleted", "", "Lee"),
        ("deleted", "gone in a second", "Lee"),
    ]


def test_a_post_change_captures_the_post(hooked: Hooked) -> None:
    """A status ``edited`` change reads the Page's post fresh; ``remove`` archives it
    deleted."""
    post = {"post_id": hooked.post_id, "item": "status", "from": {"id": "1"}}
    deliver(hooked, [{**post, "verb": "edited", "created_time": 1000}], 1000)
    capture_webhook_events(hooked.app)
    [first] = hooked.versions(hooked.post_id)
    assert (first.kind, first.text) == ("post", "Main St closed today")
    hooked.app.connector("facebook").delete_post(hooked.post_id)
    deliver(hooked, [{**post, "verb": "remove", "created_time": 1010}], 1010)
    capture_webhook_events(hooked.app)
    assert [v.state for v in hooked.versions(hooked.post_id)] == ["visible", "deleted"]


@pytest.mark.slow
@pytest.mark.timeout(600)  # three processes started in turn: minutes on a loaded machine
def test_a_delivery_survives_the_kill_of_the_web_process(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Given `bulletin web` as a process that answered a delivery 200, when it is killed
    (SIGKILL) before any capture ran, then `bulletin daemon --once` in a new process
    captures the comment from the stored delivery."""
    db_url = f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}"
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url) + FACEBOOK)
    app = with_secrets(inst)
    control = Control(sandbox.url)
    said = tmp_path / "web.log"
    with said.open("wb") as stderr:  # port 0: the process takes a free port and says which
        web = subprocess.Popen(
            [sys.executable, "-m", "bulletin", "web", "--address", "127.0.0.1:0"],
            env=inst.env(**ENV),
            stderr=stderr,
        )
    try:
        url = _served_at(web, said)
        wait_for(lambda: _answers(f"{url}/healthz"))
        control.post(
            "fb/webhooks",
            {"callback_url": f"{url}/webhooks/facebook", "app_secret": APP_SECRET},
        )
        subscribe_page(app, ADA, "facebook")
        post = app.connector("facebook").publish(OutgoingPost("k1", "Elm St flooded"))
        ids = control.post("fb/comments", {"post_id": post.remote_id, "message": "still wet?"})
        wait_for(lambda: _answered(control) > 0, seconds=120)
        answered = _answered(control)
    finally:
        web.send_signal(signal.SIGKILL)
        web.wait(60)
    # each delivery answered 200 was stored before its answer (a retry of one whose answer
    # came too late for the sandbox is stored too: both are captured as one comment)
    assert pending_count(app.engine) >= answered
    once = subprocess.run(
        [sys.executable, "-m", "bulletin", "daemon", "--once", "--max-wait", "0"],
        env=inst.env(**ENV),
        capture_output=True,
        timeout=300,
    )
    assert once.returncode == 0, once.stderr.decode()
    assert pending_count(app.engine) == 0
    with Session(app.engine) as session:
        [change] = session.exec(select(FacebookWebhookChange)).all()
        [record] = session.exec(select(Record).where(col(Record.remote_id) == ids["ids"][0]))
    assert change.remote_id == record.remote_id and record.text == "still wet?"
    app.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def _served_at(web: subprocess.Popen[bytes], said: Path) -> str:
    """The URL ``bulletin web`` says it serves at, once it has said it (within a minute)."""
    found: list[str] = []

    def said_it() -> bool:
        assert web.poll() is None, f"bulletin web exited {web.returncode}: {said.read_text()}"
        found[:] = re.findall(r"web console at (http://\S+)/", said.read_text())
        return bool(found)

    wait_for(said_it)
    return found[0]


def _answered(control: Control) -> int:
    """How many webhook deliveries the sandbox was answered 200 for (none may have failed)."""
    counts = control.received("facebook:webhooks")
    assert "failed" not in counts, counts
    return counts.get("delivered", 0)


def test_a_secret_pasted_in_place_of_its_name_is_refused_unrepeated(tmp_path: Path) -> None:
    from bulletin.config import load_settings
    from bulletin.errors import ConfigError

    pasted = "EAAGm0PX4ZCpsBAKZCZAbC12345xyz"
    config = tmp_path / "bulletin.toml"
    config.write_text(f'[facebook]\napp_secret_env = "{pasted}"\n')
    with pytest.raises(ConfigError, match="app_secret_env must name") as refused:
        load_settings(config, environ={})
    assert pasted not in str(refused.value)


def test_captured_deliveries_are_pruned_after_thirty_days_pending_ones_never(
    hooked: Hooked,
) -> None:
    from datetime import timedelta

    from bulletin.archiver.capture.webhooks import prune

    comment_id = hooked.comment("kept in the archive")
    wait_for(lambda: hooked.received() == 1)
    capture_webhook_events(hooked.app)
    hooked.comment("not captured yet")
    wait_for(lambda: hooked.received() == 2)
    now = hooked.inst.clock.now()
    assert prune(hooked.app.engine, now - timedelta(days=30)) == 0
    assert prune(hooked.app.engine, now + timedelta(seconds=1)) == 1
    with Session(hooked.app.engine) as session:
        assert [e.state for e in session.exec(select(FacebookWebhookEvent))] == ["pending"]
        assert session.exec(select(FacebookWebhookChange)).all() == []
    assert len(hooked.versions(comment_id)) == 1 and len(hooked.evidence()) == 1


def test_a_burst_of_a_thousand_comments_is_captured_whole_once_each(hooked: Hooked) -> None:
    """Given a burst of 1,000 comments in one moment, delivered in batches of up to 100
    changes and each change sent twice (Meta delivers at least once), when the capture job
    has taken every delivery, then every comment has exactly one version: no loss, no
    double; a second run adds nothing."""
    hooked.control.post("fb/webhooks", {"duplicates": 1, "batch": 100})
    ids: list[str] = hooked.control.post(
        "fb/comments", {"post_id": hooked.post_id, "message": "Have you seen her?", "count": 1000}
    )["ids"]
    changes = duplicates = 0
    deadline = time.monotonic() + 100
    while changes + duplicates < 2000:
        assert time.monotonic() < deadline, f"{changes} changes, {duplicates} duplicates"
        result = capture_webhook_events(hooked.app)
        changes, duplicates = changes + result.changes, duplicates + result.duplicates
        time.sleep(0.05)
    assert (changes, duplicates) == (1000, 1000)
    assert pending_count(hooked.app.engine) == 0
    with Session(hooked.app.engine) as session:
        rows = session.exec(
            select(Record.remote_id, Record.version).where(col(Record.kind) == "comment")
        ).all()
    assert sorted(r for r, _ in rows) == sorted(ids)  # all of them, each once
    assert {v for _, v in rows} == {1}
    assert capture_webhook_events(hooked.app).archived == 0


@pytest.mark.slow
def test_a_daemon_killed_part_way_through_a_batch_captures_each_comment_once(
    tmp_path: Path,
    sandbox: SandboxServer,
    daemon_process: Callable[[dict[str, str], Path], DaemonProcess],
) -> None:
    """Given 400 comments, one change per delivery, eight deliveries in flight at once (their
    receipts share commits), when the daemon is killed (SIGKILL) while its capture job is
    part way through them and a new daemon runs, then every delivery is taken and every
    comment is in the record exactly once."""
    import subprocess
    import sys

    db_url = f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}"
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url) + FACEBOOK)
    app = with_secrets(inst)
    control = Control(sandbox.url)
    with serving(app) as url:
        control.post(
            "fb/webhooks",
            {"callback_url": f"{url}/webhooks/facebook", "app_secret": APP_SECRET,
             "concurrency": 8},
        )  # fmt: skip
        subscribe_page(app, ADA, "facebook")
        post = app.connector("facebook").publish(OutgoingPost("k1", "Have you seen him?"))
        ids: list[str] = control.post(
            "fb/comments", {"post_id": post.remote_id, "message": "Seen him", "count": 400}
        )["ids"]
        wait_for(lambda: pending_count(app.engine) == 400, seconds=60)

    def comments() -> list[tuple[str, int]]:
        with Session(app.engine) as session:
            rows = session.exec(
                select(Record.remote_id, Record.version).where(col(Record.kind) == "comment")
            ).all()
        return [(r, v) for r, v in rows]

    daemon = daemon_process(inst.env(**ENV), tmp_path).start()
    wait_for(lambda: len(comments()) > 0 and pending_count(app.engine) > 0, seconds=60)
    daemon.kill()
    assert pending_count(app.engine) > 0, "killed with deliveries left"
    once = subprocess.run(
        [sys.executable, "-m", "bulletin", "daemon", "--once", "--max-wait", "0"],
        env=inst.env(**ENV),
        capture_output=True,
        timeout=180,
    )
    assert once.returncode == 0, once.stderr.decode()
    assert pending_count(app.engine) == 0
    rows = comments()
    assert sorted(r for r, _ in rows) == sorted(ids)  # all of them, each once
    assert {v for _, v in rows} == {1}
    app.close()


def test_receipts_received_together_share_commits_each_durable_when_answered(
    tmp_path: Path,
) -> None:
    """Given 16 callers storing 20 deliveries each at once, each id is answered only once
    its row is committed (another connection sees it at that moment), every delivery is
    stored once, and the receipts took fewer transactions than deliveries."""
    import threading

    import sqlalchemy as sa

    from bulletin.archiver.capture import webhooks as receipts
    from bulletin.clock import SystemClock
    from bulletin.db import make_engine

    db_url = f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}"
    inst = make_instance(tmp_path, db_url)
    engine, clock = inst.app.engine, SystemClock()
    reader = make_engine(db_url)
    seen: list[int] = []
    unseen: list[int] = []
    lock = threading.Lock()

    def deliver(n: int) -> None:
        for i in range(20):
            body = json.dumps({"object": "page", "entry": [], "n": n, "i": i}).encode()
            got = receipts.receive(engine, body, sign(body), clock.now())
            with reader.connect() as conn:
                row = conn.execute(
                    sa.select(col(FacebookWebhookEvent.body)).where(
                        col(FacebookWebhookEvent.id) == got
                    )
                ).scalar()
            with lock:
                (seen if row == body else unseen).append(got)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert unseen == [] and len(set(seen)) == 320
    assert pending_count(engine) == 320
    assert receipts._receipts[engine].commits < 320
    reader.dispose()
    inst.app.close()
