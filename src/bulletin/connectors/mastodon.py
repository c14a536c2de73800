"""Mastodon accounts through Mastodon.py, with an access token (``read`` and ``write`` scopes).

Mastodon.py takes the server's URL as ``api_base_url``: the account's ``base_url`` (a
sandbox) when set, else its ``instance``. It is told the server is at least 4.0
(``/api/v2/instance``, ``/api/v2/media``) instead of asking, and throws on a rate limit
instead of sleeping: :mod:`bulletin.connectors.retry` decides.

Every answer is read from the bytes the server sent (a response hook keeps the last one), not
from Mastodon.py's typed objects, so what is archived is Mastodon's own JSON. A status's
text is its HTML ``content`` made plain again (paragraphs and line breaks kept).

Exactly once: each publish sends the delivery's key as ``Idempotency-Key``; Mastodon keeps it
about an hour and answers a repeat with the status the first request made. After an
ambiguous failure the account's recent statuses are searched for the text first (as for X),
which holds however long ago the attempt was.

Length: the instance's own limit, ``configuration.statuses.max_characters`` of
``/api/v2/instance`` (500 until it has been read), counted as Mastodon's validator counts:
grapheme clusters, a URL as ``characters_reserved_per_url`` (23), a remote mention as its
local part. Mastodon has no way to hide a reply to one's post, nor to delete another's.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import regex
import requests
from mastodon import Mastodon, MastodonError, MastodonNetworkError

from bulletin.clock import Clock, SystemClock
from bulletin.config.accounts import MastodonAccountSettings
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
    Gone,
    MalformedResponse,
    RateLimited,
    Rejected,
    Retryable,
)
from bulletin.timeparse import parse_iso

DEFAULT_MAX_CHARACTERS = 500  # Mastodon's own default, until the instance says otherwise
DEFAULT_URL_LENGTH = 23
PAGE_SIZE = 40  # the most /api/v1/accounts/:id/statuses gives at once
_URL = re.compile(r"https?://[^\s<>\"]+")
_REMOTE_MENTION = re.compile(r"(@[\w.-]+)@[\w.-]+\w")


def mastodon_length(text: str, url_length: int = DEFAULT_URL_LENGTH) -> int:
    """``text``'s length as Mastodon's status validator counts it: grapheme clusters, each
    URL as ``url_length``, ``@user@domain`` as ``@user``."""
    text = _URL.sub("x" * url_length, unicodedata.normalize("NFC", text))
    text = _REMOTE_MENTION.sub(r"\1", text)
    return len(regex.findall(r"\X", text))


class _PlainText(HTMLParser):
    """Mastodon's HTML ``content`` as plain text: ``<br>`` a newline, paragraphs apart by a
    blank line, every other tag dropped (a link's hidden spans keep the whole URL)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(content: str) -> str:
    """The plain text of a status's HTML ``content``."""
    parser = _PlainText()
    parser.feed(content)
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


class MastodonConnector(Connector):
    """One Mastodon account. The token is held as a :class:`Secret` and never printed."""

    platform: ClassVar[str] = "mastodon"
    # until /api/v2/instance has been read (a probe never reads it)
    _max_characters: int = DEFAULT_MAX_CHARACTERS
    _url_length: int = DEFAULT_URL_LENGTH
    _max_media: int = 4

    def __init__(
        self,
        name: str,
        *,
        instance: str,
        token: Secret,
        base_url: str = "",
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name)
        self.retry = (retry or RetryPolicy()).on_clock(clock)
        self.clock = clock or SystemClock()
        self._timeout = timeout
        self._session = platform_session("", timeout)
        self._session.hooks["response"].append(self._keep)
        self._session.hooks["response"].append(skew_watch(name, self.clock))
        self._last: requests.Response | None = None
        self._api = Mastodon(
            access_token=token.reveal(),
            api_base_url=base_url or instance,
            session=self._session,
            request_timeout=timeout,  # type: ignore[arg-type]  # requests takes the pair
            ratelimit_method="throw",
            version_check_mode="created",
            mastodon_version="4.0.0",
        )
        self._me: dict[str, Any] | None = None
        self._instance_read = False

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
    ) -> MastodonConnector:
        """Build from ``[accounts.NAME]``; :raises AuthError: the named token is unset."""
        account = settings.account(name, MastodonAccountSettings)
        return cls(
            name,
            instance=account.instance,
            token=resolve_secret(account.token_env, environ, name),
            base_url=account.base_url,
            retry=retry,
            timeout=timeout,
            clock=clock,
        )

    # -- transport -------------------------------------------------------------------------
    def _keep(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        self._last = response

    def _answer(self) -> requests.Response | None:
        """The last answer received (set by the response hook during a call)."""
        return self._last

    def _error(self, response: requests.Response) -> ConnectorError:
        """Our error for Mastodon's non-2xx answer (https://docs.joinmastodon.org/entities/Error/)."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = str(body.get("error") or "") if isinstance(body, dict) else ""
        where = f"account {self.name}: Mastodon answered {status}"
        if status == 429:
            return RateLimited(f"{where} (rate limited)", self._reset_at(response))
        if status == 401:
            return AuthError(f"{where}: the access token was refused (expired or revoked)")
        if status == 403 and "scope" in detail.lower():
            return AuthError(f"{where}: the access token lacks a scope ({detail})")
        if status >= 500:
            return Retryable(f"{where}: {detail or 'server error'}")
        if status == 404:
            return Gone(f"{where}: {detail or 'not found'}")
        return Rejected(f"{where}: {detail or response.reason}", code=str(status))

    def _reset_at(self, response: requests.Response) -> datetime | None:
        """When a rate-limited call may be made again, on our clock: ``X-RateLimit-Reset`` is
        a time on the server's clock, counted from the server's own ``Date`` when it has one."""
        try:
            at = parse_iso(response.headers.get("x-ratelimit-reset", ""))
        except ValueError:
            return None
        try:
            sent = parsedate_to_datetime(response.headers.get("date", ""))
        except (TypeError, ValueError):
            return at
        return at if sent.tzinfo is None else self.clock.now() + (at - sent)

    def _call(self, what: str, call: Callable[[], object], write: bool = False) -> Any:
        """Run one Mastodon.py call; the server's answer parsed from its own bytes, or our
        error. A request that may have reached the server before failing is Ambiguous when
        it writes."""
        self._last = None
        try:
            call()
        except MastodonNetworkError as e:
            cause = e.__context__
            kind = type(cause).__name__ if cause is not None else "network error"
            if write and isinstance(cause, requests.RequestException) and sent_request(cause):
                raise Ambiguous(
                    f"account {self.name}: {what} got no answer ({kind}); it may have worked"
                ) from None
            raise Retryable(
                f"account {self.name}: {what} failed ({kind})", code="unreachable"
            ) from None
        except MastodonError:
            response = self._answer()
            if response is None:
                raise Retryable(f"account {self.name}: {what} failed") from None
            if not response.ok:
                raise self._error(response) from None
            raise MalformedResponse(
                f"account {self.name}: Mastodon's answer to {what} is not JSON",
                raw=response.content,
            ) from None
        response = self._answer()
        if response is None:
            raise MalformedResponse(f"account {self.name}: {what} read no answer")
        try:
            return json.loads(response.content)
        except ValueError:
            raise MalformedResponse(
                f"account {self.name}: Mastodon's answer to {what} is not JSON",
                raw=response.content,
            ) from None

    def _read(self, what: str, call: Callable[[], object]) -> Any:
        return self.retry.call(self.name, what, lambda: self._call(what, call))

    # -- identity and instance -------------------------------------------------------------
    def _whoami(self) -> dict[str, Any]:
        if self._me is None:
            body = self._read("verify credentials", self._api.account_verify_credentials)
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise MalformedResponse(
                    "Mastodon's verify_credentials answer has no id", raw=json_bytes(body)
                )
            self._me = body
        return self._me

    def read_instance(self) -> dict[str, Any]:
        """The instance's status limits (``/api/v2/instance``), kept for :meth:`limits`."""
        body = self._read("instance", self._api.instance_v2)
        try:
            statuses = body["configuration"]["statuses"]
            self._max_characters = int(statuses["max_characters"])
            self._url_length = int(statuses.get("characters_reserved_per_url", DEFAULT_URL_LENGTH))
            self._max_media = int(statuses.get("max_media_attachments", 4))
        except (KeyError, TypeError, ValueError):
            raise MalformedResponse(
                "Mastodon's instance answer has no configuration.statuses.max_characters",
                raw=json_bytes(body),
            ) from None
        self._instance_read = True
        return dict(statuses)

    # -- capabilities ----------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(
            max_length=self._max_characters,
            counts_weighted=True,
            max_media=self._max_media,
            supports_comments=True,
            supports_hide=False,
        )

    def measure(self, text: str) -> int:
        """Mastodon's count (see :func:`mastodon_length`) with the instance's URL length."""
        return mastodon_length(text, self._url_length)

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """Post the status (images first) with the post's key as ``Idempotency-Key``; at most
        once, see :meth:`RetryPolicy.publish`.

        :raises Rejected: longer than the instance allows (read from it first).
        """
        if not self._instance_read:
            self.read_instance()
        return self.retry.publish(self, post, self._publish_once)

    def _text(self, post: OutgoingPost) -> str:
        text = unicodedata.normalize("NFC", post.text)
        if post.link and post.link not in text:
            text = f"{text}\n{post.link}"
        return text

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        text = self._text(post)
        found = self.problems(OutgoingPost(post.key, text, media=post.media))
        if found:
            raise Rejected(f"account {self.name}: {'; '.join(found)}", code="too-long")
        media_ids = [self._upload(m) for m in post.media]
        body = self._call(
            "create post",
            lambda: self._api.status_post(
                text,
                in_reply_to_id=post.reply_to,
                media_ids=media_ids or None,
                visibility="public",
                idempotency_key=post.key,
                language=post.lang.split("-")[0] if post.lang else None,  # ISO 639
            ),
            write=True,
        )
        answer = self._answer()
        raw = answer.content if answer is not None else json_bytes(body)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise MalformedResponse("Mastodon's create answer has no id", raw=raw)
        return PublishResult(
            body["id"], body.get("url"), parse_platform_time(body.get("created_at")), raw
        )

    def _upload(self, media: Media) -> str:
        """Upload one image with its alt text as the description; its media id. Retried on
        its own: an orphan upload is harmless."""
        body = self._read(
            "media upload",
            lambda: self._api.media_post(
                media.data, mime_type=media.mime_type, description=media.alt_text or None
            ),
        )
        if not isinstance(body, dict) or not body.get("id"):
            raise MalformedResponse("Mastodon's media answer has no id", raw=json_bytes(body))
        return str(body["id"])

    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """The account's status with ``post``'s text created at or after ``since``, if any."""
        wanted = {comparable_text(post.text), comparable_text(self._text(post))}
        cursor: str | None = None
        while True:
            page = self.list_posts(cursor=cursor)
            for item in page.items:
                if item.posted_at is not None and item.posted_at < since:
                    return None
                if comparable_text(item.text) in wanted:
                    return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor

    # -- reading ---------------------------------------------------------------------------
    def _item(self, status: Any, thread_id: str | None = None) -> RemoteItem:
        """One status as a :class:`RemoteItem`: the account's own are posts wherever they are
        listed (a thread's later parts, a correction), everyone else's are comments. The
        author is the account's ``acct`` (``user`` or ``user@domain``).

        :raises KeyError, TypeError, ValueError: the status lacks what every status has.
        """
        if not isinstance(status, dict) or not str(status["id"]).isdigit():
            raise ValueError("a status without a numeric id")
        content = status.get("content", "")
        if not isinstance(content, str):
            raise ValueError("a status whose content is not a string")
        account = status["account"]
        if not isinstance(account, dict):
            raise ValueError("a status without an account")
        extra: dict[str, Any] = {"author_id": str(account.get("id"))}
        if account.get("display_name"):
            extra["author_name"] = str(account["display_name"])
        if status.get("spoiler_text"):
            extra["spoiler_text"] = str(status["spoiler_text"])
        photos = [
            m
            for m in status.get("media_attachments") or []
            if isinstance(m, dict) and m.get("type") == "image" and isinstance(m.get("url"), str)
        ]
        if photos:
            extra["attachment_urls"] = [m["url"] for m in photos]
            extra["attachment_alt_texts"] = [m.get("description") for m in photos]
        own = str(account.get("id")) == str(self._whoami().get("id"))
        parent = status.get("in_reply_to_id")
        return RemoteItem(
            kind="post" if thread_id is None or own else "comment",
            remote_id=str(status["id"]),
            text=plain_text(content),
            author=str(account.get("acct") or account.get("username") or account.get("id")),
            posted_at=parse_platform_time(status.get("created_at")),
            url=status.get("url") if isinstance(status.get("url"), str) else None,
            parent_id=str(parent) if parent else None,
            thread_id=thread_id or str(status["id"]),
            edited_at=parse_platform_time(status.get("edited_at")),
            extra=extra,
            raw=json_bytes(status),
        )

    def _page(self, statuses: Any, thread_id: str | None, next_cursor: str | None) -> Page:
        if not isinstance(statuses, list):
            raise MalformedResponse("Mastodon's answer is not a list", raw=json_bytes(statuses))
        items: list[RemoteItem] = []
        rejects: list[Reject] = []
        for status in statuses:
            try:
                items.append(self._item(status, thread_id))
            except (KeyError, TypeError, ValueError) as e:
                readable = status.get("id") if isinstance(status, dict) else None
                rejects.append(
                    Reject(
                        json_bytes(status),
                        f"{type(e).__name__}: {e}",
                        str(readable) if isinstance(readable, str) and readable.isdigit() else None,
                    )
                )
        return Page(items, next_cursor, rejects)

    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The status read back by id (``GET /api/v1/statuses/:id``), normalised as the
        listings normalise it; None when Mastodon no longer has it."""
        try:
            body = self._read("read post", lambda: self._api.status(remote_id))
        except Gone:
            return None
        page = self._page([body], None, None)
        if not page.items:
            raise MalformedResponse(
                "Mastodon's status answer holds no status", raw=json_bytes(body)
            )
        return page.items[0]

    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        """The account's statuses (boosts left out), newest first, 40 a page."""
        me = self._whoami()["id"]
        body = self._read(
            "list posts",
            lambda: self._api.account_statuses(
                me, max_id=cursor, since_id=since_id, limit=PAGE_SIZE, exclude_reblogs=True
            ),
        )
        return self._page(body, None, self._next_max_id())

    def _next_max_id(self) -> str | None:
        """The ``max_id`` of the ``Link: <...>; rel="next"`` of the last answer."""
        answer = self._answer()
        if answer is None:
            return None
        url = answer.links.get("next", {}).get("url")
        if not url:
            return None
        found = parse_qs(urlsplit(url).query).get("max_id")
        return found[0] if found else None

    def list_comments(
        self, post_id: str, cursor: str | None = None, since_id: str | None = None
    ) -> Page:
        """Every reply below ``post_id`` (``/api/v1/statuses/:id/context`` descendants, up to
        4,096 for an authenticated request), in one page."""
        body = self._read("list comments", lambda: self._api.status_context(post_id))
        if not isinstance(body, dict):
            raise MalformedResponse(
                "Mastodon's context answer is not an object", raw=json_bytes(body)
            )
        return self._page(body.get("descendants"), post_id, None)

    def fetch_comment(self, thread_id: str, comment_id: str) -> RemoteItem | None:
        """The reply read directly by id; None when it is gone."""
        try:
            body = self._read("read comment", lambda: self._api.status(comment_id))
        except Gone:
            return None
        page = self._page([body], thread_id, None)
        if not page.items:
            raise MalformedResponse(
                "Mastodon's status answer holds no status", raw=json_bytes(body)
            )
        return page.items[0]

    # -- moderation ------------------------------------------------------------------------
    def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """An attachment's image, fetched with the connector's session (timeouts apply)."""
        return fetch_bytes(self._session, url, max_bytes, self._timeout)

    def delete_post(self, post_id: str) -> None:
        """Delete one of the account's statuses; one already gone counts as deleted."""

        def once() -> None:
            with contextlib.suppress(Gone):
                self._call("delete post", lambda: self._api.status_delete(post_id))

        self.retry.call(self.name, "delete post", once)

    def check(self) -> list[CheckLine]:
        """Token, the instance's limits, reading the account's statuses and their replies."""
        try:
            me = self._whoami()
        except ConnectorError as e:
            return [CheckLine("access token (verify_credentials)", False, str(e))]
        lines = [CheckLine("access token (verify_credentials)", True, f"@{me.get('acct')}")]
        try:
            limit = self.read_instance()["max_characters"]
            lines.append(
                CheckLine("instance limits (/api/v2/instance)", True, f"{limit} characters")
            )
        except ConnectorError as e:
            lines.append(CheckLine("instance limits (/api/v2/instance)", False, str(e)))
        try:
            posts = self.list_posts().items
            lines.append(CheckLine("read own posts (account statuses)", True, str(len(posts))))
        except ConnectorError as e:
            return [*lines, CheckLine("read own posts (account statuses)", False, str(e))]
        try:
            if posts:
                self.list_comments(posts[0].remote_id)
            lines.append(CheckLine("read replies (status context)", True))
        except ConnectorError as e:
            lines.append(CheckLine("read replies (status context)", False, str(e)))
        return lines

    def close(self) -> None:
        self._session.close()
