"""X's filtered stream in the sandbox, from X's published reference:

- rules: ``POST /2/tweets/search/stream/rules`` (``{"add": [{"value", "tag"}]}`` or
  ``{"delete": {"ids": [...]}}``) and ``GET /2/tweets/search/stream/rules``
  (https://docs.x.com/x-api/stream/update-stream-rules,
  https://docs.x.com/x-api/stream/get-stream-rules); pay-per-use limits: 1,000 rules,
  1,024 characters each (https://docs.x.com/x-api/posts/filtered-stream/introduction).
- the stream: ``GET /2/tweets/search/stream``, one JSON object a line
  (``{"data": post, "includes": ..., "matching_rules": [{"id", "tag"}]}``) and a bare
  ``\\r\\n`` as keep-alive when idle; one connection at a time (a second one gets 429
  ``TooManyConnections``); 50 connections per 15 minutes.

Both authenticate with the app's bearer token (OAuth 2.0 App-Only). Rules support what the
sandbox's recent search supports (``conversation_id:``, ``from:``, ``to:``, ``is:reply``,
keywords), joined by ``OR``. A post is matched when it is created; posts created while no
stream is connected are never delivered (X's backfill is Enterprise only).

For tests: ``POST /_sandbox/x/stream/disconnect`` ends every open stream (the client sees
the connection close), and ``POST /_sandbox/settings {"x_stream_keepalive": s}`` sets the
keep-alive interval (X: 20 s).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bulletin.connectors.sandbox.http_types import Request, Response, json_response
from bulletin.connectors.sandbox.state import SandboxState, x_time

MAX_RULES, MAX_RULE_LENGTH, CONNECTIONS_PER_WINDOW, WINDOW = 1000, 1024, 50, 15 * 60
Matcher = Callable[[str, dict[str, Any]], bool]  # (one term, tweet) -> matches
Renderer = Callable[[Request, dict[str, Any]], dict[str, Any]]  # tweet -> data + includes


def _problem(status: int, title: str, detail: str, type_: str) -> Response:
    return json_response(status, {"title": title, "detail": detail, "type": type_})


class XStream:
    """Rules and open connections of the filtered stream; one per sandbox server."""

    def __init__(self, state: SandboxState, term: Matcher, render: Renderer) -> None:
        self.state = state
        self.term = term
        self.render = render
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: list[tuple[queue.Queue[dict[str, Any] | None], threading.Event]] = []
        self._connects: list[float] = []
        state.tweet_listeners.append(self._created)

    # -- auth ------------------------------------------------------------------------------
    def authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[7:].strip()
        with self.state.lock:
            return any(a.get("bearer_token") == token for a in self.state.x["accounts"].values())

    @property
    def rules(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = self.state.x.setdefault("stream_rules", {})
        return found

    # -- rules -----------------------------------------------------------------------------
    def get_rules(self, request: Request) -> Response:
        with self.state.lock:
            rules = list(self.rules.values())
        meta = {"sent": x_time(time.time()), "result_count": len(rules)}
        return json_response(200, {"data": rules, "meta": meta} if rules else {"meta": meta})

    def post_rules(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _problem(400, "Invalid Request", "The body is not JSON.", "invalid-request")
        sent = x_time(time.time())
        if isinstance(body, dict) and isinstance(body.get("delete"), dict):
            ids = [str(i) for i in body["delete"].get("ids") or []]
            with self.state.lock:
                deleted = [i for i in ids if self.rules.pop(i, None) is not None]
                self.state.save()
            summary = {"deleted": len(deleted), "not_deleted": len(ids) - len(deleted)}
            return json_response(200, {"meta": {"sent": sent, "summary": summary}})
        adds = body.get("add") if isinstance(body, dict) else None
        if not isinstance(adds, list) or not adds:
            return _problem(400, "Invalid Request", "add or delete is required.", "invalid-request")
        created: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        with self.state.lock:
            for rule in adds:
                value = str((rule or {}).get("value", ""))
                if not value or len(value) > MAX_RULE_LENGTH:
                    errors.append({"value": value, "title": "RuleTooLong or empty"})
                    continue
                if any(r["value"] == value for r in self.rules.values()):
                    errors.append({"value": value, "title": "DuplicateRule"})
                    continue
                if len(self.rules) >= MAX_RULES:
                    errors.append({"value": value, "title": "RuleCapExceeded"})
                    continue
                new = {"id": self.state.new_x_id(), "value": value}
                if rule.get("tag"):
                    new["tag"] = str(rule["tag"])
                self.rules[new["id"]] = new
                created.append(new)
            self.state.save()
        summary = {
            "created": len(created),
            "not_created": len(errors),
            "valid": len(created),
            "invalid": len(errors),
        }
        out: dict[str, Any] = {"meta": {"sent": sent, "summary": summary}}
        if created:
            out["data"] = created
        if errors:
            out["errors"] = errors
        return json_response(201 if created else 200, out)

    # -- the stream ------------------------------------------------------------------------
    def connect(self, request: Request) -> Response:
        now = time.time()
        with self._lock:
            self._connects = [t for t in self._connects if now - t < WINDOW]
            if self._open:
                return _problem(
                    429,
                    "ConnectionException",
                    "This stream is currently at the maximum allowed connection limit.",
                    "https://api.twitter.com/2/problems/streaming-connection",
                )
            if len(self._connects) >= CONNECTIONS_PER_WINDOW and self._enforced():
                return _problem(429, "Too Many Requests", "Too Many Requests", "about:blank")
            self._connects.append(now)
            inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
            closed = threading.Event()
            self._open.append((inbox, closed))
        headers = {"content-type": "application/json; charset=utf-8"}
        return Response(200, b"", headers, stream=self._lines(request, inbox, closed))

    def _enforced(self) -> bool:
        return bool(self.state.data["settings"].get("enforce_rate_limits", True))

    def _keepalive(self) -> float:
        return float(self.state.data["settings"].get("x_stream_keepalive", 20.0))

    def _lines(
        self,
        request: Request,
        inbox: queue.Queue[dict[str, Any] | None],
        closed: threading.Event,
    ) -> Iterator[bytes]:
        try:
            yield b"\r\n"  # the connection is up
            last = time.monotonic()
            while not (closed.is_set() or self.stopping.is_set()):
                try:
                    tweet = inbox.get(timeout=0.2)
                except queue.Empty:
                    if time.monotonic() - last >= self._keepalive():
                        last = time.monotonic()
                        yield b"\r\n"
                    continue
                matching = self._matching(tweet) if tweet is not None else []
                if matching:
                    assert tweet is not None
                    line = {**self.render(request, tweet), "matching_rules": matching}
                    last = time.monotonic()
                    yield json.dumps(line, separators=(",", ":")).encode() + b"\r\n"
        finally:
            with self._lock:
                self._open = [o for o in self._open if o[1] is not closed]

    def _created(self, tweet: dict[str, Any]) -> None:
        with self._lock:
            for inbox, _ in self._open:
                inbox.put(dict(tweet))

    def _matching(self, tweet: dict[str, Any]) -> list[dict[str, str]]:
        with self.state.lock:
            rules = list(self.rules.values())
        out = []
        for rule in rules:
            alternatives = [a.split() for a in rule["value"].split(" OR ")]
            if any(all(self.term(t, tweet) for t in terms) for terms in alternatives):
                out.append({"id": rule["id"], **({"tag": rule["tag"]} if "tag" in rule else {})})
        return out

    def disconnect(self) -> int:
        """End every open stream; how many were open."""
        with self._lock:
            for _, closed in self._open:
                closed.set()
            return len(self._open)
