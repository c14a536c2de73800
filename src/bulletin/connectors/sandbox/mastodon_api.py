"""The subset of the Mastodon REST API the sandbox speaks, written from Mastodon's published
API reference (https://docs.joinmastodon.org/methods/).

Auth is a Bearer token. The agency's account answers to :data:`DEFAULT_MASTODON_ACCOUNT`'s
token; any token ``sandbox-visitor-<name>`` is a visitor called ``<name>``, made on first use,
so a test plays the public through the same API (a reply, an edit, a deletion) as a real
client would. Statuses carry their text as HTML (``content``), as Mastodon renders it. Errors
use Mastodon's ``{"error": "..."}`` body (https://docs.joinmastodon.org/entities/Error/);
every answer carries the ``X-RateLimit-*`` headers of https://docs.joinmastodon.org/api/rate-limits/.

The sandbox's Mastodon lives in the state's ``"mastodon"`` member, made on first use.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from bulletin.connectors.sandbox.faults import Fault
from bulletin.connectors.sandbox.http_types import Request, Response, json_response
from bulletin.connectors.sandbox.state import (
    DEFAULT_MASTODON_ACCOUNT,
    SandboxState,
    now_ts,
)
from bulletin.timeparse import iso_utc

VISITOR_PREFIX = "sandbox-visitor-"
WINDOW = 5 * 60
LIMIT = 300  # requests per account per five minutes (docs.joinmastodon.org/api/rate-limits)
IDEMPOTENCY_SECONDS = 3600  # "Idempotency keys are stored for up to 1 hour"
STATUS_ID_BASE = 113_000_000_000_000_000
DOMAIN = "sandbox.social"
_URL = re.compile(r"https?://[^\s<>\"]+")


def mastodon_time(ts: float) -> str:
    """Mastodon's datetime: ISO 8601 UTC with milliseconds (``2026-11-25T15:00:00.000Z``)."""
    return iso_utc(datetime.fromtimestamp(ts, UTC), "milliseconds")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Mastodon's error body. https://docs.joinmastodon.org/entities/Error/"""
    return json_response(status, {"error": message}, headers)


def render_content(text: str) -> str:
    """Plain text as Mastodon's formatter renders it: paragraphs on blank lines, ``<br />``
    for single newlines, HTML escaped, URLs linked with the scheme in an invisible span."""

    def link(url: str) -> str:
        scheme, _, rest = url.partition("://")
        return (
            f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener noreferrer">'
            f'<span class="invisible">{scheme}://</span><span class="">{html.escape(rest)}'
            '</span><span class="invisible"></span></a>'
        )

    def line(text: str) -> str:
        out, at = [], 0
        for found in _URL.finditer(text):
            out.append(html.escape(text[at : found.start()], quote=False))
            out.append(link(found.group(0)))
            at = found.end()
        out.append(html.escape(text[at:], quote=False))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n{2,}", text.strip()) if p]
    return "".join(
        "<p>" + "<br />".join(line(ln) for ln in p.split("\n")) + "</p>" for p in paragraphs
    )


def status_length(text: str, url_length: int = 23) -> int:
    """The length Mastodon's validator gives ``text``: grapheme clusters, each URL counted as
    ``url_length``, a remote mention as its local part (app/validators/status_length_validator)."""
    import regex

    text = _URL.sub("x" * url_length, text)
    text = re.sub(r"(@[\w.-]+)@[\w.-]+\w", r"\1", text)
    return len(regex.findall(r"\X", text))


def fresh_world() -> dict[str, Any]:
    """A new sandbox Mastodon: the agency's account, nothing posted."""
    return {
        "next": 1,
        "instance": {"max_characters": 500, "characters_reserved_per_url": 23},
        "accounts": {DEFAULT_MASTODON_ACCOUNT["id"]: dict(DEFAULT_MASTODON_ACCOUNT)},
        "statuses": {},
        "media": {},
        "idempotency": {},
    }


