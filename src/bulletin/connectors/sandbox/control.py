"""The sandbox's control API under ``/_sandbox/``: set up accounts, play visitors, inject
faults and count what was received. Not part of any platform; JSON in, JSON out.

- ``GET  /_sandbox/state``                       everything the sandbox holds
- ``GET  /_sandbox/received``                    per account: create requests, posts created
- ``POST /_sandbox/reset``                       a fresh sandbox
- ``POST /_sandbox/settings``                    ``{"enforce_rate_limits": false}``
- ``POST /_sandbox/x/accounts``                  add an X account (id, username, keys...)
- ``POST /_sandbox/fb/pages``                    add a Page (id, name, page_token,
                                                 user_token, tasks)
- ``POST /_sandbox/x/replies``                   visitor replies: tweet_id, text, author,
                                                 count, created_at, media (a list of
                                                 {url, alt_text}: attached images)
- ``PATCH|DELETE /_sandbox/x/tweets/{id}``       a visitor edits (text) or deletes a post
- ``POST /_sandbox/fb/comments``                 visitor comments: post_id, message, author,
                                                 parent_id, count, created_at, attachment_url
- ``PATCH|DELETE /_sandbox/fb/comments/{id}``    a visitor edits (message) or deletes one;
                                                 ``is_hidden`` hides or unhides it
- ``GET|POST /_sandbox/fb/webhooks``             Page webhook delivery: callback_url,
                                                 app_secret, delay, duplicates, reorder,
                                                 drop, batch, concurrency (see
                                                 :mod:`.fb_webhooks`)
- ``GET|POST|DELETE /_sandbox/faults``           list, add (see :mod:`.faults`), clear
- ``GET  /_sandbox/media/{name}``                a small image, the same bytes for one name
                                                 (what attachment URLs of comments point at)
"""

from __future__ import annotations

import re
from typing import Any

from bulletin.connectors.sandbox.faults import Fault, Faults
from bulletin.connectors.sandbox.fb_webhooks import WebhookSender
from bulletin.connectors.sandbox.http_types import Request, Response, json_response
from bulletin.connectors.sandbox.state import (
    DEFAULT_FB_PAGE,
    DEFAULT_X_ACCOUNT,
    SandboxState,
    parse_time,
)


