"""What keeps the portal read-only and cheap to serve: only GET and HEAD reach it, and each
client address may make at most ``[portal] rate_limit`` requests a minute."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bulletin.web.security import ADDRESS_KEY

READ_METHODS = frozenset({"GET", "HEAD"})
WINDOW = 60.0  # seconds
MAX_TRACKED = 100_000  # addresses remembered at once; stale windows are dropped past it


class ReadOnly:
    """ASGI middleware: any method but GET and HEAD is answered 405 before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            response = PlainTextResponse(
                "Not allowed: the public archive portal only reads (GET, HEAD).\n",
                status_code=405,
                headers={"Allow": "GET, HEAD", "Cache-Control": "no-store"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class RateLimit:
    """ASGI middleware: a fixed one-minute window per client address (as the security
    middleware placed it in the scope, X-Forwarded-For believed from trusted proxies only);
    past ``per_minute`` requests the answer is 429 with Retry-After until the window ends."""

    def __init__(self, app: ASGIApp, per_minute: int, now: Callable[[], datetime]) -> None:
        self.app = app
        self.per_minute = per_minute
        self.now = now
        self.windows: dict[str, tuple[float, int]] = {}

    def _count(self, address: str) -> float | None:
        """Count one request; the seconds to wait when it is one too many."""
        at = self.now().timestamp()
        start, count = self.windows.get(address, (at, 0))
        if at - start >= WINDOW:
            start, count = at, 0
        if count >= self.per_minute:
            return WINDOW - (at - start)
        if len(self.windows) >= MAX_TRACKED and address not in self.windows:
            self.windows = {a: w for a, w in self.windows.items() if at - w[0] < WINDOW}
        self.windows[address] = (start, count + 1)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = self._count(str(scope.get(ADDRESS_KEY, "")))
        if wait is not None:
            response = PlainTextResponse(
                "Too many requests from this address; wait a minute and try again.\n",
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait))), "Cache-Control": "no-store"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
