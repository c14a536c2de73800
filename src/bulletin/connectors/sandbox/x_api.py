"""The subset of the X API v2 the sandbox speaks, written from X's published API reference.

Auth is OAuth 1.0a user context: the Authorization header's ``oauth_consumer_key`` and
``oauth_token`` must belong to a sandbox account (the signature itself is not verified).
Every answer carries X's rate-limit headers; errors use X's problem JSON.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from twitter_text import parse_tweet

from bulletin.connectors.sandbox.faults import Fault
from bulletin.connectors.sandbox.http_types import (
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
)
from bulletin.connectors.sandbox.state import SandboxState, now_ts, parse_time, x_time
from bulletin.connectors.sandbox.x_stream import XStream

WINDOW = 15 * 60
# Requests per 15-minute window per user, from https://docs.x.com/x-api/fundamentals/rate-limits
LIMITS: dict[str, int] = {
    "create": 100,
    "delete": 50,
    "me": 75,
    "lookup": 900,
    "timeline": 900,
    "search": 300,
    "hide": 50,
    "media": 500,
}
SEVEN_DAYS = 7 * 24 * 3600
INVALID = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> dict[str, Any]:
    """X's problem body (RFC 7807 style), e.g. for 401, 403, 429 and 5xx."""
    return {"title": title, "detail": detail, "type": type_, "status": status}


def invalid(message: str, parameters: dict[str, list[str]] | None = None) -> Response:
    """X's 400 "Invalid Request" body with one error."""
    error: dict[str, Any] = {"message": message}
    if parameters:
        error["parameters"] = parameters
    return json_response(
        400,
        {
            "errors": [error],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID,
        },
    )


def not_found(resource: str, value: str) -> dict[str, Any]:
    """One "Not Found Error" of X's ``errors`` list, for a ``resource`` ("tweet", "user")."""
    return {
        "value": value,
        "detail": f"Could not find {resource} with id: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource,
        "parameter": "id",
        "resource_id": value,
        "type": NOT_FOUND,
    }


