"""Instagram professional accounts (Instagram API with Facebook Login) through facebook-sdk's
``GraphAPI`` on ``graph.facebook.com``.

Publishing is Meta's two steps
(https://developers.facebook.com/docs/instagram-platform/content-publishing): ``POST
/{ig-user-id}/media`` makes an image container (``image_url``, ``caption``, ``alt_text``),
``POST /{ig-user-id}/media_publish`` publishes it. Exactly once as for Threads: the container
is written to the account's journal before it is published, and a later attempt of the same
delivery publishes that container (``status_code`` FINISHED) instead of making another.

Every post carries one image, which Instagram fetches from a public URL: the account's
``media_base_url`` joined with the image's SHA-256 (the agency serves its approved images
there). The caption holds at most 2,200 characters and 30 hashtags
(https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media).
The account's publishing limit is read from ``GET /{ig-user-id}/content_publishing_limit``
before each publish, and a spent quota is refused then, with the wait.

Follow-ups and corrections are the account's comments on its post (``POST
/{ig-media-id}/comments``); visitors' comments and their replies are read from
``/{ig-media-id}/comments`` with the ``replies`` edge and ``hidden``, hidden with ``POST
/{ig-comment-id}?hide=true`` and deleted with ``DELETE /{ig-comment-id}``
(https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-comment).
Instagram's API cannot delete a published post (IG Media has no delete): a retraction is
posted as a comment instead.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, ClassVar, Unpack

from bulletin.config.accounts import InstagramAccountSettings
from bulletin.connectors._common import parse_platform_time
from bulletin.connectors.base import (
    CheckLine,
    Limits,
    OutgoingPost,
    Page,
    PublishResult,
    Reject,
    RemoteItem,
    json_bytes,
)
from bulletin.connectors.meta import (
    ContainerConnector,
    GraphClient,
    GraphOptions,
)
from bulletin.errors import ConnectorError, Refused, Rejected

HOST = "https://graph.facebook.com"
MAX_CAPTION = 2200
MAX_HASHTAGS = 30
DEFAULT_QUOTA = 100  # per 24 hours, when content_publishing_limit gives no config
HASHTAG = re.compile(r"(?<![\w&])#\w+")
MEDIA_FIELDS = "id,caption,media_type,media_url,alt_text,permalink,timestamp,username"
COMMENT_FIELDS = "id,text,timestamp,username,from,hidden,parent_id,like_count"
REPLY_FIELDS = f"{COMMENT_FIELDS},replies{{{COMMENT_FIELDS}}}"


class InstagramConnector(ContainerConnector):
    """One Instagram professional account. The token is held as a :class:`Secret`."""

    platform: ClassVar[str] = "instagram"
    host: ClassVar[str] = HOST
    label: ClassVar[str] = "Instagram"
    settings_type = InstagramAccountSettings
    settings_fields = ("ig_user_id", "media_base_url", "graph_version")
    container_edge: ClassVar[str] = "media"
    status_field: ClassVar[str] = "status_code"
    container_fields: ClassVar[str] = "id,status_code"
    post_fields: ClassVar[str] = MEDIA_FIELDS
    quota_edge: ClassVar[str] = "content_publishing_limit"
    quota_fields: ClassVar[str] = "quota_usage,config"

    def __init__(
        self,
        name: str,
        *,
        ig_user_id: str,
        media_base_url: str,
        graph_version: str = "v26.0",
        journal: Path | None = None,
        **options: Unpack[GraphOptions],
    ) -> None:
        super().__init__(
            name, ig_user_id, media_base_url, journal, version=graph_version, **options
        )
        self.ig_user_id = ig_user_id

    # -- capabilities ----------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(
            max_length=MAX_CAPTION,
            max_media=1,
            supports_comments=True,
            supports_hide=True,
            supports_delete_comment=True,
            supports_delete=False,
            requires_media=True,
        )

    def measure(self, text: str) -> int:
        return len(unicodedata.normalize("NFC", text))

    def problems(self, post: OutgoingPost) -> list[str]:
        """Besides length: an image is required (not on a comment), 30 hashtags at most."""
        found = super().problems(post)
        if not post.reply_to and not post.media:
            found.append("an Instagram post needs an image (with its alt text)")
        tags = len(HASHTAG.findall(post.text))
        if tags > MAX_HASHTAGS:
            found.append(f"text has {tags} hashtags, Instagram allows {MAX_HASHTAGS}")
        return found

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """An image post (container, then publish) or, with ``reply_to``, a comment of the
        account on that post; at most once.

        :raises RateLimited: the account's publishing limit for 24 hours is spent.
        """
        return self.retry.publish(self, post, self._publish_once)

    def _check_quota(self, post: OutgoingPost) -> None:
        self._enforce_quota(
            "quota_usage", "config", DEFAULT_QUOTA, "Instagram allows this account {total} posts"
        )

    def _container_args(self, post: OutgoingPost) -> dict[str, Any]:
        """The image (by URL), its caption and alt text. :raises Rejected: no image."""
        if not post.media:
            raise Rejected(
                f"account {self.name}: an Instagram post needs an image (with its alt text)",
                code="needs-image",
            )
        image = post.media[0]
        args: dict[str, Any] = {
            "image_url": self._image_url(image),
            "caption": unicodedata.normalize("NFC", post.text),
        }
        if image.alt_text:
            args["alt_text"] = image.alt_text
        return args

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        if post.reply_to:
            return self._comment(post)
        return super()._publish_once(post)

    def _comment(self, post: OutgoingPost) -> PublishResult:
        """The account's comment on its post (a follow-up or correction)."""
        text = unicodedata.normalize("NFC", post.text)
        result = self._client.request(
            "comment", f"{post.reply_to}/comments", post_args={"message": text}, write=True
        )
        comment_id = self._client.answer_id(result, "comment")
        raw = self._client.raw(result)
        return PublishResult(comment_id, None, self.clock.now(), raw)

    # -- reading ---------------------------------------------------------------------------
    @staticmethod
    def _text(row: dict[str, Any], field: str) -> str:
        text = row.get(field, "")
        if not isinstance(text, str):
            raise ValueError(f"an item whose {field} is not a string")
        return text

    def _posts(self, cursor: str | None) -> Page:
        args: dict[str, Any] = {"fields": MEDIA_FIELDS, "limit": 100}
        if cursor:
            args["after"] = cursor
        return self._post_page(self._client.get("list posts", f"{self.ig_user_id}/media", **args))

    def _post_item(self, row: dict[str, Any]) -> RemoteItem:
        extra: dict[str, Any] = {}
        if isinstance(row.get("media_url"), str):
            extra["attachment_urls"] = [row["media_url"]]
            extra["attachment_alt_texts"] = [row.get("alt_text")]
        return RemoteItem(
            kind="post",
            remote_id=str(row["id"]),
            text=self._text(row, "caption"),
            author=str(row.get("username") or self.ig_user_id),
            posted_at=parse_platform_time(row.get("timestamp")),
            url=row.get("permalink"),
            thread_id=str(row["id"]),
            extra=extra,
            raw=json_bytes(row),
        )

    def _comment_item(self, row: dict[str, Any], media_id: str) -> RemoteItem:
        """A comment or reply; the account's own are posts (its follow-ups)."""
        sender = row.get("from") if isinstance(row.get("from"), dict) else {}
        mine = str((sender or {}).get("id")) == self.ig_user_id
        parent = row.get("parent_id")
        extra = {"from": sender} if sender else {}
        return RemoteItem(
            kind="post" if mine else "comment",
            remote_id=str(row["id"]),
            text=self._text(row, "text"),
            author=row.get("username"),
            posted_at=parse_platform_time(row.get("timestamp")),
            parent_id=str(parent) if parent else media_id,
            thread_id=media_id,
            state="hidden" if row.get("hidden") else "visible",
            extra=extra,
            raw=json_bytes({k: v for k, v in row.items() if k != "replies"}),
        )

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Comments on ``post_id`` with their replies (the ``replies`` edge, followed to its
        end), oldest first; malformed ones are kept as rejects."""
        args: dict[str, Any] = {"fields": REPLY_FIELDS, "limit": 50}
        if cursor:
            args["after"] = cursor
        body = self._client.get("list comments", f"{post_id}/comments", **args)
        items: list[RemoteItem] = []
        rejects: list[Reject] = []

        def take(row: dict[str, Any]) -> None:
            if "id" not in row:
                rejects.append(Reject(json_bytes(row), "a comment without an id"))
                return
            try:
                items.append(self._comment_item(row, post_id))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                rejects.append(Reject(json_bytes(row), f"{type(e).__name__}: {e}", str(row["id"])))

        for row in GraphClient.data(body, "Instagram"):
            take(row)
            replies = row.get("replies")
            if not isinstance(replies, dict) or "id" not in row:
                continue
            for reply in GraphClient.data(replies, "Instagram"):
                take(reply)
            after = GraphClient.next_cursor(replies)
            while after is not None:
                more = self._client.get(
                    "list replies",
                    f"{row['id']}/replies",
                    fields=COMMENT_FIELDS,
                    limit=50,
                    after=after,
                )
                for reply in GraphClient.data(more, "Instagram"):
                    take(reply)
                after = GraphClient.next_cursor(more)
        return Page(items, GraphClient.next_cursor(body), rejects)

    def fetch_comment(self, thread_id: str, comment_id: str) -> RemoteItem | None:
        """A comment read directly (``GET /{ig-comment-id}``); None when it is gone."""
        body = self._client.read("read comment", comment_id, COMMENT_FIELDS)
        return None if body is None else self._comment_item(body, thread_id)

    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The account's post (or, with ``reply_to``, its comment), read by id."""
        if reply_to:
            return self.fetch_comment(reply_to, remote_id)
        body = self._client.read("read post", remote_id, MEDIA_FIELDS)
        return None if body is None else self._post_item(body)

    # -- moderation ------------------------------------------------------------------------
    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or unhide) a comment on one of the account's posts; idempotent."""
        value = "true" if hidden else "false"
        self.retry.call(
            self.name,
            "hide comment",
            lambda: self._client.request("hide comment", comment_id, post_args={"hide": value}),
        )

    def delete_comment(self, comment_id: str) -> None:
        """Delete a comment on one of the account's posts; one already gone is deleted."""
        self._delete("delete comment", comment_id)

    def delete_post(self, post_id: str) -> None:
        """Instagram's API cannot delete a published post.

        :raises Refused: always (a retraction is posted as a comment).
        """
        raise Refused(
            "Instagram's API cannot delete a published post: a retraction comment is posted; "
            "delete the post in the Instagram app"
        )

    def check(self) -> list[CheckLine]:
        """The account the token reaches, reading posts, the publishing limit."""
        try:
            me = self._client.get("account", self.ig_user_id, fields="id,username")
        except ConnectorError as e:
            return [CheckLine("account", False, str(e))]
        lines = [CheckLine("account", True, f"Instagram account @{me.get('username')}")]
        try:
            self._posts(None)
            lines.append(CheckLine("read posts", True))
        except ConnectorError as e:
            return [*lines, CheckLine("read posts", False, str(e))]
        try:
            row = self.quota()
            total = (row.get("config") or {}).get("quota_total", DEFAULT_QUOTA)
            lines.append(
                CheckLine(
                    "publishing limit",
                    True,
                    f"{row.get('quota_usage', 0)} of {total} posts in the last 24 hours",
                )
            )
        except ConnectorError as e:
            lines.append(CheckLine("publishing limit", False, str(e)))
        return lines
