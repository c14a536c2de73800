"""What the Meta connectors built on containers share: a facebook-sdk ``GraphAPI`` on one
host, its errors mapped to Bulletin's, and the journal of media containers.

Instagram (``graph.facebook.com``) and Threads (``graph.threads.net``) both publish in two
steps: a media container is created, then published. facebook-sdk 3.1.0 builds every URL on
``https://graph.facebook.com/``; a client for another host gets a session whose adapter
rewrites that host to it (or to the account's ``base_url``, a sandbox), so the library is
used as it is. Its constructor accepts only Graph versions 2.8-3.1: the configured version is
set on the instance afterwards.

The connectors share :class:`GraphConnector` (building from settings, listing, deleting) and
Instagram and Threads :class:`ContainerConnector`, the container -> publish flow and its
journal; each connector keeps only its edges, fields and what a container holds.

Errors (https://developers.facebook.com/docs/graph-api/guides/error-handling) use the same
``{"error": {...}}`` body on both hosts. The token travels as facebook-sdk sends it (a query
or form parameter): no message here quotes a URL, and errors from ``requests`` are not
chained, because their text holds the URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from abc import abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Required, Self, TypedDict

import facebook
import requests

from bulletin.clock import Clock, SystemClock
from bulletin.config.accounts import AccountSettings
from bulletin.config.secrets import Secret, resolve_secret
from bulletin.config.settings import Settings
from bulletin.connectors._common import comparable_text, meta_usage_wait
from bulletin.connectors.base import (
    IMAGE_EXTENSIONS,
    Connector,
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
from bulletin.files import write_atomically

RATE_LIMIT_CODES = {4, 17, 32, 613, 9} | set(range(80000, 80015))
AUTH_CODES = {102, 104, 190, 10} | set(range(200, 300))
# (code, error_subcode) pairs that mean "no such object", matched as pairs: the error object
# carries both (https://developers.facebook.com/docs/graph-api/guides/error-handling), and
# Meta's code table (https://developers.facebook.com/docs/marketing-api/error-reference) has
# code 100 alone for "Invalid parameter" and 100 with subcode 33 for "Unsupported get / post
# request": the object does not exist, cannot be loaded due to missing permissions, or does
# not support the operation. Code 100 without subcode 33 is a bad request, never "gone".
GONE_ERRORS = {(100, 33)}


def possessive(label: str) -> str:
    """``label``'s possessive as messages write it: "Instagram's", "Threads'"."""
    return f"{label}'" if label.endswith("s") else f"{label}'s"


