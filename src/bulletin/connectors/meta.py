"""What the Meta connectors built on containers share: a facebook-sdk ``GraphAPI`` on one
host, its errors mapped to Bulletin's, and the journal of media containers.

Instagram (``graph.facebook.com``) and Threads (``graph.threads.net``) both publish in two
steps: a media container is created, then published. facebook-sdk 3.1.0 builds every URL on
``https://graph.facebook.com/``; a client for another host gets a session whose adapter
rewrites that host to it (or to the account's ``base_url``, a sandbox), so the library is
used as it is. Its constructor accepts only Graph versions 2.8-3.1: the configured version is
set on the instance afterwards.

Errors (https://developers.facebook.com/docs/graph-api/guides/error-handling) use the same
``{"error": {...}}`` body on both hosts. The token travels as facebook-sdk sends it (a query
or form parameter): no message here quotes a URL, and errors from ``requests`` are not
chained, because their text holds the URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import facebook
import requests

from bulletin.clock import Clock
from bulletin.config.secrets import Secret
from bulletin.connectors._common import meta_usage_wait
from bulletin.connectors.base import json_bytes
from bulletin.connectors.http import Timeout, platform_session, sent_request, skew_watch
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
    ) -> Any:
        """One call on ``{version}/{path}``, once (no retries)."""
        return self.call(
            what,
            lambda: self.graph.request(
                f"{self.version}/{path}",
                dict(args or {}),
                post_args=dict(post_args) if post_args is not None else None,
                method=method,
            ),
            write=write,
        )

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