def _image(name: str) -> bytes:
    """A valid one-pixel PNG whose text chunk names ``name``: distinct bytes per name."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Comment\x00" + name.encode())
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _bad(message: str, status: int = 400) -> Response:
    return json_response(status, {"error": message})


class ControlApi:
    """Handlers for ``/_sandbox/...``."""

    def __init__(self, state: SandboxState, faults: Faults, webhooks: WebhookSender) -> None:
        self.state = state
        self.faults = faults
        self.webhooks = webhooks

    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        body: dict[str, Any] = {}
        if method in ("POST", "PATCH") and request.body:
            try:
                parsed = request.json()
            except ValueError:
                return _bad("body is not JSON")
            if not isinstance(parsed, dict):
                return _bad("body must be a JSON object")
            body = parsed
        try:
            return self._route(method, path, body)
        except (KeyError, ValueError, TypeError) as e:
            return _bad(f"bad request: {e}")

    def _route(self, method: str, path: str, body: dict[str, Any]) -> Response:
        state = self.state
        if path == "/_sandbox/state" and method == "GET":
            return json_response(200, _without_credentials(state.snapshot()))
        if path == "/_sandbox/received" and method == "GET":
            return json_response(200, {"accounts": state.snapshot()["received"]})
        if path == "/_sandbox/reset" and method == "POST":
            state.reset()
            self.faults.clear()
            return json_response(200, {"reset": True})
        if path == "/_sandbox/settings" and method == "POST":
            with state.lock:
                state.data["settings"].update(
                    {k: v for k, v in body.items() if k in state.data["settings"]}
                )
                state.save()
            return json_response(200, state.data["settings"])
        if path == "/_sandbox/x/accounts" and method == "POST":
            return self._add_x_account(body)
        if path == "/_sandbox/fb/pages" and method == "POST":
            return self._add_page(body)
        if path == "/_sandbox/x/replies" and method == "POST":
            return self._add_replies(body)
        if path == "/_sandbox/fb/comments" and method == "POST":
            return self._add_comments(body)
        if path == "/_sandbox/fb/webhooks" and method == "POST":
            return json_response(200, self.webhooks.configure(body))
        if path == "/_sandbox/fb/webhooks" and method == "GET":
            return json_response(200, self.webhooks.configure({}))
        match = re.fullmatch(r"/_sandbox/x/tweets/(\d+)", path)
        if match and method in ("PATCH", "DELETE"):
            return self._edit_tweet(match.group(1), method, body)
        match = re.fullmatch(r"/_sandbox/fb/comments/([\d_]+)", path)
        if match and method in ("PATCH", "DELETE"):
            return self._edit_comment(match.group(1), method, body)
        match = re.fullmatch(r"/_sandbox/media/([\w.-]+)", path)
        if match and method == "GET":
            return Response(200, _image(match.group(1)), {"content-type": "image/png"})
        if path == "/_sandbox/faults":
            if method == "GET":
                return json_response(200, {"faults": self.faults.pending()})
            if method == "POST":
                self.faults.add(Fault.from_json(body))
                return json_response(201, {"faults": self.faults.pending()})
            if method == "DELETE":
                self.faults.clear()
                return json_response(200, {"faults": []})
        return _bad(f"no control endpoint {method} {path}", 404)

    def _add_x_account(self, body: dict[str, Any]) -> Response:
        with self.state.lock:
            account = dict(DEFAULT_X_ACCOUNT)
            account.update({k: str(v) for k, v in body.items() if k in account})
            if "id" not in body:
                account["id"] = self.state.new_x_id()
            self.state.x["accounts"][account["id"]] = account
            self.state.save()
        return json_response(201, account)

    def _add_page(self, body: dict[str, Any]) -> Response:
        with self.state.lock:
            page = dict(DEFAULT_FB_PAGE)
            page.update({k: v for k, v in body.items() if k in page})
            if "id" not in body:
                page["id"] = self.state.new_fb_id()
            self.state.fb["pages"][str(page["id"])] = page
            self.state.save()
        return json_response(201, page)

    def _add_replies(self, body: dict[str, Any]) -> Response:
        tweet_id = str(body["tweet_id"])
        count = int(body.get("count", 1))
        ts = parse_time(body["created_at"]) if body.get("created_at") else None
        ids = []
        with self.state.lock:
            if tweet_id not in self.state.x["tweets"]:
                return _bad(f"no tweet {tweet_id}", 404)
            author = self.state.x_visitor(str(body.get("author", "visitor")))
            for i in range(count):
                text = str(body.get("text", "reply"))
                if count > 1:
                    text = f"{text} {i + 1}"
                media_ids = [
                    self.state.add_x_media(author["id"], str(m["url"]), m.get("alt_text"))
                    for m in body.get("media") or []
                ]
                reply = self.state.add_tweet(
                    author["id"], text, tweet_id, ts=ts, media_ids=media_ids
                )
                ids.append(reply["id"])
            self.state.save()
        return json_response(201, {"ids": ids})

    def _add_comments(self, body: dict[str, Any]) -> Response:
        post_id = str(body["post_id"])
        count = int(body.get("count", 1))
        ts = parse_time(body["created_at"]) if body.get("created_at") else None
        ids = []
        added: list[dict[str, Any]] = []
        with self.state.lock:
            if post_id not in self.state.fb["posts"]:
                return _bad(f"no post {post_id}", 404)
            parent = body.get("parent_id")
            if parent is not None and parent not in self.state.fb["comments"]:
                return _bad(f"no comment {parent}", 404)
            for i in range(count):
                message = str(body.get("message", "comment"))
                if count > 1:
                    message = f"{message} {i + 1}"
                comment = self.state.add_fb_comment(
                    post_id, message, str(body.get("author", "Visitor")), parent, ts
                )
                if body.get("attachment_url"):
                    comment["attachment_url"] = str(body["attachment_url"])
                ids.append(comment["id"])
                added.append(comment)
            self.state.save()
        for comment in added:
            self.state.comment_changed(comment, "add")
        return json_response(201, {"ids": ids})

    def _edit_tweet(self, tweet_id: str, method: str, body: dict[str, Any]) -> Response:
        with self.state.lock:
            tweet = self.state.x["tweets"].get(tweet_id)
            if tweet is None or tweet["deleted"]:
                return _bad(f"no tweet {tweet_id}", 404)
            if method == "DELETE":
                tweet["deleted"] = True
                self.state.save()
                return json_response(200, {"deleted": True})
            # An edit on X is a new post id; the history lists every version's id.
            new = dict(tweet)
            new["id"] = self.state.new_x_id()
            new["text"] = str(body["text"])
            new["edit_history_tweet_ids"] = [*tweet["edit_history_tweet_ids"], new["id"]]
            tweet["deleted"] = True
            self.state.x["tweets"][new["id"]] = new
            self.state.save()
        return json_response(200, {"id": new["id"]})

    def _edit_comment(self, comment_id: str, method: str, body: dict[str, Any]) -> Response:
        with self.state.lock:
            comment = self.state.fb["comments"].get(comment_id)
            if comment is None or comment["deleted"]:
                return _bad(f"no comment {comment_id}", 404)
            verbs = []
            if method == "DELETE":
                comment["deleted"] = True
                verbs.append("remove")
            else:
                if "message" in body:
                    comment["message"] = str(body["message"])
                    verbs.append("edited")
                if "is_hidden" in body and bool(body["is_hidden"]) != comment["is_hidden"]:
                    comment["is_hidden"] = bool(body["is_hidden"])
                    verbs.append("hide" if comment["is_hidden"] else "unhide")
            self.state.save()
        for verb in verbs:
            self.state.comment_changed(comment, verb)
        return json_response(200, {"id": comment_id})


CREDENTIAL_KEYS = frozenset(
    {
        "consumer_secret",
        "access_token",
        "access_token_secret",
        "bearer_token",
        "page_token",
        "user_token",
        "password",
    }
)


def _without_credentials(value: Any) -> Any:
    """``value`` with every account's tokens and secrets shown as ``***``: the state is for
    looking at posts and comments, and credentials never leave the server that checks them."""
    if isinstance(value, dict):
        return {
            k: "***" if k in CREDENTIAL_KEYS and v else _without_credentials(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_credentials(v) for v in value]
    return value
