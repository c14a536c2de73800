"""Page webhooks from the sandbox: every comment change (added, edited, hidden, unhidden,
removed; through ``/_sandbox/`` or the Graph API) on a Page subscribed to the ``feed`` field
is delivered, signed, to the configured callback URL, as Meta describes:

- https://developers.facebook.com/docs/graph-api/webhooks/getting-started (POST with a JSON
  body, ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body with the app secret>``;
  deliveries that fail are retried)
- https://developers.facebook.com/docs/pages-api/webhooks-for-pages (the ``feed`` field; only
  Pages that installed the app through ``subscribed_apps`` send them)

The body is ``{"object": "page", "entry": [{"id": page, "time": t, "changes": [{"field":
"feed", "value": {...}}]}]}``; a comment's value carries ``from``, ``post_id``,
``comment_id``, ``parent_id``, ``created_time``, ``item: "comment"``, ``verb`` and, but for
``remove``, ``message``.

For tests, ``POST /_sandbox/fb/webhooks`` sets ``callback_url``, ``app_secret`` and the faults
of delivery: ``delay`` (seconds before each), ``duplicates`` (extra copies of each),
``reorder`` (hold this many, then send them newest first) and ``drop`` (lose the next N); and
``batch``: up to this many queued changes go in one delivery, as entries of one body (the
body's ``entry`` list carries several; default 1, one change per delivery); ``concurrency``:
deliveries in flight at once (default 1: each waits for the answer to the one before; Meta
states no limit, and under load its deliveries overlap).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
from typing import Any

import requests

from bulletin.connectors.sandbox.state import SandboxState, now_ts

log = logging.getLogger(__name__)

DEFAULT_CONFIG: dict[str, Any] = {
    "callback_url": "",
    "app_secret": "",
    "delay": 0.0,
    "duplicates": 0,
    "reorder": 0,
    "drop": 0,
    "batch": 1,
    "concurrency": 1,
}
ATTEMPTS = 5


def comment_value(state: SandboxState, comment: dict[str, Any], verb: str) -> dict[str, Any]:
    """The ``value`` of a ``feed`` change about ``comment``."""
    post = state.fb["posts"].get(comment["post_id"], {})
    value: dict[str, Any] = {
        "from": dict(comment["from"]),
        "post": {
            "status_type": "mobile_status_update",
            "is_published": True,
            "updated_time": _graph_time(post.get("ts", comment["ts"])),
            "permalink_url": "https://www.facebook.com/"
            + comment["post_id"].replace("_", "/posts/", 1),
            "promotion_status": "inactive",
            "id": comment["post_id"],
        },
        "post_id": comment["post_id"],
        "comment_id": comment["id"],
        "created_time": int(comment["ts"] if verb == "add" else now_ts()),
        "item": "comment",
        "parent_id": comment.get("parent_id") or comment["post_id"],
        "verb": verb,
    }
    if verb != "remove":
        value["message"] = comment["message"]
    return value


def _graph_time(ts: float) -> str:
    from bulletin.connectors.sandbox.state import graph_time

    return graph_time(ts)


class WebhookSender:
    """Queues and sends Page webhooks for one sandbox; a background thread sends them."""

    def __init__(self, state: SandboxState, stopping: threading.Event) -> None:
        self.state = state
        self.stopping = stopping
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._held: list[bytes] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()

    @property
    def config(self) -> dict[str, Any]:
        with self.state.lock:
            found = self.state.fb.setdefault("webhook", dict(DEFAULT_CONFIG))
            return {**DEFAULT_CONFIG, **found}

    def configure(self, values: dict[str, Any]) -> dict[str, Any]:
        """Change the delivery settings; the result without the app secret."""
        with self.state.lock:
            current = {**DEFAULT_CONFIG, **self.state.fb.get("webhook", {})}
            current.update({k: v for k, v in values.items() if k in DEFAULT_CONFIG})
            self.state.fb["webhook"] = current
            self.state.save()
        return {k: ("***" if k == "app_secret" and v else v) for k, v in current.items()}

    def comment_changed(self, comment: dict[str, Any], verb: str) -> None:
        """A comment changed (``verb``): deliver the change if its Page is subscribed."""
        config = self.config
        with self.state.lock:
            post = self.state.fb["posts"].get(comment["post_id"])
            if post is None:
                return
            page = self.state.fb["pages"].get(post["page_id"], {})
            if "feed" not in (page.get("subscribed_fields") or []):
                return
            if not config["callback_url"] or not config["app_secret"]:
                return
            value = comment_value(self.state, comment, verb)
            body = json.dumps(
                {
                    "object": "page",
                    "entry": [
                        {
                            "id": page["id"],
                            "time": int(now_ts()),
                            "changes": [{"field": "feed", "value": value}],
                        }
                    ],
                },
                separators=(",", ":"),
            ).encode()
        self._enqueue(body, config)

    def _enqueue(self, body: bytes, config: dict[str, Any]) -> None:
        with self._lock:
            if int(config["drop"]) > 0:
                self.configure({"drop": int(config["drop"]) - 1})
                self.state.count("facebook:webhooks", "dropped")
                return
            copies = [body] * (1 + max(0, int(config["duplicates"])))
            hold = int(config["reorder"])
            if hold > 1:
                self._held += copies
                if len(self._held) < hold:
                    return
                copies, self._held = list(reversed(self._held)), []
            self._start()
            for copy in copies:
                self._queue.put(copy)

    def _start(self) -> None:
        """Have ``concurrency`` sending threads (more when it was raised; never fewer)."""
        wanted = max(1, int(self.config["concurrency"]))
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < wanted:
            thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                body = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if body is None:
                break
            config = self.config
            body = self._batched(body, max(1, int(config["batch"])))
            if float(config["delay"]) > 0:
                self.stopping.wait(float(config["delay"]))
            self._send(body, config)
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    def _batched(self, body: bytes, batch: int) -> bytes:
        """``body`` with the entries of up to ``batch - 1`` more queued bodies, in order."""
        entries: list[Any] = []
        for _ in range(batch - 1):
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)
                break
            entries += json.loads(more)["entry"]
        if not entries:
            return body
        merged = json.loads(body)
        merged["entry"] += entries
        return json.dumps(merged, separators=(",", ":")).encode()

    def _send(self, body: bytes, config: dict[str, Any]) -> None:
        secret = str(config["app_secret"]).encode()
        headers = {
            "content-type": "application/json",
            "x-hub-signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
            "x-hub-signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
            "user-agent": "facebookexternalua",
        }
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()  # one per sending thread
        session: requests.Session = self._local.session
        for attempt in range(ATTEMPTS):
            try:
                response = session.post(
                    config["callback_url"], data=body, headers=headers, timeout=5
                )
                if response.status_code == 200:
                    self.state.count("facebook:webhooks", "delivered")
                    return
            except requests.RequestException as e:
                log.debug("webhook delivery failed: %s", type(e).__name__)
            self.stopping.wait(0.2 * (attempt + 1))
        self.state.count("facebook:webhooks", "failed")

    def backlog(self) -> int:
        """Deliveries queued and not yet sent."""
        return self._queue.qsize()

    def idle(self) -> bool:
        """Nothing queued (held deliveries aside)."""
        return self._queue.empty()

    def stop(self) -> None:
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=5)
