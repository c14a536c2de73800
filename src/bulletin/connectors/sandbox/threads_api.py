"""The subset of the Threads API the sandbox speaks, from Meta's published reference.

Threads lives on its own host (``graph.threads.net``) with Graph's shapes: paths with a
version prefix (``/v1.0/...``) or none, the token in ``access_token``, errors as Graph's
``{"error": {...}}``. The sandbox serves it on the same port as the Graph API; a request
belongs to Threads when its token is a Threads token (the agency's profile, or
``sandbox-threads-visitor-NAME``: a member of the public made on first use).

- https://developers.facebook.com/docs/threads/posts (containers, publishing)
- https://developers.facebook.com/docs/threads/overview#rate-limiting (250 posts, 1,000
  replies per 24 hours; ``threads_publishing_limit``)
- https://developers.facebook.com/docs/threads/troubleshooting (container ``status``)
- https://developers.facebook.com/docs/threads/retrieve-and-manage-replies
- https://developers.facebook.com/docs/threads/posts/delete-posts
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bulletin.connectors.sandbox.graph_api import (
    GraphApi,
    GraphPlatformApi,
    _unknown,
    graph_error,
)
from bulletin.connectors.sandbox.http_types import (
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
)
from bulletin.connectors.sandbox.state import (
    DEFAULT_THREADS_PROFILE,
    graph_time,
    now_ts,
)

ID_BASE = 18_000_000_000_000_000
VISITOR_PREFIX = "sandbox-threads-visitor-"
DAY = 86400.0
POST_QUOTA = 250
REPLY_QUOTA = 1000
CONTAINER_LIFETIME = DAY  # an unpublished container expires after 24 hours
MAX_TEXT = 500


def threads_count(text: str) -> int:
    """Characters, an emoji counted as its UTF-8 bytes (the posts reference)."""
    import unicodedata

    total = 0
    for char in text:
        emoji = unicodedata.category(char) == "So" or ord(char) >= 0x1F000
        total += len(char.encode("utf-8")) if emoji else 1
    return total


def fresh_world() -> dict[str, Any]:
    """A new sandbox Threads: the agency's profile, nothing posted."""
    return {
        "next": 1,
        "profiles": {DEFAULT_THREADS_PROFILE["id"]: dict(DEFAULT_THREADS_PROFILE)},
        "containers": {},
        "media": {},
    }


def paged(
    request: Request,
    items: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], tuple[Any, ...]],
    render: Callable[[dict[str, Any]], dict[str, Any]],
) -> Response:
    """Graph's cursor paging (``limit`` up to 100, ``after``; ``paging.cursors``, ``next``)."""
    try:
        limit = max(1, min(int(request.arg("limit") or 25), 100))
    except ValueError:
        limit = 25
    after = request.arg("after")
    if after:
        try:
            mark = tuple(decode_cursor(after))
        except ValueError:
            return graph_error("(#100) The after parameter is not a valid cursor", 100)
        items = [i for i in items if key(i) > mark]
    page = items[:limit]
    body: dict[str, Any] = {"data": [render(i) for i in page]}
    if page:
        paging: dict[str, Any] = {
            "cursors": {
                "before": encode_cursor(list(key(page[0]))),
                "after": encode_cursor(list(key(page[-1]))),
            }
        }
        if len(items) > limit:
            query = {k: v[-1] for k, v in request.query.items()}
            query["after"] = paging["cursors"]["after"]
            paging["next"] = f"http://{request.host}{request.path}?{urlencode(query)}"
        body["paging"] = paging
    return json_response(200, body)


