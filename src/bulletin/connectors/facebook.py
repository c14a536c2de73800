"""Facebook Pages through facebook-sdk's ``GraphAPI``, with a Page access token.

facebook-sdk 3.1.0 accepts only Graph versions 2.8-3.1 in its constructor, so the configured
version (default v26.0) is set on the instance afterwards. Comments are read with
``filter=stream`` so replies come too; comment ids need the MODERATE task on the Page.
The token travels as facebook-sdk sends it (a query or form parameter): no error message
here quotes a URL, and errors from ``requests`` are not chained, because their text holds
the URL.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime
from typing import Any, ClassVar, Unpack

import facebook

from bulletin.config.accounts import FacebookAccountSettings
from bulletin.connectors._common import comparable_text, parse_platform_time
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
from bulletin.connectors.meta import GraphClient, GraphConnector, GraphOptions, newer_than
from bulletin.errors import (
    AuthError,
    ConnectorError,
    MalformedResponse,
)

MAX_LENGTH = 63206
POST_FIELDS = "id,message,created_time,updated_time,permalink_url,from"
COMMENT_FIELDS = "id,message,created_time,from,parent,is_hidden,can_hide,attachment,permalink_url"


class _PageGraph(GraphClient):
    """Graph for a Page: error 210 means a User token was given where a Page token is
    needed, which the operator must be told in those words."""

    def __init__(self, account: str, *, page_id: str, **options: Any) -> None:
        super().__init__(account, **options)
        self.page_id = page_id

    def error(self, error: facebook.GraphAPIError) -> ConnectorError:
        found = error.result.get("error") if isinstance(error.result, dict) else None
        code = found.get("code", error.code) if isinstance(found, dict) else error.code
        if code == 210:
            return AuthError(
                f"account {self.account}: Graph error 210: a Page access token for page "
                f"{self.page_id} is required (this looks like a User token)"
            )
        return super().error(error)


class FacebookConnector(GraphConnector):
    """One Facebook Page. The Page token is held as a :class:`Secret`."""

    platform: ClassVar[str] = "facebook"
    host: ClassVar[str] = ""
    label: ClassVar[str] = "Graph"
    settings_type = FacebookAccountSettings
    settings_fields = ("page_id", "graph_version")
    client_type = _PageGraph

    def __init__(
        self,
        name: str,
        *,
        page_id: str,
        graph_version: str = "v26.0",
        **options: Unpack[GraphOptions],
    ) -> None:
        super().__init__(
            name,
            page_id=page_id,
            version=graph_version,
            usage_headers=("x-business-use-case-usage", "x-app-usage", "x-page-usage"),
            **options,
        )
        self.page_id = page_id

    # -- capabilities ----------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(
            max_length=MAX_LENGTH,
            max_media=1,
            supports_comments=True,
            supports_hide=True,
            supports_delete_comment=True,
        )

    def measure(self, text: str) -> int:
        return len(unicodedata.normalize("NFC", text))

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """A Page post (``/feed``) or photo post (``/photos``); at most once."""
        return self.retry.publish(self, post, self._publish_once)

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        text = unicodedata.normalize("NFC", post.text)
        if post.reply_to:
            return self._comment(post.reply_to, text)
        if post.media:
            image = post.media[0]
            result = self._client.request(
                "publish photo",
                f"{self.page_id}/photos",
                post_args={"caption": text},
                files={"source": ("image", image.data, image.mime_type)},
                method="POST",
                write=True,
            )
            post_id = result.get("post_id") if isinstance(result, dict) else None
        else:
            args = {"message": text}
            if post.link:
                args["link"] = post.link
            result = self._client.request(
                "publish", f"{self.page_id}/feed", post_args=args, method="POST", write=True
            )
            post_id = result.get("id") if isinstance(result, dict) else None
        if not post_id:
            raise MalformedResponse("Graph's publish answer has no id", raw=json_bytes(result))
        raw = self._client.raw(result)
        return PublishResult(str(post_id), self._permalink(str(post_id)), self.clock.now(), raw)

    def _comment(self, post_id: str, text: str) -> PublishResult:
        """A reply in a post's thread: the Page comments on its own post."""
        result = self._client.request(
            "comment", f"{post_id}/comments", post_args={"message": text}, method="POST", write=True
        )
        comment_id = result.get("id") if isinstance(result, dict) else None
        if not comment_id:
            raise MalformedResponse("Graph's comment answer has no id", raw=json_bytes(result))
        raw = self._client.raw(result)
        page, _, number = post_id.partition("_")
        url = f"https://www.facebook.com/{page}/posts/{number}?comment_id={comment_id}"
        return PublishResult(str(comment_id), url, self.clock.now(), raw)

    @staticmethod
    def _permalink(post_id: str) -> str:
        page, _, number = post_id.partition("_")
        return f"https://www.facebook.com/{page}/posts/{number}"

    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """The Page's post with ``post``'s text created at or after ``since``, if any (for a
        reply: the Page's comment with that text on the post it answers)."""
        wanted = comparable_text(post.text)
        if post.reply_to:
            for item in self.iter_comments(post.reply_to):
                mine = (item.extra.get("from") or {}).get("id") == self.page_id
                if mine and comparable_text(item.text) == wanted:
                    if item.posted_at is not None and item.posted_at < since:
                        continue
                    return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
            return None
        return self._find_post(wanted, since)

    # -- reading ---------------------------------------------------------------------------
    def _posts(self, cursor: str | None, since: datetime | None = None) -> Page:
        args: dict[str, Any] = {"fields": POST_FIELDS, "limit": 100}
        if cursor:
            args["after"] = cursor
        if since is not None:
            args["since"] = str(math.floor(since.timestamp()))
        body = self._client.get("list posts", f"{self.page_id}/posts", **args)
        return Page([self._post_item(p) for p in self._data(body)], self._next(body))

    def _recent_posts(self, cursor: str | None, since: datetime) -> Page:
        return newer_than(self._posts(cursor, since=since), since)

    @staticmethod
    def _data(body: Any) -> list[dict[str, Any]]:
        return GraphClient.data(body, "Graph")

    _next = staticmethod(GraphClient.next_cursor)

    def _post_item(self, post: dict[str, Any]) -> RemoteItem:
        """One Graph post; its author is the Page's name when Graph gives it (the Page's id
        and name stay in ``extra.from``), else the Page's id."""
        sender: dict[str, Any] = post["from"] if isinstance(post.get("from"), dict) else {}
        extra: dict[str, Any] = {"updated_time": post.get("updated_time")}
        if sender:
            extra["from"] = sender
        author = sender.get("name") or sender.get("id") or self.page_id
        return RemoteItem(
            kind="post",
            remote_id=str(post["id"]),
            text=str(post.get("message", "")),
            author=str(author),
            posted_at=parse_platform_time(post.get("created_time")),
            url=post.get("permalink_url") or self._permalink(str(post["id"])),
            thread_id=str(post["id"]),
            edited_at=None,
            extra=extra,
            raw=json_bytes(post),
        )

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Every comment and reply on ``post_id`` (``filter=stream``), oldest first.

        :raises AuthError: the comments come without ids (no MODERATE task on the Page).
        """
        args: dict[str, Any] = {
            "fields": COMMENT_FIELDS,
            "filter": "stream",
            "limit": 100,
            "order": "chronological",
        }
        if cursor:
            args["after"] = cursor
        body = self._client.get("list comments", f"{post_id}/comments", **args)
        items = []
        rejects = []
        for comment in self._data(body):
            if "id" not in comment:
                raise AuthError(
                    f"account {self.name}: Graph gives no comment ids: the token's "
                    "user needs the MODERATE task on the Page"
                )
            try:
                items.append(self._comment_item(comment, post_id))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                rejects.append(
                    Reject(json_bytes(comment), f"{type(e).__name__}: {e}", str(comment["id"]))
                )
        return Page(items, self._next(body), rejects)

    def _comment_item(self, comment: dict[str, Any], post_id: str) -> RemoteItem:
        """One Graph comment as a :class:`RemoteItem`; raises on a malformed comment. The
        Page's own comments (its corrections and follow-ups) are posts; visitors' are
        comments."""
        if not isinstance(comment.get("message", ""), str):
            raise ValueError("a comment whose message is not a string")
        parent = (comment.get("parent") or {}).get("id")
        extra: dict[str, Any] = {
            k: comment[k] for k in ("from", "attachment", "can_hide") if k in comment
        }
        image = ((comment.get("attachment") or {}).get("media") or {}).get("image") or {}
        if image.get("src"):
            extra["attachment_urls"] = [str(image["src"])]
        sender = comment.get("from") or {}
        return RemoteItem(
            kind="post" if str(sender.get("id")) == self.page_id else "comment",
            remote_id=str(comment["id"]),
            text=str(comment.get("message", "")),
            author=sender.get("name"),
            posted_at=parse_platform_time(comment.get("created_time")),
            url=comment.get("permalink_url"),
            parent_id=str(parent) if parent else post_id,
            thread_id=post_id,
            state="hidden" if comment.get("is_hidden") else "visible",
            extra=extra,
            raw=json_bytes(comment),
        )

    def fetch_comment(self, thread_id: str, comment_id: str) -> RemoteItem | None:
        """One comment read directly (``GET /{comment-id}``); None when Graph has no such
        comment any more."""
        body = self._client.read("read comment", comment_id, COMMENT_FIELDS)
        return None if body is None else self._comment_item(body, thread_id)

    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The Page's post (``GET /{post-id}``) or, with ``reply_to``, its comment on that
        post (``GET /{comment-id}``), normalised as the listings normalise them; None when
        Graph has no such object."""
        if reply_to:
            return self.fetch_comment(reply_to, remote_id)
        body = self._client.read("read post", remote_id, POST_FIELDS)
        return None if body is None else self._post_item(body)

    def delete_comment(self, comment_id: str) -> None:
        """Delete a visitor comment (the Page may delete comments on its own posts); a
        comment already gone counts as deleted."""
        self._delete("delete comment", comment_id)

    # -- moderation ------------------------------------------------------------------------
    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or unhide) a visitor comment; idempotent."""
        value = "true" if hidden else "false"
        self.retry.call(
            self.name,
            "hide comment",
            lambda: self._client.request(
                "hide comment", comment_id, post_args={"is_hidden": value}, method="POST"
            ),
        )

    def delete_post(self, post_id: str) -> None:
        """Delete one of the Page's posts; a post already gone counts as deleted."""
        self._delete("delete post", post_id)

    # -- webhooks --------------------------------------------------------------------------
    def subscribe_app(self, fields: list[str]) -> None:
        """Install the app whose Page token this is on the Page for ``fields`` (Page
        webhooks), ``POST /{page-id}/subscribed_apps?subscribed_fields=...``; idempotent.
        https://developers.facebook.com/docs/pages-api/webhooks-for-pages (needs
        pages_manage_metadata).

        :raises AuthError, Rejected, Retryable: see the module docs.
        """
        joined = ",".join(fields)
        self.retry.call(
            self.name,
            "subscribe app",
            lambda: self._client.request(
                "subscribe app",
                f"{self.page_id}/subscribed_apps",
                post_args={"subscribed_fields": joined},
                method="POST",
            ),
        )

    def subscribed_fields(self) -> list[str]:
        """The webhook fields the Page's installed apps are subscribed to
        (``GET /{page-id}/subscribed_apps``); empty when no app is installed."""
        body = self._client.get("subscribed apps", f"{self.page_id}/subscribed_apps")
        fields: list[str] = []
        for app in self._data(body):
            for name in app.get("subscribed_fields") or []:
                if isinstance(name, str) and name not in fields:
                    fields.append(name)
        return fields

    def check(self) -> list[CheckLine]:
        """Token type and Page, reading posts, reading comment ids (MODERATE task)."""
        try:
            me = self._client.get("token (me)", "me", fields="id,name")
        except ConnectorError as e:
            return [CheckLine("token (me)", False, str(e))]
        if str(me.get("id")) != self.page_id:
            return [
                CheckLine(
                    "token (me)",
                    False,
                    f"this token speaks for {me.get('name')!r}, not page "
                    f"{self.page_id}: a Page access token is required",
                )
            ]
        lines = [CheckLine("token (me)", True, f"Page token for {me.get('name')}")]
        try:
            posts = self._posts(None)
            lines.append(CheckLine("read posts", True))
        except ConnectorError as e:
            return [*lines, CheckLine("read posts", False, str(e))]
        if not posts.items:
            lines.append(
                CheckLine("read comment ids (MODERATE task)", True, "no post yet to test against")
            )
            return lines
        try:
            self.list_comments(posts.items[0].remote_id)
            lines.append(CheckLine("read comment ids (MODERATE task)", True))
        except ConnectorError as e:
            lines.append(CheckLine("read comment ids (MODERATE task)", False, str(e)))
        return lines
