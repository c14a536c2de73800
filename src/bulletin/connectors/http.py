"""HTTP sessions for the platform client libraries.

A session from :func:`platform_session` sends every request with a default timeout and, when
the account has a ``base_url`` (a sandbox or a compatible endpoint), rewrites the platform
hosts' scheme and host to it. tweepy takes it as ``client.session = ...``; facebook-sdk as
``GraphAPI(session=...)``; an ``OAuth1Session`` gets the same adapters through
:func:`mount_platform_adapters`. No adapter retries on its own: retries belong to
:mod:`bulletin.connectors.retry`. Inside :func:`bulletin.connectors.wire.recording` every
adapter records its exchanges (credentials removed) for the WARC of a capture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from bulletin.connectors import wire
from bulletin.connectors.platforms import PLATFORMS
from bulletin.fetch import read_capped
from bulletin.logs import get_logger

if TYPE_CHECKING:
    from bulletin.clock import Clock

log = get_logger("bulletin.connectors")

# every platform's API hosts: what a base_url (a sandbox) stands in for
PLATFORM_HOSTS: tuple[str, ...] = tuple(h for spec in PLATFORMS.values() for h in spec.hosts)
Timeout = tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)  # (connect, read) seconds


class TimeoutAdapter(HTTPAdapter):
    """An adapter that applies ``timeout`` to requests sent without one."""

    def __init__(self, timeout: Timeout = DEFAULT_TIMEOUT) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        response = super().send(
            request,
            stream=stream,
            timeout=timeout if timeout is not None else self.timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )
        wire.record(request, response, stream)  # inside a capture's recording() only
        return response


class RewritingAdapter(TimeoutAdapter):
    """Sends requests for a platform host to ``base_url`` instead (scheme, host, path prefix)."""

    def __init__(self, base_url: str, timeout: Timeout = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        request.url = urlunsplit(
            (self._scheme, self._netloc, self._prefix + url.path, url.query, url.fragment)
        )
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )


def mount_platform_adapters(
    session: requests.Session, base_url: str = "", timeout: Timeout = DEFAULT_TIMEOUT
) -> requests.Session:
    """Give ``session`` default timeouts and, with a ``base_url``, the platform rewrite."""
    plain = TimeoutAdapter(timeout)
    session.mount("http://", plain)
    session.mount("https://", plain)
    if base_url:
        rewriting = RewritingAdapter(base_url, timeout)
        for host in PLATFORM_HOSTS:
            session.mount(host + "/", rewriting)
    return session


def platform_session(base_url: str = "", timeout: Timeout = DEFAULT_TIMEOUT) -> requests.Session:
    """A new session for one account; empty ``base_url`` = the real platform."""
    return mount_platform_adapters(requests.Session(), base_url, timeout)


SKEW_WARNING_SECONDS = 5.0
_skews: dict[str, float] = {}  # account → the latest skew measured, seconds (host - platform)
_skews_lock = threading.Lock()


def clock_skew(account: str) -> float | None:
    """The latest measured offset of this host's clock from ``account``'s platform, in seconds
    (positive: the host is ahead), from the ``Date`` header of its answers; None before any."""
    with _skews_lock:
        return _skews.get(account)


def skew_watch(account: str, clock: Clock) -> Callable[..., None]:
    """A ``requests`` response hook that measures the host's clock (``clock``) against the
    platform's ``Date`` header and logs a warning when they differ by more than
    :data:`SKEW_WARNING_SECONDS` (once, until the skew is back under it). Reconciliation does
    not depend on it (it looks posts up by their text); the warning tells an operator why
    times disagree."""

    warned = False

    def watch(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        nonlocal warned
        try:
            platform = parsedate_to_datetime(response.headers["Date"])
        except (KeyError, TypeError, ValueError, IndexError):
            return
        if platform.tzinfo is None:
            return
        skew = (clock.now() - platform).total_seconds()
        with _skews_lock:
            _skews[account] = skew
        # the Date header has whole seconds: one more second of slack
        over = abs(skew) > SKEW_WARNING_SECONDS + 1
        if over and not warned:
            log.warning(
                "clock skew",
                account=account,
                seconds=round(skew, 1),
                note="this host's clock differs from the platform's; check NTP",
            )
        warned = over

    return watch


def sent_request(error: requests.RequestException) -> bool:
    """Whether the request may have reached the server before ``error``.

    A refused or timed-out connection never sent anything; a read timeout or a connection
    dropped mid-answer may have.
    """
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        text = repr(error.args)
        return not any(
            marker in text
            for marker in ("NewConnectionError", "Connection refused", "NameResolutionError")
        )
    return isinstance(error, requests.Timeout)


def fetch_bytes(
    session: requests.Session, url: str, max_bytes: int, timeout: Timeout = DEFAULT_TIMEOUT
) -> tuple[bytes, str | None]:
    """GET ``url`` (an image a platform links to); its bytes and content type.

    :raises Retryable: no answer, an error status, or more than ``max_bytes``.
    """
    from bulletin.errors import Retryable

    try:
        with session.get(url, timeout=timeout, stream=True) as response:
            if not response.ok:
                raise Retryable(f"fetching an attachment answered {response.status_code}")
            data = read_capped(response, max_bytes)
            if len(data) > max_bytes:
                raise Retryable(f"an attachment is larger than {max_bytes} bytes")
            return data, response.headers.get("content-type")
    except requests.RequestException as e:
        # Not chained and no URL: a platform's media URL may carry a signature.
        raise Retryable(f"fetching an attachment failed ({type(e).__name__})") from None
