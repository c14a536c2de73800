"""Threads profiles through facebook-sdk's ``GraphAPI`` on ``graph.threads.net``.

Publishing is Meta's two steps (https://developers.facebook.com/docs/threads/posts):
``POST /{threads-user-id}/threads`` makes a media container, ``POST
/{threads-user-id}/threads_publish`` publishes it. Exactly once: the container is written to
the account's :class:`~bulletin.connectors.meta.ContainerJournal` (in the data directory)
before it is published, and a later attempt of the same delivery, after a failure or a
crash, asks the container's ``status`` and publishes that container instead of making
another; one already ``PUBLISHED`` is looked up by its text. After an ambiguous publish step
the account's posts are searched for the text first, as for every platform.

Limits: 500 characters, emojis counted as their UTF-8 bytes; one image (sent by URL, with
``alt_text``); text-only posts allowed. Threads allows 250 posts and 1,000 replies per 24
hours (https://developers.facebook.com/docs/threads/overview#rate-limiting): the usage is
read from ``threads_publishing_limit`` before each publish and a spent quota is refused
then, with the wait, instead of by the publish step.

Replies (corrections, follow-ups) are posts with ``reply_to_id``; visitors' replies are read
from ``/{media-id}/conversation`` (every depth) and hidden with ``manage_reply``
(https://developers.facebook.com/docs/threads/retrieve-and-manage-replies); the account's
own posts are deleted with ``DELETE /{threads-media-id}``
(https://developers.facebook.com/docs/threads/posts/delete-posts). Threads cannot delete a
visitor's reply.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from bulletin.clock import Clock, SystemClock
from bulletin.config.accounts import ThreadsAccountSettings
from bulletin.config.secrets import Secret, resolve_secret
from bulletin.config.settings import Settings
from bulletin.connectors._common import comparable_text, parse_platform_time
from bulletin.connectors.base import (
    IMAGE_EXTENSIONS,
    CheckLine,
    Connector,
    Limits,
    Media,
    OutgoingPost,
    Page,
    PublishResult,
    Reject,
    RemoteItem,
    json_bytes,
)
from bulletin.connectors.http import DEFAULT_TIMEOUT, Timeout, fetch_bytes
from bulletin.connectors.meta import ContainerJournal, GraphClient, journal_path
from bulletin.connectors.retry import RetryPolicy
from bulletin.errors import (
    Ambiguous,
    ConnectorError,
    Gone,
    MalformedResponse,
    RateLimited,
    Retryable,
)

HOST = "https://graph.threads.net"
MAX_LENGTH = 500
POST_LIMIT = 250  # per 24 hours, when threads_publishing_limit does not say
REPLY_LIMIT = 1000
QUOTA_RETRY = timedelta(hours=1)  # the window moves: look again in an hour
POST_FIELDS = "id,text,timestamp,permalink,username,media_type,media_url,alt_text,shortcode"
REPLY_FIELDS = (
    "id,text,timestamp,permalink,username,media_type,media_url,alt_text,"
    "replied_to,root_post,is_reply,is_reply_owned_by_me,hide_status,has_replies"
)
CONTAINER_FIELDS = "id,status,error_message"


def threads_length(text: str) -> int:
    """Length as Threads counts it: characters, an emoji as its UTF-8 bytes."""
    total = 0
    for char in unicodedata.normalize("NFC", text):
        emoji = unicodedata.category(char) == "So" or ord(char) >= 0x1F000
        total += len(char.encode("utf-8")) if emoji else 1
    return total


class ThreadsConnector(Connector):
    """One Threads profile. The token is held as a :class:`Secret`."""

    platform: ClassVar[str] = "threads"

    def __init__(
        self,
        name: str,
        *,
        user_id: str,
        token: Secret,
        base_url: str = "",
        api_version: str = "v1.0",
        media_base_url: str = "",
        journal: Path | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name)
        self.user_id = user_id
        self.clock = clock or SystemClock()
        self.retry = (retry or RetryPolicy()).on_clock(clock)
        self.media_base_url = media_base_url.rstrip("/")
        self.journal = ContainerJournal(journal)
        self._client = GraphClient(
            name,
            token=token,
            host=HOST,
            label="Threads",
            base_url=base_url,
            version=api_version,
            retry=self.retry,
            timeout=timeout,
            clock=self.clock,
        )
        self._username: str | None = None

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: Settings,
        environ: Mapping[str, str],
        *,
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> ThreadsConnector:
        """Build from ``[accounts.NAME]``; :raises AuthError: the token variable is unset."""
        account = settings.account(name, ThreadsAccountSettings)
        return cls(
            name,
            user_id=account.user_id,
            token=resolve_secret(account.token_env, environ, name),
            base_url=account.base_url,
            api_version=account.api_version,
            media_base_url=account.media_base_url,
            journal=journal_path(settings.data_dir, name),
            retry=retry,
            timeout=timeout,
            clock=clock,
        )

    # -- capabilities ----------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(
            max_length=MAX_LENGTH, max_media=1, supports_comments=True, supports_hide=True
        )

    def measure(self, text: str) -> int:
        return threads_length(text)

    def problems(self, post: OutgoingPost) -> list[str]:
        found = super().problems(post)
        # getattr: PlatformSpec measures with an uninitialised connector (no settings)
        if post.media and not getattr(self, "media_base_url", ""):
            found.append(
                "Threads fetches images by URL and this account has no media_base_url: "
                "post without the image or set where approved images are served"
            )
        return found

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """Create a container and publish it, at most once (see the module notes).

        :raises RateLimited: the 24-hour quota of posts (or replies) is spent.
        """
        return self.retry.publish(self, post, self._publish_once)

    def quota(self) -> dict[str, Any]:
        """``threads_publishing_limit``: the posts and replies published in the last 24
        hours and their allowances (``quota_usage``, ``config``, ``reply_quota_usage``,
        ``reply_config``)."""
        body = self._client.get(
            "read publishing limit",
            f"{self.user_id}/threads_publishing_limit",
            fields="quota_usage,config,reply_quota_usage,reply_config",
        )
        rows = GraphClient.data(body, "Threads")
        if not rows:
            raise MalformedResponse("Threads' publishing limit is empty", raw=json_bytes(body))
        return rows[0]

    def _check_quota(self, reply: bool) -> None:
        row = self.quota()
        used_key, config_key, default = (
            ("reply_quota_usage", "reply_config", REPLY_LIMIT)
            if reply
            else ("quota_usage", "config", POST_LIMIT)
        )
        try:
            used = int(row.get(used_key) or 0)
            total = int((row.get(config_key) or {}).get("quota_total") or default)
        except (TypeError, ValueError, AttributeError):
            raise MalformedResponse(
                "Threads' publishing limit is not numbers", raw=json_bytes(row)
            ) from None
        if used >= total:
            what = "replies" if reply else "posts"
            raise RateLimited(
                f"account {self.name}: Threads allows {total} {what} per 24 hours and "
                f"{used} were published; the post waits until the quota frees",
                self.clock.now() + QUOTA_RETRY,
                code="publishing-limit",
            )

    def _image_url(self, image: Media) -> str:
        digest = hashlib.sha256(image.data).hexdigest()
        return f"{self.media_base_url}/{digest}.{IMAGE_EXTENSIONS.get(image.mime_type, 'jpg')}"

    def _container(self, post: OutgoingPost) -> str:
        """The container of ``post``: the journal's when it can still be published, else a
        new one (written to the journal before anything else happens)."""
        known = self.journal.get(post.key)
        if known is not None:
            body = self._client.read("read container", known, CONTAINER_FIELDS)
            status = str((body or {}).get("status") or "")
            if status in ("FINISHED", "IN_PROGRESS"):
                if status == "IN_PROGRESS":
                    raise Retryable(f"account {self.name}: the Threads container is not ready")
                return known
            if status == "PUBLISHED":
                raise Ambiguous(
                    f"account {self.name}: the Threads container {known} was published "
                    "and its post is not found yet"
                )
            self.journal.drop(post.key)  # EXPIRED, ERROR or gone: make a new one
        text = unicodedata.normalize("NFC", post.text)
        args: dict[str, Any] = {"media_type": "TEXT", "text": text}
        if post.media:
            image = post.media[0]
            args.update(media_type="IMAGE", image_url=self._image_url(image))
            if image.alt_text:
                args["alt_text"] = image.alt_text
        elif post.link:
            args["link_attachment"] = post.link
        if post.reply_to:
            args["reply_to_id"] = post.reply_to
        result = self._client.request(
            "create container", f"{self.user_id}/threads", post_args=args, write=True
        )
        container = result.get("id") if isinstance(result, dict) else None
        if not container:
            raise MalformedResponse(
                "Threads' container answer has no id", raw=self._client.raw(result)
            )
        self.journal.put(post.key, str(container))
        return str(container)

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        self._check_quota(reply=bool(post.reply_to))
        container = self._container(post)
        result = self._client.request(
            "publish",
            f"{self.user_id}/threads_publish",
            post_args={"creation_id": container},
            write=True,
        )
        media_id = result.get("id") if isinstance(result, dict) else None
        if not media_id:
            raise MalformedResponse(
                "Threads' publish answer has no id", raw=self._client.raw(result)
            )
        self.journal.drop(post.key)
        try:
            body = self._client.read("read post", str(media_id), POST_FIELDS)
        except ConnectorError:
            body = None
        if body is None:
            return PublishResult(str(media_id), None, self.clock.now(), json_bytes(result))
        item = self._post_item(body)
        return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)

    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """The profile's post (or, for a reply, its reply in that conversation) with
        ``post``'s text, created at or after ``since``."""
        wanted = comparable_text(post.text)
        if post.reply_to:
            for item in self.iter_comments(post.reply_to):
                if item.kind != "post" or comparable_text(item.text) != wanted:
                    continue
                if item.posted_at is not None and item.posted_at < since:
                    continue
                return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
            return None
        cursor: str | None = None
        while True:
            page = self._posts(cursor, since)
            for item in page.items:
                if comparable_text(item.text) == wanted:
                    return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor

    # -- reading ---------------------------------------------------------------------------
    def _posts(self, cursor: str | None, since: datetime | None = None) -> Page:
        args: dict[str, Any] = {"fields": POST_FIELDS, "limit": 100}
        if cursor:
            args["after"] = cursor
        if since is not None:
            args["since"] = str(math.floor(since.timestamp()))
        body = self._client.get("list posts", f"{self.user_id}/threads", **args)
        items, rejects = [], []
        for row in GraphClient.data(body, "Threads"):
            try:
                items.append(self._post_item(row))
            except (KeyError, TypeError, ValueError) as e:
                ident = row.get("id")
                rejects.append(
                    Reject(json_bytes(row), f"{type(e).__name__}: {e}", ident and str(ident))
                )
        return Page(items, GraphClient.next_cursor(body), rejects)

    @staticmethod
    def _check_text(row: dict[str, Any]) -> str:
        text = row.get("text", "")
        if not isinstance(text, str):
            raise ValueError("an item whose text is not a string")
        return text

    def _extra(self, row: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if row.get("media_type") == "IMAGE" and isinstance(row.get("media_url"), str):
            extra["attachment_urls"] = [row["media_url"]]
            extra["attachment_alt_texts"] = [row.get("alt_text")]
        if row.get("username"):
            extra["username"] = row["username"]
        return extra

    def _post_item(self, row: dict[str, Any]) -> RemoteItem:
        text = self._check_text(row)
        return RemoteItem(
            kind="post",
            remote_id=str(row["id"]),
            text=text,
            author=str(row.get("username") or self.user_id),
            posted_at=parse_platform_time(row.get("timestamp")),
            url=row.get("permalink"),
            thread_id=str(row["id"]),
            extra=self._extra(row),
            raw=json_bytes(row),
        )

    def _reply_item(self, row: dict[str, Any], thread_id: str) -> RemoteItem:
        """A reply in a conversation; the profile's own replies are posts."""
        text = self._check_text(row)
        parent = (row.get("replied_to") or {}).get("id")
        mine = bool(row.get("is_reply_owned_by_me"))
        return RemoteItem(
            kind="post" if mine else "comment",
            remote_id=str(row["id"]),
            text=text,
            author=row.get("username"),
            posted_at=parse_platform_time(row.get("timestamp")),
            url=row.get("permalink"),
            parent_id=str(parent) if parent else thread_id,
            thread_id=thread_id,
            state="hidden" if row.get("hide_status") == "HIDDEN" else "visible",
            extra=self._extra(row),
            raw=json_bytes(row),
        )

    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        """The profile's posts, newest first, 100 a page; stops at ``since_id``."""
        page = self._posts(cursor)
        if since_id is None:
            return page
        items: list[RemoteItem] = []
        for item in page.items:
            if item.remote_id == since_id:
                return Page(items, None, page.rejects)
            items.append(item)
        return Page(items, page.next_cursor, page.rejects)

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Every reply in ``post_id``'s conversation, every depth, oldest first."""
        args: dict[str, Any] = {"fields": REPLY_FIELDS, "limit": 100, "reverse": "false"}
        if cursor:
            args["after"] = cursor
        body = self._client.get("list replies", f"{post_id}/conversation", **args)
        items, rejects = [], []
        for row in GraphClient.data(body, "Threads"):
            if "id" not in row:
                rejects.append(Reject(json_bytes(row), "a reply without an id"))
                continue
            try:
                items.append(self._reply_item(row, post_id))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                rejects.append(Reject(json_bytes(row), f"{type(e).__name__}: {e}", str(row["id"])))
        return Page(items, GraphClient.next_cursor(body), rejects)

    def fetch_comment(self, thread_id: str, comment_id: str) -> RemoteItem | None:
        """A reply read directly (``GET /{reply-id}``); None when Threads has it no more."""
        body = self._client.read("read reply", comment_id, REPLY_FIELDS)
        return None if body is None else self._reply_item(body, thread_id)

    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The profile's post (or, with ``reply_to``, its reply), read by id; None when gone."""
        if reply_to:
            body = self._client.read("read reply", remote_id, REPLY_FIELDS)
            if body is None:
                return None
            root = (body.get("root_post") or {}).get("id")
            return self._reply_item(body, str(root) if root else reply_to)
        body = self._client.read("read post", remote_id, POST_FIELDS)
        return None if body is None else self._post_item(body)

    def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        return fetch_bytes(self._client.session, url, max_bytes, self._client.timeout)

    # -- moderation ------------------------------------------------------------------------
    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or unhide) a reply to one of the profile's posts (``manage_reply``)."""
        value = "true" if hidden else "false"
        self.retry.call(
            self.name,
            "hide reply",
            lambda: self._client.request(
                "hide reply", f"{comment_id}/manage_reply", post_args={"hide": value}
            ),
        )

    def delete_post(self, post_id: str) -> None:
        """Delete one of the profile's posts or replies; one already gone counts as deleted."""

        def once() -> None:
            with contextlib.suppress(Gone):
                self._client.request("delete post", post_id, method="DELETE")

        self.retry.call(self.name, "delete post", once)

    def check(self) -> list[CheckLine]:
        """The token's profile, reading posts, the publishing quota."""
        try:
            me = self._client.get("token (me)", "me", fields="id,username")
        except ConnectorError as e:
            return [CheckLine("token (me)", False, str(e))]
        if str(me.get("id")) != self.user_id:
            return [
                CheckLine(
                    "token (me)",
                    False,
                    f"this token is for Threads user {me.get('id')}, not {self.user_id}",
                )
            ]
        lines = [CheckLine("token (me)", True, f"Threads profile @{me.get('username')}")]
        try:
            self._posts(None)
            lines.append(CheckLine("read posts", True))
        except ConnectorError as e:
            return [*lines, CheckLine("read posts", False, str(e))]
        try:
            row = self.quota()
            lines.append(
                CheckLine(
                    "publishing limit",
                    True,
                    f"{row.get('quota_usage', 0)} posts and {row.get('reply_quota_usage', 0)} "
                    "replies in the last 24 hours",
                )
            )
        except ConnectorError as e:
            lines.append(CheckLine("publishing limit", False, str(e)))
        return lines

    def close(self) -> None:
        self._client.close()
