"""Serving the web console with uvicorn: alone (``bulletin web``) or in a thread of the daemon.

The listening socket is bound here, before uvicorn starts, so that a busy or forbidden address
is one :class:`~bulletin.errors.ConfigError` line naming the address and the setting, never a
traceback or an exit from inside uvicorn.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from bulletin.app import App
from bulletin.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

#: how long :meth:`Console.start` waits for uvicorn to answer
START_SECONDS = 10.0


def bind(address: str, setting: str = "[web] address") -> socket.socket:
    """A listening socket at ``address`` (``host:port``; ``[v6]:port``; port 0: any free one).

    :raises ConfigError: the address is in use, not on this host, or not allowed.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, int(port)), family=family, backlog=2048)
    except OSError as e:
        reason = (os.strerror(e.errno) if e.errno else str(e)).lower()
        raise ConfigError(
            f"cannot serve the web console at {address} ({setting}): {reason}; "
            f"stop what listens there or choose another address"
        ) from None


def bound_address(sock: socket.socket) -> str:
    """``host:port`` a bound socket listens at (the port chosen for port 0)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run(app: App, sock: socket.socket) -> None:
    """Serve the console of ``app`` on ``sock`` until SIGTERM or SIGINT (in the main thread)."""
    _server(app).run(sockets=[sock])


class Console:
    """The console served by uvicorn in a thread of its own: :meth:`start`, :meth:`stop`.

    X-Forwarded-* headers are weighed by the app (``[web] trusted_proxies``), not uvicorn.
    """

    def __init__(self, app: App, sock: socket.socket) -> None:
        self.sock = sock
        self.address = bound_address(sock)
        self._server = _server(app)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )

    def start(self) -> bool:
        """Start serving; whether uvicorn answered within :data:`START_SECONDS`."""
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return self._server.started

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish the requests in hand (at most ``timeout`` seconds), close."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
        self.sock.close()


def _server(app: App) -> uvicorn.Server:
    import uvicorn

    from bulletin.web import create_app

    config = uvicorn.Config(
        create_app(app),
        proxy_headers=False,  # X-Forwarded-* are weighed by the app, from trusted proxies only
        server_header=False,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)
