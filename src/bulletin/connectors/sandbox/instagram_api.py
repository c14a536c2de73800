"""The subset of the Instagram API with Facebook Login the sandbox speaks, from Meta's
published reference.

Instagram's objects live on ``graph.facebook.com`` beside the Pages': the sandbox serves them
on the same port as the Graph API, and a request belongs to Instagram when its token is an
Instagram token (the agency's account, or ``sandbox-instagram-visitor-NAME``: a member of the
public made on first use, who comments through the same API). Errors are Graph's.

- https://developers.facebook.com/docs/instagram-platform/content-publishing
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
  (containers: ``image_url``, ``caption``, ``alt_text``; containers expire after 24 hours)
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media_publish
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/content_publishing_limit
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-container
  (``status_code``: EXPIRED, ERROR, FINISHED, IN_PROGRESS, PUBLISHED)
- https://developers.facebook.com/docs/instagram-platform/reference/instagram-media
  (reading; IG Media has no delete)
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-media/comments
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-comment
  (``hide``, DELETE, ``replies``)
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from bulletin.connectors.sandbox.graph_api import (
    GraphApi,
    GraphPlatformApi,
    _unknown,
    graph_error,
)
from bulletin.connectors.sandbox.http_types import Request, Response, json_response
from bulletin.connectors.sandbox.state import DEFAULT_IG_ACCOUNT, graph_time, now_ts
from bulletin.connectors.sandbox.threads_api import paged

ID_BASE = 17_900_000_000_000_000
VISITOR_PREFIX = "sandbox-instagram-visitor-"
DAY = 86400.0
QUOTA = 100
MAX_CAPTION = 2200
MAX_HASHTAGS = 30
HASHTAG = re.compile(r"(?<![\w&])#\w+")


def fresh_world() -> dict[str, Any]:
    """A new sandbox Instagram: the agency's account, nothing posted."""
    return {
        "next": 1,
        "users": {DEFAULT_IG_ACCOUNT["id"]: dict(DEFAULT_IG_ACCOUNT)},
        "containers": {},
        "media": {},
        "comments": {},
    }


def _top_fields(raw: str | None) -> set[str]:
    """The top-level names of a ``fields`` list (``replies{id,text}`` counts as replies)."""
    names, depth, current = set(), 0, ""
    for char in raw or "":
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(current.strip())
            current = ""
        elif depth == 0:
            current += char
    names.add(current.strip())
    return {n for n in names if n} | {"id"}