class GraphClient:
    """facebook-sdk's ``GraphAPI`` talking to ``host`` (or ``base_url``) for one account.

    :param host: the platform's own API host, e.g. ``https://graph.threads.net``; empty for
        facebook-sdk's own, ``graph.facebook.com``.
    :param label: the platform's name in error messages ("Threads", "Instagram", "Graph").
    :param usage_headers: the headers whose usage figures say when access comes back.
    """

    def __init__(
        self,
        account: str,
        *,
        token: Secret,
        host: str,
        label: str,
        base_url: str,
        version: str,
        retry: RetryPolicy,
        timeout: Timeout,
        clock: Clock,
        usage_headers: tuple[str, ...] = ("x-business-use-case-usage", "x-app-usage"),
    ) -> None:
        self.account = account
        self.usage_headers = usage_headers
        self.label = label
        self.version = version
        self.retry = retry
        self.clock = clock
        self.timeout = timeout
        self.last: requests.Response | None = None
        # every platform host (graph.facebook.com among them) goes to ``host`` or base_url
        self.session = platform_session(base_url or host, timeout)
        self.session.hooks["response"].append(self._remember)
        self.session.hooks["response"].append(skew_watch(account, clock))
        self.graph = facebook.GraphAPI(access_token=token.reveal(), session=self.session)
        self.graph.version = version

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last = response

    def answer(self) -> requests.Response | None:
        """The last HTTP answer facebook-sdk received (for headers and raw bytes)."""
        return self.last

    def raw(self, value: Any) -> bytes:
        """The bytes of the last answer (what is archived), else ``value`` as JSON."""
        last = self.answer()
        return last.content if last is not None else json_bytes(value)

    # -- errors ----------------------------------------------------------------------------
    def error(self, error: facebook.GraphAPIError) -> ConnectorError:
        """Our error for a Graph error body."""
        result: dict[str, Any] = error.result if isinstance(error.result, dict) else {}
        found = result.get("error")
        body: dict[str, Any] = found if isinstance(found, dict) else {}
        code = body.get("code", error.code)
        subcode = body.get("error_subcode")
        message = str(body.get("message") or error.message)
        where = f"account {self.account}: {self.label} error {code}"
        if subcode is not None:
            where += f" (subcode {subcode})"
        last = self.answer()
        if code is None:
            if last is not None and last.status_code >= 500:
                return Retryable(
                    f"account {self.account}: {self.label} answered {last.status_code}"
                )
            raw = last.content if last is not None else b""
            return MalformedResponse(
                f"account {self.account}: {self.label}'s answer is not JSON", raw=raw
            )
        if (code, subcode) in GONE_ERRORS:
            return Gone(f"{where}: {message}")
        if code in RATE_LIMIT_CODES:
            return RateLimited(f"{where} (rate limited): {message}", self.regain_at())
        if code == 506:
            return Duplicate(f"{where}: duplicate post ({message})")
        if code in AUTH_CODES:
            return AuthError(
                f"{where}: the token is invalid, expired or lacks a permission ({message})"
            )
        if code in (1, 2) or body.get("is_transient"):
            return Retryable(f"{where}: {message}")
        return Rejected(f"{where}: {message}", code=f"{code}" + (f".{subcode}" if subcode else ""))

    def regain_at(self) -> datetime:
        """When access comes back (usage headers, in minutes); 5 minutes when unsaid."""
        last = self.answer()
        headers: Mapping[str, str] = last.headers if last is not None else {}
        return self.clock.now() + meta_usage_wait(headers, self.usage_headers)

    # -- calls -----------------------------------------------------------------------------
    def call(self, what: str, call: Callable[[], Any], write: bool = False) -> Any:
        """Run one facebook-sdk call once; its result, or our error."""
        self.last = None
        try:
            return call()
        except facebook.GraphAPIError as e:
            raise self.error(e) from e
        except requests.RequestException as e:
            kind = type(e).__name__
            last = self.answer()
            if isinstance(e, requests.JSONDecodeError):
                if last is not None and last.status_code >= 500:
                    raise Retryable(
                        f"account {self.account}: {self.label} answered {last.status_code}"
                    ) from None
                raise MalformedResponse(
                    f"account {self.account}: {self.label}'s answer to {what} is not JSON",
                    raw=last.content if last is not None else b"",
                ) from None
            # Not chained: the text of a requests error holds the URL, token included.
            if write and sent_request(e):
                raise Ambiguous(
                    f"account {self.account}: {what} got no answer ({kind}); it may have worked"
                ) from None
            raise Retryable(
                f"account {self.account}: {what} failed ({kind})", code="unreachable"
            ) from None

    def request(
        self,
        what: str,
        path: str,
        args: dict[str, Any] | None = None,
        post_args: dict[str, Any] | None = None,
        method: str | None = None,
        write: bool = False,
        files: dict[str, Any] | None = None,
    ) -> Any:
        """One call on ``{version}/{path}``, once (no retries)."""
        return self.call(
            what,
            lambda: self.graph.request(
                f"{self.version}/{path}",
                dict(args or {}),
                post_args=dict(post_args) if post_args is not None else None,
                files=files,
                method=method,
            ),
            write=write,
        )

    def answer_id(self, result: Any, what: str) -> str:
        """The ``id`` in the answer ``result`` to ``what`` (a write).

        :raises MalformedResponse: there is none (the answer's bytes attached).
        """
        found = result.get("id") if isinstance(result, dict) else None
        if not found:
            raise MalformedResponse(
                f"{possessive(self.label)} {what} answer has no id", raw=self.raw(result)
            )
        return str(found)

    def get(self, what: str, path: str, **args: Any) -> Any:
        """A read, with the retry policy."""
        return self.retry.call(self.account, what, lambda: self.request(what, path, args))

    def read(self, what: str, object_id: str, fields: str) -> dict[str, Any] | None:
        """One object's fields; None when the platform has no such object."""
        try:
            body = self.get(what, object_id, fields=fields)
        except Gone:
            return None
        if not isinstance(body, dict) or "id" not in body:
            raise MalformedResponse(
                f"{self.label}'s answer to {what} has no id", raw=json_bytes(body)
            )
        return body

    @staticmethod
    def data(body: Any, label: str) -> list[dict[str, Any]]:
        """The ``data`` list of a listing. :raises MalformedResponse: there is none."""
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise MalformedResponse(f"{label}'s list has no data", raw=json_bytes(body))
        return [d for d in body["data"] if isinstance(d, dict)]

    @staticmethod
    def next_cursor(body: dict[str, Any]) -> str | None:
        """The ``after`` cursor when ``paging.next`` says there is more."""
        paging = body.get("paging") or {}
        if not paging.get("next"):
            return None
        after = (paging.get("cursors") or {}).get("after")
        return str(after) if after else None

    def close(self) -> None:
        self.session.close()


