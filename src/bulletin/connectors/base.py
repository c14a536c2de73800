"""The connector interface every platform implements.

A connector speaks to one account on one platform. It is constructed from the account's
settings and its resolved credentials, and it is used from one thread at a time.

Errors (see :mod:`bulletin.errors`):

- :class:`~bulletin.errors.Retryable`: nothing happened on the platform; trying again is safe.
- :class:`~bulletin.errors.RateLimited`: wait until ``retry_after`` then try again.
- :class:`~bulletin.errors.Rejected`: the platform refused the content; never retried.
- :class:`~bulletin.errors.AuthError`: credentials are bad or lack a permission; never retried.
- :class:`~bulletin.errors.Ambiguous`: the request may have taken effect; call
  :meth:`Connector.find_published` before trying again.
- :class:`~bulletin.errors.MalformedResponse`: the answer could not be parsed; ``raw`` keeps it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from bulletin.errors import Refused

ItemKind = Literal["post", "comment", "moderation", "webhook"]
ItemState = Literal["visible", "hidden", "deleted"]


# File extensions of the image types posts may carry.
IMAGE_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}


@dataclass(frozen=True)
class Media:
    """An image attached to a post; ``alt_text`` is required by accessibility rules."""

    data: bytes
    mime_type: str
    alt_text: str


@dataclass(frozen=True)
class OutgoingPost:
    """What to publish to one account.

    ``key`` is stable across attempts of the same delivery; connectors that can (the feed)
    use it to make :meth:`Connector.publish` idempotent.
    """

    key: str
    text: str
    title: str = ""
    category: str = "general"
    link: str | None = None
    reply_to: str | None = None
    media: tuple[Media, ...] = ()
    lang: str | None = None  # the BCP 47 tag of the text's language, where the platform takes it


@dataclass(frozen=True)
class PublishResult:
    """The platform's answer to a successful publish."""

    remote_id: str
    url: str | None
    posted_at: datetime | None
    raw: bytes


@dataclass(frozen=True)
class RemoteItem:
    """A post or comment as the platform holds it now, normalised.

    ``raw`` is the platform's own JSON (or XML) for this item, kept byte for byte.
    """

    kind: ItemKind
    remote_id: str
    text: str
    author: str | None
    posted_at: datetime | None
    url: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    state: ItemState = "visible"
    edited_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: bytes = b""

    def content(self) -> dict[str, Any]:
        """What defines a version: a change here (an edit, hiding, deletion) is a new version.

        Metadata a later sweep may fill in (URL, author details, ``extra``) is not part of it.
        """
        return {
            "kind": self.kind,
            "remote_id": self.remote_id,
            "parent_id": self.parent_id,
            "text": self.text,
            "state": self.state,
        }

    def normalised(self) -> dict[str, Any]:
        """The fields that define this version's content (capture metadata excluded)."""
        return {
            "kind": self.kind,
            "remote_id": self.remote_id,
            "text": self.text,
            "author": self.author,
            "posted_at": self.posted_at.isoformat() if self.posted_at else None,
            "url": self.url,
            "parent_id": self.parent_id,
            "thread_id": self.thread_id,
            "state": self.state,
            "edited_at": self.edited_at.isoformat() if self.edited_at else None,
            "extra": self.extra,
        }


