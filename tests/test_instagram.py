"""Instagram accounts against the sandbox: the container journal (exactly once across a crash
between the two publishing steps), the publishing limit read at run time, the caption's
limits, an image with its alt text on every post, comments and replies captured, hidden,
deleted and quarantined, and posts that the API cannot delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from bulletin.archiver.moderation import moderate
from bulletin.connectors.base import Media, OutgoingPost
from bulletin.connectors.instagram import InstagramConnector
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.sandbox.state import DEFAULT_IG_ACCOUNT
from bulletin.errors import Ambiguous, RateLimited, Refused, Retryable, UsageError
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import records, run
from tests.plugins.sandbox import (
    FAST_RETRY,
    FAST_TIMEOUT,
    MEDIA_BASE_URL,
    Control,
    InstagramVisitor,
    instagram_connector,
)
from tests.test_delivery_platforms import deliveries, drain, worker
from tests.test_media import png

ACCOUNT = f"instagram:{DEFAULT_IG_ACCOUNT['id']}"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


def image(alt: str = "Detour map around Main St") -> Media:
    return Media(PNG, "image/png", alt)


def connector(sandbox: SandboxServer, data_dir: Path) -> InstagramConnector:
    return instagram_connector(sandbox.url, data_dir)


def state(control: Control) -> dict[str, dict[str, dict[str, object]]]:
    found: dict[str, dict[str, dict[str, object]]] = control.get("state")["instagram"]
    return found


def test_a_crash_between_container_and_publish_resumes_the_same_container(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """Given a container made and media_publish failing (the daemon then killed), a restarted
    connector publishes the container already made: one container, one post."""
    post = OutgoingPost(key="delivery-9", text="Main St closed", media=(image(),))
    control.fault("error", r"/media_publish$", method="POST", status=500, count=9)
    with pytest.raises(Retryable):
        connector(sandbox, tmp_path).publish(post)
    assert control.received(ACCOUNT) == {"create_requests": 1}
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).raise_for_status()
    restarted = connector(sandbox, tmp_path)
    result = restarted.publish(post)
    assert control.received(ACCOUNT) == {"create_requests": 1, "created": 1}
    assert list(state(control)["media"]) == [result.remote_id]
    assert restarted.journal.keys() == []


def test_a_published_container_is_never_published_again(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A journal entry whose container Instagram already published is ambiguous, not
    published a second time."""
    made = connector(sandbox, tmp_path)
    made.publish(OutgoingPost(key="a", text="Parade Saturday", media=(image(),)))
    container = next(iter(state(control)["containers"]))
    made.journal.put("b", container)
    with pytest.raises(Ambiguous):
        made.publish(OutgoingPost(key="b", text="Other text", media=(image(),)))
    assert control.received(ACCOUNT)["created"] == 1


