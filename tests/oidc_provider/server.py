"""The test provider: discovery, ``/authorize`` (consents at once for the configured person),
``/token`` (authorization code with PKCE S256 checked, and refresh tokens), ``/jwks`` and
``/userinfo``, written from OpenID Connect Core 1.0, RFC 6749, RFC 7636 and RFC 8414, not from
what Bulletin expects. ID tokens are RS256, signed with joserfc.

A control API under ``/_test/`` sets who signs in (subject, names, groups; groups in the ID
token or only from userinfo), the provider's time (``now``, so it shares the test's clock),
rotates the signing key, and makes the next tokens wrong on purpose (another issuer or
audience, the nonce of an earlier sign-in, a key the JWKS does not publish).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

CODE_LIFETIME = 60
TOKEN_LIFETIME = 300


@dataclass(frozen=True)
class Client:
    """A registered relying party."""

    client_id: str
    client_secret: str  # empty: a public client (PKCE alone)
    redirect_uris: tuple[str, ...]


@dataclass
class Person:
    """Who signs in at ``/authorize`` (consent is given at once)."""

    subject: str = "u-1001"
    preferred_username: str = "maria"
    email: str = "maria@example.org"
    email_verified: bool = True
    name: str = "Maria Lopez"
    groups: list[str] = field(default_factory=lambda: ["bulletin-dispatch"])
    groups_in: str = "id_token"  # or "userinfo"

    def claims(self, in_id_token: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "sub": self.subject,
            "preferred_username": self.preferred_username,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
        }
        if not in_id_token or self.groups_in == "id_token":
            found["groups"] = list(self.groups)
        return found


@dataclass
class Grant:
    """An issued authorization code."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    scope: str
    person: dict[str, Any]  # the ID token's claims about the person
    userinfo: dict[str, Any]  # what /userinfo answers for its access tokens
    expires: int
    used: bool = False


@dataclass
class State:
    """Everything the provider remembers."""

    issuer: str
    clients: dict[str, Client]
    person: Person = field(default_factory=Person)
    keys: list[RSAKey] = field(default_factory=list)
    now: int | None = None  # None: the system clock
    tamper: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    nonces: list[str] = field(default_factory=list)

    def time(self) -> int:
        return self.now if self.now is not None else int(time.time())

    def rotate(self, retire: bool) -> str:
        key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)}, private=True)
        self.keys = [key] if retire else [*self.keys, key]
        return str(key.kid)


def create_app(issuer: str, clients: list[Client]) -> Starlette:
    state = State(issuer, {c.client_id: c for c in clients})
    state.rotate(retire=True)

    async def discovery(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "userinfo_endpoint": f"{issuer}/userinfo",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "groups"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "claims_supported": ["sub", "preferred_username", "email", "name", "groups"],
            }
        )

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [k.as_dict(private=False) for k in state.keys]})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = state.clients.get(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            # never redirect to an unregistered address (RFC 6749 4.1.2.1)
            return PlainTextResponse("unknown client or redirect_uri", status_code=400)
        error = None
        if q.get("response_type") != "code":
            error = "unsupported_response_type"
        elif "openid" not in q.get("scope", "").split():
            error = "invalid_scope"
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            error = "invalid_request"  # this provider requires PKCE with S256
        answer: dict[str, str] = {"state": q.get("state", "")}
        if error:
            answer["error"] = error
        else:
            code = secrets.token_urlsafe(24)
            nonce = q.get("nonce", "")
            state.codes[code] = Grant(
                client.client_id,
                redirect_uri,
                q["code_challenge"],
                nonce,
                q.get("scope", ""),
                state.person.claims(in_id_token=True),
                state.person.claims(in_id_token=False),
                state.time() + CODE_LIFETIME,
            )
            state.nonces.append(nonce)
            answer["code"] = code
        answer["iss"] = issuer  # RFC 9207
        return RedirectResponse(f"{redirect_uri}?{urlencode(answer)}", status_code=302)

    async def token(request: Request) -> Response:
        form = await request.form()
        client = _client(request, {k: str(v) for k, v in form.items()}, state)
        if client is None:
            return _oauth_error("invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = state.codes.get(str(form.get("code", "")))
            if grant is None or grant.used or grant.expires < state.time():
                return _oauth_error("invalid_grant")
            grant.used = True  # a code works once (RFC 6749 4.1.2)
            if grant.client_id != client.client_id or form.get("redirect_uri") != (
                grant.redirect_uri
            ):
                return _oauth_error("invalid_grant")
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or not secrets.compare_digest(challenge, grant.challenge):
                return _oauth_error("invalid_grant")  # RFC 7636 4.6
        elif grant_type == "refresh_token":
            grant_found = state.refresh.pop(str(form.get("refresh_token", "")), None)
            if grant_found is None or grant_found.client_id != client.client_id:
                return _oauth_error("invalid_grant")
            grant = grant_found
        else:
            return _oauth_error("unsupported_grant_type")
        return JSONResponse(_tokens(state, client, grant), headers={"Cache-Control": "no-store"})

    async def userinfo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        found = state.access.get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or found is None:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(found)

    # -- the control API ---------------------------------------------------------------------

    async def set_person(request: Request) -> Response:
        state.person = Person(**await request.json())
        return JSONResponse({"ok": True})

    async def set_clock(request: Request) -> Response:
        state.now = (await request.json()).get("now")
        return JSONResponse({"ok": True})

    async def rotate(request: Request) -> Response:
        kid = state.rotate(retire=bool((await request.json()).get("retire", False)))
        return JSONResponse({"kid": kid})

    async def set_tamper(request: Request) -> Response:
        state.tamper = dict(await request.json())
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo, methods=["GET", "POST"]),
            Route("/_test/person", set_person, methods=["POST"]),
            Route("/_test/clock", set_clock, methods=["POST"]),
            Route("/_test/rotate", rotate, methods=["POST"]),
            Route("/_test/tamper", set_tamper, methods=["POST"]),
        ]
    )


def _client(request: Request, form: dict[str, str], state: State) -> Client | None:
    """The client authenticated by HTTP Basic or by the form (RFC 6749 2.3.1), or a public
    client naming itself."""
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        try:
            pair = base64.b64decode(header[6:]).decode()
        except ValueError:
            return None
        client_id, _, secret = (unquote(p.replace("+", " ")) for p in pair.partition(":"))
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    client = state.clients.get(client_id)
    if client is None:
        return None
    if client.client_secret and not secrets.compare_digest(client.client_secret, secret):
        return None
    return client


def _tokens(state: State, client: Client, grant: Grant) -> dict[str, Any]:
    now = state.time()
    tamper = state.tamper
    nonce = grant.nonce
    if tamper.get("nonce") == "previous" and len(state.nonces) > 1:
        nonce = state.nonces[-2]  # the nonce of the sign-in before this one
    claims = {
        **grant.person,
        "iss": tamper.get("iss", state.issuer),
        "aud": tamper.get("aud", client.client_id),
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "auth_time": now,
        "nonce": nonce,
    }
    key = state.keys[-1]
    if tamper.get("unpublished_key"):
        key = RSAKey.generate_key(2048, parameters={"kid": "not-published"}, private=True)
    id_token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
    access = secrets.token_urlsafe(24)
    state.access[access] = grant.userinfo
    refresh = secrets.token_urlsafe(24)
    state.refresh[refresh] = grant
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "refresh_token": refresh,
        "id_token": id_token,
        "scope": grant.scope,
    }


def _oauth_error(error: str, status: int = 400) -> Response:
    return JSONResponse({"error": error}, status_code=status, headers={"Cache-Control": "no-store"})