class MastodonApi:
    """Handlers for ``/api/v1/...`` and ``/api/v2/...``; one instance per sandbox server."""

    TEXT_FIELD = "content"

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        number = r"(\d+)"
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"^/api/v1/accounts/verify_credentials$"), self.verify_credentials),
            ("GET", re.compile(r"^/api/v2/instance$"), self.instance),
            ("POST", re.compile(r"^/api/v1/statuses$"), self.create_status),
            ("GET", re.compile(rf"^/api/v1/statuses/{number}$"), self.get_status),
            ("PUT", re.compile(rf"^/api/v1/statuses/{number}$"), self.edit_status),
            ("DELETE", re.compile(rf"^/api/v1/statuses/{number}$"), self.delete_status),
            ("GET", re.compile(rf"^/api/v1/statuses/{number}/context$"), self.context),
            ("GET", re.compile(rf"^/api/v1/accounts/{number}/statuses$"), self.account_statuses),
            ("POST", re.compile(r"^/api/v[12]/media$"), self.upload_media),
        ]

    # -- plumbing --------------------------------------------------------------------------
    @property
    def world(self) -> dict[str, Any]:
        with self.state.lock:
            world: dict[str, Any] = self.state.data.setdefault("mastodon", fresh_world())
            return world

    def authenticate(self, request: Request) -> dict[str, Any] | None:
        """The account whose Bearer token the request carries (a visitor made on first use)."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = header[7:].strip()
        with self.state.lock:
            for account in self.world["accounts"].values():
                if account.get("access_token") == token:
                    return account  # type: ignore[no-any-return]
            if token.startswith(VISITOR_PREFIX) and len(token) > len(VISITOR_PREFIX):
                name = token[len(VISITOR_PREFIX) :]
                account = {
                    "id": str(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16)),
                    "username": name,
                    "acct": f"{name}@elsewhere.example",
                    "display_name": name,
                    "access_token": token,
                }
                self.world["accounts"][account["id"]] = account
                self.state.save()
                return account
        return None

    def _limit_headers(self, account_id: str) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._lock:
            start, used = self._windows.get(account_id, (now, 0))
            if now - start >= WINDOW:
                start, used = now, 0
            exhausted = used >= LIMIT and bool(self.state.data["settings"]["enforce_rate_limits"])
            if not exhausted:
                used += 1
            self._windows[account_id] = (start, used)
        reset = datetime.fromtimestamp(start + WINDOW, UTC)
        return {
            "x-ratelimit-limit": str(LIMIT),
            "x-ratelimit-remaining": str(max(LIMIT - used, 0)),
            "x-ratelimit-reset": iso_utc(reset, "milliseconds"),
        }, exhausted

    def handle(self, request: Request) -> Response:
        """Route one request; an unknown path is Mastodon's 404. A trailing slash is allowed,
        as Rails allows it."""
        path = request.path.rstrip("/")
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None or method != request.method:
                continue
            account = self.authenticate(request)
            if account is None:
                return error(401, "The access token is invalid")
            headers, exhausted = self._limit_headers(account["id"])
            if exhausted:
                response = error(429, "Too many requests")
            else:
                response = handler(request, account, *match.groups())
            response.headers.update(headers)
            return response
        return error(404, "Record not found")

    def fault_response(self, fault: Fault, request: Request) -> Response:
        """What Mastodon answers for an injected fault, before doing any work. Mastodon has no
        duplicate-content refusal: ``duplicate`` and ``invalid_parameter`` are its 422."""
        if fault.kind == "rate_limit":
            reset = datetime.fromtimestamp(time.time() + fault.seconds, UTC)
            return error(
                429,
                "Too many requests",
                {
                    "x-ratelimit-limit": str(LIMIT),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": iso_utc(reset, "milliseconds"),
                },
            )
        if fault.kind in ("duplicate", "invalid_parameter"):
            return error(422, "Validation failed: Text can't be blank")
        if fault.kind == "expired_token":
            return error(401, "The access token is invalid")
        return error(fault.status, "Service unavailable" if fault.status == 503 else "Error")

    def malform(self, response: Response) -> Response:
        """``response`` with its first status's ``content`` an object (a list of statuses, or
        a context's descendants)."""
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        items = body if isinstance(body, list) else None
        if isinstance(body, dict):
            items = body.get("descendants") if "descendants" in body else [body]
        if not items or not isinstance(items[0], dict):
            return response
        items[0]["content"] = {"unexpected": "an object where the text belongs"}
        return json_response(response.status, body, response.headers)

    def _new_id(self) -> str:
        with self.state.lock:
            n = int(self.world["next"])
            self.world["next"] = n + 1
            return str(STATUS_ID_BASE + n)

    def account_json(self, account: dict[str, Any]) -> dict[str, Any]:
        """https://docs.joinmastodon.org/entities/Account/ (the fields clients read)."""
        return {
            "id": account["id"],
            "username": account["username"],
            "acct": account["acct"],
            "display_name": account["display_name"],
            "url": f"https://{DOMAIN}/@{account['username']}",
        }

    def render(self, status: dict[str, Any]) -> dict[str, Any]:
        """A status as Mastodon returns it. https://docs.joinmastodon.org/entities/Status/"""
        account = self.world["accounts"][status["account_id"]]
        media = [self.world["media"][m] for m in status.get("media_ids", [])]
        return {
            "id": status["id"],
            "created_at": mastodon_time(status["ts"]),
            "in_reply_to_id": status.get("in_reply_to_id"),
            "in_reply_to_account_id": status.get("in_reply_to_account_id"),
            "sensitive": False,
            "spoiler_text": "",
            "visibility": status.get("visibility", "public"),
            "language": "en",
            "uri": f"https://{DOMAIN}/users/{account['username']}/statuses/{status['id']}",
            "url": f"https://{DOMAIN}/@{account['username']}/{status['id']}",
            "replies_count": sum(
                1
                for s in self.world["statuses"].values()
                if s.get("in_reply_to_id") == status["id"] and not s["deleted"]
            ),
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": mastodon_time(status["edited_ts"]) if status.get("edited_ts") else None,
            "content": render_content(status["text"]),
            "reblog": None,
            "account": self.account_json(account),
            "media_attachments": [
                {
                    "id": m["id"],
                    "type": "image",
                    "url": m["url"],
                    "preview_url": m["url"],
                    "description": m.get("description"),
                }
                for m in media
            ],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _live(self, status_id: str) -> dict[str, Any] | None:
        status = self.world["statuses"].get(status_id)
        return None if status is None or status["deleted"] else status

    # -- endpoints -------------------------------------------------------------------------
    def verify_credentials(self, request: Request, account: dict[str, Any]) -> Response:
        """The token's account. https://docs.joinmastodon.org/methods/accounts/#verify_credentials"""
        return json_response(200, self.account_json(account))

    def instance(self, request: Request, account: dict[str, Any]) -> Response:
        """The server's configuration. https://docs.joinmastodon.org/methods/instance/#v2

        ``configuration.statuses.max_characters`` and ``characters_reserved_per_url`` say how
        long a status may be and what a URL counts."""
        limits = self.world["instance"]
        return json_response(
            200,
            {
                "domain": DOMAIN,
                "title": "Bulletin Sandbox",
                "version": "4.5.0",
                "configuration": {
                    "urls": {"streaming": f"wss://{DOMAIN}"},
                    "statuses": {
                        "max_characters": int(limits["max_characters"]),
                        "max_media_attachments": 4,
                        "characters_reserved_per_url": int(limits["characters_reserved_per_url"]),
                    },
                    "media_attachments": {
                        "supported_mime_types": [
                            "image/jpeg",
                            "image/png",
                            "image/gif",
                            "image/webp",
                        ],
                        "image_size_limit": 16777216,
                        "description_limit": 1500,
                    },
                },
            },
        )

    def create_status(self, request: Request, account: dict[str, Any]) -> Response:
        """Post a status. https://docs.joinmastodon.org/methods/statuses/#create

        Form or JSON parameters ``status``, ``media_ids[]``, ``in_reply_to_id``,
        ``visibility``. With an ``Idempotency-Key`` header a repeated request within an hour
        returns the status the first one made ("Idempotency keys are stored for up to 1
        hour"). 422 when the text is longer than the instance allows or a parameter is bad.
        """
        key = f"mastodon:{account['id']}"
        self.state.count(key, "create_requests")
        params = self._params(request)
        text = str(params.get("status") or "")
        media_ids = [str(m) for m in params.get("media_ids") or []]
        if not text.strip() and not media_ids:
            return error(422, "Validation failed: Text can't be blank")
        limits = self.world["instance"]
        length = status_length(text, int(limits["characters_reserved_per_url"]))
        if length > int(limits["max_characters"]):
            return error(
                422,
                f"Validation failed: Text character limit of {limits['max_characters']} exceeded",
            )
        idempotency = request.headers.get("idempotency-key")
        with self.state.lock:
            if idempotency:
                remembered = self.world["idempotency"].get(f"{account['id']}:{idempotency}")
                if remembered and now_ts() - remembered[1] < IDEMPOTENCY_SECONDS:
                    status = self.world["statuses"][remembered[0]]
                    return json_response(200, self.render(status))
            reply_to = params.get("in_reply_to_id")
            parent = self._live(str(reply_to)) if reply_to else None
            if reply_to and parent is None:
                return error(404, "Record not found")
            for media_id in media_ids:
                media = self.world["media"].get(media_id)
                if media is None or media["owner"] != account["id"]:
                    return error(422, "Validation failed: Media attachments are invalid")
            status = {
                "id": self._new_id(),
                "account_id": account["id"],
                "text": text,
                "ts": now_ts(),
                "visibility": str(params.get("visibility") or "public"),
                "media_ids": media_ids,
                "deleted": False,
            }
            if parent is not None:
                status["in_reply_to_id"] = parent["id"]
                status["in_reply_to_account_id"] = parent["account_id"]
            self.world["statuses"][status["id"]] = status
            if idempotency:
                self.world["idempotency"][f"{account['id']}:{idempotency}"] = [
                    status["id"],
                    status["ts"],
                ]
            self.state.count(key, "created")
            self.state.save()
            return json_response(200, self.render(status))

    def _params(self, request: Request) -> dict[str, Any]:
        """Form (``media_ids[]`` repeated) or JSON parameters."""
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = request.json()
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        fields: dict[str, Any] = dict(request.form)
        from urllib.parse import parse_qs

        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
            fields["media_ids"] = parsed.get("media_ids[]", [])
        return fields

    def get_status(self, request: Request, account: dict[str, Any], status_id: str) -> Response:
        """One status. https://docs.joinmastodon.org/methods/statuses/#get (404 when gone)"""
        with self.state.lock:
            status = self._live(status_id)
            if status is None:
                return error(404, "Record not found")
            return json_response(200, self.render(status))

    def edit_status(self, request: Request, account: dict[str, Any], status_id: str) -> Response:
        """Edit one's own status. https://docs.joinmastodon.org/methods/statuses/#edit

        The id stays; ``edited_at`` is set."""
        params = self._params(request)
        with self.state.lock:
            status = self._live(status_id)
            if status is None or status["account_id"] != account["id"]:
                return error(404, "Record not found")
            status["text"] = str(params.get("status") or "")
            status["edited_ts"] = now_ts()
            self.state.save()
            return json_response(200, self.render(status))

    def delete_status(self, request: Request, account: dict[str, Any], status_id: str) -> Response:
        """Delete one's own status. https://docs.joinmastodon.org/methods/statuses/#delete

        Answers the deleted status with its source ``text``; 404 when it is gone already."""
        with self.state.lock:
            status = self._live(status_id)
            if status is None or status["account_id"] != account["id"]:
                return error(404, "Record not found")
            status["deleted"] = True
            self.state.save()
            body = self.render(status)
        body["text"] = status["text"]
        return json_response(200, body)

    def context(self, request: Request, account: dict[str, Any], status_id: str) -> Response:
        """Ancestors and descendants. https://docs.joinmastodon.org/methods/statuses/#context

        Descendants in thread order (depth first, oldest first); an authenticated request
        gets up to 4,096 of them."""
        with self.state.lock:
            root = self._live(status_id)
            if root is None:
                return error(404, "Record not found")
            children: dict[str, list[dict[str, Any]]] = {}
            for status in sorted(self.world["statuses"].values(), key=lambda s: int(s["id"])):
                if not status["deleted"] and status.get("in_reply_to_id"):
                    children.setdefault(status["in_reply_to_id"], []).append(status)
            descendants: list[dict[str, Any]] = []
            stack = list(reversed(children.get(status_id, [])))
            while stack and len(descendants) < 4096:
                status = stack.pop()
                descendants.append(self.render(status))
                stack.extend(reversed(children.get(status["id"], [])))
            ancestors: list[dict[str, Any]] = []
            parent = self._live(str(root.get("in_reply_to_id") or ""))
            while parent is not None:
                ancestors.insert(0, self.render(parent))
                parent = self._live(str(parent.get("in_reply_to_id") or ""))
        return json_response(200, {"ancestors": ancestors, "descendants": descendants})

    def account_statuses(
        self, request: Request, account: dict[str, Any], account_id: str
    ) -> Response:
        """An account's statuses, newest first. https://docs.joinmastodon.org/methods/accounts/#statuses

        ``max_id``, ``since_id``, ``min_id``, ``limit`` (default 20, at most 40); the next
        page is named in the ``Link`` header (rel="next", by ``max_id``)."""
        if account_id not in self.world["accounts"]:
            return error(404, "Record not found")
        try:
            limit = min(max(int(request.arg("limit") or 20), 1), 40)
        except ValueError:
            limit = 20
        with self.state.lock:
            statuses = sorted(
                (
                    s
                    for s in self.world["statuses"].values()
                    if s["account_id"] == account_id and not s["deleted"]
                ),
                key=lambda s: int(s["id"]),
                reverse=True,
            )
            for name in ("max_id", "since_id", "min_id"):
                value = request.arg(name)
                if value and value.isdigit():
                    bound, below = int(value), name == "max_id"
                    statuses = [s for s in statuses if (int(s["id"]) < bound) == below]
                    statuses = [s for s in statuses if int(s["id"]) != bound]
            page = statuses[:limit]
            body = [self.render(s) for s in page]
        headers = {}
        if len(statuses) > limit:
            query = urlencode({"limit": limit, "max_id": page[-1]["id"]})
            url = f"http://{request.host}/api/v1/accounts/{account_id}/statuses?{query}"
            headers["link"] = f'<{url}>; rel="next"'
        return json_response(200, body, headers)

    def upload_media(self, request: Request, account: dict[str, Any]) -> Response:
        """Upload an image with its description (alt text).
        https://docs.joinmastodon.org/methods/media/#v2

        Multipart ``file`` and ``description``; a small image is processed at once (200 with
        its ``url``)."""
        data = request.form.get("file")
        if not isinstance(data, bytes) or not data:
            return error(422, "Validation failed: File can't be blank")
        description = request.form.get("description")
        with self.state.lock:
            media_id = self._new_id()
            media = {
                "id": media_id,
                "owner": account["id"],
                "url": f"http://{request.host}/_sandbox/media/mastodon-{media_id}.png",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            if isinstance(description, str) and description:
                media["description"] = description
            self.world["media"][media_id] = media
            self.state.save()
        return json_response(
            200,
            {
                "id": media_id,
                "type": "image",
                "url": media["url"],
                "preview_url": media["url"],
                "description": media.get("description"),
            },
        )
