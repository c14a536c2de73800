"""One set of test bodies run against every connector (the platform is the parameter).

A new connector joins by adding a harness class to ``HARNESSES``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import pytest

from bulletin.config.accounts import PLATFORMS as ACCOUNT_PLATFORMS
from bulletin.connectors.base import Connector, Media, OutgoingPost
from bulletin.connectors.platforms import PLATFORMS
from bulletin.connectors.retry import RetryPolicy
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, DEFAULT_X_ACCOUNT, SandboxServer
from bulletin.connectors.sandbox.state import (
    DEFAULT_BLUESKY_ACCOUNT,
    DEFAULT_IG_ACCOUNT,
    DEFAULT_MASTODON_ACCOUNT,
    DEFAULT_THREADS_PROFILE,
)
from bulletin.errors import (
    AuthError,
    ConnectorError,
    MalformedResponse,
    RateLimited,
    Rejected,
    Retryable,
)
from tests.plugins.sandbox import (
    Control,
    InstagramVisitor,
    SkyVisitor,
    ThreadsVisitor,
    Visitor,
    bluesky_connector,
    fb_connector,
    instagram_connector,
    mastodon_connector,
    threads_connector,
    x_connector,
)


class Harness:
    """What the contract tests need to know about one platform in the sandbox."""

    platform: ClassVar[str]
    account: ClassVar[str]  # key in the sandbox's received counts
    create_path: ClassVar[str]  # regex of the publish endpoint, for faults
    read_path: ClassVar[str]  # regex of the list-posts endpoint, for faults
    max_length: ClassVar[int]
    hides: ClassVar[bool] = True  # the account can hide replies on its posts
    refuses_duplicates: ClassVar[bool] = True  # the platform has a duplicate-content refusal
    id_field: ClassVar[str] = "id"  # the member of an item's raw JSON that holds its id
    url_has_id: ClassVar[bool] = True  # a post's URL shows its id (Threads': a shortcode)
    deletes: ClassVar[bool] = True  # the account can delete its posts through the API

    def __init__(self, sandbox: SandboxServer, control: Control) -> None:
        self.sandbox = sandbox
        self.control = control
        self.connector = self.build()

    def build(self, **options: Any) -> Connector:
        """A connector on the sandbox; ``options`` are ``retry`` and ``timeout``."""
        raise NotImplementedError

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        raise NotImplementedError

    def is_hidden(self, comment_id: str) -> bool:
        raise NotImplementedError

    def post(self, text: str) -> OutgoingPost:
        """A post of ``text`` as this platform accepts one."""
        return OutgoingPost(key=text, text=text)

    def created(self) -> int:
        return int(self.control.received(self.account).get("created", 0))


class XHarness(Harness):
    platform = "x"
    account = f"x:{DEFAULT_X_ACCOUNT['id']}"
    create_path = r"^/2/tweets$"
    read_path = r"/tweets$"
    max_length = 280

    def build(self, **options: Any) -> Connector:
        return x_connector(self.sandbox.url, **options)

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        body = {"tweet_id": parent_id or post_id, "text": "reply", "count": count}
        return list(self.control.post("x/replies", body)["ids"])

    def is_hidden(self, comment_id: str) -> bool:
        return bool(self.control.get("state")["x"]["tweets"][comment_id]["hidden"])


class FacebookHarness(Harness):
    platform = "facebook"
    account = f"facebook:{DEFAULT_FB_PAGE['id']}"
    create_path = r"/feed$"
    read_path = r"/posts$"
    max_length = 63206

    def build(self, **options: Any) -> Connector:
        return fb_connector(self.sandbox.url, **options)

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        body: dict[str, Any] = {"post_id": post_id, "message": "comment", "count": count}
        if parent_id:
            body["parent_id"] = parent_id
        return list(self.control.post("fb/comments", body)["ids"])

    def is_hidden(self, comment_id: str) -> bool:
        return bool(self.control.get("state")["fb"]["comments"][comment_id]["is_hidden"])


class MastodonHarness(Harness):
    platform = "mastodon"
    account = f"mastodon:{DEFAULT_MASTODON_ACCOUNT['id']}"
    create_path = r"^/api/v1/statuses$"
    read_path = r"/statuses$"
    max_length = 500
    hides = False
    refuses_duplicates = False

    def build(self, **options: Any) -> Connector:
        return mastodon_connector(self.sandbox.url, **options)

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        visitor = Visitor(self.sandbox.url)
        return [visitor.reply(parent_id or post_id, f"reply {i + 1}") for i in range(count)]


class BlueskyHarness(Harness):
    platform = "bluesky"
    account = f"bluesky:{DEFAULT_BLUESKY_ACCOUNT['did']}"
    create_path = r"createRecord$"
    read_path = r"getAuthorFeed$"
    max_length = 300
    refuses_duplicates = False
    id_field = "uri"

    def build(self, **options: Any) -> Connector:
        return bluesky_connector(self.sandbox.url, **options)

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        visitor = SkyVisitor(self.sandbox.url)
        return [visitor.reply(parent_id or post_id, f"reply {i + 1}") for i in range(count)]

    def is_hidden(self, comment_id: str) -> bool:
        """Listed in ``hiddenReplies`` of a live threadgate in the sandbox's state."""
        records = self.control.get("state")["bluesky"]["records"].values()
        return any(
            comment_id in (r["value"].get("hiddenReplies") or [])
            for r in records
            if r["collection"] == "app.bsky.feed.threadgate" and not r["deleted"]
        )


