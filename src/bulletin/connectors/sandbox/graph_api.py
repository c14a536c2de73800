"""The subset of the Facebook Graph API the sandbox speaks, from Meta's published reference.

Paths may carry any version prefix (``/v26.0/...``) or none. The access token comes from the
``access_token`` parameter (query or form body) or an ``Authorization: OAuth|Bearer`` header.
Errors use Graph's ``{"error": {...}}`` body with HTTP 400, as documented in
https://developers.facebook.com/docs/graph-api/guides/error-handling
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from typing import Any, ClassVar
from urllib.parse import urlencode

from bulletin.connectors.sandbox.faults import Fault
from bulletin.connectors.sandbox.http_types import (
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
)
from bulletin.connectors.sandbox.state import SandboxState, graph_time, parse_time

VERSION = re.compile(r"^/v\d+\.\d+(/.*)?$")
RATE_LIMIT_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}
POST_FIELDS = ("id", "message", "created_time")
COMMENT_FIELDS = ("id", "message", "created_time", "from")


def graph_error(
    message: str,
    code: int,
    type_: str = "OAuthException",
    status: int = 400,
    subcode: int | None = None,
    transient: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """Graph's error body; ``fbtrace_id`` is random like Facebook's."""
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    error["fbtrace_id"] = secrets.token_urlsafe(8)
    response = json_response(status, {"error": error}, headers)
    if code == 190:
        response.headers["www-authenticate"] = (
            f'OAuth "Facebook Platform" "invalid_token" "{message}"'
        )
    return response


def _unknown(object_id: str, method: str = "get") -> Response:
    return graph_error(
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        100,
        "GraphMethodException",
        subcode=33,
    )


def _page_token_required() -> Response:
    return graph_error("(#210) A page access token is required to request this resource.", 210)


class GraphApi:
    """Handlers for Graph paths; one instance per sandbox server."""

    TEXT_FIELD = "message"  # a post's or comment's text (what ``malformed_item`` spoils)

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # -- plumbing --------------------------------------------------------------------------
    @staticmethod
    def strip_version(path: str) -> str:
        match = VERSION.match(path)
        if match:
            return match.group(1) or "/"
        return path

    @staticmethod
    def token_of(request: Request) -> str | None:
        token = request.arg("access_token")
        if token:
            return token
        header = request.headers.get("authorization", "")
        for scheme in ("OAuth ", "Bearer "):
            if header.startswith(scheme):
                return header[len(scheme) :].strip()
        return None

    def fault_response(self, fault: Fault, request: Request) -> Response:
        """What Graph answers for an injected fault, before doing any work."""
        if fault.kind == "rate_limit":
            code = fault.code or 32
            minutes = math.ceil(max(fault.seconds, 0) / 60)
            page_id = next(iter(self.state.fb["pages"]), "0")
            usage = json.dumps(
                {
                    page_id: [
                        {
                            "type": "pages",
                            "call_count": 100,
                            "total_cputime": 10,
                            "total_time": 10,
                            "estimated_time_to_regain_access": minutes,
                        }
                    ]
                }
            )
            return graph_error(
                RATE_LIMIT_MESSAGES.get(code, RATE_LIMIT_MESSAGES[32]),
                code,
                transient=True,
                headers={
                    "x-business-use-case-usage": usage,
                    "x-app-usage": '{"call_count":100,"total_cputime":10,"total_time":10}',
                },
            )
        if fault.kind == "duplicate":
            return graph_error("Duplicate status message", 506, subcode=1455006)
        if fault.kind == "invalid_parameter":
            # code 100 alone: "Invalid parameter" (no subcode: the object may well exist)
            return graph_error("(#100) Invalid parameter", 100)
        if fault.kind == "expired_token":
            return graph_error(
                "Error validating access token: Session has expired on Tuesday, 24-Nov-26 "
                "15:00:00 PST. The current time is Wednesday, 25-Nov-26 15:00:00 PST.",
                190,
                subcode=463,
            )
        if fault.status >= 503:
            return graph_error(
                "An unexpected error has occurred. Please retry your request later.",
                2,
                status=fault.status,
                transient=True,
            )
        return graph_error("An unknown error has occurred.", 1, status=fault.status, transient=True)

    def handle(self, request: Request) -> Response:
        """Route one request by the object its path names."""
        path = self.strip_version(request.path)
        parts = [p for p in path.split("/") if p]
        token = self.token_of(request)
        if token is None:
            return graph_error("An access token is required to request this resource.", 104)
        found = self.state.fb_token(token)
        if found is None:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        kind, page = found
        response = self._dispatch(request, parts, kind, page)
        response.headers.setdefault(
            "x-app-usage", '{"call_count":1,"total_cputime":1,"total_time":1}'
        )
        response.headers["facebook-api-version"] = "v26.0"
        return response

    def _dispatch(
        self, request: Request, parts: list[str], kind: str, page: dict[str, Any]
    ) -> Response:
        if not parts:
            return _unknown("", request.method.lower())
        object_id, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        method = request.method
        if object_id == "me":
            object_id = page["id"] if kind == "page" else page["user_id"]
            if edge is None and method == "GET":
                return self.get_me(request, kind, page)
            if edge == "accounts" and method == "GET":
                return self.get_accounts(request, kind, page)
        if object_id == page["id"]:
            if edge is None and method == "GET":
                return json_response(200, {"id": page["id"], "name": page["name"]})
            if edge == "feed" and method == "POST":
                return self.publish_feed(request, kind, page)
            if edge == "photos" and method == "POST":
                return self.publish_photo(request, kind, page)
            if edge in ("posts", "feed", "published_posts") and method == "GET":
                return self.list_posts(request, kind, page)
            if edge == "subscribed_apps" and method == "POST":
                return self.subscribe_app(request, kind, page)
            if edge == "subscribed_apps" and method == "GET":
                return self.subscribed_apps(request, kind, page)
        post = self.state.fb["posts"].get(object_id)
        if post is not None and not post["deleted"] and post["page_id"] == page["id"]:
            if edge is None and method == "GET":
                fields = self._fields(request, POST_FIELDS)
                return json_response(200, self.render_post(post, fields))
            if edge is None and method == "DELETE":
                return self.delete_post(request, kind, post)
            if edge == "comments" and method == "GET":
                return self.list_comments(request, kind, page, post["id"], None)
            if edge == "comments" and method == "POST":
                return self.publish_comment(request, kind, page, post)
        comment = self.state.fb["comments"].get(object_id)
        if comment is not None and not comment["deleted"]:
            owner = self.state.fb["posts"].get(comment["post_id"], {})
            if owner.get("page_id") == page["id"]:
                if edge is None and method == "GET":
                    fields = self._fields(request, COMMENT_FIELDS)
                    return json_response(200, self.render_comment(comment, fields, page))
                if edge is None and method == "POST":
                    return self.update_comment(request, kind, page, comment)
                if edge is None and method == "DELETE":
                    return self.delete_comment(request, kind, page, comment)
                if edge == "comments" and method == "GET":
                    return self.list_comments(
                        request, kind, page, comment["post_id"], comment["id"]
                    )
        return _unknown(parts[0], method.lower())

    @staticmethod
    def _fields(request: Request, default: tuple[str, ...]) -> set[str]:
        raw = request.arg("fields")
        if not raw:
            return set(default)
        return {f.strip() for f in raw.split(",") if f.strip()} | {"id"}

    @staticmethod
    def _limit(request: Request) -> int:
        try:
            return max(1, min(int(request.arg("limit") or 25), 100))
        except ValueError:
            return 25

    def _paged(
        self,
        request: Request,
        items: list[dict[str, Any]],
        key: Any,
        limit: int,
        render: Any,
    ) -> Response:
        """Cursor-based paging: ``paging.cursors.before/after`` and ``paging.next``."""
        after = request.arg("after")
        if after:
            try:
                mark = decode_cursor(after)
            except ValueError:
                return graph_error("(#100) The after parameter is not a valid cursor", 100)
            items = [i for i in items if key(i) > tuple(mark)]
        page_items = items[:limit]
        body: dict[str, Any] = {"data": [render(i) for i in page_items]}
        if page_items:
            paging: dict[str, Any] = {
                "cursors": {
                    "before": encode_cursor(list(key(page_items[0]))),
                    "after": encode_cursor(list(key(page_items[-1]))),
                }
            }
            if len(items) > limit:
                query = {k: v[-1] for k, v in request.query.items()}
                query["after"] = paging["cursors"]["after"]
                query.setdefault("limit", str(limit))
                paging["next"] = f"http://{request.host}{request.path}?{urlencode(query)}"
            body["paging"] = paging
        return json_response(200, body)

    # -- rendering -------------------------------------------------------------------------
    def render_post(self, post: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        page_id, number = post["id"].split("_", 1)
        values = {
            "id": post["id"],
            "message": post.get("message"),
            "created_time": graph_time(post["ts"]),
            "updated_time": graph_time(post.get("updated_ts", post["ts"])),
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{number}",
            "is_hidden": False,
            "is_published": True,
            "from": {"id": page_id, "name": self.state.fb["pages"][page_id]["name"]},
        }
        if post.get("photo_id"):
            values["full_picture"] = f"https://scontent.example/{post['photo_id']}.jpg"
        return {k: v for k, v in values.items() if k in fields and v is not None}

    def render_comment(
        self, comment: dict[str, Any], fields: set[str], page: dict[str, Any]
    ) -> dict[str, Any]:
        page_id, number = comment["post_id"].split("_", 1)
        values: dict[str, Any] = {
            "id": comment["id"],
            "message": comment["message"],
            "created_time": graph_time(comment["ts"]),
            "from": comment["from"],
            "is_hidden": comment["is_hidden"],
            "can_hide": True,
            "can_remove": True,
            "can_comment": True,
            "permalink_url": (
                f"https://www.facebook.com/{page_id}/posts/{number}"
                f"?comment_id={comment['id'].split('_', 1)[1]}"
            ),
            "object": {"id": comment["post_id"]},
        }
        if "comment_count" in fields:
            values["comment_count"] = sum(
                1
                for c in self.state.fb["comments"].values()
                if c.get("parent_id") == comment["id"] and not c["deleted"]
            )
        if comment.get("attachment_url"):
            values["attachment"] = {
                "type": "photo",
                "url": comment["attachment_url"],
                "media": {"image": {"src": comment["attachment_url"], "height": 720, "width": 720}},
            }
        parent_id = comment.get("parent_id")
        if parent_id:
            parent = self.state.fb["comments"][parent_id]
            values["parent"] = {
                "id": parent["id"],
                "message": parent["message"],
                "created_time": graph_time(parent["ts"]),
                "from": parent["from"],
            }
        out = {k: v for k, v in values.items() if k in fields}
        if "MODERATE" not in page.get("tasks", []):
            out.pop("id", None)  # comment ids need the MODERATE task (v11.0+)
        return out

    # -- endpoints -------------------------------------------------------------------------
    def get_me(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """The token's subject: the Page for a Page token, the person for a User token.
        https://developers.facebook.com/docs/graph-api/overview#me
        """
        if kind == "page":
            return json_response(200, {"id": page["id"], "name": page["name"]})
        return json_response(200, {"id": page["user_id"], "name": "Sandbox Page Admin"})

    def get_accounts(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """Pages the person can act on, with Page tokens and tasks.
        https://developers.facebook.com/docs/graph-api/reference/user/accounts
        """
        if kind != "user":
            return _unknown("me")
        return json_response(
            200,
            {
                "data": [
                    {
                        "access_token": page["page_token"],
                        "category": "Government Organization",
                        "name": page["name"],
                        "id": page["id"],
                        "tasks": list(page.get("tasks", [])),
                    }
                ],
                "paging": {"cursors": {"before": "QVFIUj", "after": "QVFIUj"}},
            },
        )

    def subscribe_app(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """Install the app on the Page for the webhook fields in ``subscribed_fields``
        (comma-separated). https://developers.facebook.com/docs/pages-api/webhooks-for-pages

        Needs a Page token whose person has the CREATE_CONTENT, MANAGE or MODERATE task
        (and pages_manage_metadata); answers ``{"success": true}``.
        """
        if kind != "page":
            return _page_token_required()
        if not {"CREATE_CONTENT", "MANAGE", "MODERATE"} & set(page.get("tasks", [])):
            return graph_error(
                "(#200) The user hasn't authorized the application to perform this action", 200
            )
        wanted = [f.strip() for f in (request.arg("subscribed_fields") or "").split(",")]
        wanted = [f for f in wanted if f]
        if not wanted:
            return graph_error("(#100) The parameter subscribed_fields is required.", 100)
        with self.state.lock:
            fields = list(page.get("subscribed_fields") or [])
            page["subscribed_fields"] = fields + [f for f in wanted if f not in fields]
            self.state.save()
        return json_response(200, {"success": True})

    def subscribed_apps(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """The apps installed on the Page, each with its ``subscribed_fields``; empty data when
        none is. https://developers.facebook.com/docs/pages-api/webhooks-for-pages
        """
        if kind != "page":
            return _page_token_required()
        fields = list(page.get("subscribed_fields") or [])
        apps = []
        if fields:
            apps.append(
                {
                    "category": "Business",
                    "link": "https://bulletin.example/app",
                    "name": "Bulletin",
                    "id": "100000000000777",
                    "subscribed_fields": fields,
                }
            )
        return json_response(200, {"data": apps})

    def publish_feed(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """Publish a Page post. https://developers.facebook.com/docs/graph-api/reference/page/feed

        Needs a Page token with CREATE_CONTENT; the same message twice in a row is refused
        with code 506 (duplicate post).
        """
        self.state.count(f"facebook:{page['id']}", "create_requests")
        if kind != "page":
            return _page_token_required()
        if "CREATE_CONTENT" not in page.get("tasks", []):
            return graph_error(
                "(#200) The user hasn't authorized the application to perform this action", 200
            )
        message = request.arg("message") or ""
        link = request.arg("link")
        if not message and not link:
            return graph_error("(#100) Missing message or attachment.", 100)
        return self._create(page, message, link, None)

    def _create(
        self,
        page: dict[str, Any],
        message: str,
        link: str | None,
        photo_id: str | None,
        photo: dict[str, Any] | None = None,
    ) -> Response:
        """Add a post; ``photo`` describes the uploaded file (kept to check what arrived)."""
        with self.state.lock:
            mine = [
                p
                for p in self.state.fb["posts"].values()
                if p["page_id"] == page["id"] and not p["deleted"]
            ]
            if mine and message:
                last = max(mine, key=lambda p: (p["ts"], p["id"]))
                if last.get("message") == message:
                    return graph_error("Duplicate status message", 506, subcode=1455006)
            post = self.state.add_fb_post(page["id"], message, link)
            if photo_id:
                post["photo_id"] = photo_id
            if photo:
                post["photo"] = photo
            self.state.count(f"facebook:{page['id']}", "created")
            self.state.save()
        if photo_id:
            return json_response(200, {"id": photo_id, "post_id": post["id"]})
        return json_response(200, {"id": post["id"]})

    def publish_comment(
        self, request: Request, kind: str, page: dict[str, Any], post: dict[str, Any]
    ) -> Response:
        """Comment on a Page post as the Page.
        https://developers.facebook.com/docs/graph-api/reference/object/comments#publish

        ``message`` is the text; answers ``{"id": comment-id}``. Needs a Page token with
        CREATE_CONTENT (the Page speaks); the comment's ``from`` is the Page.
        """
        self.state.count(f"facebook:{page['id']}", "comment_requests")
        if kind != "page":
            return _page_token_required()
        if "CREATE_CONTENT" not in page.get("tasks", []):
            return graph_error(
                "(#200) The user hasn't authorized the application to perform this action", 200
            )
        message = request.arg("message") or ""
        if not message:
            return graph_error("(#100) Missing message or attachment.", 100)
        with self.state.lock:
            comment = self.state.add_fb_comment(post["id"], message, page["name"])
            comment["from"] = {"id": page["id"], "name": page["name"]}
            self.state.count(f"facebook:{page['id']}", "comments_created")
            self.state.save()
        self.state.comment_changed(comment, "add")
        return json_response(200, {"id": comment["id"]})

    def publish_photo(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """Publish a photo post. https://developers.facebook.com/docs/graph-api/reference/page/photos

        ``source`` (multipart file) or ``url``; ``caption`` or ``message`` is the text.
        Answers ``{"id": photo-id, "post_id": page-post-id}``.
        """
        self.state.count(f"facebook:{page['id']}", "create_requests")
        if kind != "page":
            return _page_token_required()
        source = request.form.get("source")
        if not source and not request.arg("url"):
            return graph_error("(#324) Requires upload file", 324)
        message = request.arg("caption") or request.arg("message") or ""
        data = source.encode() if isinstance(source, str) else source
        photo = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} if data else None
        return self._create(page, message, None, self.state.new_fb_id(), photo)

    def list_posts(self, request: Request, kind: str, page: dict[str, Any]) -> Response:
        """The Page's posts, newest first, cursor-paged (``limit`` up to 100, ``after``,
        ``since``). https://developers.facebook.com/docs/graph-api/reference/page/feed
        """
        posts = [
            p
            for p in self.state.fb["posts"].values()
            if p["page_id"] == page["id"] and not p["deleted"]
        ]
        since = request.arg("since")
        if since:
            try:
                since_ts = float(since) if since.replace(".", "").isdigit() else parse_time(since)
            except ValueError:
                return graph_error(f"(#100) Invalid since: {since}", 100)
            posts = [p for p in posts if p["ts"] >= since_ts]
        posts.sort(key=lambda p: (-p["ts"], -int(p["id"].split("_")[1])))
        fields = self._fields(request, POST_FIELDS)
        return self._paged(
            request,
            posts,
            lambda p: (-p["ts"], -int(p["id"].split("_")[1])),
            self._limit(request),
            lambda p: self.render_post(p, fields),
        )

    def delete_post(self, request: Request, kind: str, post: dict[str, Any]) -> Response:
        """Delete a Page post. https://developers.facebook.com/docs/graph-api/reference/post#deleting"""
        if kind != "page":
            return _page_token_required()
        with self.state.lock:
            post["deleted"] = True
            self.state.save()
        return json_response(200, {"success": True})

    def list_comments(
        self,
        request: Request,
        kind: str,
        page: dict[str, Any],
        post_id: str,
        parent_id: str | None,
    ) -> Response:
        """Comments on an object. https://developers.facebook.com/docs/graph-api/reference/object/comments

        ``filter=toplevel`` (default) leaves replies out; ``filter=stream`` gives every
        comment and reply, chronological, replies with ``parent``. Hidden comments are
        included with ``is_hidden``. A User token reads no comments of a Page post.
        """
        if kind != "page":
            return json_response(200, {"data": []})
        stream = request.arg("filter") == "stream"
        with self.state.lock:
            comments = [
                c
                for c in self.state.fb["comments"].values()
                if c["post_id"] == post_id and not c["deleted"]
            ]
        if parent_id is not None:
            comments = [c for c in comments if c.get("parent_id") == parent_id]
        elif not stream:
            comments = [c for c in comments if not c.get("parent_id")]
        reverse = request.arg("order") == "reverse_chronological"

        def key(c: dict[str, Any]) -> tuple[float, int]:
            order = (c["ts"], int(c["id"].split("_")[1]))
            return (-order[0], -order[1]) if reverse else order

        comments.sort(key=key)
        fields = self._fields(request, COMMENT_FIELDS)
        return self._paged(
            request,
            comments,
            key,
            self._limit(request),
            lambda c: self.render_comment(c, fields, page),
        )

    def delete_comment(
        self, request: Request, kind: str, page: dict[str, Any], comment: dict[str, Any]
    ) -> Response:
        """Delete a comment on one of the Page's posts.
        https://developers.facebook.com/docs/graph-api/reference/comment#deleting

        Needs a Page token with the MODERATE task; answers ``{"success": true}``.
        """
        if kind != "page":
            return _page_token_required()
        if "MODERATE" not in page.get("tasks", []):
            return graph_error(
                "(#200) The user hasn't authorized the application to perform this action", 200
            )
        with self.state.lock:
            comment["deleted"] = True
            self.state.save()
        self.state.comment_changed(comment, "remove")
        return json_response(200, {"success": True})

    def update_comment(
        self, request: Request, kind: str, page: dict[str, Any], comment: dict[str, Any]
    ) -> Response:
        """Hide or unhide a comment with ``is_hidden``.
        https://developers.facebook.com/docs/graph-api/reference/comment#updating
        """
        if kind != "page":
            return _page_token_required()
        if "MODERATE" not in page.get("tasks", []):
            return graph_error(
                "(#200) The user hasn't authorized the application to perform this action", 200
            )
        value = request.arg("is_hidden")
        if value is None:
            return graph_error("(#100) Nothing to update: pass is_hidden or message", 100)
        hidden = value.lower() in ("true", "1")
        with self.state.lock:
            changed = comment["is_hidden"] != hidden
            comment["is_hidden"] = hidden
            self.state.save()
        if changed:
            self.state.comment_changed(comment, "hide" if hidden else "unhide")
        return json_response(200, {"success": True})