@dataclass(frozen=True)
class Reject:
    """One element of a platform answer that could not be normalised, kept raw.

    ``remote_id`` is the item it stands for when its id could still be read (None when not):
    the item is there, in a shape we cannot use, so a listing that rejects it does not
    show it gone.
    """

    raw: bytes
    error: str
    remote_id: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``next_cursor`` is None at the end.

    ``rejects`` holds the elements that could not be normalised (to be quarantined); the
    rest of the page is still good.
    """

    items: list[RemoteItem]
    next_cursor: str | None
    rejects: list[Reject] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """What the platform accepts in one post."""

    max_length: int
    counts_weighted: bool = False
    max_media: int = 4
    supports_comments: bool = False
    supports_hide: bool = False
    lookback_days: int | None = None
    supports_since_id: bool = False  # list_comments can fetch only what is newer
    reports_hidden: bool = True  # listings say whether a comment is hidden
    supports_delete_comment: bool = False
    # Editing a published post through the API. None of ours does (X's API does not edit;
    # the Graph API's edit of Page posts is not used): a correction is posted as a reply.
    supports_edit: bool = False
    supports_delete: bool = True
    requires_media: bool = False  # every post carries an image (Instagram)


@dataclass(frozen=True)
class CheckLine:
    """One line of ``bulletin account check``: what was tried and whether it worked."""

    what: str
    ok: bool
    detail: str = ""


class Connector(ABC):
    """One account on one platform."""

    platform: ClassVar[str]
    # True where the platform keeps each post's :attr:`OutgoingPost.key` (the feed's entry ids)
    keeps_keys: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def limits(self) -> Limits:
        """What one post may hold on this platform."""

    def measure(self, text: str) -> int:
        """Length of ``text`` as the platform counts it."""
        return len(text)

    def problems(self, post: OutgoingPost) -> list[str]:
        """Reasons the platform would refuse ``post``; empty when it fits."""
        limits = self.limits()
        found = []
        length = self.measure(post.text)
        if not post.text.strip():
            found.append("text is empty")
        if length > limits.max_length:
            found.append(f"text is {length} characters, {self.platform} allows {limits.max_length}")
        if len(post.media) > limits.max_media:
            found.append(f"{len(post.media)} images, {self.platform} allows {limits.max_media}")
        return found

    @abstractmethod
    def publish(self, post: OutgoingPost) -> PublishResult:
        """Publish ``post`` once.

        :raises Retryable, RateLimited, Rejected, AuthError, Ambiguous: see module docs.
        """

    @abstractmethod
    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """Look for ``post`` among the account's posts created at or after ``since``.

        Used after an ambiguous failure or a crash mid-publish, before trying again.
        Returns None when the platform has no such post.
        """

    @abstractmethod
    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """One of the account's own posts (``reply_to``: its reply to that post or comment)
        read back from the platform by id and normalised exactly as the listings normalise
        it, so that what is archived at publishing is what a sweep finds; None when the
        platform no longer has it.

        :raises Retryable, RateLimited, AuthError, MalformedResponse: see module docs.
        """

    @abstractmethod
    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        """The account's own posts, newest first, newer than ``since_id`` when given."""

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Every comment and reply on ``post_id``, one page at a time.

        With ``since_id`` (when :attr:`Limits.supports_since_id`), only those newer than it.
        """
        return Page(items=[], next_cursor=None)

    def iter_comments(self, post_id: str) -> Iterator[RemoteItem]:
        """All comments of ``post_id``, following pagination to the end."""
        cursor: str | None = None
        while True:
            page = self.list_comments(post_id, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def fetch_comment(self, thread_id: str, comment_id: str) -> RemoteItem | None:
        """The comment as the platform holds it now; None when it is gone.

        This default walks the thread; a connector with a direct read overrides it.
        """
        for item in self.iter_comments(thread_id):
            if item.remote_id == comment_id:
                return item
        return None

    def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """The bytes and content type of an attachment at ``url``.

        :raises Retryable: the image could not be fetched.
        """
        raise Refused(f"{self.platform} attachments are not fetched")

    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or unhide) a visitor comment on the platform."""
        raise Refused(f"{self.platform} accounts cannot hide comments")

    def delete_comment(self, comment_id: str) -> None:
        """Delete a visitor comment on the platform (where the platform allows it)."""
        raise Refused(f"{self.platform} accounts cannot delete visitors' comments")

    def delete_post(self, post_id: str) -> None:
        """Delete one of the account's own posts; a post already gone counts as deleted.

        :raises Refused: the platform cannot delete posts (a retraction reply is posted).
        """
        raise Refused(f"{self.platform} accounts cannot delete posts")

    def published_keys(self) -> list[str]:
        """The :attr:`OutgoingPost.key` of every post the platform still shows or remembers
        (a deleted one's tombstone too), where it keeps them (:attr:`keeps_keys`); an empty
        list elsewhere. Read after a restore so that no key is made again.

        :raises Retryable, MalformedResponse: the platform could not be read.
        """
        return []

    def check(self) -> list[CheckLine]:
        """Try the credentials and permissions; one line per capability."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing
        """Release network sessions or file handles."""


def platform_id(item: RemoteItem) -> str:
    """The id to act on for ``item`` now (an edited X post has a new id; see ``current_id``)."""
    current = item.extra.get("current_id")
    return str(current) if current else item.remote_id


def attachment_urls(item: RemoteItem) -> list[str]:
    """Image URLs a connector found on ``item`` (``extra["attachment_urls"]``)."""
    urls = item.extra.get("attachment_urls") or []
    return [str(u) for u in urls if isinstance(u, str) and u]


def attachment_alt_texts(item: RemoteItem) -> list[str | None]:
    """The authors' descriptions of :func:`attachment_urls`, one per URL (None: none given)."""
    urls = item.extra.get("attachment_urls") or []
    texts = item.extra.get("attachment_alt_texts") or []
    out: list[str | None] = []
    for index, url in enumerate(urls):
        if not (isinstance(url, str) and url):
            continue
        text = texts[index] if index < len(texts) else None
        out.append(str(text) if isinstance(text, str) and text.strip() else None)
    return out


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON, for connectors that must rebuild a raw item from a parsed page."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