class ThreadsApi(GraphPlatformApi):
    """Handlers for Threads paths; one instance per sandbox server."""

    world_key = "threads"
    accounts_key = "profiles"
    visitor_prefix = VISITOR_PREFIX
    id_base = ID_BASE

    def fresh_world(self) -> dict[str, Any]:
        return fresh_world()

    def handle(self, request: Request) -> Response:
        path = GraphApi.strip_version(request.path)
        parts = [p for p in path.split("/") if p]
        profile = self._account(request)
        if profile is None:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if not parts:
            return _unknown("", request.method.lower())
        object_id, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        method = request.method
        if object_id == "me":
            object_id = profile["id"]
        if object_id == profile["id"]:
            if edge is None and method == "GET":
                return json_response(200, {k: profile[k] for k in ("id", "username", "name")})
            if edge == "threads" and method == "POST":
                return self.create_container(request, profile)
            if edge == "threads_publish" and method == "POST":
                return self.publish(request, profile)
            if edge == "threads" and method == "GET":
                return self.list_threads(request, profile)
            if edge == "threads_publishing_limit" and method == "GET":
                return self.publishing_limit(request, profile)
        container = self.world["containers"].get(object_id)
        mine = container is not None and container["owner"] == profile["id"]
        if container is not None and mine and edge is None and method == "GET":
            return self.container_status(container)
        media = self.world["media"].get(object_id)
        if media is not None and not media["deleted"]:
            if edge is None and method == "GET":
                return json_response(200, self.render(media, profile))
            if edge is None and method == "DELETE":
                return self.delete(media, profile)
            if edge in ("replies", "conversation") and method == "GET":
                return self.replies(request, media, profile, edge == "conversation")
            if edge == "manage_reply" and method == "POST":
                return self.manage_reply(request, media, profile)
        return _unknown(parts[0], method.lower())

    # -- rendering -------------------------------------------------------------------------
    def render(self, media: dict[str, Any], viewer: dict[str, Any]) -> dict[str, Any]:
        """A media object with the fields the reference lists for posts and replies."""
        owner = self.world["profiles"][media["owner"]]
        values: dict[str, Any] = {
            "id": media["id"],
            "media_product_type": "THREADS",
            "media_type": media["media_type"],
            "text": media.get("text", ""),
            "timestamp": graph_time(media["ts"]),
            "permalink": f"https://www.threads.net/@{owner['username']}/post/{media['shortcode']}",
            "shortcode": media["shortcode"],
            "username": owner["username"],
            "owner": {"id": owner["id"]},
            "is_quote_post": False,
        }
        if media.get("image_url"):
            values["media_url"] = media["image_url"]
            if media.get("alt_text"):
                values["alt_text"] = media["alt_text"]
        if media.get("reply_to"):
            values.update(
                is_reply=True,
                replied_to={"id": media["reply_to"]},
                root_post={"id": media["root"]},
                is_reply_owned_by_me=media["owner"] == viewer["id"],
                hide_status="HIDDEN" if media.get("hidden") else "NOT_HUSHED",
            )
        else:
            values["is_reply"] = False
        values["has_replies"] = any(
            m.get("reply_to") == media["id"] and not m["deleted"]
            for m in list(self.world["media"].values())
        )
        return values

    # -- publishing ------------------------------------------------------------------------
    def create_container(self, request: Request, profile: dict[str, Any]) -> Response:
        """``POST /{threads-user-id}/threads``: a media container.
        https://developers.facebook.com/docs/threads/posts#step-1--create-a-threads-media-container

        ``media_type`` TEXT (``text`` required) or IMAGE (``image_url`` required, optional
        ``alt_text``); ``reply_to_id`` makes it a reply. Answers ``{"id": container-id}``.
        """
        self.state.count(f"threads:{profile['id']}", "create_requests")
        media_type = (request.arg("media_type") or "").upper()
        text = request.arg("text") or ""
        image_url = request.arg("image_url")
        if media_type not in ("TEXT", "IMAGE"):
            return graph_error("(#100) The parameter media_type is required", 100)
        if media_type == "TEXT" and not text:
            return graph_error("(#100) The parameter text is required for TEXT posts", 100)
        if media_type == "IMAGE" and not image_url:
            return graph_error("(#100) The parameter image_url is required for IMAGE posts", 100)
        if threads_count(text) > MAX_TEXT:
            return graph_error("(#100) Text posts are limited to 500 characters", 100)
        reply_to = request.arg("reply_to_id")
        if reply_to:
            parent = self.world["media"].get(reply_to)
            if parent is None or parent["deleted"]:
                return graph_error("(#100) The parameter reply_to_id is invalid", 100)
        with self.state.lock:
            container = {
                "id": self._new_id(),
                "owner": profile["id"],
                "ts": now_ts(),
                "status": "FINISHED",
                "media_type": media_type,
                "text": text,
                "image_url": image_url,
                "alt_text": request.arg("alt_text"),
                "reply_to": reply_to,
            }
            self.world["containers"][container["id"]] = container
            self.state.save()
        return json_response(200, {"id": container["id"]})

    def _usage(self, profile_id: str, replies: bool) -> int:
        """Posts (or replies) published in the last 24 hours; 0 while the sandbox's
        ``enforce_rate_limits`` setting is off (benches that publish thousands)."""
        if not self.state.data["settings"].get("enforce_rate_limits", True):
            return 0
        since = now_ts() - DAY
        return sum(
            1
            for m in list(self.world["media"].values())
            if m["owner"] == profile_id and m["ts"] >= since and bool(m.get("reply_to")) == replies
        )

    def publish(self, request: Request, profile: dict[str, Any]) -> Response:
        """``POST /{threads-user-id}/threads_publish`` with ``creation_id``.
        https://developers.facebook.com/docs/threads/posts#step-2--publish-a-threads-media-container

        Answers ``{"id": threads-media-id}``. The 24-hour quotas (250 posts, 1,000 replies)
        are enforced here, as the overview says; the error's code is the one Instagram's
        content publishing uses for its limit (the Threads pages do not print one).
        """
        creation_id = request.arg("creation_id") or ""
        with self.state.lock:
            container = self.world["containers"].get(creation_id)
            if container is None or container["owner"] != profile["id"]:
                return graph_error("(#100) The parameter creation_id is invalid", 100)
            if (
                container["status"] == "FINISHED"
                and now_ts() - container["ts"] > CONTAINER_LIFETIME
            ):
                container["status"] = "EXPIRED"
            if container["status"] != "FINISHED":
                return graph_error(
                    f"(#100) The media container is {container['status']} and cannot be published",
                    100,
                    subcode=4279009,
                )
            replies = bool(container.get("reply_to"))
            quota = REPLY_QUOTA if replies else POST_QUOTA
            if self._usage(profile["id"], replies) >= quota:
                return graph_error(
                    "Application request limit reached: the profile reached its publishing "
                    "limit for the last 24 hours",
                    9,
                    subcode=2207042,
                )
            media_id = self._new_id()
            root = None
            if container.get("reply_to"):
                parent = self.world["media"][container["reply_to"]]
                root = parent.get("root") or parent["id"]
            media = {
                "id": media_id,
                "owner": profile["id"],
                "ts": now_ts(),
                "media_type": container["media_type"],
                "text": container["text"],
                "image_url": container.get("image_url"),
                "alt_text": container.get("alt_text"),
                "reply_to": container.get("reply_to"),
                "root": root,
                "shortcode": secrets.token_urlsafe(8).replace("-", "A").replace("_", "B"),
                "hidden": False,
                "deleted": False,
            }
            self.world["media"][media_id] = media
            container["status"] = "PUBLISHED"
            container["media_id"] = media_id
            self.state.count(f"threads:{profile['id']}", "created")
            self.state.save()
        return json_response(200, {"id": media_id})

    def container_status(self, container: dict[str, Any]) -> Response:
        """``GET /{threads-container-id}?fields=status,error_message``: EXPIRED, ERROR,
        FINISHED, IN_PROGRESS or PUBLISHED.
        https://developers.facebook.com/docs/threads/troubleshooting
        """
        status = container["status"]
        if status == "FINISHED" and now_ts() - container["ts"] > CONTAINER_LIFETIME:
            status = "EXPIRED"
        return json_response(200, {"id": container["id"], "status": status})

    def publishing_limit(self, request: Request, profile: dict[str, Any]) -> Response:
        """``GET /{threads-user-id}/threads_publishing_limit``.
        https://developers.facebook.com/docs/threads/overview#rate-limiting
        """
        return json_response(
            200,
            {
                "data": [
                    {
                        "quota_usage": self._usage(profile["id"], False),
                        "config": {"quota_total": POST_QUOTA, "quota_duration": int(DAY)},
                        "reply_quota_usage": self._usage(profile["id"], True),
                        "reply_config": {"quota_total": REPLY_QUOTA, "quota_duration": int(DAY)},
                    }
                ]
            },
        )

    # -- reading ---------------------------------------------------------------------------
    def list_threads(self, request: Request, profile: dict[str, Any]) -> Response:
        """``GET /{threads-user-id}/threads``: the profile's posts (not its replies), newest
        first; ``since``/``until`` (Unix time), ``limit``, ``after``.
        https://developers.facebook.com/docs/threads/threads-media#retrieve-a-list-of-all-a-user-s-threads
        """
        posts = [
            m
            for m in list(self.world["media"].values())
            if m["owner"] == profile["id"] and not m["deleted"] and not m.get("reply_to")
        ]
        since = request.arg("since")
        if since:
            try:
                posts = [m for m in posts if m["ts"] >= float(since)]
            except ValueError:
                return graph_error(f"(#100) Invalid since: {since}", 100)

        def key(m: dict[str, Any]) -> tuple[float, int]:
            return (-m["ts"], -int(m["id"]))

        posts.sort(key=key)
        return paged(request, posts, key, lambda m: self.render(m, profile))

    def replies(
        self, request: Request, media: dict[str, Any], viewer: dict[str, Any], everything: bool
    ) -> Response:
        """``/{media-id}/replies`` (direct replies) or ``/{media-id}/conversation`` (every
        depth, flat); ``reverse`` (default true: newest first).
        https://developers.facebook.com/docs/threads/retrieve-and-manage-replies
        """
        found = [
            m
            for m in list(self.world["media"].values())
            if not m["deleted"]
            and ((m.get("root") == media["id"] and everything) or m.get("reply_to") == media["id"])
        ]
        reverse = (request.arg("reverse") or "true").lower() != "false"

        def key(m: dict[str, Any]) -> tuple[float, int]:
            order = (m["ts"], int(m["id"]))
            return (-order[0], -order[1]) if reverse else order

        found.sort(key=key)
        return paged(request, found, key, lambda m: self.render(m, viewer))

    # -- moderation ------------------------------------------------------------------------
    def manage_reply(
        self, request: Request, media: dict[str, Any], profile: dict[str, Any]
    ) -> Response:
        """``POST /{threads-reply-id}/manage_reply?hide=true|false``: the author of the
        conversation's root post hides or unhides a reply.
        https://developers.facebook.com/docs/threads/retrieve-and-manage-replies#hide-replies
        """
        root = self.world["media"].get(media.get("root") or "")
        if root is None or root["owner"] != profile["id"]:
            return graph_error("(#200) Only the author of the root post can hide its replies", 200)
        value = request.arg("hide")
        if value is None:
            return graph_error("(#100) The parameter hide is required", 100)
        with self.state.lock:
            media["hidden"] = value.lower() in ("true", "1")
            self.state.save()
        return json_response(200, {"success": True})

    def delete(self, media: dict[str, Any], profile: dict[str, Any]) -> Response:
        """``DELETE /{threads-media-id}``: its author deletes a post or reply.
        https://developers.facebook.com/docs/threads/posts/delete-posts
        """
        if media["owner"] != profile["id"]:
            return graph_error("(#200) Only the author can delete this post", 200)
        with self.state.lock:
            media["deleted"] = True
            self.state.save()
        return json_response(200, {"success": True, "deleted_id": media["id"]})