class InstagramApi(GraphPlatformApi):
    """Handlers for Instagram paths; one instance per sandbox server."""

    world_key = "instagram"
    accounts_key = "users"
    visitor_prefix = VISITOR_PREFIX
    id_base = ID_BASE

    def fresh_world(self) -> dict[str, Any]:
        return fresh_world()

    def malform(self, response: Response) -> Response:
        """The first listed item with its text (``caption`` or ``text``) made an object."""
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            return response
        field = "caption" if "caption" in items[0] else "text"
        items[0][field] = {"unexpected": "an object where the text belongs"}
        return json_response(response.status, body, response.headers)

    def handle(self, request: Request) -> Response:
        path = GraphApi.strip_version(request.path)
        parts = [p for p in path.split("/") if p]
        user = self._account(request)
        if user is None:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if not parts:
            return _unknown("", request.method.lower())
        object_id, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        method = request.method
        fields = _top_fields(request.arg("fields"))
        if object_id in ("me", user["id"]):
            if edge is None and method == "GET":
                return json_response(200, {k: user[k] for k in ("id", "username", "name")})
            if edge == "media" and method == "POST":
                return self.create_container(request, user)
            if edge == "media_publish" and method == "POST":
                return self.publish(request, user)
            if edge == "media" and method == "GET":
                return self.list_media(request, user, fields)
            if edge == "content_publishing_limit" and method == "GET":
                return self.publishing_limit(user)
        container = self.world["containers"].get(object_id)
        mine = container is not None and container["owner"] == user["id"]
        if container is not None and mine and edge is None and method == "GET":
            return self.container_status(container)
        media = self.world["media"].get(object_id)
        if media is not None:
            if edge is None and method == "GET":
                return json_response(200, self.render_media(media, fields))
            if edge == "comments" and method == "GET":
                return self.list_comments(request, media, None, fields)
            if edge == "comments" and method == "POST":
                return self.add_comment(request, user, media, None)
        comment = self.world["comments"].get(object_id)
        if comment is not None and not comment["deleted"]:
            media = self.world["media"][comment["media"]]
            if edge is None and method == "GET":
                return json_response(200, self.render_comment(comment, fields))
            if edge is None and method == "POST":
                return self.hide(request, user, media, comment)
            if edge is None and method == "DELETE":
                return self.delete_comment(user, media, comment)
            if edge == "replies" and method == "GET":
                return self.list_comments(request, media, comment["id"], fields)
            if edge == "replies" and method == "POST":
                return self.add_comment(request, user, media, comment)
        return _unknown(parts[0], method.lower())

    # -- rendering -------------------------------------------------------------------------
    def render_media(self, media: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        owner = self.world["users"][media["owner"]]
        values: dict[str, Any] = {
            "id": media["id"],
            "caption": media["caption"],
            "media_type": "IMAGE",
            "media_product_type": "FEED",
            "media_url": media["image_url"],
            "alt_text": media.get("alt_text"),
            "permalink": f"https://www.instagram.com/p/{media['shortcode']}/",
            "shortcode": media["shortcode"],
            "timestamp": graph_time(media["ts"]),
            "username": owner["username"],
            "owner": {"id": owner["id"]},
            "comments_count": sum(
                1
                for c in self.world["comments"].values()
                if c["media"] == media["id"] and not c["deleted"]
            ),
        }
        return {k: v for k, v in values.items() if k in fields and v is not None}

    def render_comment(self, comment: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        author = self.world["users"][comment["author"]]
        values: dict[str, Any] = {
            "id": comment["id"],
            "text": comment["text"],
            "timestamp": graph_time(comment["ts"]),
            "username": author["username"],
            "from": {"id": author["id"], "username": author["username"]},
            "hidden": comment["hidden"],
            "like_count": 0,
            "media": {"id": comment["media"]},
            "parent_id": comment.get("parent"),
        }
        out = {k: v for k, v in values.items() if k in fields and v is not None}
        if "replies" in fields and not comment.get("parent"):
            replies = self._comments(comment["media"], comment["id"])
            out["replies"] = {
                "data": [self.render_comment(r, fields - {"replies"}) for r in replies]
            }
        return out

    def _comments(self, media_id: str, parent: str | None) -> list[dict[str, Any]]:
        found = [
            c
            for c in self.world["comments"].values()
            if c["media"] == media_id and not c["deleted"] and c.get("parent") == parent
        ]
        return sorted(found, key=lambda c: (c["ts"], int(c["id"])))

    # -- publishing ------------------------------------------------------------------------
    def create_container(self, request: Request, user: dict[str, Any]) -> Response:
        """``POST /{ig-user-id}/media``: an image container (``image_url`` required,
        ``caption`` up to 2,200 characters and 30 hashtags, ``alt_text``)."""
        self.state.count(f"instagram:{user['id']}", "create_requests")
        image_url = request.arg("image_url")
        caption = request.arg("caption") or ""
        if not image_url:
            return graph_error("(#100) The parameter image_url is required", 100)
        if len(caption) > MAX_CAPTION:
            return graph_error("(#100) The caption is longer than 2200 characters", 100)
        if len(HASHTAG.findall(caption)) > MAX_HASHTAGS:
            return graph_error("(#100) The caption has more than 30 hashtags", 100)
        with self.state.lock:
            container = {
                "id": self._new_id(),
                "owner": user["id"],
                "ts": now_ts(),
                "status_code": "FINISHED",
                "image_url": image_url,
                "caption": caption,
                "alt_text": request.arg("alt_text"),
            }
            self.world["containers"][container["id"]] = container
            self.state.save()
        return json_response(200, {"id": container["id"]})

    def _usage(self, user_id: str) -> int:
        if not self.state.data["settings"].get("enforce_rate_limits", True):
            return 0
        since = now_ts() - DAY
        media = list(self.world["media"].values())  # one step: other requests add to it
        return sum(1 for m in media if m["owner"] == user_id and m["ts"] >= since)

    def publish(self, request: Request, user: dict[str, Any]) -> Response:
        """``POST /{ig-user-id}/media_publish`` with ``creation_id``; answers the IG Media id.
        The 24-hour publishing limit is enforced here (code 9, subcode 2207042)."""
        creation_id = request.arg("creation_id") or ""
        with self.state.lock:
            container = self.world["containers"].get(creation_id)
            if container is None or container["owner"] != user["id"]:
                return graph_error("(#100) The parameter creation_id is invalid", 100)
            status = self._status(container)
            if status != "FINISHED":
                return graph_error(
                    f"(#100) The media container is {status} and cannot be published",
                    100,
                    subcode=2207006,
                )
            if self._usage(user["id"]) >= QUOTA:
                return graph_error(
                    "Application request limit reached: the account reached its content "
                    "publishing limit",
                    9,
                    subcode=2207042,
                )
            media = {
                "id": self._new_id(),
                "owner": user["id"],
                "ts": now_ts(),
                "caption": container["caption"],
                "image_url": container["image_url"],
                "alt_text": container.get("alt_text"),
                "shortcode": secrets.token_urlsafe(8).replace("-", "A").replace("_", "B"),
            }
            self.world["media"][media["id"]] = media
            container["status_code"] = "PUBLISHED"
            self.state.count(f"instagram:{user['id']}", "created")
            self.state.save()
        return json_response(200, {"id": media["id"]})

    @staticmethod
    def _status(container: dict[str, Any]) -> str:
        status = str(container["status_code"])
        if status == "FINISHED" and now_ts() - container["ts"] > DAY:
            return "EXPIRED"
        return status

    def container_status(self, container: dict[str, Any]) -> Response:
        """``GET /{ig-container-id}?fields=status_code``."""
        return json_response(200, {"id": container["id"], "status_code": self._status(container)})

    def publishing_limit(self, user: dict[str, Any]) -> Response:
        """``GET /{ig-user-id}/content_publishing_limit?fields=quota_usage,config``."""
        return json_response(
            200,
            {
                "data": [
                    {
                        "quota_usage": self._usage(user["id"]),
                        "config": {"quota_total": QUOTA, "quota_duration": int(DAY)},
                    }
                ]
            },
        )

    # -- reading ---------------------------------------------------------------------------
    def list_media(self, request: Request, user: dict[str, Any], fields: set[str]) -> Response:
        """``GET /{ig-user-id}/media``: the account's posts, newest first, cursor-paged."""
        found = [m for m in list(self.world["media"].values()) if m["owner"] == user["id"]]

        def key(m: dict[str, Any]) -> tuple[float, int]:
            return (-m["ts"], -int(m["id"]))

        found.sort(key=key)
        return paged(request, found, key, lambda m: self.render_media(m, fields))

    def list_comments(
        self, request: Request, media: dict[str, Any], parent: str | None, fields: set[str]
    ) -> Response:
        """``/{ig-media-id}/comments`` (top-level, each with its ``replies`` when asked) or
        ``/{ig-comment-id}/replies``; chronological, cursor-paged."""
        found = self._comments(media["id"], parent)

        def key(c: dict[str, Any]) -> tuple[float, int]:
            return (c["ts"], int(c["id"]))

        return paged(request, found, key, lambda c: self.render_comment(c, fields))

    def add_comment(
        self,
        request: Request,
        user: dict[str, Any],
        media: dict[str, Any],
        parent: dict[str, Any] | None,
    ) -> Response:
        """``POST /{ig-media-id}/comments`` or ``POST /{ig-comment-id}/replies`` with
        ``message``; answers ``{"id": ig-comment-id}``."""
        message = request.arg("message") or ""
        if not message:
            return graph_error("(#100) The parameter message is required", 100)
        with self.state.lock:
            comment = {
                "id": self._new_id(),
                "media": media["id"],
                "author": user["id"],
                "text": message,
                "ts": now_ts(),
                "hidden": False,
                "deleted": False,
                "parent": parent["id"] if parent else None,
            }
            self.world["comments"][comment["id"]] = comment
            self.state.save()
        return json_response(200, {"id": comment["id"]})

    # -- moderation ------------------------------------------------------------------------
    def hide(
        self,
        request: Request,
        user: dict[str, Any],
        media: dict[str, Any],
        comment: dict[str, Any],
    ) -> Response:
        """``POST /{ig-comment-id}?hide=true|false``: the media's owner hides a comment."""
        if media["owner"] != user["id"]:
            return graph_error("(#200) Only the media's owner can hide its comments", 200)
        value = request.arg("hide")
        if value is None:
            return graph_error("(#100) The parameter hide is required", 100)
        with self.state.lock:
            comment["hidden"] = value.lower() in ("true", "1")
            self.state.save()
        return json_response(200, {"success": True})

    def delete_comment(
        self, user: dict[str, Any], media: dict[str, Any], comment: dict[str, Any]
    ) -> Response:
        """``DELETE /{ig-comment-id}``: the media's owner (or the author) deletes it."""
        if user["id"] not in (media["owner"], comment["author"]):
            return graph_error("(#200) Only the media's owner can delete its comments", 200)
        with self.state.lock:
            comment["deleted"] = True
            self.state.save()
        return json_response(200, {"success": True})
