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

import math
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Unpack

from bulletin.config.accounts import ThreadsAccountSettings
from bulletin.connectors._common import parse_platform_time
from bulletin.connectors.base import (
    CheckLine,
    Limits,
    OutgoingPost,
    Page,
    Reject,
    RemoteItem,
    json_bytes,
)
from bulletin.connectors.meta import (
    ContainerConnector,
    GraphClient,
    GraphOptions,
)
from bulletin.errors import ConnectorError

HOST = "https://graph.threads.net"
MAX_LENGTH = 500
POST_LIMIT = 250  # per 24 hours, when threads_publishing_limit does not say
REPLY_LIMIT = 1000
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


class ThreadsConnector(ContainerConnector):
    """One Threads profile. The token is held as a :class:`Secret`."""

    platform: ClassVar[str] = "threads"
    host: ClassVar[str] = HOST
    label: ClassVar[str] = "Threads"
    settings_type = ThreadsAccountSettings
    settings_fields = ("user_id", "api_version", "media_base_url")
    container_edge: ClassVar[str] = "threads"
    status_field: ClassVar[str] = "status"
    container_fields: ClassVar[str] = CONTAINER_FIELDS
    post_fields: ClassVar[str] = POST_FIELDS
    quota_edge: ClassVar[str] = "threads_publishing_limit"
    quota_fields: ClassVar[str] = "quota_usage,config,reply_quota_usage,reply_config"

    def __init__(
        self,
        name: str,
        *,
        user_id: str,
        media_base_url: str = "",
        api_version: str = "v1.0",
        journal: Path | None = None,
        **options: Unpack[GraphOptions],
    ) -> None:
        super().__init__(name, user_id, media_base_url, journal, version=api_version, **options)
        self.user_id = user_id
        self._username: str | None = None

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
    def _check_quota(self, post: OutgoingPost) -> None:
        """The quota of replies for a reply, of posts otherwise."""
        if post.reply_to:
            self._enforce_quota(
                "reply_quota_usage", "reply_config", REPLY_LIMIT, "Threads allows {total} replies"
            )
        else:
            self._enforce_quota("quota_usage", "config", POST_LIMIT, "Threads allows {total} posts")

    def _container_args(self, post: OutgoingPost) -> dict[str, Any]:
        """Text, or an image (by URL, with alt text), or a link; ``reply_to_id`` for a reply."""
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
        return args

    # -- reading ---------------------------------------------------------------------------
    def _posts(self, cursor: str | None, since: datetime | None = None) -> Page:
        args: dict[str, Any] = {"fields": POST_FIELDS, "limit": 100}
        if cursor:
            args["after"] = cursor
        if since is not None:
            args["since"] = str(math.floor(since.timestamp()))
        return self._post_page(self._client.get("list posts", f"{self.user_id}/threads", **args))

    def _recent_posts(self, cursor: str | None, since: datetime) -> Page:
        """Threads filters by ``since`` itself."""
        return self._posts(cursor, since)

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
        self._delete("delete post", post_id)

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