class ContainerJournal:
    """Media containers created and not yet published, by delivery key, in one JSON file.

    A container is written here (durably) as soon as the platform answers its creation and
    removed once it is published, so an attempt after a crash or a failed publish step
    publishes the container already made instead of making another. With no ``path`` the
    journal lives in memory (it then covers retries within one process only).

    The journal is per data directory: daemons on several hosts sharing one PostgreSQL do
    not share it. A delivery taken over by another host after a crash is reconciled by its
    text first and then makes its own container; the orphan expires unpublished after 24
    hours, so the worst case is one extra container, never a second post.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self.path is None:
            return self._memory
        try:
            value = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a torn file cannot happen (atomic writes); an edited one is ignored
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def _save(self, entries: dict[str, str]) -> None:
        if self.path is None:
            self._memory = entries
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(entries, sort_keys=True).encode())

    def get(self, key: str) -> str | None:
        """The container made for ``key``, or None."""
        return self._load().get(key)

    def put(self, key: str, container_id: str) -> None:
        entries = self._load()
        entries[key] = container_id
        self._save(entries)

    def drop(self, key: str) -> None:
        entries = self._load()
        if entries.pop(key, None) is not None:
            self._save(entries)

    def keys(self) -> list[str]:
        return sorted(self._load())


def journal_path(data_dir: Path, account: str) -> Path:
    """Where ``account``'s container journal lives in the data directory."""
    return data_dir / "containers" / f"{account}.json"


QUOTA_RETRY = timedelta(hours=1)  # a publishing quota's window moves: look again in an hour


def newer_than(page: Page, since: datetime) -> Page:
    """``page`` (newest first) cut before its first item posted before ``since``; a cut
    page has no next page."""
    for index, item in enumerate(page.items):
        if item.posted_at is not None and item.posted_at < since:
            return Page(page.items[:index], None, page.rejects)
    return page


class GraphOptions(TypedDict, total=False):
    """The keywords every Meta connector takes for its client, as :class:`GraphConnector`."""

    token: Required[Secret]
    base_url: str  # a sandbox's URL instead of the platform's host
    retry: RetryPolicy | None
    timeout: Timeout
    clock: Clock | None


class GraphConnector(Connector):
    """A connector speaking to one Meta host through a :class:`GraphClient` (``_client``).

    A subclass sets ``host``, ``label`` and ``settings_type`` (and ``client_type`` for a
    client of its own) and ``settings_fields``, implements :meth:`_posts`, and
    passes the Graph ``version`` and :class:`GraphOptions` on to ``__init__``. It gets
    :meth:`from_settings`, :meth:`list_posts`, the search of :meth:`_find_post`,
    :meth:`_delete`, :meth:`fetch_media` and :meth:`close`.
    """

    host: ClassVar[str]  # the platform's API host; "" for graph.facebook.com
    label: ClassVar[str]  # the platform's name in error messages
    settings_type: ClassVar[type[AccountSettings]]
    # the constructor's keywords read from the account's settings, of the same names
    settings_fields: ClassVar[tuple[str, ...]]
    client_type: ClassVar[type[GraphClient]] = GraphClient

    def __init__(
        self,
        name: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        **client_options: Any,
    ) -> None:
        """``client_options`` (``token``, ``version``, ``base_url``, ...) go to ``client_type``."""
        super().__init__(name)
        self.clock = clock or SystemClock()
        self.retry = (retry or RetryPolicy()).on_clock(clock)
        self._client = self.client_type(
            name,
            host=self.host,
            label=self.label,
            retry=self.retry,
            timeout=timeout,
            clock=self.clock,
            **client_options,
        )

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
    ) -> Self:
        """Build from ``[accounts.NAME]``; :raises AuthError: the token variable is unset."""
        account: Any = settings.account(name, cls.settings_type)
        return cls(
            name,
            token=resolve_secret(account.token_env, environ, name),
            base_url=account.base_url,
            retry=retry,
            timeout=timeout,
            clock=clock,
            **cls._settings_options(name, account, settings),
        )

    @classmethod
    def _settings_options(cls, name: str, account: Any, settings: Settings) -> dict[str, Any]:
        """The constructor's own keywords: ``settings_fields`` read from ``account``."""
        return {field: getattr(account, field) for field in cls.settings_fields}

    @abstractmethod
    def _posts(self, cursor: str | None) -> Page:
        """One page of the account's posts, newest first."""

    def _recent_posts(self, cursor: str | None, since: datetime) -> Page:
        """One page of the account's posts posted at or after ``since``, newest first."""
        return newer_than(self._posts(cursor), since)

    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        """The account's posts, newest first, 100 a page; stops at ``since_id``."""
        page = self._posts(cursor)
        if since_id is None:
            return page
        items: list[RemoteItem] = []
        for item in page.items:
            if item.remote_id == since_id:
                return Page(items, None, page.rejects)
            items.append(item)
        return Page(items, page.next_cursor, page.rejects)

    def _find_post(self, wanted: str, since: datetime) -> PublishResult | None:
        """The account's post posted at or after ``since`` whose comparable text is
        ``wanted``; None when there is none."""
        cursor: str | None = None
        while True:
            page = self._recent_posts(cursor, since)
            for item in page.items:
                if comparable_text(item.text) == wanted:
                    return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor

    def _delete(self, what: str, object_id: str) -> None:
        """DELETE one object, with retries; "no such object" (see GONE_ERRORS) means it is
        done, any other error is raised."""

        def once() -> None:
            with contextlib.suppress(Gone):
                self._client.request(what, object_id, method="DELETE")

        self.retry.call(self.name, what, once)

    def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """An attachment's bytes, fetched with the connector's session (timeouts apply)."""
        return fetch_bytes(self._client.session, url, max_bytes, self._client.timeout)

    def close(self) -> None:
        self._client.close()


