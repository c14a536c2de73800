"""Bluesky accounts through the ``atproto`` SDK's ``Client``, with a handle and an app password.

``atproto`` is pinned exactly: it promises no compatibility before 1.0. Its ``Client`` takes
the server as ``base_url`` (the account's ``base_url``, a sandbox, when set, else its
``pds``), logs in with ``com.atproto.server.createSession`` and refreshes the session itself.
Calls go through its XRPC ``invoke_query`` / ``invoke_procedure`` with plain parameters, and
every answer is read from the bytes the server sent (an httpx response hook keeps the last
one), so a post the SDK's models would refuse is still kept raw and quarantined alone.

Exactly once: a post's record key is derived from the delivery's key (:func:`rkey_for`, a TID
in syntax, since ``app.bsky.feed.post`` records are keyed by TID), so every attempt of one
delivery writes at the same ``at://`` URI. Whether a repeated key fails as a conflict is not
something to rely on: the ``com.atproto.repo.createRecord`` lexicon names no such error (only
``InvalidSwap``) and the reference PDS answers a key already used with ``500
InternalServerError`` (bluesky-social/atproto issue 3718, indigo issue 873; an explicit error is
proposed in atproto pull request 4728). So after any failure of a create that is not a plain
refusal, the record is read back with ``com.atproto.repo.getRecord``: if it is there, the post
is already published and that record is the answer; :meth:`find_published` is that same
read, however long ago the attempt was.

Length: 300 graphemes (the post lexicon's ``maxGraphemes``); a URL counts in full and is made
a link with a ``app.bsky.richtext.facet#link`` over its UTF-8 bytes. Replies are read with
``app.bsky.feed.getPostThread``; own posts with ``app.bsky.feed.getAuthorFeed``. Bluesky has no
edit in its app, but a record can be rewritten (``putRecord``): a changed text is a new
version.

Hiding a reply: the author of a thread's first post hides replies in it with the
``app.bsky.feed.threadgate`` record at the root post's record key, whose ``hiddenReplies``
lists their ``at://`` URIs (lexicon ``app/bsky/feed/threadgate.json`` in bluesky-social/atproto:
"The record key (rkey) of the threadgate record must match the record key of the thread's root
post"; ``hiddenReplies`` is at most 300 URIs in the lexicon of the pinned SDK, 50 in older
ones). :meth:`hide_comment` reads that record (``com.atproto.repo.getRecord``), changes only
``hiddenReplies`` and writes it back (``com.atproto.repo.putRecord`` with ``swapRecord``), so a
reply rule in ``allow`` stays as it was; a new record has no ``allow`` at all (an empty
``allow`` would stop every reply). ``app.bsky.feed.getPostThread`` keeps a hidden reply in
``replies`` and reports the gate on the root's ``postView`` as ``threadgate.record`` (the
``#threadgateView`` of ``app/bsky/feed/defs.json``): a listed reply is read as ``hidden``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import ssl
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import regex
from atproto import Client
from atproto_client.models.dot_dict import DotDict
from atproto_client.request import Request as XrpcRequest
from atproto_core.exceptions import AtProtocolError

from bulletin.clock import Clock, SystemClock
from bulletin.config.accounts import BlueskyAccountSettings
from bulletin.config.secrets import Secret, resolve_secret
from bulletin.config.settings import Settings
from bulletin.connectors._common import comparable_text, parse_platform_time
from bulletin.connectors.base import (
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
from bulletin.connectors.http import DEFAULT_TIMEOUT, Timeout
from bulletin.connectors.retry import RetryPolicy
from bulletin.errors import (
    Ambiguous,
    AuthError,
    ConnectorError,
    Gone,
    MalformedResponse,
    RateLimited,
    Refused,
    Rejected,
    Retryable,
)
from bulletin.timeparse import iso_utc

POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
MAX_HIDDEN = 300  # the threadgate lexicon's maxLength for hiddenReplies
MAX_GRAPHEMES = 300
PAGE_SIZE = 100
THREAD_DEPTH = 1000  # the most getPostThread gives
_URL = re.compile(r"https?://[^\s<>\"]+")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_AUTH_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthRequired"}
_NOT_FOUND = {"RecordNotFound", "NotFound"}


def rkey_for(key: str) -> str:
    """A record key in TID syntax derived from ``key`` alone: 13 base32-sortable characters
    of a 64-bit number whose top bit is 0. It carries no time (TIDs are opaque to the
    protocol); it only makes every attempt of one delivery write the same record."""
    n = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1
    return "".join(_TID_ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def graphemes(text: str) -> int:
    """Grapheme clusters in the NFC-normalised ``text``, as Bluesky counts a post."""
    return len(regex.findall(r"\X", unicodedata.normalize("NFC", text)))


def link_facets(text: str) -> list[dict[str, Any]]:
    """An ``app.bsky.richtext.facet`` with a ``#link`` feature for each URL in ``text``,
    indexed by UTF-8 byte offsets as the lexicon requires."""
    facets = []
    for found in _URL.finditer(text):
        start = len(text[: found.start()].encode())
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": start + len(found.group(0).encode())},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": found.group(0)}],
            }
        )
    return facets


def split_uri(uri: str) -> tuple[str, str, str]:
    """``at://repo/collection/rkey`` as its three parts; ValueError when it is not one."""
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
        raise ValueError(f"not an at:// record URI: {uri!r}")
    return parts[0], parts[1], parts[2]


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """The one TLS context (httpx's defaults: certifi's authorities, ``SSL_CERT_FILE``) every
    Bluesky client uses. A context holds its own copy of the certificate store, about 0.8 MB,
    so one per client grew the daemon by that much for each thread that used an account."""
    return httpx.create_ssl_context()


