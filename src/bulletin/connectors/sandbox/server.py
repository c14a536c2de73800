"""The sandbox HTTP server: the control API under ``/_sandbox/``, and each platform's API
(its :class:`~bulletin.connectors.platforms.PlatformSpec` ``sandbox``) under its path prefix:
X API v2 under ``/2/``, the Graph API for every other path. APIs that share a prefix (Meta's
hosts all have Graph's paths) tell their requests apart with ``owns(request)``: the first
API whose prefix matches and that owns the request (or has no ``owns``) answers it.

``SandboxServer`` runs in a background thread (tests, the daemon); :func:`serve` runs in the
foreground (``bulletin sandbox``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from bulletin.connectors.platforms import PLATFORMS
from bulletin.connectors.sandbox.control import ControlApi
from bulletin.connectors.sandbox.faults import Fault, Faults
from bulletin.connectors.sandbox.fb_webhooks import WebhookSender
from bulletin.connectors.sandbox.http_types import (
    Request,
    Response,
    json_response,
    malform_first_item,
)
from bulletin.connectors.sandbox.state import SandboxState
from bulletin.connectors.sandbox.x_api import XApi
from bulletin.connectors.sandbox.x_stream import XStream

log = logging.getLogger(__name__)

SHORT_CIRCUIT = ("rate_limit", "error", "duplicate", "expired_token", "invalid_parameter")


class PlatformApi(Protocol):
    """One platform's API in the sandbox, built with the sandbox's state."""

    TEXT_FIELD: str  # a post's text in its answers (what the ``malformed_item`` fault spoils)

    def handle(self, request: Request) -> Response: ...

    def fault_response(self, fault: Fault, request: Request) -> Response: ...


class SandboxApp:
    """Routes a :class:`Request` to the right API, applying injected faults."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.faults = Faults()
        self.stopping = threading.Event()
        self.webhooks = WebhookSender(state, self.stopping)
        state.comment_listeners.append(self.webhooks.comment_changed)
        self.control = ControlApi(state, self.faults, self.webhooks)
        # (path prefix, API), the longest prefix first
        apis = [
            (spec.sandbox_prefix, spec.sandbox_class()(state))
            for spec in PLATFORMS.values()
            if spec.sandbox
        ]
        self.apis: list[tuple[str, PlatformApi]] = sorted(
            apis, key=lambda a: (-len(a[0]), not hasattr(a[1], "owns"))
        )
        for _, api in self.apis:
            if isinstance(api, XApi):
                api.stream.stopping = self.stopping

    def _x_stream(self) -> XStream:
        """The X API's filtered stream (see :mod:`.x_stream`)."""
        for _, api in self.apis:
            if isinstance(api, XApi):
                return api.stream
        raise LookupError("no X API in this sandbox")

    def api_for(self, request: Request) -> PlatformApi | None:
        """The platform API that answers ``request``, or None."""
        for prefix, api in self.apis:
            owns = getattr(api, "owns", None)
            if request.path.startswith(prefix) and (owns is None or owns(request)):
                return api
        return None

    def handle(self, request: Request) -> Response:
        if request.path == "/_sandbox/x/stream/disconnect" and request.method == "POST":
            return json_response(200, {"disconnected": self._x_stream().disconnect()})
        if request.path.startswith("/_sandbox/"):
            return self.control.handle(request)
        api = self.api_for(request)
        if api is None:
            return json_response(404, {"error": f"no sandbox API answers {request.path}"})
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.kind in SHORT_CIRCUIT:
            return api.fault_response(fault, request)
        if fault is not None and fault.kind == "delay":
            self.stopping.wait(fault.seconds)
        response = api.handle(request)
        if fault is not None and fault.kind == "timeout":
            response.stall = fault.seconds
        if fault is not None and fault.kind == "malformed_item":
            malform = getattr(api, "malform", None)  # an API whose lists are not ``data``
            response = (
                malform(response) if malform else malform_first_item(response, api.TEXT_FIELD)
            )
        if fault is not None and fault.kind == "malformed":
            response = Response(
                200, b'{"data": {"id": "12', {"content-type": "application/json; charset=utf-8"}
            )
        return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # one write per answer (flushed after each request)
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            host=self.headers.get("host", "127.0.0.1"),
        )
        try:
            response = self.server.app.handle(request)
        except Exception:
            log.exception("sandbox handler failed for %s %s", self.command, parts.path)
            response = Response(
                500, b'{"error": "sandbox bug"}', {"content-type": "application/json"}
            )
        if response.stall:
            # The work is done; now keep the client waiting past its timeout.
            self.server.app.stopping.wait(response.stall)
            self.close_connection = True
        if response.stream is not None:
            self._stream(response)
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def handle(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()  # the client may have gone away (a stream it closed)

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().finish()

    def _stream(self, response: Response) -> None:
        """Send a streaming answer chunk by chunk (chunked transfer coding), then close."""
        assert response.stream is not None
        self.close_connection = True
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for chunk in response.stream:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            close = getattr(response.stream, "close", None)
            if close is not None:
                close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # The request line may carry an access token in its query string: log the path only.
        log.debug("sandbox %s %s", self.command, urlsplit(self.path).path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


class SandboxServer:
    """A sandbox listening on ``host:port`` (0 picks a free port), state in ``state_file``."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, state_file: Path | str | None = None
    ) -> None:
        self.state = SandboxState(Path(state_file) if state_file is not None else None)
        self.app = SandboxApp(self.state)
        self._server = _Server((host, port), self.app)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to put in an account's ``base_url``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve in a background thread; returns self."""
        self.state.save()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (stalled requests are released) and close the socket."""
        self.app.stopping.set()
        self.app.webhooks.stop()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(host: str, port: int, state_file: Path | str | None) -> None:
    """Run a sandbox in the foreground until SIGTERM or Ctrl-C."""
    server = SandboxServer(host, port, state_file)
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.start()
    print(f"sandbox listening on {server.url} (state: {state_file or 'in memory'})", flush=True)
    if not is_loopback(host):
        print(
            f"warning: the sandbox listens on {host}, reachable from other machines; anyone "
            "who reaches it can post, read and fault its accounts (use 127.0.0.1)",
            file=sys.stderr,
            flush=True,
        )
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