class ContainerConnector(GraphConnector):
    """Meta's two publishing steps (Instagram, Threads), exactly once.

    ``POST /{owner}/{container_edge}`` makes a media container, written at once to the
    account's :class:`ContainerJournal` under the delivery key; ``POST
    /{owner}/{container_edge}_publish`` publishes it, and the journal entry is dropped. A
    later attempt of the same delivery (after a failure or a crash) publishes the journal's
    container when its status says it still can, instead of making another: a container
    ``IN_PROGRESS`` is retried later, one ``PUBLISHED`` is ambiguous (its post is searched),
    any other is replaced.

    A subclass sets the class attributes below, passes ``owner_id``, ``media_base_url`` and
    ``journal`` to ``__init__``, and implements :meth:`_container_args`,
    :meth:`_check_quota` and :meth:`_post_item`.
    """

    container_edge: ClassVar[str]  # "media", "threads"
    status_field: ClassVar[str]  # the container's field holding FINISHED, IN_PROGRESS, ...
    container_fields: ClassVar[str]  # the fields read of a journal's container
    post_fields: ClassVar[str]  # the fields read of a post
    quota_edge: ClassVar[str]  # the publishing limit's edge of the account
    quota_fields: ClassVar[str]

    def __init__(
        self, name: str, owner_id: str, media_base_url: str, journal: Path | None, **options: Any
    ) -> None:
        """:param owner_id: the account's user id, owner of the container edges."""
        super().__init__(name, **options)
        self.owner_id = owner_id
        self.media_base_url = media_base_url.rstrip("/")
        self.journal = ContainerJournal(journal)

    @classmethod
    def _settings_options(cls, name: str, account: Any, settings: Settings) -> dict[str, Any]:
        """``settings_fields`` and the journal, in the data directory."""
        journal = journal_path(settings.data_dir, name)
        return super()._settings_options(name, account, settings) | {"journal": journal}

    # -- hooks -----------------------------------------------------------------------------
    @abstractmethod
    def _container_args(self, post: OutgoingPost) -> dict[str, Any]:
        """What the container of ``post`` holds (the creation's form).

        :raises Rejected: the platform cannot take ``post``.
        """

    @abstractmethod
    def _check_quota(self, post: OutgoingPost) -> None:
        """:raises RateLimited: the account's publishing quota for ``post`` is spent."""

    @abstractmethod
    def _post_item(self, row: dict[str, Any]) -> RemoteItem:
        """One of the account's posts as read; raises on a malformed row."""

    # -- publishing ------------------------------------------------------------------------
    def publish(self, post: OutgoingPost) -> PublishResult:
        """Create a container and publish it, at most once (see the class notes).

        :raises RateLimited: the account's 24-hour publishing quota is spent.
        """
        return self.retry.publish(self, post, self._publish_once)

    def _publish_once(self, post: OutgoingPost) -> PublishResult:
        """One attempt: the quota, the container, the publish step, the post read back
        (its id and the answer's bytes when it cannot be read)."""
        self._check_quota(post)
        container = self._container(post)
        result = self._client.request(
            "publish",
            f"{self.owner_id}/{self.container_edge}_publish",
            post_args={"creation_id": container},
            write=True,
        )
        media_id = self._client.answer_id(result, "publish")
        self.journal.drop(post.key)
        try:
            body = self._client.read("read post", media_id, self.post_fields)
        except ConnectorError:
            body = None
        if body is None:
            return PublishResult(media_id, None, self.clock.now(), json_bytes(result))
        item = self._post_item(body)
        return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)

    def _container(self, post: OutgoingPost) -> str:
        """The journal's container of ``post`` when it can still be published, else a new
        one, written to the journal before anything else happens."""
        known = self.journal.get(post.key)
        if known is not None and self._publishable(known, post.key):
            return known
        args = self._container_args(post)
        result = self._client.request(
            "create container", f"{self.owner_id}/{self.container_edge}", post_args=args, write=True
        )
        container = self._client.answer_id(result, "container")
        self.journal.put(post.key, container)
        return container

    def _publishable(self, container: str, key: str) -> bool:
        """Whether the journal's ``container`` (of delivery ``key``) is ready to publish;
        one that never will be is dropped from the journal.

        :raises Retryable: it is not ready yet.
        :raises Ambiguous: it was published (its post is to be found).
        """
        body = self._client.read("read container", container, self.container_fields)
        status = str((body or {}).get(self.status_field) or "")
        if status == "FINISHED":
            return True
        if status == "IN_PROGRESS":
            raise Retryable(f"account {self.name}: the {self.label} container is not ready")
        if status == "PUBLISHED":
            raise Ambiguous(
                f"account {self.name}: the {self.label} container {container} was published "
                "and its post is not found yet"
            )
        self.journal.drop(key)  # EXPIRED, ERROR or gone: make a new one
        return False

    def _image_url(self, image: Media) -> str:
        """Where the platform fetches ``image``: ``media_base_url`` joined with its SHA-256."""
        digest = hashlib.sha256(image.data).hexdigest()
        return f"{self.media_base_url}/{digest}.{IMAGE_EXTENSIONS.get(image.mime_type, 'jpg')}"

    # -- quota -----------------------------------------------------------------------------
    def quota(self) -> dict[str, Any]:
        """The account's publishing limit (``quota_edge``): the usage of the last 24 hours
        and its allowance (``quota_usage``, ``config``, ...)."""
        body = self._client.get(
            "read publishing limit", f"{self.owner_id}/{self.quota_edge}", fields=self.quota_fields
        )
        rows = GraphClient.data(body, self.label)
        if not rows:
            raise MalformedResponse(
                f"{possessive(self.label)} publishing limit is empty", raw=json_bytes(body)
            )
        return rows[0]

    def _enforce_quota(self, usage: str, config: str, default: int, allowance: str) -> None:
        """Refuse to publish when the quota row's ``usage`` has reached the ``quota_total``
        of its ``config`` (``default`` when unsaid).

        :param allowance: what is allowed, with ``{total}``: "Threads allows {total} posts".
        :raises RateLimited: the quota is spent (retried in an hour).
        :raises MalformedResponse: the row's figures are not numbers.
        """
        row = self.quota()
        try:
            used = int(row.get(usage) or 0)
            total = int((row.get(config) or {}).get("quota_total") or default)
        except (TypeError, ValueError, AttributeError):
            raise MalformedResponse(
                f"{possessive(self.label)} publishing limit is not numbers", raw=json_bytes(row)
            ) from None
        if used >= total:
            raise RateLimited(
                f"account {self.name}: {allowance.format(total=total)} per 24 hours and "
                f"{used} were published; the post waits until the quota frees",
                self.clock.now() + QUOTA_RETRY,
                code="publishing-limit",
            )

    # -- reading ---------------------------------------------------------------------------
    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """The account's post (or, with ``reply_to``, its own reply there) with ``post``'s
        text, created at or after ``since``."""
        wanted = comparable_text(post.text)
        if not post.reply_to:
            return self._find_post(wanted, since)
        for item in self.iter_comments(post.reply_to):
            if item.kind != "post" or comparable_text(item.text) != wanted:
                continue
            if item.posted_at is not None and item.posted_at < since:
                continue
            return PublishResult(item.remote_id, item.url, item.posted_at, item.raw)
        return None

    def _post_page(self, body: Any) -> Page:
        """The posts of a listing's answer; malformed ones are kept as rejects."""
        items, rejects = [], []
        for row in GraphClient.data(body, self.label):
            try:
                items.append(self._post_item(row))
            except (KeyError, TypeError, ValueError) as e:
                ident = row.get("id")
                rejects.append(
                    Reject(json_bytes(row), f"{type(e).__name__}: {e}", ident and str(ident))
                )
        return Page(items, GraphClient.next_cursor(body), rejects)