class BlueskyConnector(Connector):
    """One Bluesky account. The app password is held as a :class:`Secret`, never printed."""

    platform: ClassVar[str] = "bluesky"

    def __init__(
        self,
        name: str,
        *,
        handle: str,
        app_password: Secret,
        pds: str = "https://bsky.social",
        base_url: str = "",
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name)
        self.retry = (retry or RetryPolicy()).on_clock(clock)
        self.clock = clock or SystemClock()
        self.handle = handle
        self._password = app_password
        self._last: httpx.Response | None = None
        connect, read = timeout
        self._xrpc = XrpcRequest(
            timeout=httpx.Timeout(read, connect=connect),
            event_hooks={"response": [self._keep]},
            verify=shared_tls(),
        )
        self._client = Client(base_url or pds, request=self._xrpc)
        self._did: str | None = None

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
    ) -> BlueskyConnector:
        """Build from ``[accounts.NAME]``; :raises AuthError: the app password is unset."""
        account = settings.account(name, BlueskyAccountSettings)
        return cls(
            name,
            handle=account.handle,
            app_password=resolve_secret(account.app_password_env, environ, name),
            pds=account.pds,
            base_url=account.base_url,
            retry=retry,
            timeout=timeout,
            clock=clock,
        )

    # -- transport -------------------------------------------------------------------------
    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self._last = response

    def _answer(self) -> httpx.Response | None:
        return self._last

    def _error(self, response: httpx.Response) -> ConnectorError:
        """Our error for an XRPC error answer (https://atproto.com/specs/xrpc)."""
        status = response.status_code
        try:
            body = json.loads(response.content)
        except ValueError:
            body = {}
        name = str(body.get("error") or "") if isinstance(body, dict) else ""
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
        where = f"account {self.name}: Bluesky answered {status} {name}".rstrip()
        if status == 429:
            return RateLimited(f"{where} (rate limited)", self._reset_at(response))
        if status in (401, 403) or name in _AUTH_ERRORS:
            return AuthError(f"{where}: the handle or app password was refused ({message})")
        if name in _NOT_FOUND:
            return Gone(f"{where}: {message or 'not found'}")
        if status >= 500:
            return Retryable(f"{where}: {message or 'server error'}")
        return Rejected(f"{where}: {message or response.reason_phrase}", code=name or str(status))

    def _reset_at(self, response: httpx.Response) -> datetime | None:
        """``ratelimit-reset`` (epoch seconds on the server's clock) on our clock, counted
        from the server's ``Date`` when it has one."""
        reset = response.headers.get("ratelimit-reset", "")
        if not reset.isdigit():
            return None
        from datetime import UTC

        at = datetime.fromtimestamp(int(reset), UTC)
        try:
            sent = parsedate_to_datetime(response.headers.get("date", ""))
        except (TypeError, ValueError):
            return at
        return at if sent.tzinfo is None else self.clock.now() + (at - sent)

    def _call(self, what: str, call: Callable[[], object], write: bool = False) -> Any:
        """Run one XRPC call; the server's answer parsed from its own bytes, or our error."""
        self._last = None
        try:
            call()
        except AtProtocolError as e:
            response = self._answer()
            cause = e.__cause__
            if isinstance(cause, httpx.TransportError):
                sent = not isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout)
                if write and sent:
                    raise Ambiguous(
                        f"account {self.name}: {what} got no answer ({type(cause).__name__}); "
                        "it may have worked"
                    ) from None
                raise Retryable(
                    f"account {self.name}: {what} failed ({type(cause).__name__})",
                    code="unreachable",
                ) from None
            if response is not None and not response.is_success:
                raise self._error(response) from None
            raw = response.content if response is not None else b""
            raise MalformedResponse(
                f"account {self.name}: Bluesky's answer to {what} could not be read", raw=raw
            ) from None
        except ValueError:
            response = self._answer()
            raise MalformedResponse(
                f"account {self.name}: Bluesky's answer to {what} is not JSON",
                raw=response.content if response is not None else b"",
            ) from None
        response = self._answer()
        if response is None:
            raise MalformedResponse(f"account {self.name}: {what} read no answer")
        try:
            return json.loads(response.content)
        except ValueError:
            raise MalformedResponse(
                f"account {self.name}: Bluesky's answer to {what} is not JSON",
                raw=response.content,
            ) from None

    def _query(self, what: str, nsid: str, **params: Any) -> Any:
        self._login()
        given = DotDict({k: v for k, v in params.items() if v is not None})
        return self.retry.call(
            self.name,
            what,
            lambda: self._call(what, lambda: self._client.invoke_query(nsid, params=given)),
        )

    def _procedure(self, what: str, nsid: str, data: dict[str, Any], write: bool = False) -> Any:
        self._login()
        return self._call(
            what,
            lambda: self._client.invoke_procedure(
                nsid, data=DotDict(data), input_encoding="application/json"
            ),
            write=write,
        )

    def _login(self) -> str:
        """The account's DID, logging in (createSession) the first time."""
        if self._did is None:

            def login() -> Any:
                return self._call(
                    "log in",
                    lambda: self._client.login(
                        self.handle, self._password.reveal(), fetch_bsky_profile=False
                    ),
                )

            body = self.retry.call(self.name, "log in", login)
            if not isinstance(body, dict) or not isinstance(body.get("did"), str):
                raise MalformedResponse("Bluesky's session answer has no did", raw=json_bytes(body))
            self._did = str(body["did"])
            self.handle = str(body.get("handle") or self.handle)
        return self._did

    # -- capabilities ----------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(
            max_length=MAX_GRAPHEMES,
            max_media=4,
            supports_comments=True,
            supports_hide=True,
        )

    def measure(self, text: str) -> int:
        """Grapheme clusters, as the post lexicon's ``maxGraphemes`` counts (URLs in full)."""
        return graphemes(text)

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """Write the post at the record key of its delivery key; at most once, see the module
        and :meth:`RetryPolicy.publish`."""
        return self.retry.publish(self, post, self._publish_once)

    def _text(self, post: OutgoingPost) -> str:
        text = unicodedata.normalize("NFC", post.text)
        if post.link and post.link not in text:
            text = f"{text}\n{post.link}"
        return text

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        did = self._login()
        text = self._text(post)
        found = self.problems(OutgoingPost(post.key, text, media=post.media))
        if found:
            raise Rejected(f"account {self.name}: {'; '.join(found)}", code="too-long")
        rkey = rkey_for(post.key)
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": iso_utc(self.clock.now(), "milliseconds"),
            "langs": [post.lang or "en"],
        }
        facets = link_facets(text)
        if facets:
            record["facets"] = facets
        if post.media:
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [{"image": self._upload(m), "alt": m.alt_text} for m in post.media],
            }
        if post.reply_to:
            record["reply"] = self._reply_refs(post.reply_to)
        try:
            body = self._procedure(
                "create post",
                "com.atproto.repo.createRecord",
                {"repo": did, "collection": POST, "rkey": rkey, "record": record},
                write=True,
            )
        except RateLimited:
            raise  # refused before any write
        except (Retryable, Ambiguous, MalformedResponse) as e:
            # The key may be taken by an earlier attempt (the PDS answers that with a 500), or
            # this attempt may have written it: read it back. Unreadable, it stays uncertain.
            try:
                there = self._read_back(rkey)
            except ConnectorError:
                raise Ambiguous(
                    f"account {self.name}: the post may have been written ({e.code}) and "
                    "could not be read back"
                ) from e
            if there is not None:
                return there
            raise
        answer = self._answer()
        raw = answer.content if answer is not None else json_bytes(body)
        if not isinstance(body, dict) or not isinstance(body.get("uri"), str):
            raise MalformedResponse("Bluesky's create answer has no uri", raw=raw)
        return PublishResult(body["uri"], self._url(body["uri"]), self.clock.now(), raw)

    def _url(self, uri: str) -> str:
        repo, _, rkey = split_uri(uri)
        handle = self.handle if repo == self._did else repo
        return f"https://bsky.app/profile/{handle}/post/{rkey}"

    def _upload(self, media: Media) -> dict[str, Any]:
        """Upload one image (``com.atproto.repo.uploadBlob``); its blob reference."""
        self._login()

        def once() -> Any:
            return self._call(
                "media upload",
                lambda: self._client.invoke_procedure(
                    "com.atproto.repo.uploadBlob",
                    content=media.data,
                    input_encoding=media.mime_type,
                ),
            )

        body = self.retry.call(self.name, "media upload", once)
        if not isinstance(body, dict) or not isinstance(body.get("blob"), dict):
            raise MalformedResponse("Bluesky's upload answer has no blob", raw=json_bytes(body))
        return dict(body["blob"])

    def _get_record(self, uri: str) -> dict[str, Any] | None:
        repo, collection, rkey = split_uri(uri)
        try:
            body = self._query(
                "read record",
                "com.atproto.repo.getRecord",
                repo=repo,
                collection=collection,
                rkey=rkey,
            )
        except Gone:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("value"), dict):
            raise MalformedResponse("Bluesky's record answer has no value", raw=json_bytes(body))
        return body

    def _reply_refs(self, reply_to: str) -> dict[str, Any]:
        """``reply.root`` and ``reply.parent`` (URI and CID) for an answer to ``reply_to``.

        :raises Gone: the post answered is no longer there.
        """
        parent = self._get_record(reply_to)
        if parent is None:
            raise Gone(f"account {self.name}: the post to reply to is gone ({reply_to})")
        ref = {"uri": parent["uri"], "cid": parent["cid"]}
        root = (parent["value"].get("reply") or {}).get("root") or ref
        return {"root": root, "parent": ref}

    def _read_back(self, rkey: str) -> PublishResult | None:
        did = self._login()
        body = self._get_record(f"at://{did}/{POST}/{rkey}")
        if body is None:
            return None
        answer = self._answer()
        raw = answer.content if answer is not None else json_bytes(body)
        posted = parse_platform_time(str(body["value"].get("createdAt") or ""))
        return PublishResult(body["uri"], self._url(body["uri"]), posted, raw)

    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """The record at ``post``'s key, if it is there, was created at or after ``since``, and
        its text is the post's (the key is the delivery's own: one read, no search)."""
        found = self._read_back(rkey_for(post.key))
        if found is None or (found.posted_at is not None and found.posted_at < since):
            return None
        value = json.loads(found.raw).get("value") or {}
        same = comparable_text(str(value.get("text", ""))) in {
            comparable_text(post.text),
            comparable_text(self._text(post)),
        }
        return found if same else None

    # -- reading ---------------------------------------------------------------------------
    def _item(
        self, view: Any, thread_id: str | None, hidden: frozenset[str] = frozenset()
    ) -> RemoteItem:
        """One ``postView`` as a :class:`RemoteItem`: the account's own are posts wherever they
        are listed, everyone else's comments; the author is the handle; a URI in ``hidden``
        (the thread's ``hiddenReplies``) is in state ``hidden``.

        :raises KeyError, TypeError, ValueError: the post lacks what every post has.
        """
        if not isinstance(view, dict):
            raise ValueError("a post that is not an object")
        uri = str(view["uri"])
        split_uri(uri)
        record, author = view["record"], view["author"]
        if not isinstance(record, dict) or not isinstance(author, dict):
            raise ValueError("a post without its record or author")
        text = record.get("text", "")
        if not isinstance(text, str):
            raise ValueError("a post whose text is not a string")
        extra: dict[str, Any] = {"author_id": str(author.get("did")), "cid": view.get("cid")}
        if author.get("displayName"):
            extra["author_name"] = str(author["displayName"])
        embed = view.get("embed")
        if isinstance(embed, dict) and embed.get("$type") == "app.bsky.embed.images#view":
            images = [i for i in embed.get("images") or [] if isinstance(i, dict)]
            extra["attachment_urls"] = [str(i.get("fullsize")) for i in images]
            extra["attachment_alt_texts"] = [i.get("alt") for i in images]
        parent = ((record.get("reply") or {}).get("parent") or {}).get("uri")
        own = author.get("did") == self._login()
        return RemoteItem(
            kind="post" if thread_id is None or own else "comment",
            remote_id=uri,
            text=text,
            author=str(author.get("handle") or author.get("did")),
            posted_at=parse_platform_time(str(record.get("createdAt") or "")),
            url=self._url(uri)
            if own
            else f"https://bsky.app/profile/{author.get('did')}/post/{uri.rsplit('/', 1)[-1]}",
            parent_id=str(parent) if parent else None,
            thread_id=thread_id or uri,
            state="hidden" if uri in hidden else "visible",
            extra=extra,
            raw=json_bytes(view),
        )

    def _page(
        self,
        views: list[Any],
        thread_id: str | None,
        cursor: str | None,
        hidden: frozenset[str] = frozenset(),
    ) -> Page:
        items: list[RemoteItem] = []
        rejects: list[Reject] = []
        for view in views:
            try:
                items.append(self._item(view, thread_id, hidden))
            except (KeyError, TypeError, ValueError) as e:
                uri = view.get("uri") if isinstance(view, dict) else None
                rejects.append(
                    Reject(
                        json_bytes(view),
                        f"{type(e).__name__}: {e}",
                        uri if isinstance(uri, str) else None,
                    )
                )
        return Page(items, cursor, rejects)

    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The post read back (``getPostThread`` with depth 0), normalised as the listings
        normalise it; None when Bluesky no longer has it."""
        try:
            body = self._query("read post", "app.bsky.feed.getPostThread", uri=remote_id, depth=0)
        except Gone:
            return None
        thread = body.get("thread") if isinstance(body, dict) else None
        if not isinstance(thread, dict):
            raise MalformedResponse("Bluesky's thread answer has no thread", raw=json_bytes(body))
        if "post" not in thread:  # a notFoundPost or blockedPost
            return None
        page = self._page([thread["post"]], None, None)
        if not page.items:
            raise MalformedResponse("Bluesky's thread answer holds no post", raw=json_bytes(body))
        return page.items[0]

    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        """The account's posts and replies (reposts left out), newest first, 100 a page; with
        ``since_id``, only those listed before it."""
        did = self._login()
        body = self._query(
            "list posts", "app.bsky.feed.getAuthorFeed", actor=did, limit=PAGE_SIZE, cursor=cursor
        )
        if not isinstance(body, dict) or not isinstance(body.get("feed"), list):
            raise MalformedResponse("Bluesky's author feed is not a list", raw=json_bytes(body))
        views: list[Any] = []
        for entry in body["feed"]:
            if isinstance(entry, dict) and entry.get("reason"):
                continue  # a repost
            view = entry.get("post") if isinstance(entry, dict) else entry
            if since_id is not None and isinstance(view, dict) and view.get("uri") == since_id:
                return self._page(views, None, None)
            views.append(view)
        next_cursor = body.get("cursor") if isinstance(body.get("cursor"), str) else None
        return self._page(views, None, next_cursor)

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Every reply below ``post_id`` (``getPostThread``, depth 1,000), in one page; those
        the thread's threadgate lists in ``hiddenReplies`` are in state ``hidden``."""
        body = self._query(
            "list comments", "app.bsky.feed.getPostThread", uri=post_id, depth=THREAD_DEPTH
        )
        thread = body.get("thread") if isinstance(body, dict) else None
        if not isinstance(thread, dict):
            raise MalformedResponse("Bluesky's thread answer has no thread", raw=json_bytes(body))
        return self._page(list(_replies(thread)), post_id, None, _hidden(thread))

    # -- moderation ------------------------------------------------------------------------
    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or unhide) a reply in a thread the account began: its URI added to (or taken
        from) ``hiddenReplies`` of the root post's threadgate; every other field of the gate
        is kept. Idempotent: a reply already so is not written again. See the module.

        :raises Gone: the reply is no longer there.
        :raises Refused: it is not a reply, or the thread's first post is not the account's.
        :raises Rejected: the thread already hides :data:`MAX_HIDDEN` replies, or the gate
            changed while it was being written (``InvalidSwap``); trying again re-reads it.
        """
        did = self._login()
        reply = self._get_record(comment_id)
        if reply is None:
            raise Gone(f"account {self.name}: the reply is gone ({comment_id})")
        root = ((reply["value"].get("reply") or {}).get("root") or {}).get("uri")
        if not isinstance(root, str):
            raise Refused(f"account {self.name}: {comment_id} is not a reply; only replies hide")
        repo, _collection, rkey = split_uri(root)
        if repo != did:
            raise Refused(
                f"account {self.name}: only the author of the thread's first post can hide "
                "replies in it; moderate this one on Bluesky"
            )
        gate = self._get_record(f"at://{did}/{THREADGATE}/{rkey}")
        record: dict[str, Any] = (
            dict(gate["value"])
            if gate is not None
            else {
                "$type": THREADGATE,
                "post": root,
                "createdAt": iso_utc(self.clock.now(), "milliseconds"),
            }
        )
        listed = [str(u) for u in record.get("hiddenReplies") or []]
        if (comment_id in listed) == hidden:
            return
        listed = [*listed, comment_id] if hidden else [u for u in listed if u != comment_id]
        if len(listed) > MAX_HIDDEN:
            raise Rejected(
                f"account {self.name}: a thread hides at most {MAX_HIDDEN} replies; "
                "unhide one first",
                code="too-many-hidden",
            )
        record["hiddenReplies"] = listed
        data: dict[str, Any] = {
            "repo": did,
            "collection": THREADGATE,
            "rkey": rkey,
            "record": record,
        }
        if gate is not None:
            data["swapRecord"] = gate["cid"]
        what = "hide reply" if hidden else "unhide reply"
        self.retry.call(
            self.name, what, lambda: self._procedure(what, "com.atproto.repo.putRecord", data)
        )

    def delete_post(self, post_id: str) -> None:
        """Delete one of the account's posts; deleting one already gone succeeds
        (``deleteRecord`` ensures the record is not there)."""
        _repo, collection, rkey = split_uri(post_id)
        self.retry.call(
            self.name,
            "delete post",
            lambda: self._procedure(
                "delete post",
                "com.atproto.repo.deleteRecord",
                {"repo": self._login(), "collection": collection, "rkey": rkey},
            ),
        )

    def check(self) -> list[CheckLine]:
        """App password (createSession), reading the account's posts and their replies."""
        try:
            did = self._login()
        except ConnectorError as e:
            return [CheckLine("app password (createSession)", False, str(e))]
        lines = [CheckLine("app password (createSession)", True, f"@{self.handle} ({did})")]
        try:
            posts = self.list_posts().items
            lines.append(CheckLine("read own posts (getAuthorFeed)", True, str(len(posts))))
        except ConnectorError as e:
            return [*lines, CheckLine("read own posts (getAuthorFeed)", False, str(e))]
        try:
            if posts:
                self.list_comments(posts[0].remote_id)
            lines.append(CheckLine("read replies (getPostThread)", True))
        except ConnectorError as e:
            lines.append(CheckLine("read replies (getPostThread)", False, str(e)))
        return lines

    def close(self) -> None:
        self._xrpc.close()


def _hidden(thread: dict[str, Any]) -> frozenset[str]:
    """The URIs in ``hiddenReplies`` of the threadgate the app view reports on the thread's
    root post (``postView.threadgate.record``): on ``thread`` itself or, when it is a reply,
    at the top of its ``parent`` chain."""
    found: set[str] = set()
    node: Any = thread
    while isinstance(node, dict):
        post = node.get("post")
        gate = post.get("threadgate") if isinstance(post, dict) else None
        record = gate.get("record") if isinstance(gate, dict) else None
        listed = record.get("hiddenReplies") if isinstance(record, dict) else None
        if isinstance(listed, list):
            found.update(u for u in listed if isinstance(u, str))
        node = node.get("parent")
    return frozenset(found)


def _replies(thread: dict[str, Any]) -> Iterator[Any]:
    """Every reply's ``post`` below ``thread``, depth first; a reply that is not there
    (``notFoundPost``, ``blockedPost``) is left out, its replies not (it has none listed)."""
    for reply in thread.get("replies") or []:
        if isinstance(reply, dict) and "post" in reply:
            yield reply["post"]
            yield from _replies(reply)
        elif not isinstance(reply, dict):
            yield reply
