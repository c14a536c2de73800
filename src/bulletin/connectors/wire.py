"""Recording what a platform said on the wire, without the credentials we sent it.

Inside ``with recording(clock) as tape:`` every answer a platform session's adapter receives
(see :mod:`bulletin.connectors.http`) on this thread of control is added to ``tape`` as an
:class:`Exchange`: the request line and headers, the response status, headers and body bytes.
Every connector built on ``requests`` gets it with no code of its own.

Credentials never enter an :class:`Exchange`: ``Authorization``, ``Cookie``, ``Set-Cookie`` and
any header naming a token, secret or key are dropped; query parameters carrying a token
(``access_token``, ``oauth_*``, ``*_token`` except paging tokens) are replaced by
``REDACTED``; and every credential value the request carried is replaced by ``REDACTED``
wherever it appears in the answer (Graph's ``paging.next`` repeats the ``access_token``).
An exchange whose body was changed so says (``redacted``). The request body is not kept; the
response body is kept as ``requests`` decoded it (so ``Content-Encoding`` and
``Transfer-Encoding`` are dropped and ``Content-Length`` is the kept body's).
A streamed answer (an attachment's bytes, read with a cap) is not recorded: its bytes are
stored as media.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import requests

if TYPE_CHECKING:
    from bulletin.clock import Clock

REDACTED = "REDACTED"
_DROPPED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-amz-security-token"}
)
_SECRET_WORDS = ("token", "secret", "api-key", "apikey", "api_key", "password", "signature")
_PAGING = frozenset({"pagination_token", "next_token", "previous_token"})
_OAUTH_PARAM = re.compile(r'(oauth_(?:token|signature|consumer_key|verifier))="([^"]*)"')
_TOKEN_IN_TEXT = re.compile(rb"((?:access_token|oauth_[a-z_]+)(?:=|%3D))([^&\"'\s\\<>]+)", re.I)
_FRAMING = frozenset({"content-length", "content-encoding", "transfer-encoding"})
_MIN_SECRET = 6  # shorter values are not searched for in answers (too likely to collide)


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, credentials removed (see the module's docstring)."""

    at: datetime
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    status: int
    reason: str
    response_headers: tuple[tuple[str, str], ...]
    body: bytes
    http_version: str = "HTTP/1.1"
    redacted: bool = False


@dataclass
class Tape:
    """The exchanges recorded so far; :meth:`drain` takes them."""

    clock: Clock
    exchanges: list[Exchange] = field(default_factory=list)

    def drain(self) -> list[Exchange]:
        """The exchanges since the last drain, oldest first."""
        out, self.exchanges = self.exchanges, []
        return out


_tape: ContextVar[Tape | None] = ContextVar("bulletin_wire_tape", default=None)


@contextmanager
def recording(clock: Clock) -> Iterator[Tape]:
    """Record every platform exchange made inside the block (this thread / task)."""
    tape = Tape(clock)
    token = _tape.set(tape)
    try:
        yield tape
    finally:
        _tape.reset(token)


def secret_param(name: str) -> bool:
    """Whether a query parameter or form field named ``name`` carries a credential."""
    low = name.lower()
    if low in _PAGING:
        return False
    return (
        low in ("token", "access_token", "key", "api_key", "client_secret", "appsecret_proof")
        or low.startswith("oauth_")
        or low.endswith(("_token", "_secret"))
    )


def secret_header(name: str) -> bool:
    """Whether a header named ``name`` is dropped from a recording."""
    low = name.lower()
    return low in _DROPPED_HEADERS or any(word in low for word in _SECRET_WORDS)


def clean_url(url: str) -> tuple[str, list[str]]:
    """``url`` with credential query parameters redacted; the values taken out."""
    parts = urlsplit(url)
    if not parts.query:
        return url, []
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secrets = [v for k, v in pairs if secret_param(k) and v]
    if not secrets:
        return url, []
    query = urlencode([(k, REDACTED if secret_param(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment)), secrets


def _header_secrets(name: str, value: str) -> list[str]:
    """Credential values inside a dropped header (bearer tokens, OAuth 1.0a parameters)."""
    found = [v for _k, v in _OAUTH_PARAM.findall(value) if v]
    scheme, _, rest = value.partition(" ")
    if rest and not found:
        found.append(rest.strip())
    elif not rest and name.lower() != "authorization":
        found.append(value.strip())
    for piece in re.split(r"[;,]\s*", value):  # cookies: name=value pairs
        if "=" in piece and name.lower() in ("cookie", "set-cookie"):
            found.append(piece.split("=", 1)[1].strip().strip('"'))
    return [s for s in found if s and s != scheme]


def _scrub(data: bytes, secrets: list[str]) -> tuple[bytes, bool]:
    """``data`` with every secret value (plain and URL-encoded) and every
    ``access_token=…`` / ``oauth_*=…`` value replaced; whether anything changed."""
    out = _TOKEN_IN_TEXT.sub(lambda m: m.group(1) + REDACTED.encode(), data)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) < _MIN_SECRET:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
            out = out.replace(form.encode(), REDACTED.encode())
    return out, out != data


def exchange(
    request: requests.PreparedRequest, response: requests.Response, at: datetime
) -> Exchange:
    """The credential-free record of one request and its (already read) answer."""
    url, secrets = clean_url(request.url or "")
    kept: list[tuple[str, str]] = []
    for name, value in request.headers.items():
        raw: object = value  # requests_oauthlib may set bytes
        text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        if secret_header(name):
            secrets.extend(_header_secrets(name, text))
        else:
            kept.append((name, text))
    body, changed = _scrub(response.content or b"", secrets)
    headers: list[tuple[str, str]] = []
    for name, value in response.headers.items():
        if secret_header(name):
            continue
        clean, touched = _scrub(value.encode("latin-1", "replace"), secrets)
        headers.append((name, clean.decode("latin-1")))
        changed = changed or touched
    # the body is kept decoded and whole: its length, not the wire's encoding
    headers = [(k, v) for k, v in headers if k.lower() not in _FRAMING]
    headers.append(("Content-Length", str(len(body))))
    version = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(
        getattr(response.raw, "version", 11), "HTTP/1.1"
    )
    return Exchange(
        at=at,
        method=request.method or "GET",
        url=url,
        request_headers=tuple(kept),
        status=response.status_code,
        reason=response.reason or "",
        response_headers=tuple(headers),
        body=body,
        http_version=version,
        redacted=changed,
    )


def record(request: requests.PreparedRequest, response: requests.Response, stream: bool) -> None:
    """Add the exchange to the active tape, if any (called by the platform adapters)."""
    tape = _tape.get()
    if tape is None or stream:
        return
    tape.exchanges.append(exchange(request, response, tape.clock.now()))