class ThreadsHarness(Harness):
    platform = "threads"
    account = f"threads:{DEFAULT_THREADS_PROFILE['id']}"
    create_path = r"/threads$"
    read_path = r"/threads$"
    max_length = 500
    refuses_duplicates = False
    url_has_id = False

    def build(self, **options: Any) -> Connector:
        assert self.sandbox.state.path is not None
        return threads_connector(self.sandbox.url, self.sandbox.state.path.parent, **options)

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        visitor = ThreadsVisitor(self.sandbox.url)
        return [visitor.reply(parent_id or post_id, f"reply {i + 1}") for i in range(count)]

    def is_hidden(self, comment_id: str) -> bool:
        return bool(self.control.get("state")["threads"]["media"][comment_id]["hidden"])


class InstagramHarness(Harness):
    platform = "instagram"
    account = f"instagram:{DEFAULT_IG_ACCOUNT['id']}"
    create_path = r"/media$"
    read_path = r"/media$"
    max_length = 2200
    refuses_duplicates = False
    url_has_id = False
    deletes = False

    def build(self, **options: Any) -> Connector:
        assert self.sandbox.state.path is not None
        return instagram_connector(self.sandbox.url, self.sandbox.state.path.parent, **options)

    def post(self, text: str) -> OutgoingPost:
        image = Media(b"\x89PNG\r\n\x1a\n" + text.encode(), "image/png", "A road sign")
        return OutgoingPost(key=text, text=text, media=(image,))

    def add_comments(self, post_id: str, count: int, parent_id: str | None = None) -> list[str]:
        visitor = InstagramVisitor(self.sandbox.url)
        return [visitor.comment(post_id, f"comment {i + 1}", parent_id) for i in range(count)]

    def is_hidden(self, comment_id: str) -> bool:
        return bool(self.control.get("state")["instagram"]["comments"][comment_id]["hidden"])


HARNESSES: list[type[Harness]] = [
    XHarness,
    FacebookHarness,
    MastodonHarness,
    BlueskyHarness,
    ThreadsHarness,
    InstagramHarness,
]


@pytest.fixture(params=HARNESSES, ids=lambda h: h.platform)
def harness(request: pytest.FixtureRequest, sandbox: SandboxServer, control: Control) -> Harness:
    control.settings(enforce_rate_limits=False)
    made: Harness = request.param(sandbox, control)
    return made


