"""The sandbox's world: accounts, posts, comments and counters, persisted to one JSON file.

Every change is written atomically (temporary file, fsync, rename) before the request that
made it is answered, so a restart of the sandbox never looks like mass deletion.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulletin.files import write_atomically
from bulletin.timeparse import iso_utc, parse_iso

# A well-known set of fake credentials, accepted by every sandbox out of the box. They are
# public on purpose: the sandbox holds nothing of value.
DEFAULT_X_ACCOUNT: dict[str, Any] = {
    "id": "1500000000000000001",
    "username": "bulletin_sandbox",
    "name": "Bulletin Sandbox",
    "consumer_key": "sandbox-consumer-key",
    "consumer_secret": "sandbox-consumer-secret",
    "access_token": "sandbox-access-token",
    "access_token_secret": "sandbox-access-token-secret",
    "access_level": "read-write",
    "bearer_token": "sandbox-bearer-token",
}
DEFAULT_FB_PAGE: dict[str, Any] = {
    "id": "100000000000001",
    "name": "Bulletin Sandbox Page",
    "page_token": "sandbox-page-token",
    "user_token": "sandbox-user-token",
    "user_id": "100000000000900",
    "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE"],
    "subscribed_fields": (),  # webhook fields of the installed app (subscribed_apps)
}
DEFAULT_MASTODON_ACCOUNT: dict[str, Any] = {
    "id": "109000000000000001",
    "username": "bulletin_sandbox",
    "acct": "bulletin_sandbox",
    "display_name": "Bulletin Sandbox",
    "access_token": "sandbox-mastodon-token",
}
DEFAULT_BLUESKY_ACCOUNT: dict[str, Any] = {
    "did": "did:plc:bulletinsandbox00000000",
    "handle": "bulletin.sandbox.test",
    "displayName": "Bulletin Sandbox",
    "password": "sandbox-app-password",
}
DEFAULT_THREADS_PROFILE: dict[str, Any] = {
    "id": "27000000000000001",
    "username": "bulletin_sandbox",
    "name": "Bulletin Sandbox",
    "access_token": "sandbox-threads-token",
}
DEFAULT_IG_ACCOUNT: dict[str, Any] = {
    "id": "17841400000000001",
    "username": "bulletin_sandbox",
    "name": "Bulletin Sandbox",
    "access_token": "sandbox-instagram-token",
}

# The environment variables the embedded default configuration names for its sandbox
# accounts, with the well-known values every sandbox accepts (used when they are unset).
SANDBOX_ENV: dict[str, str] = {
    "SANDBOX_X_CONSUMER_KEY": DEFAULT_X_ACCOUNT["consumer_key"],
    "SANDBOX_X_CONSUMER_SECRET": DEFAULT_X_ACCOUNT["consumer_secret"],
    "SANDBOX_X_ACCESS_TOKEN": DEFAULT_X_ACCOUNT["access_token"],
    "SANDBOX_X_ACCESS_TOKEN_SECRET": DEFAULT_X_ACCOUNT["access_token_secret"],
    "SANDBOX_X_BEARER_TOKEN": DEFAULT_X_ACCOUNT["bearer_token"],
    "SANDBOX_FACEBOOK_PAGE_TOKEN": DEFAULT_FB_PAGE["page_token"],
    "SANDBOX_MASTODON_TOKEN": DEFAULT_MASTODON_ACCOUNT["access_token"],
    "SANDBOX_BLUESKY_APP_PASSWORD": DEFAULT_BLUESKY_ACCOUNT["password"],
    "SANDBOX_THREADS_TOKEN": DEFAULT_THREADS_PROFILE["access_token"],
    "SANDBOX_INSTAGRAM_TOKEN": DEFAULT_IG_ACCOUNT["access_token"],
}

X_ID_BASE = 1_900_000_000_000_000_000
FB_ID_BASE = 800_000_000_000


def now_ts() -> float:
    """Seconds since the epoch, as the sandbox stamps everything."""
    return datetime.now(UTC).timestamp()


def x_time(ts: float) -> str:
    """X's ``created_at``: ISO 8601 UTC with milliseconds, e.g. ``2026-11-25T15:00:00.000Z``."""
    return iso_utc(datetime.fromtimestamp(ts, UTC), "milliseconds")