class GraphPlatformApi:
    """What a platform the sandbox serves with Graph's shapes beside the Graph API
    (Instagram, Threads) needs besides its paths: its own world in the sandbox state, its
    accounts found by token (a token ``{visitor_prefix}NAME`` makes a member of the public
    on first use), new ids, and Graph's answers to injected faults.

    A subclass sets the class attributes below and implements :meth:`fresh_world`.
    """

    TEXT_FIELD = "text"
    world_key: ClassVar[str]  # its world's key in the sandbox state
    accounts_key: ClassVar[str]  # the world's accounts, by id
    visitor_prefix: ClassVar[str]
    id_base: ClassVar[int]

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._graph = GraphApi(state)

    def fresh_world(self) -> dict[str, Any]:
        """A new world: the agency's account, nothing posted."""
        raise NotImplementedError

    @property
    def world(self) -> dict[str, Any]:
        with self.state.lock:
            world: dict[str, Any] = self.state.data.setdefault(self.world_key, self.fresh_world())
            return world

    def owns(self, request: Request) -> bool:
        """Whether ``request`` is for this platform: it carries one of its tokens."""
        token = GraphApi.token_of(request) or ""
        if token.startswith(self.visitor_prefix):
            return True
        return any(a["access_token"] == token for a in self.world[self.accounts_key].values())

    def _account(self, request: Request) -> dict[str, Any] | None:
        """The account whose token ``request`` carries (a visitor made on first use)."""
        token = GraphApi.token_of(request) or ""
        prefix = self.visitor_prefix
        with self.state.lock:
            accounts = self.world[self.accounts_key]
            for account in accounts.values():
                if account["access_token"] == token:
                    return account  # type: ignore[no-any-return]
            if token.startswith(prefix) and len(token) > len(prefix):
                name = token[len(prefix) :]
                account = {
                    "id": self._new_id(),
                    "username": name,
                    "name": name,
                    "access_token": token,
                }
                accounts[account["id"]] = account
                self.state.save()
                return account
        return None

    def _new_id(self) -> str:
        with self.state.lock:
            n = int(self.world["next"])
            self.world["next"] = n + 1
            return str(self.id_base + n)

    def fault_response(self, fault: Fault, request: Request) -> Response:
        """Graph's answers for injected faults (the same error shapes)."""
        return self._graph.fault_response(fault, request)