def test_the_publishing_limit_is_read_and_refused_before_posting(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """With the 24-hour limit content_publishing_limit reports spent, a publish is refused
    before a container is made, saying why."""
    session = requests.Session()
    base = f"{sandbox.url}/v26.0/{DEFAULT_IG_ACCOUNT['id']}"
    token = {"access_token": DEFAULT_IG_ACCOUNT["access_token"]}
    for _ in range(100):
        made = session.post(f"{base}/media", data={**token, "image_url": "https://i/x.png"})
        session.post(f"{base}/media_publish", data={**token, "creation_id": made.json()["id"]})
    instagram = connector(sandbox, tmp_path)
    assert instagram.quota()["quota_usage"] == 100
    before = control.received(ACCOUNT)["create_requests"]
    with pytest.raises(RateLimited) as caught:
        instagram.publish(OutgoingPost(key="q", text="One too many", media=(image(),)))
    assert "100 posts per 24 hours" in str(caught.value)
    assert caught.value.code == "publishing-limit"
    assert control.received(ACCOUNT)["create_requests"] == before


def test_an_image_its_alt_text_and_the_caption_limits(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """The image goes by its URL under media_base_url with alt_text; a post without an image,
    a caption over 2,200 characters or with more than 30 hashtags is refused before sending."""
    instagram = connector(sandbox, tmp_path)
    result = instagram.publish(OutgoingPost(key="i", text="Detour #roadwork", media=(image(),)))
    stored = state(control)["media"][result.remote_id]
    assert stored["image_url"] == f"{MEDIA_BASE_URL}/{hashlib.sha256(PNG).hexdigest()}.png"
    assert stored["alt_text"] == "Detour map around Main St"
    item = instagram.fetch_post(result.remote_id)
    assert item is not None and item.extra["attachment_alt_texts"] == [stored["alt_text"]]
    assert result.url and result.url.startswith("https://www.instagram.com/p/")
    assert instagram.problems(OutgoingPost(key="n", text="No image"))
    assert instagram.problems(OutgoingPost(key="l", text="x" * 2201, media=(image(),)))
    tags = " ".join(f"#tag{i}" for i in range(31))
    assert any(
        "31 hashtags" in p for p in instagram.problems(OutgoingPost("h", tags, media=(image(),)))
    )
    ok = " ".join(f"#tag{i}" for i in range(30))
    assert not instagram.problems(OutgoingPost(key="o", text=ok, media=(image(),)))


def test_comments_and_replies_are_captured_hidden_and_deleted(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """Comments with their replies are read with parents; the account's correction is a post
    found again by its text; hiding is a new state; a deleted comment is gone."""
    instagram = connector(sandbox, tmp_path)
    root = instagram.publish(OutgoingPost(key="r", text="Meeting Tuesday", media=(image(),)))
    visitor = InstagramVisitor(sandbox.url)
    top = visitor.comment(root.remote_id, "What time?")
    reply = InstagramVisitor(sandbox.url, "other").comment(root.remote_id, "7 pm", top)
    correction = OutgoingPost(key="c", text="Correction: 6 pm", reply_to=root.remote_id)
    mine = instagram.publish(correction).remote_id
    items = {i.remote_id: i for i in instagram.iter_comments(root.remote_id)}
    assert items[top].kind == "comment" and items[top].parent_id == root.remote_id
    assert items[reply].parent_id == top
    assert items[mine].kind == "post"
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = instagram.find_published(correction, since)
    assert found is not None and found.remote_id == mine
    instagram.hide_comment(reply)
    hidden = instagram.fetch_comment(root.remote_id, reply)
    assert hidden is not None and hidden.state == "hidden"
    assert hidden.content() != items[reply].content()
    instagram.delete_comment(top)
    instagram.delete_comment(top)
    assert instagram.fetch_comment(root.remote_id, top) is None


def test_a_malformed_comment_is_quarantined_not_lost(
    sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A comment whose text is not a string is kept raw with its id; the rest is read."""
    instagram = connector(sandbox, tmp_path)
    root = instagram.publish(OutgoingPost(key="m", text="Lost dog", media=(image(),))).remote_id
    visitor = InstagramVisitor(sandbox.url)
    first, second = visitor.comment(root, "one"), visitor.comment(root, "two")
    control.fault("malformed_item", r"/comments$", method="GET")
    page = instagram.list_comments(root)
    assert [r.remote_id for r in page.rejects] == [first]
    assert [i.remote_id for i in page.items] == [second]


def test_posts_cannot_be_deleted_through_the_api(sandbox: SandboxServer, tmp_path: Path) -> None:
    """delete_post refuses with a remedy; limits() says so, so a retraction is a comment."""
    instagram = connector(sandbox, tmp_path)
    assert not instagram.limits().supports_delete
    with pytest.raises(Refused, match="cannot delete a published post"):
        instagram.delete_post("1")


@pytest.fixture
def instagram_app(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with one sandbox Instagram account, fast retries, on each database."""
    accounts = f"""
[accounts.instagram]
platform = "instagram"
base_url = "{sandbox.url}"
ig_user_id = "{DEFAULT_IG_ACCOUNT["id"]}"
token_env = "SANDBOX_INSTAGRAM_TOKEN"
media_base_url = "{MEDIA_BASE_URL}"
"""
    inst = make_instance(tmp_path, db_url, accounts)
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


def test_a_notice_without_an_image_is_refused_at_drafting(instagram_app: Instance) -> None:
    """Instagram needs an image in every post: a notice without one is refused when drafted."""
    inst = instagram_app
    draft = NoticeDraft("general", "Open house Saturday.", ["instagram"])
    with pytest.raises(UsageError, match=r"'instagram' \(instagram\) needs an image"):
        create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dana", inst.app.store)


def test_a_delivery_whose_publish_step_fails_is_published_once_later(
    instagram_app: Instance, control: Control, tmp_path: Path
) -> None:
    """Through the delivery worker: media_publish fails after the container is made, the
    delivery waits; when the platform is back, the same container is published: one
    container, one post, archived."""
    inst = instagram_app
    picture = tmp_path / "detour.png"
    picture.write_bytes(png("detour"))
    draft = NoticeDraft(
        "general", "Detour on Elm St.", ["instagram"], images=[(str(picture), "Detour map")]
    )
    notice = create_notice(
        inst.app.engine, inst.settings, inst.clock, draft, "dana", inst.app.store
    )
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
    control.fault("error", r"/media_publish$", method="POST", status=500, count=40)
    drain(inst, worker(inst), rounds=1)
    [delivery] = deliveries(inst)
    assert delivery.state != "published"
    assert control.received(ACCOUNT) == {"create_requests": 1}
    requests.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    drain(inst, worker(inst, "another"))
    [delivery] = deliveries(inst)
    assert delivery.state == "published"
    assert control.received(ACCOUNT) == {"create_requests": 1, "created": 1}
    assert delivery.archived_record_id is not None


def test_comments_are_captured_moderated_and_versioned(
    instagram_app: Instance, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """A published notice's comments and replies are archived; hiding one through Bulletin
    archives it first and then hides it (a new version); a deletion is a deleted version;
    sweeping again adds nothing and the post has no false edit."""
    site = instagram_app
    site.clock.set(datetime.now(UTC))  # the sandbox stamps posts with the wall clock
    picture = tmp_path / "ban.png"
    picture.write_bytes(png("ban"))
    draft = NoticeDraft(
        "traffic", "Parking ban from 8 pm.", ["instagram"], images=[(str(picture), "Ban map")]
    )
    notice = create_notice(
        site.app.engine, site.settings, site.clock, draft, "dispatcher", site.app.store
    )
    approve_notice(site.app.engine, site.settings, site.clock, notice.id or 0, "chief")
    daemon = Daemon(site.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    [post] = [r.remote_id for r in records(site, kind="post")]
    visitor = InstagramVisitor(sandbox.url, "resident")
    rude, gone = visitor.comment(post, "You people again"), visitor.comment(post, "Thanks")
    nested = InstagramVisitor(sandbox.url, "other").comment(post, "Agreed", gone)
    assert run(site, "instagram").result == "ok"
    by_id = {r.remote_id: r for r in records(site, kind="comment")}
    assert by_id[nested].parent_id == gone and by_id[nested].thread_id == post
    moderate(
        site.app.archiver,
        site.app.connector("instagram"),
        by_id[rude].id or 0,
        "hide",
        actor="sgt",
        reason="personal attack",
    )
    visitor.delete(gone)
    site.clock.advance(timedelta(hours=7))
    run(site, "instagram", full=True)
    assert [r.state for r in records(site, remote_id=rude)][-1] == "hidden"
    g1, g2 = records(site, remote_id=gone)
    assert (g1.state, g2.state, g2.change) == ("visible", "deleted", "deleted")
    site.clock.advance(timedelta(hours=7))
    assert run(site, "instagram", full=True).archived == 0
    assert [r.version for r in records(site, kind="post")] == [1]