_STATUS_TITLES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class XApi:
    """Handlers for ``/2/...``; one instance per sandbox server."""

    TEXT_FIELD = "text"  # a post's text (what the ``malformed_item`` fault spoils)

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()
        self.routes: list[tuple[str, re.Pattern[str], str, Callable[..., Response]]] = [
            ("POST", re.compile(r"^/2/tweets$"), "create", self.create_post),
            ("GET", re.compile(r"^/2/tweets/(\d+)$"), "lookup", self.get_post),
            ("DELETE", re.compile(r"^/2/tweets/(\d+)$"), "delete", self.delete_post),
            ("GET", re.compile(r"^/2/users/me$"), "me", self.get_me),
            ("GET", re.compile(r"^/2/users/(\d+)/tweets$"), "timeline", self.user_posts),
            ("GET", re.compile(r"^/2/tweets/search/recent$"), "search", self.search_recent),
            ("PUT", re.compile(r"^/2/tweets/(\d+)/hidden$"), "hide", self.hide_reply),
            ("POST", re.compile(r"^/2/media/upload$"), "media", self.upload_media),
            ("POST", re.compile(r"^/2/media/metadata$"), "media", self.media_metadata),
        ]
        self.stream = XStream(state, self._term, self._streamed)

    # -- plumbing --------------------------------------------------------------------------
    def authenticate(self, request: Request) -> dict[str, Any] | None:
        """The account the OAuth 1.0a Authorization header belongs to."""
        header = request.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return None
        params: dict[str, str] = {}
        for part in header[6:].split(","):
            key, _, value = part.strip().partition("=")
            params[key] = unquote(value.strip('"'))
        if "oauth_signature" not in params:
            return None
        return self.state.x_account_for(
            params.get("oauth_consumer_key", ""), params.get("oauth_token", "")
        )

    def _limit_headers(self, user: str, key: str, spend: bool) -> tuple[dict[str, str], bool]:
        """Rate-limit headers for this user and endpoint; the bool says the limit is spent."""
        limit = LIMITS[key]
        now = time.time()
        with self._lock:
            start, used = self._windows.get((user, key), (now, 0))
            if now - start >= WINDOW:
                start, used = now, 0
            exhausted = used >= limit and bool(self.state.data["settings"]["enforce_rate_limits"])
            if spend and not exhausted:
                used += 1
            self._windows[(user, key)] = (start, used)
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(limit - used, 0)),
            "x-rate-limit-reset": str(int(start + WINDOW)),
        }
        return headers, exhausted

    def handle(self, request: Request) -> Response:
        """Route one request; unknown paths get X's 404."""
        if request.path.startswith("/2/tweets/search/stream"):
            return self._handle_stream(request)
        for method, pattern, key, handler in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                continue
            account = self.authenticate(request)
            if account is None:
                return json_response(401, problem(401, "Unauthorized", "Unauthorized"))
            headers, exhausted = self._limit_headers(account["id"], key, spend=True)
            if exhausted:
                response = json_response(
                    429, problem(429, "Too Many Requests", "Too Many Requests")
                )
            else:
                response = handler(request, account, *match.groups())
            response.headers.update(headers)
            response.headers["x-access-level"] = account.get("access_level", "read-write")
            return response
        return json_response(404, problem(404, "Not Found", "Sorry, that page does not exist."))

    def _handle_stream(self, request: Request) -> Response:
        """The filtered stream and its rules (see :mod:`.x_stream`), with the app's bearer
        token."""
        if not self.stream.authenticated(request):
            return json_response(401, problem(401, "Unauthorized", "Unauthorized"))
        route = (request.method, request.path)
        if route == ("GET", "/2/tweets/search/stream"):
            return self.stream.connect(request)
        if route == ("GET", "/2/tweets/search/stream/rules"):
            return self.stream.get_rules(request)
        if route == ("POST", "/2/tweets/search/stream/rules"):
            return self.stream.post_rules(request)
        return json_response(404, problem(404, "Not Found", "Sorry, that page does not exist."))

    def _streamed(self, request: Request, tweet: dict[str, Any]) -> dict[str, Any]:
        """One post as the stream delivers it: ``data`` plus the requested ``includes``."""
        return {
            "data": self.render(tweet, self._fields(request)),
            **self._includes(request, [tweet]),
        }

    def fault_response(self, fault: Fault, request: Request) -> Response:
        """What X answers for an injected fault, before doing any work."""
        if fault.kind == "rate_limit":
            reset = int(time.time() + fault.seconds)
            return json_response(
                429,
                problem(429, "Too Many Requests", "Too Many Requests"),
                {
                    "x-rate-limit-limit": "100",
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(reset),
                },
            )
        if fault.kind == "duplicate":
            return json_response(
                403,
                problem(
                    403,
                    "Forbidden",
                    "You are not allowed to create a Tweet with duplicate content.",
                ),
            )
        if fault.kind == "invalid_parameter":
            return invalid("One or more parameters to your request was invalid.")
        if fault.kind == "expired_token":
            return json_response(401, problem(401, "Unauthorized", "Unauthorized"))
        title = _STATUS_TITLES.get(fault.status, "Internal Server Error")
        return json_response(fault.status, problem(fault.status, title, title))

    def render(self, tweet: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        """A tweet as X returns it: id, text, edit history, plus requested ``tweet.fields``."""
        out: dict[str, Any] = {
            "id": tweet["id"],
            "text": tweet["text"],
            "edit_history_tweet_ids": list(tweet["edit_history_tweet_ids"]),
        }
        if "created_at" in fields:
            out["created_at"] = x_time(tweet["ts"])
        for name in (
            "author_id",
            "conversation_id",
            "in_reply_to_user_id",
            "referenced_tweets",
            "attachments",
        ):
            if name in fields and name in tweet:
                out[name] = tweet[name]
        if "reply_settings" in fields:
            out["reply_settings"] = "everyone"
        return out

    @staticmethod
    def _fields(request: Request) -> set[str]:
        return {f for f in (request.arg("tweet.fields") or "").split(",") if f}

    def _page(
        self,
        request: Request,
        tweets: list[dict[str, Any]],
        lo: int,
        hi: int,
        token_name: str,
    ) -> Response:
        """One page of ``tweets`` (newest first) with X's ``meta``."""
        raw_max = request.arg("max_results")
        try:
            max_results = int(raw_max) if raw_max is not None else 10
        except ValueError:
            max_results = -1
        if not lo <= max_results <= hi:
            return invalid(
                f"The `max_results` query parameter value [{raw_max}] is not between {lo} and {hi}",
                {"max_results": [str(raw_max)]},
            )
        token = request.arg(token_name) or request.arg("pagination_token")
        if token:
            try:
                before = int(decode_cursor(token))
            except ValueError:
                return invalid(
                    f"The `{token_name}` query parameter value [{token}] is invalid",
                    {token_name: [token]},
                )
            tweets = [t for t in tweets if int(t["id"]) < before]
        since_id = request.arg("since_id")
        if since_id:
            tweets = [t for t in tweets if int(t["id"]) > int(since_id)]
        until_id = request.arg("until_id")
        if until_id:
            tweets = [t for t in tweets if int(t["id"]) < int(until_id)]
        page = tweets[:max_results]
        fields = self._fields(request)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"] = page[0]["id"]
            meta["oldest_id"] = page[-1]["id"]
        if len(tweets) > max_results:
            meta["next_token"] = encode_cursor(page[-1]["id"])
        body: dict[str, Any] = {}
        if page:
            body["data"] = [self.render(t, fields) for t in page]
            body.update(self._includes(request, page))
        body["meta"] = meta
        return json_response(200, body)

    def _includes(self, request: Request, page: list[dict[str, Any]]) -> dict[str, Any]:
        """``{"includes": ...}`` for the requested expansions of ``page``; empty when none."""
        includes: dict[str, Any] = {}
        media = self._included_media(request, page)
        if media:
            includes["media"] = media
        users = self._included_users(request, page)
        if users:
            includes["users"] = users
        return {"includes": includes} if includes else {}

    def _included_media(self, request: Request, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``includes.media`` for ``expansions=attachments.media_keys``: each attached image
        with the requested ``media.fields`` (url, alt_text) and always media_key and type.
        https://docs.x.com/x-api/fundamentals/expansions"""
        if "attachments.media_keys" not in (request.arg("expansions") or "").split(","):
            return []
        wanted = {f for f in (request.arg("media.fields") or "").split(",") if f}
        out = []
        for tweet in page:
            for key in (tweet.get("attachments") or {}).get("media_keys", []):
                media = self.state.x["media"].get(key.removeprefix("3_"))
                if media is None:
                    continue
                item: dict[str, Any] = {"media_key": key, "type": "photo"}
                for name in ("url", "alt_text"):
                    if name in wanted and media.get(name):
                        item[name] = media[name]
                out.append(item)
        return out

    def _included_users(self, request: Request, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``includes.users`` for ``expansions=author_id``: each author once, with id, name
        and username (X's default user fields).
        https://docs.x.com/x-api/fundamentals/expansions"""
        if "author_id" not in (request.arg("expansions") or "").split(","):
            return []
        out: dict[str, dict[str, Any]] = {}
        for tweet in page:
            user = self.state.x_user(str(tweet["author_id"]))
            if user is not None and user["id"] not in out:
                out[user["id"]] = {
                    "id": user["id"],
                    "name": user["name"],
                    "username": user["username"],
                }
        return list(out.values())

    # -- endpoints -------------------------------------------------------------------------
    def create_post(self, request: Request, account: dict[str, Any]) -> Response:
        """Create a post. https://docs.x.com/x-api/posts/create-post

        201 with ``data.id``/``data.text``; 403 for a duplicate of one of the account's posts
        ("You are not allowed to create a Tweet with duplicate content."); 403 when the app
        has read-only access.
        """
        key = f"x:{account['id']}"
        self.state.count(key, "create_requests")
        if account.get("access_level", "read-write") != "read-write":
            return json_response(
                403,
                problem(
                    403,
                    "Forbidden",
                    "Your client app is not configured with the appropriate oauth1 app "
                    "permissions for this endpoint.",
                    "https://api.twitter.com/2/problems/oauth1-permissions",
                ),
            )
        try:
            body = request.json()
        except ValueError:
            return invalid("Request body is not valid JSON")
        if not isinstance(body, dict):
            return invalid("Request body must be a JSON object")
        text = body.get("text")
        media_ids = (body.get("media") or {}).get("media_ids") or []
        if not text and not media_ids:
            return invalid("One of text or media is required", {"text": [""]})
        text = str(text or "")
        if text and not parse_tweet(text).valid:
            return json_response(403, problem(403, "Forbidden", "Your Tweet text is too long."))
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        with self.state.lock:
            for tweet in self.state.live_tweets():
                if tweet["author_id"] == account["id"] and tweet["text"] == text and text:
                    return json_response(
                        403,
                        problem(
                            403,
                            "Forbidden",
                            "You are not allowed to create a Tweet with duplicate content.",
                        ),
                    )
            if reply_to is not None and reply_to not in self.state.x["tweets"]:
                return invalid(f"Could not find tweet with in_reply_to_tweet_id: [{reply_to}].")
            for media_id in media_ids:
                if media_id not in self.state.x["media"]:
                    return invalid(f"Your media IDs are invalid: [{media_id}].")
            tweet = self.state.add_tweet(account["id"], text, reply_to, media_ids=media_ids)
            self.state.count(key, "created")
            self.state.save()
        return json_response(
            201,
            {
                "data": {
                    "id": tweet["id"],
                    "text": tweet["text"],
                    "edit_history_tweet_ids": tweet["edit_history_tweet_ids"],
                }
            },
        )

    def delete_post(self, request: Request, account: dict[str, Any], tweet_id: str) -> Response:
        """Delete a post. https://docs.x.com/x-api/posts/delete-post"""
        with self.state.lock:
            tweet = self.state.x["tweets"].get(tweet_id)
            if tweet is None or tweet["deleted"]:
                return json_response(
                    404,
                    {
                        "errors": [not_found("tweet", tweet_id)],
                        "title": "Not Found Error",
                        "detail": "Not Found",
                        "type": NOT_FOUND,
                    },
                )
            if tweet["author_id"] != account["id"]:
                return json_response(
                    403,
                    problem(
                        403, "Forbidden", "You are not allowed to delete a Tweet that is not yours."
                    ),
                )
            tweet["deleted"] = True
            self.state.save()
        return json_response(200, {"data": {"deleted": True}})

    def get_post(self, request: Request, account: dict[str, Any], tweet_id: str) -> Response:
        """One post by id. https://docs.x.com/x-api/posts/get-post-by-id

        ``tweet.fields`` and ``expansions`` (with ``media.fields``, ``user.fields``) as in the
        listings; a post X does not have, or no longer has, is a 200 whose ``errors`` holds a
        "Not Found Error" and no ``data``.
        """
        with self.state.lock:
            tweet = self.state.x["tweets"].get(tweet_id)
            if tweet is None or tweet["deleted"]:
                return json_response(200, {"errors": [not_found("tweet", tweet_id)]})
            body = {"data": self.render(tweet, self._fields(request))}
            body.update(self._includes(request, [tweet]))
        return json_response(200, body)

    def get_me(self, request: Request, account: dict[str, Any]) -> Response:
        """The authenticated user. https://docs.x.com/x-api/users/get-my-user"""
        return json_response(
            200,
            {
                "data": {
                    "id": account["id"],
                    "name": account["name"],
                    "username": account["username"],
                }
            },
        )

    def user_posts(self, request: Request, account: dict[str, Any], user_id: str) -> Response:
        """A user's posts, newest first. https://docs.x.com/x-api/users/get-posts

        ``max_results`` 5-100 (default 10), ``pagination_token``, ``since_id``, ``until_id``;
        the 3,200 most recent posts are reachable.
        """
        if self.state.x_user(user_id) is None:
            return json_response(200, {"errors": [not_found("user", user_id)]})
        tweets = [t for t in self.state.live_tweets() if t["author_id"] == user_id][:3200]
        return self._page(request, tweets, 5, 100, "pagination_token")

    def search_recent(self, request: Request, account: dict[str, Any]) -> Response:
        """Search posts of the last seven days. https://docs.x.com/x-api/posts/search-recent-posts

        Supports ``conversation_id:``, ``from:``, ``to:``, ``is:reply`` (and their negation)
        and plain keywords; ``max_results`` 10-100, ``next_token``, ``since_id``,
        ``start_time`` (not earlier than seven days ago).
        """
        query = request.arg("query")
        if not query:
            return invalid("The `query` parameter can not be empty", {"query": [""]})
        oldest = now_ts() - SEVEN_DAYS
        start_time = request.arg("start_time")
        if start_time:
            try:
                start = parse_time(start_time)
            except ValueError:
                return invalid(f"Invalid 'start_time':'{start_time}'.")
            if start < oldest - 60:
                return invalid(
                    f"Invalid 'start_time':'{start_time}'. 'start_time' must be on or after "
                    f"{x_time(oldest)}"
                )
            oldest = max(oldest, start)
        try:
            terms = shlex.split(query)
        except ValueError:
            return invalid(f"There were errors processing your request: invalid query {query}")
        tweets = [t for t in self.state.live_tweets() if t["ts"] >= oldest]
        tweets = [t for t in tweets if all(self._term(term, t) for term in terms)]
        return self._page(request, tweets, 10, 100, "next_token")

    def _term(self, term: str, tweet: dict[str, Any]) -> bool:
        negate = term.startswith("-")
        term = term.lstrip("-")
        name, sep, value = term.partition(":")
        if sep and name == "conversation_id":
            result = tweet["conversation_id"] == value
        elif sep and name == "from":
            author = self.state.x_user(tweet["author_id"]) or {}
            result = value in (author.get("username"), tweet["author_id"])
        elif sep and name == "to":
            target = self.state.x_user(tweet.get("in_reply_to_user_id", "")) or {}
            result = value in (target.get("username"), tweet.get("in_reply_to_user_id"))
        elif sep and name == "is":
            result = value == "reply" and "in_reply_to_user_id" in tweet
        else:
            result = term.lower() in str(tweet["text"]).lower()
        return bool(result) != negate

    def hide_reply(self, request: Request, account: dict[str, Any], tweet_id: str) -> Response:
        """Hide or unhide a reply. https://docs.x.com/x-api/posts/hide-reply

        The reply must belong to a conversation the authenticated user started; hiding an
        already hidden reply succeeds.
        """
        try:
            body = request.json()
            hidden = body["hidden"]
        except (ValueError, KeyError, TypeError):
            return invalid("The `hidden` field is required", {"hidden": [""]})
        with self.state.lock:
            tweet = self.state.x["tweets"].get(tweet_id)
            if tweet is None or tweet["deleted"]:
                return invalid(f"Could not find tweet with id: [{tweet_id}].")
            root = self.state.x["tweets"].get(tweet["conversation_id"])
            if root is None or root["author_id"] != account["id"] or tweet_id == root["id"]:
                return json_response(
                    403,
                    problem(
                        403,
                        "Forbidden",
                        "You can only hide or unhide replies in conversations you started.",
                    ),
                )
            tweet["hidden"] = bool(hidden)
            self.state.save()
        return json_response(200, {"data": {"hidden": bool(hidden)}})

    def upload_media(self, request: Request, account: dict[str, Any]) -> Response:
        """Upload an image in one request. https://docs.x.com/x-api/media/upload-media

        ``media`` as a multipart file part (raw bytes) or base64 in a JSON body, with
        ``media_category`` (e.g. ``tweet_image``).
        """
        data: bytes | None = None
        category: str | None = None
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = request.json()
                data = base64.b64decode(body["media"])
                category = body.get("media_category")
            except (ValueError, KeyError, TypeError):
                return invalid("The `media` field must be base64-encoded media")
        else:
            value = request.form.get("media")
            data = value.encode() if isinstance(value, str) else value
            raw_category = request.form.get("media_category")
            category = raw_category if isinstance(raw_category, str) else None
        if not data:
            return invalid("The `media` field is required", {"media": [""]})
        with self.state.lock:
            media_id = self.state.new_x_id()
            self.state.x["media"][media_id] = {
                "id": media_id,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),  # what was received, to check
                "category": category or "tweet_image",
                "owner": account["id"],
            }
            self.state.save()
        return json_response(
            200,
            {
                "data": {
                    "id": media_id,
                    "media_key": f"3_{media_id}",
                    "size": len(data),
                    "expires_after_secs": 86400,
                }
            },
        )

    def media_metadata(self, request: Request, account: dict[str, Any]) -> Response:
        """Set an uploaded image's alt text. https://docs.x.com/x-api/media/metadata-create"""
        try:
            body = request.json()
            media_id = str(body["id"])
            alt_text = str(body["metadata"]["alt_text"]["text"])
        except (ValueError, KeyError, TypeError):
            return invalid("The `id` and `metadata.alt_text.text` fields are required")
        with self.state.lock:
            media = self.state.x["media"].get(media_id)
            if media is None or media["owner"] != account["id"]:
                return invalid(f"Your media IDs are invalid: [{media_id}].")
            if len(alt_text) > 1000:
                return invalid("alt_text.text must be at most 1000 characters")
            media["alt_text"] = alt_text
            self.state.save()
        return json_response(
            200,
            {
                "data": {
                    "id": media_id,
                    "associated_metadata": {"alt_text": {"text": alt_text}},
                }
            },
        )
