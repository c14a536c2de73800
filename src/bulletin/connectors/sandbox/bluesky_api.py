"""The subset of the AT Protocol XRPC API (with Bluesky's app view) the sandbox speaks,
written from the published lexicons (https://docs.bsky.app/docs/api/, the lexicon files of
bluesky-social/atproto).

A session is made with ``com.atproto.server.createSession``; its access token is a JWT
(HS256, signed with a sandbox key) carrying the account's DID in ``sub`` and an ``exp``, as
clients decode it to know when to refresh. The agency's account is
:data:`DEFAULT_BLUESKY_ACCOUNT`; any identifier ``NAME.visitor.test`` with the password
``visitor`` is a visitor, made on first use, who replies, rewrites (``putRecord``) and deletes
through the same API. Errors are XRPC's ``{"error": NAME, "message": ...}``; answers carry the
PDS's ``ratelimit-*`` headers.

A repeated ``rkey``: the ``com.atproto.repo.createRecord`` lexicon names no error for a record
that already exists (only ``InvalidSwap``), and the reference PDS answers it with
``500 InternalServerError`` (bluesky-social/atproto issue 3718, indigo issue 873; an explicit
error is proposed in atproto pull request 4728). The sandbox answers as the PDS does.

Hidden replies: the thread's author writes an ``app.bsky.feed.threadgate`` record at the root
post's record key (``putRecord``, which honours ``swapRecord`` with ``InvalidSwap``);
``hiddenReplies`` holds at most 300 at:// URIs (the lexicon of the pinned SDK; 50 in older
lexicons). As the app view's ``app.bsky.feed.getPostThread`` does, a hidden reply stays in
``replies`` and the root post's ``postView`` carries the gate as ``threadgate``
(``app.bsky.feed.defs#threadgateView``: ``uri``, ``cid``, ``record``, ``lists``); a gate whose
``post`` is not the post at its own key is ignored, as the lexicon requires they match.

The sandbox's Bluesky lives in the state's ``"bluesky"`` member, made on first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bulletin.connectors.sandbox.faults import Fault
from bulletin.connectors.sandbox.http_types import (
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
)
from bulletin.connectors.sandbox.state import DEFAULT_BLUESKY_ACCOUNT, SandboxState, now_ts
from bulletin.timeparse import iso_utc

POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
MAX_HIDDEN = 300
VISITOR_DOMAIN = ".visitor.test"
VISITOR_PASSWORD = "visitor"  # noqa: S105 - every sandbox visitor's, public on purpose
JWT_KEY = b"bulletin-sandbox-jwt-key"  # public on purpose: the sandbox holds nothing of value
WINDOW = 5 * 60
LIMIT = 3000  # requests per five minutes (docs.bsky.app/docs/advanced-guides/rate-limits)
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def xrpc_error(
    status: int, name: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """XRPC's error body. https://atproto.com/specs/xrpc#error-responses"""
    return json_response(status, {"error": name, "message": message}, headers)


