"""Threads accounts against the sandbox: the container journal (exactly once across a crash
between the two publishing steps), the 24-hour quotas, Threads' length, images by URL with
alt text, and replies captured, hidden and quarantined."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlmodel import Session, select

from bulletin.archiver.moderation import moderate
from bulletin.clock import SystemClock
from bulletin.connectors.base import Media, OutgoingPost
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.sandbox.state import DEFAULT_THREADS_PROFILE
from bulletin.connectors.threads import ThreadsConnector, threads_length
from bulletin.errors import Ambiguous, RateLimited, Retryable
from bulletin.models import Delivery
from bulletin.publisher.amend import correct_notice, retract_notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import records, run
from tests.plugins.daemon_process import DaemonProcess
from tests.plugins.sandbox import (
    FAST_RETRY,
    FAST_TIMEOUT,
    MEDIA_BASE_URL,
    Control,
    ThreadsVisitor,
    threads_connector,
)
from tests.test_daemon_process import wait_until

ACCOUNT = f"threads:{DEFAULT_THREADS_PROFILE['id']}"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def connector(sandbox: SandboxServer, data_dir: Path) -> ThreadsConnector:
    return threads_connector(sandbox.url, data_dir)


def media(control: Control) -> list[dict[str, object]]:
    return list(control.get("state")["threads"]["media"].values())


def test_a_crash_between_container_and_publish_resumes_the_same_container(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """Given a container made and its publish step failing (the daemon then killed), when a
    new connector (a restarted daemon) publishes the same delivery, the container already
    made is published: one container, one post."""
    post = OutgoingPost(key="delivery-7", text="Water main break on Oak St")
    control.fault("error", r"/threads_publish$", method="POST", status=500, count=9)
    with pytest.raises(Retryable):
        connector(sandbox, tmp_path).publish(post)
    assert control.received(ACCOUNT) == {"create_requests": 1}
    assert (tmp_path / "containers" / "sandbox-threads.json").exists()
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).raise_for_status()
    restarted = connector(sandbox, tmp_path)
    result = restarted.publish(post)
    assert control.received(ACCOUNT) == {"create_requests": 1, "created": 1}
    assert [m["id"] for m in media(control)] == [result.remote_id]
    assert restarted.journal.keys() == []


def test_a_publish_that_timed_out_is_found_not_repeated(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A publish step that worked but whose answer never came is found by its text: one post."""
    control.fault("timeout", r"/threads_publish$", method="POST", seconds=1.0)
    first = connector(sandbox, tmp_path)
    result = first.publish(OutgoingPost(key="d-1", text="Boil water advisory lifted"))
    assert control.received(ACCOUNT)["created"] == 1
    assert result.remote_id == media(control)[0]["id"]