def graph_time(ts: float) -> str:
    """Graph's ``created_time``: ``2026-11-25T15:00:00+0000``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_time(text: str) -> float:
    """An ISO 8601 time (``Z`` or offset) as epoch seconds."""
    return parse_iso(text).timestamp()


def _person_id(name: str) -> str:
    """A stable numeric id for a visitor name."""
    return str(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16))


def fresh_state() -> dict[str, Any]:
    """The state of a new sandbox: one X account and one Facebook Page, nothing posted."""
    return {
        "version": 1,
        "next_x": 1,
        "next_fb": 1,
        "x": {
            "accounts": {DEFAULT_X_ACCOUNT["id"]: dict(DEFAULT_X_ACCOUNT)},
            "visitors": {},
            "tweets": {},
            "media": {},
        },
        "fb": {
            "pages": {DEFAULT_FB_PAGE["id"]: dict(DEFAULT_FB_PAGE)},
            "posts": {},
            "comments": {},
        },
        "received": {},
        "settings": {"enforce_rate_limits": True, "x_stream_keepalive": 20.0},
    }


class SandboxState:
    """The sandbox's data behind one lock; ``save()`` after every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        # told of every comment change (the comment, the webhook verb): Page webhooks
        self.comment_listeners: list[Callable[[dict[str, Any], str], None]] = []
        self.tweet_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.data: dict[str, Any] = fresh_state()
        if path is not None and path.exists():
            self.data = json.loads(path.read_text("utf-8"))

    # -- persistence -----------------------------------------------------------------------
    def save(self) -> None:
        """Write the state atomically; a crash leaves the old file or the new one, whole."""
        if self.path is None:
            return
        with self.lock:
            payload = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, payload.encode("utf-8"))

    def comment_changed(self, comment: dict[str, Any], verb: str) -> None:
        """Tell the listeners that ``comment`` changed: add, edited, hide, unhide, remove."""
        for listener in list(self.comment_listeners):
            listener(comment, verb)

    def reset(self) -> None:
        """Back to a fresh sandbox (accounts at their defaults, nothing posted)."""
        with self.lock:
            self.data = fresh_state()
            self.save()

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of everything, for the control API."""
        with self.lock:
            return copy.deepcopy(self.data)

    # -- identifiers -----------------------------------------------------------------------
    def new_x_id(self) -> str:
        """The next X id; ids grow with time as X's snowflake ids do."""
        with self.lock:
            n = int(self.data["next_x"])
            self.data["next_x"] = n + 1
            return str(X_ID_BASE + n)

    def new_fb_id(self) -> str:
        """The next Graph object number."""
        with self.lock:
            n = int(self.data["next_fb"])
            self.data["next_fb"] = n + 1
            return str(FB_ID_BASE + n)

    # -- counters --------------------------------------------------------------------------
    def count(self, account: str, what: str) -> None:
        """Add one to ``received[account][what]`` (e.g. create requests, posts created)."""
        with self.lock:
            bucket = self.data["received"].setdefault(account, {})
            bucket[what] = int(bucket.get(what, 0)) + 1

    # -- X ---------------------------------------------------------------------------------
    @property
    def x(self) -> dict[str, Any]:
        return self.data["x"]  # type: ignore[no-any-return]

    @property
    def fb(self) -> dict[str, Any]:
        return self.data["fb"]  # type: ignore[no-any-return]

    def x_account_for(self, consumer_key: str, token: str) -> dict[str, Any] | None:
        """The X account whose consumer key and access token these are."""
        with self.lock:
            for account in self.x["accounts"].values():
                if account["consumer_key"] == consumer_key and account["access_token"] == token:
                    return account  # type: ignore[no-any-return]
        return None

    def x_user(self, user_id: str) -> dict[str, Any] | None:
        """An account or a visitor, by id."""
        with self.lock:
            found = self.x["accounts"].get(user_id) or self.x["visitors"].get(user_id)
            return found  # type: ignore[no-any-return]

    def x_visitor(self, username: str) -> dict[str, Any]:
        """The visitor called ``username``, created on first use."""
        with self.lock:
            for visitor in self.x["visitors"].values():
                if visitor["username"] == username:
                    return visitor  # type: ignore[no-any-return]
            visitor = {"id": self.new_x_id(), "username": username, "name": username}
            self.x["visitors"][visitor["id"]] = visitor
            return visitor

    def add_x_media(self, owner: str, url: str, alt_text: str | None) -> str:
        """A visitor's image hosted at ``url`` (with its alt text, if any); its media id."""
        with self.lock:
            media_id = self.new_x_id()
            media: dict[str, Any] = {"id": media_id, "owner": owner, "url": url}
            if alt_text:
                media["alt_text"] = str(alt_text)
            self.x["media"][media_id] = media
            return media_id

    def add_tweet(
        self,
        author_id: str,
        text: str,
        reply_to: str | None = None,
        ts: float | None = None,
        media_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Store a new tweet; a reply joins its parent's conversation."""
        with self.lock:
            tweet_id = self.new_x_id()
            tweet: dict[str, Any] = {
                "id": tweet_id,
                "text": text,
                "author_id": author_id,
                "ts": now_ts() if ts is None else ts,
                "conversation_id": tweet_id,
                "edit_history_tweet_ids": [tweet_id],
                "hidden": False,
                "deleted": False,
            }
            if reply_to is not None:
                parent = self.x["tweets"][reply_to]
                tweet["conversation_id"] = parent["conversation_id"]
                tweet["in_reply_to_user_id"] = parent["author_id"]
                tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            if media_ids:
                tweet["attachments"] = {"media_keys": [f"3_{m}" for m in media_ids]}
            self.x["tweets"][tweet_id] = tweet
        for listener in list(self.tweet_listeners):
            listener(tweet)
        return tweet

    def live_tweets(self) -> list[dict[str, Any]]:
        """Tweets not deleted, newest first."""
        with self.lock:
            tweets = [t for t in self.x["tweets"].values() if not t["deleted"]]
        return sorted(tweets, key=lambda t: int(t["id"]), reverse=True)

    # -- Facebook --------------------------------------------------------------------------
    def fb_token(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """``("page", page)`` or ``("user", page)`` for a known token; None otherwise."""
        with self.lock:
            for page in self.fb["pages"].values():
                if token == page["page_token"]:
                    return "page", page
                if token == page["user_token"]:
                    return "user", page
        return None

    def add_fb_post(self, page_id: str, message: str, link: str | None = None) -> dict[str, Any]:
        """Store a Page post; its id is ``{page-id}_{number}`` as Graph gives."""
        with self.lock:
            post_id = f"{page_id}_{self.new_fb_id()}"
            post: dict[str, Any] = {
                "id": post_id,
                "page_id": page_id,
                "message": message,
                "ts": now_ts(),
                "deleted": False,
            }
            if link:
                post["link"] = link
            self.fb["posts"][post_id] = post
            return post

    def add_fb_comment(
        self,
        post_id: str,
        message: str,
        author: str,
        parent_id: str | None = None,
        ts: float | None = None,
    ) -> dict[str, Any]:
        """Store a visitor comment (or a reply when ``parent_id`` names a comment)."""
        with self.lock:
            if post_id not in self.fb["posts"]:
                raise KeyError(f"no post {post_id}")
            number = post_id.split("_", 1)[1]
            comment_id = f"{number}_{self.new_fb_id()}"
            comment: dict[str, Any] = {
                "id": comment_id,
                "post_id": post_id,
                "message": message,
                "from": {"id": _person_id(author), "name": author},
                "ts": now_ts() if ts is None else ts,
                "is_hidden": False,
                "deleted": False,
            }
            if parent_id is not None:
                comment["parent_id"] = parent_id
            self.fb["comments"][comment_id] = comment
            return comment