def test_publish_returns_the_platform_id(harness: Harness) -> None:
    """A publish answers the platform's id and URL, and the post is on the platform once."""
    result = harness.connector.publish(harness.post("Road closed: Main St until 5 pm"))
    assert result.remote_id
    assert result.url
    if harness.url_has_id:
        assert result.remote_id.split("_")[-1].split("/")[-1] in result.url
    assert json.loads(result.raw)
    ids = [i.remote_id for i in harness.connector.list_posts().items]
    assert ids == [result.remote_id]
    assert harness.created() == 1


def test_find_published_matches_exact_text_after_since(harness: Harness) -> None:
    """find_published finds the post by its text, and nothing for other text or a later since."""
    before = datetime.now(UTC) - timedelta(seconds=5)
    result = harness.connector.publish(harness.post("Snow emergency parking ban from 8 pm"))
    found = harness.connector.find_published(
        harness.post("Snow emergency parking ban from 8 pm"), before
    )
    assert found is not None
    assert found.remote_id == result.remote_id
    assert harness.connector.find_published(harness.post("Another notice"), before) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert (
        harness.connector.find_published(
            harness.post("Snow emergency parking ban from 8 pm"), later
        )
        is None
    )


def test_list_posts_follows_pagination(harness: Harness) -> None:
    """150 posts come back over several pages, newest first, each once."""
    made = [
        harness.connector.publish(harness.post(f"Notice number {i}")).remote_id for i in range(150)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = harness.connector.list_posts(cursor=cursor)
        pages += 1
        seen.extend(i.remote_id for i in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages >= 2
    assert seen == list(reversed(made))


def test_list_posts_since_id_returns_only_newer(harness: Harness) -> None:
    """list_posts(since_id=...) returns only posts newer than that one."""
    first = harness.connector.publish(harness.post("First notice")).remote_id
    second = harness.connector.publish(harness.post("Second notice")).remote_id
    page = harness.connector.list_posts(since_id=first)
    assert [i.remote_id for i in page.items] == [second]


def test_comments_paginate_to_the_end(harness: Harness) -> None:
    """250 comments and replies are all read, each once, with thread and parent set."""
    root = harness.connector.publish(harness.post("Community meeting Tuesday")).remote_id
    top = harness.add_comments(root, 200)
    replies = harness.add_comments(root, 50, parent_id=top[0])
    items = list(harness.connector.iter_comments(root))
    assert sorted(i.remote_id for i in items) == sorted(top + replies)
    by_id = {i.remote_id: i for i in items}
    assert all(i.kind == "comment" and i.thread_id == root for i in items)
    assert by_id[replies[0]].parent_id == top[0]
    assert by_id[top[1]].parent_id == root
    assert json.loads(by_id[top[1]].raw)[harness.id_field] == top[1]


def test_hide_comment_hides_on_the_platform(harness: Harness) -> None:
    """hide_comment hides a visitor comment; hiding twice is fine; unhide shows it again."""
    if not harness.hides:
        pytest.skip(f"{harness.platform} accounts cannot hide replies")
    root = harness.connector.publish(harness.post("Lost dog found on Elm St")).remote_id
    comment = harness.add_comments(root, 1)[0]
    harness.connector.hide_comment(comment)
    harness.connector.hide_comment(comment)
    assert harness.is_hidden(comment)
    harness.connector.hide_comment(comment, hidden=False)
    assert not harness.is_hidden(comment)


def test_delete_post_removes_it(harness: Harness) -> None:
    """A deleted post is no longer listed; deleting it again is not an error."""
    if not harness.deletes:
        pytest.skip(f"{harness.platform}'s API cannot delete posts")
    result = harness.connector.publish(harness.post("Posted by mistake"))
    harness.connector.delete_post(result.remote_id)
    harness.connector.delete_post(result.remote_id)
    assert harness.connector.list_posts().items == []


def test_limits_and_measure(harness: Harness) -> None:
    """limits() states the platform's length; a plain text measures its characters."""
    limits = harness.connector.limits()
    assert limits.max_length == harness.max_length
    assert limits.supports_comments
    assert limits.supports_hide == harness.hides
    assert harness.connector.measure("Road closed") == 11
    too_long = harness.post("x" * (harness.max_length + 1))
    assert harness.connector.problems(too_long)


def test_check_reports_every_capability_ok(harness: Harness) -> None:
    """check() on good sandbox credentials reports only passing lines."""
    harness.connector.publish(harness.post("Checking"))
    lines = harness.connector.check()
    assert len(lines) >= 3
    assert all(line.ok for line in lines), lines


@pytest.mark.parametrize(
    ("kind", "options", "error", "code"),
    [
        ("rate_limit", {"seconds": 3600, "count": 9}, RateLimited, "rate-limited"),
        ("error", {"status": 503, "count": 9}, Retryable, "server-error"),
        ("error", {"status": 500, "count": 9}, Retryable, "server-error"),
        ("duplicate", {}, Rejected, "duplicate"),
        ("expired_token", {}, AuthError, "auth"),
    ],
    ids=["rate-limit", "503", "500", "duplicate", "expired-token"],
)
def test_publish_errors_map_to_the_taxonomy(
    harness: Harness, kind: str, options: dict[str, Any], error: type[ConnectorError], code: str
) -> None:
    """Each injected publish fault surfaces as its Bulletin error, with its code, and creates
    no post."""
    if kind == "duplicate" and not harness.refuses_duplicates:
        pytest.skip(f"{harness.platform} has no duplicate-content refusal")
    harness.control.fault(kind, harness.create_path, method="POST", **options)
    with pytest.raises(error) as caught:
        harness.connector.publish(harness.post("A notice that meets a fault"))
    assert caught.value.code == code
    assert harness.created() == 0


def test_rate_limited_carries_retry_after(harness: Harness) -> None:
    """A rate limit far beyond the in-call budget is raised with the platform's reset time."""
    harness.control.fault("rate_limit", harness.create_path, method="POST", seconds=3600)
    with pytest.raises(RateLimited) as caught:
        harness.connector.publish(harness.post("Rate limited notice"))
    assert caught.value.retry_after is not None
    wait = caught.value.retry_after - datetime.now(UTC)
    assert timedelta(minutes=50) < wait < timedelta(minutes=70)


def test_malformed_read_keeps_the_raw_answer(harness: Harness) -> None:
    """An unparsable listing raises MalformedResponse holding the bytes received."""
    harness.control.fault("malformed", harness.read_path, method="GET", count=9)
    with pytest.raises(MalformedResponse) as caught:
        harness.connector.list_posts()
    assert caught.value.raw.startswith(b'{"data"')


def test_read_timeout_is_retryable(harness: Harness) -> None:
    """A read that times out is retried and, when it keeps timing out, raised as Retryable."""
    harness.control.fault("timeout", harness.read_path, method="GET", seconds=1.0, count=9)
    connector = harness.build(retry=RetryPolicy(attempts=2, initial_wait=0.01), timeout=(2.0, 0.2))
    with pytest.raises(Retryable):
        connector.list_posts()


def test_wrong_credentials_raise_auth_error(harness: Harness) -> None:
    """Credentials the platform does not know raise AuthError; check() says which line failed."""
    if harness.platform == "x":
        harness.control.post("x/accounts", {"consumer_key": "other", "access_token": "other"})
        harness.control.post("reset")
    harness.control.fault("expired_token", "", count=20)
    with pytest.raises(AuthError):
        harness.connector.list_posts()
    lines = harness.connector.check()
    assert lines
    assert not lines[0].ok


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_every_registered_platform_is_whole(name: str) -> None:
    """A registered platform's spec, settings model, connector class and sandbox API agree on
    its name, and the configuration accepts accounts of it."""
    spec = PLATFORMS[name]
    assert spec.name == name and name in ACCOUNT_PLATFORMS
    platform_field: object = spec.settings.model_fields["platform"].annotation
    assert platform_field == Literal[name]
    assert spec.connector_class().platform == name
    assert spec.limits().max_length > 0 and spec.measure("abc") == 3
    if spec.sandbox:
        assert hasattr(spec.sandbox_class(), "handle")
    assert set(PLATFORMS) == set(ACCOUNT_PLATFORMS)