def test_a_published_container_is_never_published_again(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A container the journal still holds but that Threads says is PUBLISHED (the answer
    was lost and the post is not listed) is reported as ambiguous, never published again."""
    post = OutgoingPost(key="d-2", text="Parade route closed")
    made = connector(sandbox, tmp_path)
    result = made.publish(post)
    container = next(iter(control.get("state")["threads"]["containers"]))
    made.journal.put("d-3", container)
    with pytest.raises(Ambiguous):
        made.publish(OutgoingPost(key="d-3", text="Something else entirely"))
    assert control.received(ACCOUNT)["created"] == 1
    assert result.remote_id


def test_the_daily_post_quota_is_refused_before_posting(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """With 250 posts in the last 24 hours, a publish is refused before any container is
    made, saying why, with a time to try again."""
    session = requests.Session()
    base = f"{sandbox.url}/v1.0/{DEFAULT_THREADS_PROFILE['id']}"
    token = {"access_token": DEFAULT_THREADS_PROFILE["access_token"]}
    for i in range(250):
        made = session.post(
            f"{base}/threads", data={**token, "media_type": "TEXT", "text": f"n{i}"}
        )
        session.post(f"{base}/threads_publish", data={**token, "creation_id": made.json()["id"]})
    before = control.received(ACCOUNT)["create_requests"]
    with pytest.raises(RateLimited) as caught:
        connector(sandbox, tmp_path).publish(OutgoingPost(key="q", text="One too many"))
    assert "250 posts per 24 hours" in str(caught.value)
    assert caught.value.code == "publishing-limit"
    assert caught.value.retry_after is not None
    assert control.received(ACCOUNT)["create_requests"] == before


def test_length_counts_emojis_as_their_utf8_bytes(tmp_path: Path, sandbox: SandboxServer) -> None:
    """500 characters, an emoji counted as its UTF-8 bytes."""
    assert threads_length("Road closed") == 11
    assert threads_length("\U0001f6a8 Alert") == 4 + 6
    threads = connector(sandbox, tmp_path)
    assert threads.problems(OutgoingPost(key="k", text="\U0001f6a8" * 126))
    assert not threads.problems(OutgoingPost(key="k", text="\U0001f6a8" * 125))


def test_an_image_goes_by_url_with_its_alt_text(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """An image is sent as its URL under media_base_url (named by its SHA-256) with its alt
    text; without a media_base_url the post is refused before it is sent."""
    image = Media(PNG, "image/png", "Map of the detour")
    threads = connector(sandbox, tmp_path)
    result = threads.publish(OutgoingPost(key="i", text="Detour map", media=(image,)))
    stored = media(control)[0]
    assert stored["image_url"] == f"{MEDIA_BASE_URL}/{hashlib.sha256(PNG).hexdigest()}.png"
    assert stored["alt_text"] == "Map of the detour"
    item = threads.fetch_post(result.remote_id)
    assert item is not None and item.extra["attachment_alt_texts"] == ["Map of the detour"]
    threads.media_base_url = ""
    assert any(
        "media_base_url" in p for p in threads.problems(OutgoingPost("j", "x", media=(image,)))
    )


def test_replies_are_captured_hidden_and_gone(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """Visitors' replies at every depth are read with their parent; the account's own reply
    (a correction) is a post; hiding shows as a new state; a deleted reply is gone."""
    threads = connector(sandbox, tmp_path)
    root = threads.publish(OutgoingPost(key="r", text="Community meeting Tuesday")).remote_id
    visitor = ThreadsVisitor(sandbox.url)
    top = visitor.reply(root, "What time?")
    nested = ThreadsVisitor(sandbox.url, "other").reply(top, "7 pm I think")
    correction = threads.publish(
        OutgoingPost(key="c", text="Correction: 6 pm", reply_to=root)
    ).remote_id
    items = {i.remote_id: i for i in threads.iter_comments(root)}
    assert items[top].kind == "comment" and items[top].parent_id == root
    assert items[nested].parent_id == top and items[nested].thread_id == root
    assert items[correction].kind == "post"
    threads.hide_comment(top)
    hidden = threads.fetch_comment(root, top)
    assert hidden is not None and hidden.state == "hidden"
    assert hidden.content() != items[top].content()
    visitor.delete(top)
    assert threads.fetch_comment(root, top) is None
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = threads.find_published(
        OutgoingPost(key="c", text="Correction: 6 pm", reply_to=root), since
    )
    assert found is not None and found.remote_id == correction


def test_a_malformed_reply_is_quarantined_not_lost(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A reply whose text is not a string is kept raw as a reject with its id; the rest of
    the page is read."""
    threads = connector(sandbox, tmp_path)
    root = threads.publish(OutgoingPost(key="m", text="Lost dog")).remote_id
    visitor = ThreadsVisitor(sandbox.url)
    first, second = visitor.reply(root, "one"), visitor.reply(root, "two")
    control.fault("malformed_item", r"/conversation$", method="GET")
    page = threads.list_comments(root)
    assert [r.remote_id for r in page.rejects] == [first]
    assert [i.remote_id for i in page.items] == [second]


def test_delete_post_removes_it_and_a_second_delete_is_fine(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """DELETE /{threads-media-id}: the post is gone; deleting it again is not an error."""
    threads = connector(sandbox, tmp_path)
    result = threads.publish(OutgoingPost(key="x", text="Posted by mistake"))
    threads.delete_post(result.remote_id)
    threads.delete_post(result.remote_id)
    assert threads.fetch_post(result.remote_id) is None


@pytest.mark.slow
def test_kill_9_between_container_and_publish_then_restart_posts_once(
    tmp_path: Path,
    sandbox: SandboxServer,
    control: Control,
    daemon_process: Callable[[dict[str, str], Path], DaemonProcess],
) -> None:
    """A daemon SIGKILLed after it made a notice's container while the publish step fails,
    then restarted with Threads back: the container made before the kill is published, one
    container and one post in all, and the delivery is published and archived."""
    accounts = f"""
[accounts.threads]
platform = "threads"
base_url = "{sandbox.url}"
user_id = "{DEFAULT_THREADS_PROFILE["id"]}"
token_env = "SANDBOX_THREADS_TOKEN"
"""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", accounts)
    control.fault("error", r"/threads_publish$", method="POST", status=500, count=10_000)
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    clock = SystemClock()
    draft = NoticeDraft("traffic", "Detour on Route 9 until 6 pm.", ("threads",))
    notice = create_notice(inst.app.engine, inst.settings, clock, draft, "dispatcher")
    approve_notice(inst.app.engine, inst.settings, clock, notice.id or 0, "chief")
    wait_until(
        lambda: (
            control.received(ACCOUNT).get("create_requests") == 1
            and control.get("faults")["faults"][0]["count"] < 10_000
        ),
        30,
        lambda: daemon.log.read_text()[-3000:],
    )
    daemon.kill()
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).raise_for_status()
    daemon = daemon_process(inst.env(), inst.config.parent).start()

    def published() -> bool:
        with Session(inst.app.engine) as session:
            [delivery] = session.exec(select(Delivery)).all()
        return delivery.state == "published" and delivery.archived_record_id is not None

    wait_until(published, 60, lambda: daemon.log.read_text()[-3000:])
    assert control.received(ACCOUNT) == {"create_requests": 1, "created": 1}
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    inst.app.close()


# -- through Bulletin ------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with one sandbox Threads profile, fast retries, on each database."""
    accounts = f"""
[accounts.threads]
platform = "threads"
base_url = "{sandbox.url}"
user_id = "{DEFAULT_THREADS_PROFILE["id"]}"
token_env = "SANDBOX_THREADS_TOKEN"
"""
    inst = make_instance(tmp_path, db_url, accounts)
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps posts with the wall clock
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


def test_replies_are_captured_moderated_and_versioned(
    site: Instance, sandbox: SandboxServer
) -> None:
    """A published notice's replies (every depth) are archived; hiding one through Bulletin
    archives it first and then hides it (a new version); a deletion is a deleted version;
    sweeping again adds nothing and the post has no false edit."""
    draft = NoticeDraft("traffic", "Snow emergency: parking ban from 8 pm.", ("threads",))
    notice = create_notice(site.app.engine, site.settings, site.clock, draft, "dispatcher")
    approve_notice(site.app.engine, site.settings, site.clock, notice.id or 0, "chief")
    daemon = Daemon(site.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    [post] = [r.remote_id for r in records(site, kind="post")]
    visitor = ThreadsVisitor(sandbox.url, "resident")
    rude, gone = visitor.reply(post, "You people again"), visitor.reply(post, "Thanks")
    nested = ThreadsVisitor(sandbox.url, "other").reply(gone, "Agreed")
    assert run(site, "threads").result == "ok"
    by_id = {r.remote_id: r for r in records(site, kind="comment")}
    assert by_id[nested].parent_id == gone and by_id[nested].thread_id == post
    moderate(
        site.app.archiver,
        site.app.connector("threads"),
        by_id[rude].id or 0,
        "hide",
        actor="sgt",
        reason="personal attack",
    )
    visitor.delete(gone)
    site.clock.advance(timedelta(hours=7))
    run(site, "threads", full=True)
    assert [r.state for r in records(site, remote_id=rude)][-1] == "hidden"
    g1, g2 = records(site, remote_id=gone)
    assert (g1.state, g2.state, g2.change) == ("visible", "deleted", "deleted")
    site.clock.advance(timedelta(hours=7))
    assert run(site, "threads", full=True).archived == 0
    assert [r.version for r in records(site, kind="post")] == [1]


def test_an_expired_container_is_replaced_not_retried_forever(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A journal's container older than 24 hours has expired: the next attempt makes a new
    one and publishes it (two containers, one post)."""
    post = OutgoingPost(key="late", text="Leaf pickup moved to Friday")
    control.fault("error", r"/threads_publish$", method="POST", status=500, count=9)
    with pytest.raises(Retryable):
        connector(sandbox, tmp_path).publish(post)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).raise_for_status()
    with sandbox.state.lock:
        for container in sandbox.state.data["threads"]["containers"].values():
            container["ts"] -= 25 * 3600
    connector(sandbox, tmp_path).publish(post)
    assert control.received(ACCOUNT) == {"create_requests": 2, "created": 1}


def test_a_long_notice_is_a_thread_then_corrected_and_retracted(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A notice over 500 characters goes out as a numbered thread of replies; a correction
    replies to its last part; a retraction with deletion deletes every part of the thread."""
    text = " ".join(f"Detour step {i}: follow the signs along Route {i}." for i in range(20))
    draft = NoticeDraft("traffic", text, ("threads",), allow_thread=True)
    notice = create_notice(site.app.engine, site.settings, site.clock, draft, "dispatcher")
    approve_notice(site.app.engine, site.settings, site.clock, notice.id or 0, "chief")
    daemon = Daemon(site.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    thread = sorted(media(control), key=lambda m: int(str(m["id"])))
    assert len(thread) >= 2 and all(m["reply_to"] for m in thread[1:])
    engine, settings = site.app.engine, site.settings
    correct_notice(engine, settings, site.clock.now(), notice.id or 0, "Route 7.", "typo", "sgt")
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    correction = sorted(media(control), key=lambda m: int(str(m["id"])))[-1]
    assert correction["reply_to"] == thread[-1]["id"]
    retract_notice(engine, settings, site.clock.now(), notice.id or 0, "wrong day", "lt", True)
    daemon.dispatch_due()
    after = {m["id"]: m for m in media(control)}
    assert all(after[m["id"]]["deleted"] for m in thread)


@pytest.mark.slow
def test_the_daily_reply_quota_is_refused_before_replying(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """With 1,000 replies in the last 24 hours, a reply (a correction) is refused before its
    container is made, while a new post still goes out."""
    threads = connector(sandbox, tmp_path)
    root = threads.publish(OutgoingPost(key="root", text="Road work on Elm St")).remote_id
    session = requests.Session()
    base = f"{sandbox.url}/v1.0/{DEFAULT_THREADS_PROFILE['id']}"
    token = {"access_token": DEFAULT_THREADS_PROFILE["access_token"]}
    for i in range(1000):
        made = session.post(
            f"{base}/threads",
            data={**token, "media_type": "TEXT", "text": f"r{i}", "reply_to_id": root},
        )
        session.post(f"{base}/threads_publish", data={**token, "creation_id": made.json()["id"]})
    correction = OutgoingPost(key="fix", text="Correction: Oak St", reply_to=root)
    with pytest.raises(RateLimited, match="1000 replies per 24 hours"):
        threads.publish(correction)
    threads.publish(OutgoingPost(key="new", text="A new notice"))
