"""X (Twitter) accounts through tweepy's v2 ``Client``, OAuth 1.0a user context.

tweepy has no v2 media upload, so images go to ``/2/media/upload`` through the
``OAuth1Session`` tweepy depends on. Replies are read with recent search
(``conversation_id:``), which covers the last seven days only. tweepy never waits on a
rate limit here: :mod:`bulletin.connectors.retry` decides.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

import requests
import tweepy
from requests_oauthlib import OAuth1Session
from twitter_text import parse_tweet

from bulletin.clock import Clock, SystemClock
from bulletin.config.accounts import XAccountSettings
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
from bulletin.connectors.http import (
    DEFAULT_TIMEOUT,
    Timeout,
    fetch_bytes,
    platform_session,
    sent_request,
    skew_watch,
)
from bulletin.connectors.retry import RetryPolicy
from bulletin.errors import (
    Ambiguous,
    AuthError,
    ConnectorError,
    Duplicate,
    Gone,
    MalformedResponse,
    RateLimited,
    Rejected,
    Retryable,
)

T = TypeVar("T")
TWEET_FIELDS = [
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "attachments",
    "edit_history_tweet_ids",
]
# attached images come back in ``includes.media`` with their authors' descriptions, and
# each post's author in ``includes.users`` (a comment is shown by username, not by user id)
EXPANSIONS = ["attachments.media_keys", "author_id"]
MEDIA_FIELDS = ["url", "alt_text", "type"]
USER_FIELDS = ["username", "name"]
MEDIA_UPLOAD_URL = "https://api.x.com/2/media/upload"
MEDIA_METADATA_URL = "https://api.x.com/2/media/metadata"
STREAM_URL = "https://api.x.com/2/tweets/search/stream"
STREAM_RULES_URL = "https://api.x.com/2/tweets/search/stream/rules"
MAX_LENGTH = 280


class XConnector(Connector):
    """One X account. Credentials are held as :class:`Secret` and never printed."""

    platform: ClassVar[str] = "x"

    def __init__(
        self,
        name: str,
        *,
        consumer_key: Secret,
        consumer_secret: Secret,
        access_token: Secret,
        access_token_secret: Secret,
        base_url: str = "",
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        bearer_token: Secret | None = None,
    ) -> None:
        super().__init__(name)
        self.base_url = base_url
        self._bearer = bearer_token
        self.retry = (retry or RetryPolicy()).on_clock(clock)
        self.clock = clock or SystemClock()
        self._timeout = timeout
        self._keys = (consumer_key, consumer_secret, access_token, access_token_secret)
        self._client = tweepy.Client(
            consumer_key=consumer_key.reveal(),
            consumer_secret=consumer_secret.reveal(),
            access_token=access_token.reveal(),
            access_token_secret=access_token_secret.reveal(),
            return_type=requests.Response,
            wait_on_rate_limit=False,
        )
        self._client.session = platform_session(base_url, timeout)
        self._client.session.hooks["response"].append(skew_watch(name, self.clock))
        self._me: dict[str, Any] | None = None
        self._access_level: str | None = None

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
    ) -> XConnector:
        """Build from ``[accounts.NAME]``; :raises AuthError: a named credential is unset."""
        account = settings.account(name, XAccountSettings)
        return cls(
            name,
            consumer_key=resolve_secret(account.consumer_key_env, environ, name),
            consumer_secret=resolve_secret(account.consumer_secret_env, environ, name),
            access_token=resolve_secret(account.access_token_env, environ, name),
            access_token_secret=resolve_secret(account.access_token_secret_env, environ, name),
            base_url=account.base_url,
            retry=retry,
            timeout=timeout,
            clock=clock,
            bearer_token=(
                resolve_secret(account.bearer_token_env, environ, name)
                if account.bearer_token_env
                else None
            ),
        )

    # -- errors ----------------------------------------------------------------------------
    def _error(self, response: requests.Response, write: bool) -> ConnectorError:
        """Our error for X's non-2xx answer."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = ""
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("title") or "")
            errors = body.get("errors")
            if not detail and isinstance(errors, list) and errors:
                detail = str(errors[0].get("message") or errors[0].get("detail") or "")
        where = f"account {self.name}: X answered {status}"
        if status == 429:
            return RateLimited(f"{where} (rate limited)", self._reset_at(response))
        if status == 401:
            return AuthError(f"{where}: the credentials were refused (expired or revoked)")
        if status == 403 and "oauth1-permissions" in str(body.get("type", "")):
            return AuthError(
                f"{where}: the app has no write access; set App permissions to 'Read and "
                "write' and regenerate the access token"
            )
        if status >= 500:
            return Retryable(f"{where}: {detail or 'server error'}")
        if status == 403 and "duplicate" in detail.lower():
            return Duplicate(f"{where}: duplicate content ({detail})")
        if status == 404:
            return Gone(f"{where}: {detail or response.reason}")
        return Rejected(f"{where}: {detail or response.reason}", code=str(status))

    def _reset_at(self, response: requests.Response) -> datetime | None:
        """When a rate-limited call may be made again, on our clock: X's
        ``x-rate-limit-reset`` is a time on X's clock, so the wait is counted from X's own
        ``Date`` (when the answer has one) and a clock that is not X's neither stretches nor
        cuts it."""
        reset = response.headers.get("x-rate-limit-reset")
        if not (reset and reset.isdigit()):
            return None
        at = datetime.fromtimestamp(int(reset), UTC)
        try:
            sent = parsedate_to_datetime(response.headers.get("date", ""))
        except (TypeError, ValueError):
            return at
        if sent.tzinfo is None:
            return at
        return self.clock.now() + (at - sent)

    def _request(
        self, what: str, call: Callable[[], requests.Response], write: bool = False
    ) -> Any:
        """Run one HTTP call; return its parsed JSON or raise our error."""
        try:
            response = call()
        except tweepy.HTTPException as e:
            raise self._error(e.response, write) from e
        except requests.RequestException as e:
            kind = type(e).__name__
            if write and sent_request(e):
                raise Ambiguous(
                    f"account {self.name}: {what} got no answer ({kind}); it may have worked"
                ) from e
            raise Retryable(
                f"account {self.name}: {what} failed ({kind})", code="unreachable"
            ) from e
        if not response.ok:
            raise self._error(response, write)
        if response.headers.get("x-access-level"):
            self._access_level = response.headers["x-access-level"]
        try:
            return json.loads(response.content)
        except ValueError as e:
            raise MalformedResponse(
                f"account {self.name}: X's answer to {what} is not JSON", raw=response.content
            ) from e

    # -- identity --------------------------------------------------------------------------
    def _whoami(self) -> dict[str, Any]:
        if self._me is None:
            body = self.retry.call(
                self.name,
                "users/me",
                lambda: self._request("users/me", lambda: self._client.get_me(user_auth=True)),
            )
            if not isinstance(body, dict) or "data" not in body:
                raise MalformedResponse("X's users/me answer has no data", raw=json_bytes(body))
            self._me = dict(body["data"])
        return self._me

    def _url(self, tweet_id: str) -> str:
        return f"https://x.com/{self._whoami().get('username', 'i')}/status/{tweet_id}"

    # -- capabilities ----------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(
            max_length=MAX_LENGTH,
            counts_weighted=True,
            max_media=4,
            supports_comments=True,
            supports_hide=True,
            lookback_days=7,
            supports_since_id=True,
            reports_hidden=False,
        )

    def measure(self, text: str) -> int:
        """X's weighted length (URLs 23, emoji and CJK 2) of the NFC-normalised text."""
        return int(parse_tweet(unicodedata.normalize("NFC", text)).weightedLength)

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """Create the post (images first); at most once, see :meth:`RetryPolicy.publish`."""
        return self.retry.publish(self, post, self._publish_once)

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        media_ids = [self._upload(m) for m in post.media]
        text = unicodedata.normalize("NFC", post.text)
        if post.link and post.link not in text:
            text = f"{text}\n{post.link}"
        body = self._request(
            "create post",
            lambda: self._client.create_tweet(
                text=text,
                media_ids=media_ids or None,
                in_reply_to_tweet_id=post.reply_to,
                user_auth=True,
            ),
            write=True,
        )
        try:
            tweet_id = str(body["data"]["id"])
        except (KeyError, TypeError) as e:
            raise MalformedResponse("X's create answer has no data.id", raw=json_bytes(body)) from e
        return PublishResult(tweet_id, self._url(tweet_id), self.clock.now(), json_bytes(body))

    def _upload(self, media: Media) -> str:
        """Upload one image to X's v2 media endpoint; its media id. Retried on its own:
        an orphan upload is harmless."""
        key, secret, token, token_secret = (k.reveal() for k in self._keys)
        session = OAuth1Session(
            key, client_secret=secret, resource_owner_key=token, resource_owner_secret=token_secret
        )
        from bulletin.connectors.http import mount_platform_adapters

        mount_platform_adapters(session, self.base_url, self._timeout)
        with session:
            body = self.retry.call(
                self.name,
                "media upload",
                lambda: self._request(
                    "media upload",
                    lambda: session.post(
                        MEDIA_UPLOAD_URL,
                        data={"media_category": "tweet_image"},
                        files={"media": ("image", media.data, media.mime_type)},
                    ),
                ),
            )
            media_id = str(body["data"]["id"])
            if media.alt_text:
                self.retry.call(
                    self.name,
                    "media metadata",
                    lambda: self._request(
                        "media metadata",
                        lambda: session.post(
                            MEDIA_METADATA_URL,
                            json={
                                "id": media_id,
                                "metadata": {"alt_text": {"text": media.alt_text}},
                            },
                        ),
                    ),
                )
        return media_id

    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """The account's post with ``post``'s text created at or after ``since``, if any."""
        wanted = comparable_text(post.text)
        cursor: str | None = None
        while True:
            page = self.list_posts(cursor=cursor)
            for item in page.items:
                if item.posted_at is not None and item.posted_at < since:
                    return None
                if comparable_text(item.text) == wanted or (
                    post.link
                    and comparable_text(f"{post.text}\n{post.link}") == comparable_text(item.text)
                ):
                    return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor

    # -- reading ---------------------------------------------------------------------------
    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The post read back by id (``GET /2/tweets/:id``, with the fields and expansions of
        the listings) and normalised as they are; None when X has no such post."""
        body = self._read("read post", self._client.get_tweet, remote_id)
        if isinstance(body, dict) and "data" not in body and _not_found(body):
            return None
        listed = {**body, "data": [body.get("data")]} if isinstance(body, dict) else body
        page = self._page(listed, "post")  # raises on an answer that is not an object
        if not page.items:
            raise MalformedResponse("X's answer to read post holds no post", raw=json_bytes(body))
        return page.items[0]

    def _item(
        self,
        tweet: dict[str, Any],
        kind: str,
        media: dict[str, dict[str, Any]] | None = None,
        users: dict[str, dict[str, Any]] | None = None,
    ) -> RemoteItem:
        """One post as a :class:`RemoteItem`. An edited post has a new id on X; the first id
        of its edit history names the item, so every edit is a version of one record. The
        account's own posts are posts wherever they are listed (a thread's later parts and
        its corrections come in a conversation's replies too); everyone else's are comments.

        The author is the username (without the ``@``, which spreadsheets read as a formula)
        when X names the user in ``includes.users`` (the user id and display name go into
        ``extra``), else the bare user id.

        :raises KeyError, TypeError, ValueError: the post lacks what every post has.
        """
        if not isinstance(tweet, dict) or not str(tweet["id"]).isdigit():
            raise ValueError("a post without a numeric id")
        if not isinstance(tweet.get("text", ""), str):
            raise ValueError("a post whose text is not a string")
        parent = next(
            (r["id"] for r in tweet.get("referenced_tweets", []) if r.get("type") == "replied_to"),
            None,
        )
        history = [str(i) for i in (tweet.get("edit_history_tweet_ids") or [tweet["id"]])]
        extra: dict[str, Any] = {"edit_history_tweet_ids": history}
        if history[0] != str(tweet["id"]):
            extra["current_id"] = str(tweet["id"])
        photos = [
            (media or {}).get(str(key)) or {}
            for key in (tweet.get("attachments") or {}).get("media_keys", [])
        ]
        photos = [m for m in photos if m.get("type") == "photo" and isinstance(m.get("url"), str)]
        if photos:
            extra["attachment_urls"] = [m["url"] for m in photos]
            extra["attachment_alt_texts"] = [m.get("alt_text") for m in photos]
        author_id = tweet.get("author_id")
        author = None if author_id is None else str(author_id)
        user = (users or {}).get(str(author_id)) or {}
        username = user.get("username")
        if isinstance(username, str) and username:
            extra["author_id"] = author
            author = username
            if isinstance(user.get("name"), str) and user["name"]:
                extra["author_name"] = user["name"]
        own = author_id is not None and str(author_id) == str(self._whoami().get("id"))
        return RemoteItem(
            kind="post" if kind == "post" or own else "comment",
            remote_id=history[0],
            text=str(tweet.get("text", "")),
            author=author,
            posted_at=parse_platform_time(tweet.get("created_at")),
            url=self._url(str(tweet["id"])),
            parent_id=parent,
            thread_id=tweet.get("conversation_id"),
            extra=extra,
            raw=json_bytes(tweet),
        )

    def _page(self, body: Any, kind: str, skip: str | None = None) -> Page:
        if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
            raise MalformedResponse("X's answer is not an object", raw=json_bytes(body))
        items: list[RemoteItem] = []
        rejects: list[Reject] = []
        media = {str(m["media_key"]): m for m in _included(body, "media") if "media_key" in m}
        users = {str(u["id"]): u for u in _included(body, "users") if "id" in u}
        for tweet in body.get("data", []):
            if skip is not None and isinstance(tweet, dict) and tweet.get("id") == skip:
                continue
            try:
                items.append(self._item(tweet, kind, media, users))
            except (KeyError, TypeError, ValueError) as e:
                rejects.append(
                    Reject(json_bytes(tweet), f"{type(e).__name__}: {e}", _readable_id(tweet))
                )
        return Page(items, (body.get("meta") or {}).get("next_token"), rejects)

    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        """The account's posts, newest first, 100 a page."""
        user_id = self._whoami()["id"]
        body = self._read(
            "list posts",
            self._client.get_users_tweets,
            user_id,
            max_results=100,
            since_id=since_id,
            pagination_token=cursor,
        )
        return self._page(body, "post")

    def _read(
        self, what: str, method: Callable[..., requests.Response], *args: Any, **params: Any
    ) -> Any:
        """One read through tweepy, with the fields and expansions every reading asks for."""
        return self.retry.call(
            self.name,
            what,
            lambda: self._request(
                what,
                lambda: method(
                    *args,
                    tweet_fields=TWEET_FIELDS,
                    expansions=EXPANSIONS,
                    media_fields=MEDIA_FIELDS,
                    user_fields=USER_FIELDS,
                    user_auth=True,
                    **params,
                ),
            ),
        )

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Replies in ``post_id``'s conversation from the last seven days (recent search),
        newest first; only those newer than ``since_id`` when given."""
        body = self._read(
            "list comments",
            self._client.search_recent_tweets,
            f"conversation_id:{post_id}",
            max_results=100,
            next_token=cursor,
            since_id=since_id,
        )
        return self._page(body, "comment", skip=post_id)

    # -- moderation ------------------------------------------------------------------------
    def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """An attachment's image, fetched with the connector's session (timeouts apply)."""
        return fetch_bytes(self._client.session, url, max_bytes, self._timeout)

    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        """Hide (or unhide) a reply in a conversation the account started; idempotent."""
        call = self._client.hide_reply if hidden else self._client.unhide_reply
        self.retry.call(
            self.name,
            "hide reply",
            lambda: self._request("hide reply", lambda: call(comment_id, user_auth=True)),
        )

    def delete_post(self, post_id: str) -> None:
        """Delete one of the account's posts; a post already gone counts as deleted."""

        def once() -> None:
            with contextlib.suppress(Gone):  # already deleted (or never visible to us)
                self._request(
                    "delete post", lambda: self._client.delete_tweet(post_id, user_auth=True)
                )

        self.retry.call(self.name, "delete post", once)

    def check(self) -> list[CheckLine]:
        """Credentials, write access, reading posts and replies (seven-day search)."""
        lines: list[CheckLine] = []
        try:
            me = self._whoami()
        except ConnectorError as e:
            return [CheckLine("credentials (users/me)", False, str(e))]
        lines.append(CheckLine("credentials (users/me)", True, f"@{me.get('username')}"))
        level = self._access_level or "unknown"
        lines.append(
            CheckLine(
                "publish (write access)",
                level == "read-write",
                f"access level {level}"
                + (
                    ""
                    if level == "read-write"
                    else ": set App permissions to 'Read and write' and regenerate the token"
                ),
            )
        )
        actions: list[tuple[str, Callable[[], Page]]] = [
            ("read own posts (user timeline)", self.list_posts),
            ("read replies (recent search)", lambda: self.list_comments(str(me["id"]))),
        ]
        for what, action in actions:
            try:
                action()
                detail = (
                    ("covers the last 7 days only: older replies are seen only if captured in time")
                    if "search" in what
                    else ""
                )
                lines.append(CheckLine(what, True, detail))
            except ConnectorError as e:
                lines.append(CheckLine(what, False, str(e)))
        return lines

    # -- filtered stream (docs/capture-x.md) ------------------------------------------------
    def _app_session(self, timeout: Timeout | None = None) -> requests.Session:
        """A session with the app's bearer token (the stream's OAuth 2.0 App-Only auth)."""
        if self._bearer is None:
            raise AuthError(f"account {self.name}: the stream needs bearer_token_env")
        session = platform_session(self.base_url, timeout or self._timeout)
        session.headers["authorization"] = f"Bearer {self._bearer.reveal()}"
        return session

    def stream_rules(self) -> list[dict[str, str]]:
        """The filtered stream's rules (``id``, ``value``, ``tag``) of the app."""
        with self._app_session() as session:
            body = self.retry.call(
                self.name,
                "stream rules",
                lambda: self._request("stream rules", lambda: session.get(STREAM_RULES_URL)),
            )
        data = body.get("data") if isinstance(body, dict) else None
        return [dict(r) for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def change_stream_rules(
        self, add: list[dict[str, str]] | None = None, delete: list[str] | None = None
    ) -> None:
        """Add rules (``value``, ``tag``) and delete rules by id; either may be empty."""
        payloads: list[dict[str, Any]] = [{"delete": {"ids": delete}}] if delete else []
        payloads += [{"add": add}] if add else []
        with self._app_session() as session:
            for payload in payloads:
                self._post_rules(session, payload)

    def _post_rules(self, session: requests.Session, payload: dict[str, Any]) -> None:
        """One change of rules; repeating it is harmless (X refuses a duplicate rule)."""
        self.retry.call(
            self.name,
            "stream rules",
            lambda: self._request(
                "stream rules", lambda: session.post(STREAM_RULES_URL, json=payload)
            ),
        )

    def stream(self, stall_seconds: float = 60.0) -> Iterator[RemoteItem | None]:
        """The replies and posts the filtered stream delivers, as they come, and None for
        each keep-alive; an unusable line is skipped (the backfill reads it again). Returns
        when the stream ends.

        :raises RateLimited: too many connections (or one already open).
        :raises Retryable: the connection failed or went silent for ``stall_seconds``.
        """
        params = {
            "tweet.fields": ",".join(TWEET_FIELDS),
            "expansions": ",".join(EXPANSIONS),
            "media.fields": ",".join(MEDIA_FIELDS),
            "user.fields": ",".join(USER_FIELDS),
        }
        session = self._app_session((self._timeout[0], stall_seconds))
        try:
            try:
                response = session.get(STREAM_URL, params=params, stream=True)
            except requests.RequestException as e:
                raise Retryable(
                    f"account {self.name}: stream connection failed ({type(e).__name__})",
                    code="unreachable",
                ) from e
            with response:
                if not response.ok:
                    raise self._error(response, False)
                try:
                    for line in response.iter_lines():
                        yield self._streamed(line) if line.strip() else None
                except requests.RequestException as e:
                    raise Retryable(
                        f"account {self.name}: the stream broke off ({type(e).__name__})",
                        code="unreachable",
                    ) from e
        finally:
            session.close()

    def _streamed(self, line: bytes) -> RemoteItem | None:
        try:
            body = json.loads(line)
            page = self._page({**body, "data": [body["data"]]}, "comment")
        except (ValueError, KeyError, TypeError, MalformedResponse):
            return None
        return page.items[0] if page.items else None

    def close(self) -> None:
        self._client.session.close()


def _readable_id(tweet: Any) -> str | None:
    """The item id of a post we cannot use (the first id of its edit history, as
    :meth:`XConnector._item` names items), when it can still be read."""
    if not isinstance(tweet, dict):
        return None
    history = tweet.get("edit_history_tweet_ids")
    first = history[0] if isinstance(history, list) and history else tweet.get("id")
    return str(first) if isinstance(first, str | int) and str(first).isdigit() else None


def _not_found(body: dict[str, Any]) -> bool:
    """X's answer for a post it does not have: 200 with a "Not Found Error" in ``errors``
    (https://docs.x.com/x-api/fundamentals/response-codes-and-errors)."""
    errors = body.get("errors")
    return isinstance(errors, list) and any(
        isinstance(e, dict) and str(e.get("type", "")).endswith("/resource-not-found")
        for e in errors
    )


def _included(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The objects X returned in ``includes.<name>``; nothing when that is malformed."""
    includes = body.get("includes")
    found = includes.get(name) if isinstance(includes, dict) else None
    return [o for o in found if isinstance(o, dict)] if isinstance(found, list) else []
