"""What every response and form of the web door is protected by: security headers, who the
client is (X-Forwarded-* believed only from ``[web] trusted_proxies``), form tokens (CSRF)
and the ``next`` parameter (local paths only)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000"
STATIC = "/static/"
HTTPS_KEY = "bulletin.https"
ADDRESS_KEY = "bulletin.address"


class Networks:
    """The trusted proxies, as networks."""

    def __init__(self, items: Sequence[str]) -> None:
        self.networks = [ipaddress.ip_network(i, strict=False) for i in items]

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip in n for n in self.networks)


@dataclass(frozen=True)
class Origin:
    """Where a request came from: the client's address and whether it came over TLS."""

    address: str
    https: bool


def origin_of(scope: Scope, trusted: Networks) -> Origin:
    """The client's address and scheme; a trusted proxy's X-Forwarded-For (the nearest
    address it did not itself trust) and X-Forwarded-Proto stand instead of its own."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    https = scope.get("scheme") == "https"
    if peer not in trusted:
        return Origin(peer, https)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    address = peer
    for hop in reversed([h.strip() for h in headers.get("x-forwarded-for", "").split(",")]):
        if hop:
            address = hop
            if hop not in trusted:
                break
    proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return Origin(address, https or proto == "https")


class Protections:
    """ASGI middleware: records the request's :class:`Origin` in its scope and adds the
    security headers to every response (HSTS only over TLS; ``no-store`` but for the
    stylesheet)."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self.trusted = Networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = origin_of(scope, self.trusted)
        scope[ADDRESS_KEY] = found.address
        scope[HTTPS_KEY] = found.https

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if not scope["path"].startswith(STATIC):
                    headers.setdefault("Cache-Control", "no-store")  # pages name who is in
                if found.https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def address(request: Request) -> str:
    return str(request.scope.get(ADDRESS_KEY, ""))


def https(request: Request) -> bool:
    return bool(request.scope.get(HTTPS_KEY, False))


def form_token(secret: str, purpose: str) -> str:
    """The CSRF token of forms keyed by ``secret`` (a session's, or the pre-session cookie's)."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def token_matches(secret: str | None, purpose: str, given: object) -> bool:
    if not secret or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(form_token(secret, purpose), given)


def local_path(value: object, default: str = "/") -> str:
    """``value`` when it is a path on this site (``/notices?x=1``), else ``default``: no scheme,
    no host, no ``//`` or backslash that a browser would read as another host."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