def cid_of(data: bytes, codec: int = 0x71) -> str:
    """A CIDv1 (sha2-256) in base32: dag-cbor (0x71) for records, raw (0x55) for blobs."""
    digest = hashlib.sha256(data).digest()
    raw = bytes([0x01, codec, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_jwt(did: str, scope: str, seconds: int) -> str:
    """An HS256 JWT for ``did`` valid ``seconds`` from now."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode())
    payload = _b64(
        json.dumps(
            {
                "scope": scope,
                "sub": did,
                "aud": "did:web:sandbox.bsky.test",
                "iat": now,
                "exp": now + seconds,
            }
        ).encode()
    )
    signature = hmac.new(JWT_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def read_jwt(token: str) -> dict[str, Any] | None:
    """The payload of a sandbox JWT whose signature holds and which has not expired."""
    try:
        header, payload, signature = token.split(".")
        good = hmac.new(JWT_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(good), signature):
            return None
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (ValueError, TypeError):
        return None
    return claims if int(claims.get("exp", 0)) > time.time() else None


def fresh_world() -> dict[str, Any]:
    """A new sandbox Bluesky: the agency's account, nothing posted."""
    return {
        "seq": 1,
        "accounts": {DEFAULT_BLUESKY_ACCOUNT["did"]: dict(DEFAULT_BLUESKY_ACCOUNT)},
        "records": {},
        "blobs": {},
    }


class BlueskyApi:
    """Handlers for ``/xrpc/...``; one instance per sandbox server."""

    TEXT_FIELD = "text"

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self.routes: dict[tuple[str, str], Callable[..., Response]] = {
            ("POST", "com.atproto.server.createSession"): self.create_session,
            ("POST", "com.atproto.server.refreshSession"): self.refresh_session,
            ("POST", "com.atproto.repo.createRecord"): self.create_record,
            ("POST", "com.atproto.repo.putRecord"): self.put_record,
            ("POST", "com.atproto.repo.deleteRecord"): self.delete_record,
            ("GET", "com.atproto.repo.getRecord"): self.get_record,
            ("POST", "com.atproto.repo.uploadBlob"): self.upload_blob,
            ("GET", "app.bsky.feed.getPostThread"): self.get_post_thread,
            ("GET", "app.bsky.feed.getAuthorFeed"): self.get_author_feed,
        }

    # -- plumbing --------------------------------------------------------------------------
    @property
    def world(self) -> dict[str, Any]:
        with self.state.lock:
            world: dict[str, Any] = self.state.data.setdefault("bluesky", fresh_world())
            return world

    def _account(self, identifier: str) -> dict[str, Any] | None:
        for account in self.world["accounts"].values():
            if identifier in (account["did"], account["handle"]):
                return account  # type: ignore[no-any-return]
        return None

    def _limit_headers(self, key: str) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now - start >= WINDOW:
                start, used = now, 0
            exhausted = used >= LIMIT and bool(self.state.data["settings"]["enforce_rate_limits"])
            if not exhausted:
                used += 1
            self._windows[key] = (start, used)
        return {
            "ratelimit-limit": str(LIMIT),
            "ratelimit-remaining": str(max(LIMIT - used, 0)),
            "ratelimit-reset": str(int(start + WINDOW)),
            "ratelimit-policy": f"{LIMIT};w={WINDOW}",
        }, exhausted

    def handle(self, request: Request) -> Response:
        """Route one XRPC call; an unknown method is XRPC's ``MethodNotImplemented``."""
        nsid = request.path.removeprefix("/xrpc/")
        handler = self.routes.get((request.method, nsid))
        if handler is None:
            return xrpc_error(501, "MethodNotImplemented", f"Method Not Implemented: {nsid}")
        if nsid == "com.atproto.server.createSession":
            return handler(request)
        scope = "com.atproto.refresh" if nsid.endswith("refreshSession") else "com.atproto.appPass"
        header = request.headers.get("authorization", "")
        claims = (
            read_jwt(header.removeprefix("Bearer ").strip())
            if header.startswith("Bearer ")
            else None
        )
        if claims is None:
            return (
                xrpc_error(400, "ExpiredToken", "Token has expired")
                if header
                else xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            )
        if claims.get("scope") != scope:
            return xrpc_error(400, "InvalidToken", "Bad token scope")
        account = self._account(str(claims.get("sub")))
        if account is None:
            return xrpc_error(400, "InvalidToken", "Token could not be verified")
        headers, exhausted = self._limit_headers(account["did"])
        if exhausted:
            response = xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded")
        else:
            response = handler(request, account)
        response.headers.update(headers)
        return response

    def fault_response(self, fault: Fault, request: Request) -> Response:
        """What the PDS answers for an injected fault, before doing any work. There is no
        duplicate-content refusal: ``duplicate`` and ``invalid_parameter`` are its 400."""
        if fault.kind == "rate_limit":
            return xrpc_error(
                429,
                "RateLimitExceeded",
                "Rate Limit Exceeded",
                {
                    "ratelimit-limit": str(LIMIT),
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": str(int(time.time() + fault.seconds)),
                    "ratelimit-policy": f"{LIMIT};w={WINDOW}",
                },
            )
        if fault.kind in ("duplicate", "invalid_parameter"):
            return xrpc_error(400, "InvalidRequest", "Input/record must be an object")
        if fault.kind == "expired_token":
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        names = {502: "UpstreamFailure", 503: "NotEnoughResources"}
        return xrpc_error(
            fault.status, names.get(fault.status, "InternalServerError"), "Internal Server Error"
        )

    def malform(self, response: Response) -> Response:
        """``response`` with the text of its first listed post an object (an author feed's
        first item, or a thread's first reply)."""
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        post = None
        if isinstance(body, dict) and isinstance(body.get("feed"), list) and body["feed"]:
            post = body["feed"][0].get("post")
        elif isinstance(body, dict) and isinstance(body.get("thread"), dict):
            replies = body["thread"].get("replies") or []
            post = replies[0].get("post") if replies else body["thread"].get("post")
        if not isinstance(post, dict):
            return response
        post["record"]["text"] = {"unexpected": "an object where the text belongs"}
        return json_response(response.status, body, response.headers)

    def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = request.json()
        except ValueError:
            return xrpc_error(400, "InvalidRequest", "Request body is not JSON")
        if not isinstance(body, dict):
            return xrpc_error(400, "InvalidRequest", "Input must be an object")
        return body

    def _session(self, account: dict[str, Any]) -> dict[str, Any]:
        return {
            "accessJwt": make_jwt(account["did"], "com.atproto.appPass", 2 * 3600),
            "refreshJwt": make_jwt(account["did"], "com.atproto.refresh", 60 * 24 * 3600),
            "handle": account["handle"],
            "did": account["did"],
            "active": True,
        }

    def _uri(self, repo: str, collection: str, rkey: str) -> str:
        return f"at://{repo}/{collection}/{rkey}"

    def _live(self, uri: str) -> dict[str, Any] | None:
        record = self.world["records"].get(uri)
        return None if record is None or record["deleted"] else record

    def _tid(self) -> str:
        """A new TID: microseconds since the epoch and a clock id, base32-sortable."""
        n = (int(time.time() * 1_000_000) << 10) | (self.world["seq"] & 0x3FF)
        alphabet = "234567abcdefghijklmnopqrstuvwxyz"
        return "".join(alphabet[(n >> (5 * i)) & 31] for i in reversed(range(13)))

    # -- com.atproto.server ----------------------------------------------------------------
    def create_session(self, request: Request) -> Response:
        """Log in. https://docs.bsky.app/docs/api/com-atproto-server-create-session

        ``identifier`` (handle or DID) and ``password`` (an app password); 401
        ``AuthenticationRequired`` "Invalid identifier or password" otherwise."""
        body = self._body(request)
        if isinstance(body, Response):
            return body
        identifier, password = str(body.get("identifier", "")), str(body.get("password", ""))
        with self.state.lock:
            account = self._account(identifier)
            visitor = identifier.endswith(VISITOR_DOMAIN) and password == VISITOR_PASSWORD
            if account is None and visitor:
                name = identifier.removesuffix(VISITOR_DOMAIN)
                did = "did:plc:" + hashlib.sha256(name.encode()).hexdigest()[:24]
                account = {
                    "did": did,
                    "handle": identifier,
                    "displayName": name,
                    "password": VISITOR_PASSWORD,
                }
                self.world["accounts"][did] = account
                self.state.save()
            if account is None or not hmac.compare_digest(account["password"], password):
                return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
            return json_response(200, self._session(account))

    def refresh_session(self, request: Request, account: dict[str, Any]) -> Response:
        """A new session. https://docs.bsky.app/docs/api/com-atproto-server-refresh-session"""
        return json_response(200, self._session(account))

    # -- com.atproto.repo ------------------------------------------------------------------
    def create_record(self, request: Request, account: dict[str, Any]) -> Response:
        """Create a record. https://docs.bsky.app/docs/api/com-atproto-repo-create-record

        ``repo``, ``collection``, ``record`` and an optional ``rkey``; a post's key must be a
        TID (its lexicon's ``"key": "tid"``). Answers ``uri`` and ``cid``. An ``rkey`` already
        used answers 500 InternalServerError, as the reference PDS does (see the module)."""
        body = self._body(request)
        if isinstance(body, Response):
            return body
        collection, record = str(body.get("collection", "")), body.get("record")
        counter = f"bluesky:{account['did']}"
        if collection == POST:
            self.state.count(counter, "create_requests")
        if body.get("repo") not in (account["did"], account["handle"]):
            return xrpc_error(401, "AuthRequired", "Input/repo must be the authenticated account")
        problem = self._invalid_record(collection, record)
        if problem or not isinstance(record, dict):
            return xrpc_error(400, "InvalidRequest", problem or "Input/record must be an object")
        rkey = body.get("rkey")
        if rkey is not None and (
            not _RKEY.match(str(rkey)) or (collection == POST and not _TID.match(str(rkey)))
        ):
            return xrpc_error(400, "InvalidRequest", f"Invalid record key for {collection}: {rkey}")
        with self.state.lock:
            rkey = str(rkey) if rkey is not None else self._tid()
            uri = self._uri(account["did"], collection, rkey)
            if uri in self.world["records"]:
                return xrpc_error(500, "InternalServerError", "Internal Server Error")
            written = self._write(uri, account, collection, rkey, record)
            if collection == POST:
                self.state.count(counter, "created")
            self.state.save()
        return json_response(
            200,
            {
                "uri": uri,
                "cid": written["cid"],
                "commit": {"cid": cid_of(uri.encode()), "rev": self._tid()},
                "validationStatus": "valid",
            },
        )

    def _invalid_record(self, collection: str, record: Any) -> str | None:
        """Why ``record`` fails its lexicon (app.bsky.feed.post: text of at most 300
        graphemes and 3,000 bytes, ``createdAt``), or None."""
        if not isinstance(record, dict):
            return "Input/record must be an object"
        if record.get("$type") != collection:
            return f"Invalid $type: must be {collection}"
        if collection == POST:
            import regex

            text = record.get("text")
            if not isinstance(text, str):
                return "Record/text must be a string"
            if len(regex.findall(r"\X", text)) > 300 or len(text.encode()) > 3000:
                return "Record/text must not be longer than 300 graphemes"
            if not isinstance(record.get("createdAt"), str):
                return 'Record must have the property "createdAt"'
        if collection == THREADGATE:
            if not str(record.get("post", "")).startswith("at://"):
                return 'Record must have the property "post"'
            if not isinstance(record.get("createdAt"), str):
                return 'Record must have the property "createdAt"'
            hidden = record.get("hiddenReplies", [])
            if not isinstance(hidden, list) or not all(
                isinstance(u, str) and u.startswith("at://") for u in hidden
            ):
                return "Record/hiddenReplies must be an array of at-uris"
            if len(hidden) > MAX_HIDDEN:
                return f"Record/hiddenReplies must not have more than {MAX_HIDDEN} elements"
        return None

    def _write(
        self, uri: str, account: dict[str, Any], collection: str, rkey: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        seq = int(self.world["seq"])
        self.world["seq"] = seq + 1
        stored = {
            "uri": uri,
            "cid": cid_of(json.dumps(record, sort_keys=True).encode() + str(seq).encode()),
            "repo": account["did"],
            "collection": collection,
            "rkey": rkey,
            "value": record,
            "indexed": now_ts(),
            "seq": seq,
            "deleted": False,
        }
        self.world["records"][uri] = stored
        return stored

    def put_record(self, request: Request, account: dict[str, Any]) -> Response:
        """Write a record at a key, replacing what is there.
        https://docs.bsky.app/docs/api/com-atproto-repo-put-record"""
        body = self._body(request)
        if isinstance(body, Response):
            return body
        collection, record, rkey = (
            str(body.get("collection", "")),
            body.get("record"),
            str(body.get("rkey", "")),
        )
        if body.get("repo") not in (account["did"], account["handle"]):
            return xrpc_error(401, "AuthRequired", "Input/repo must be the authenticated account")
        problem = self._invalid_record(collection, record)
        if problem or not isinstance(record, dict) or not _RKEY.match(rkey):
            return xrpc_error(400, "InvalidRequest", problem or "Invalid record key")
        with self.state.lock:
            uri = self._uri(account["did"], collection, rkey)
            old = self._live(uri)
            swap = body.get("swapRecord")
            if swap is not None and (old is None or old["cid"] != swap):
                return xrpc_error(400, "InvalidSwap", "Record was at a different cid")
            written = self._write(uri, account, collection, rkey, record)
            if old is not None:
                written["indexed"], written["seq"] = old["indexed"], old["seq"]
            self.state.save()
        return json_response(200, {"uri": uri, "cid": written["cid"]})

    def delete_record(self, request: Request, account: dict[str, Any]) -> Response:
        """Delete a record; deleting one that is not there succeeds (the post-condition holds).
        https://docs.bsky.app/docs/api/com-atproto-repo-delete-record"""
        body = self._body(request)
        if isinstance(body, Response):
            return body
        if body.get("repo") not in (account["did"], account["handle"]):
            return xrpc_error(401, "AuthRequired", "Input/repo must be the authenticated account")
        with self.state.lock:
            uri = self._uri(account["did"], str(body.get("collection")), str(body.get("rkey")))
            record = self._live(uri)
            if record is not None:
                record["deleted"] = True
                self.state.save()
        return json_response(200, {"commit": {"cid": cid_of(uri.encode()), "rev": self._tid()}})

    def get_record(self, request: Request, account: dict[str, Any]) -> Response:
        """One record by repo, collection and key.
        https://docs.bsky.app/docs/api/com-atproto-repo-get-record

        400 ``RecordNotFound`` when there is none."""
        repo = request.arg("repo") or ""
        owner = self._account(repo)
        did = owner["did"] if owner else repo
        uri = self._uri(did, request.arg("collection") or "", request.arg("rkey") or "")
        with self.state.lock:
            record = self._live(uri)
            if record is None:
                return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
            return json_response(200, {"uri": uri, "cid": record["cid"], "value": record["value"]})

    def upload_blob(self, request: Request, account: dict[str, Any]) -> Response:
        """Upload an image; its blob reference, to put in a record.
        https://docs.bsky.app/docs/api/com-atproto-repo-upload-blob"""
        if not request.body:
            return xrpc_error(400, "InvalidRequest", "Request has no body")
        mime = request.headers.get("content-type", "application/octet-stream")
        cid = cid_of(request.body, 0x55)
        with self.state.lock:
            self.world["blobs"][cid] = {
                "mimeType": mime,
                "size": len(request.body),
                "owner": account["did"],
            }
            self.state.save()
        return json_response(
            200,
            {
                "blob": {
                    "$type": "blob",
                    "ref": {"$link": cid},
                    "mimeType": mime,
                    "size": len(request.body),
                }
            },
        )

    # -- app.bsky.feed ---------------------------------------------------------------------
    def post_view(self, record: dict[str, Any], host: str) -> dict[str, Any]:
        """A post as the app view shows it. https://docs.bsky.app/docs/api/app-bsky-feed-get-post-thread
        (``app.bsky.feed.defs#postView``)"""
        author = self.world["accounts"][record["repo"]]
        value = record["value"]
        view: dict[str, Any] = {
            "uri": record["uri"],
            "cid": record["cid"],
            "author": {
                "did": author["did"],
                "handle": author["handle"],
                "displayName": author.get("displayName", ""),
            },
            "record": value,
            "replyCount": len(self._children(record["uri"])),
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": iso_utc(datetime.fromtimestamp(record["indexed"], UTC), "milliseconds"),
            "labels": [],
        }
        gate = self._threadgate(record)
        if gate is not None:
            view["threadgate"] = {
                "uri": gate["uri"],
                "cid": gate["cid"],
                "record": gate["value"],
                "lists": [],
            }
        embed = value.get("embed") if isinstance(value, dict) else None
        if isinstance(embed, dict) and embed.get("$type") == "app.bsky.embed.images":
            images = []
            for image in embed.get("images") or []:
                cid = ((image.get("image") or {}).get("ref") or {}).get("$link", "")
                url = f"http://{host}/_sandbox/media/bsky-{cid[-16:]}.png"
                images.append({"thumb": url, "fullsize": url, "alt": image.get("alt", "")})
            view["embed"] = {"$type": "app.bsky.embed.images#view", "images": images}
        return view

    def _threadgate(self, post: dict[str, Any]) -> dict[str, Any] | None:
        """The live threadgate of a root post (same repository, same key, naming the post)."""
        if post["collection"] != POST or post["value"].get("reply"):
            return None
        gate = self._live(self._uri(post["repo"], THREADGATE, post["rkey"]))
        return gate if gate is not None and gate["value"].get("post") == post["uri"] else None

    def _children(self, uri: str) -> list[dict[str, Any]]:
        return sorted(
            (
                r
                for r in self.world["records"].values()
                if not r["deleted"]
                and r["collection"] == POST
                and ((r["value"].get("reply") or {}).get("parent") or {}).get("uri") == uri
            ),
            key=lambda r: int(r["seq"]),
        )

    def get_post_thread(self, request: Request, account: dict[str, Any]) -> Response:
        """A post and its replies. https://docs.bsky.app/docs/api/app-bsky-feed-get-post-thread

        ``uri``, ``depth`` (default 6, at most 1000); 400 ``NotFound`` for a post that is not
        there."""
        uri = request.arg("uri") or ""
        try:
            depth = min(max(int(request.arg("depth") or 6), 0), 1000)
        except ValueError:
            return xrpc_error(400, "InvalidRequest", "depth must be an integer")
        with self.state.lock:
            root = self._live(uri)
            if root is None:
                return xrpc_error(400, "NotFound", f"Post not found: {uri}")

            def thread(record: dict[str, Any], left: int) -> dict[str, Any]:
                node: dict[str, Any] = {
                    "$type": "app.bsky.feed.defs#threadViewPost",
                    "post": self.post_view(record, request.host),
                }
                if left > 0:
                    node["replies"] = [thread(c, left - 1) for c in self._children(record["uri"])]
                return node

            return json_response(200, {"thread": thread(root, depth)})

    def get_author_feed(self, request: Request, account: dict[str, Any]) -> Response:
        """An account's posts (and its replies), newest first.
        https://docs.bsky.app/docs/api/app-bsky-feed-get-author-feed

        ``actor``, ``limit`` (1-100, default 50), ``cursor``, ``filter``
        (``posts_with_replies`` by default, ``posts_no_replies``)."""
        actor = self._account(request.arg("actor") or "")
        if actor is None:
            return xrpc_error(400, "InvalidRequest", "Profile not found")
        try:
            limit = int(request.arg("limit") or 50)
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            return xrpc_error(400, "InvalidRequest", "limit must be between 1 and 100")
        with self.state.lock:
            posts = sorted(
                (
                    r
                    for r in self.world["records"].values()
                    if r["repo"] == actor["did"] and r["collection"] == POST and not r["deleted"]
                ),
                key=lambda r: int(r["seq"]),
                reverse=True,
            )
            if request.arg("filter") == "posts_no_replies":
                posts = [p for p in posts if not p["value"].get("reply")]
            cursor = request.arg("cursor")
            if cursor:
                try:
                    before = int(decode_cursor(cursor))
                except ValueError:
                    return xrpc_error(400, "InvalidRequest", "Malformed cursor")
                posts = [p for p in posts if int(p["seq"]) < before]
            page = posts[:limit]
            body: dict[str, Any] = {
                "feed": [{"post": self.post_view(p, request.host)} for p in page]
            }
        if len(posts) > limit:
            body["cursor"] = encode_cursor(page[-1]["seq"])
        return json_response(200, body)
