"""The relying party of OpenID Connect (authorization code flow with PKCE, S256).

:class:`Provider` reads the provider's discovery document, builds the authorization URL,
exchanges a code for tokens and verifies the ID token: its signature against the provider's
JWKS (an unknown ``kid`` fetches the JWKS again, once: the provider rotated its keys), and
its ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``sub`` and ``nonce``. Discovery
documents and key sets are kept per issuer for the life of the process.

Every failure is a :class:`~bulletin.errors.Refused` with a one-line message; the client
secret and the tokens never appear in one.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bulletin.config.oidc import OidcSettings
from bulletin.config.secrets import Secret
from bulletin.errors import Refused

TIMEOUT = 10.0  # seconds for each request to the provider
DISCOVERY_TTL = 3600.0  # seconds a discovery document is trusted before it is read again
LEEWAY = 60  # seconds of clock skew allowed on exp and iat
# asymmetric algorithms only: "none" and the HMAC family are never accepted
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
UNREACHABLE = "the sign-on provider cannot be reached; try again later"


@dataclass(frozen=True)
class Discovery:
    """What the provider's ``/.well-known/openid-configuration`` says."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    algorithms: tuple[str, ...]
    token_auth: str  # client_secret_basic, client_secret_post or none

    @classmethod
    def of(cls, document: dict[str, Any], issuer: str, public: bool) -> Discovery:
        """:raises Refused: the document is not the issuer's, or lacks an endpoint."""
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise Refused("the sign-on provider's discovery document names another issuer")
        try:
            authorization, token, jwks = (
                str(document[k]) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            )
        except KeyError as e:
            raise Refused(f"the sign-on provider's discovery document has no {e.args[0]}") from e
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        preferred = ("client_secret_basic", "client_secret_post")
        auth = next((m for m in preferred if m in methods), "client_secret_basic")
        return cls(
            issuer=issuer,
            authorization_endpoint=authorization,
            token_endpoint=token,
            jwks_uri=jwks,
            userinfo_endpoint=str(document.get("userinfo_endpoint", "")),
            algorithms=tuple(a for a in offered if a in ALGORITHMS) or ("RS256",),
            token_auth="none" if public else auth,
        )


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint answered: the raw ID token and the access token."""

    id_token: str
    access_token: str


class _Cache:
    """Discovery documents and key sets, per issuer, shared by every request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.discovery: dict[str, tuple[float, Discovery]] = {}
        self.keys: dict[str, KeySet] = {}


_CACHE = _Cache()


class Provider:
    """One configured provider, seen from Bulletin (the client ``[auth.oidc] client_id``).

    :param settings: ``[auth.oidc]``.
    :param secret: the client secret, or None for a public client.
    :param redirect_uri: where the provider sends the browser back to.
    """

    def __init__(self, settings: OidcSettings, secret: Secret | None, redirect_uri: str) -> None:
        self.settings = settings
        self.secret = secret
        self.redirect_uri = redirect_uri
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    # -- discovery and keys ----------------------------------------------------------------

    def discovery(self) -> Discovery:
        """The provider's discovery document (read at most once an hour).

        :raises Refused: unreachable, or not the configured issuer's.
        """
        issuer = self.settings.issuer
        with _CACHE.lock:
            found = _CACHE.discovery.get(issuer)
        if found is not None and time.monotonic() - found[0] < DISCOVERY_TTL:
            return found[1]
        document = self._get_json(f"{issuer}/.well-known/openid-configuration")
        read = Discovery.of(document, issuer, self.secret is None)
        with _CACHE.lock:
            _CACHE.discovery[issuer] = (time.monotonic(), read)
        return read

    def key_set(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys (fetched again when ``refresh``).

        :raises Refused: unreachable, or not a key set.
        """
        issuer = self.settings.issuer
        with _CACHE.lock:
            keys = None if refresh else _CACHE.keys.get(issuer)
        if keys is not None:
            return keys
        document = self._get_json(self.discovery().jwks_uri)
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, KeyError, TypeError, ValueError) as e:
            raise Refused("the sign-on provider's key set cannot be read") from e
        with _CACHE.lock:
            _CACHE.keys[issuer] = keys
        return keys

    # -- the flow ----------------------------------------------------------------------------

    def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser: the provider's authorization endpoint with this client,
        the scopes, ``state``, ``nonce`` and the S256 challenge of ``code_verifier``."""
        with self._oauth() as client:
            url, _ = client.create_authorization_url(
                self.discovery().authorization_endpoint,
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
            )
        return str(url)

    def exchange(self, code: str, code_verifier: str) -> Tokens:
        """Trade the authorization ``code`` (and the PKCE verifier) for tokens.

        :raises Refused: the provider refused (a used or foreign code, a wrong verifier) or
            answered without an ID token.
        """
        endpoint = self.discovery().token_endpoint
        try:
            with self._oauth() as client:
                token = client.fetch_token(
                    endpoint, code=code, code_verifier=code_verifier, timeout=TIMEOUT
                )
        except AuthlibBaseError as e:
            said = re.sub(r"[^a-z_]", "", str(e.error))[:40] or "no reason given"
            raise Refused(f"the sign-on provider refused the sign-in ({said})") from None
        except (requests.RequestException, ValueError):
            raise Refused(UNREACHABLE) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise Refused("the sign-on provider sent no ID token")
        return Tokens(id_token, str(token.get("access_token", "")))

    def verify(self, id_token: str, nonce: str, now: datetime) -> dict[str, Any]:
        """The claims of ``id_token`` once its signature (a key of the provider's JWKS, fetched
        again once for an unknown ``kid``), issuer, audience, expiry and ``nonce`` are right.

        :raises Refused: any of them is wrong (the message says which).
        """
        found = self.discovery()
        try:
            header = jws.extract_compact(id_token.encode("ascii")).headers()
        except (JoseError, UnicodeEncodeError, ValueError) as e:
            raise Refused("the ID token cannot be read") from e
        alg = header.get("alg")
        if alg not in found.algorithms:
            raise Refused(f"the ID token is signed with an algorithm not allowed ({alg})")
        kid = header.get("kid")
        keys = self.key_set()
        if not _has_key(keys, kid):
            keys = self.key_set(refresh=True)  # the provider rotated its keys
            if not _has_key(keys, kid):
                raise Refused("the ID token is signed with a key the provider does not publish")
        try:
            token = jwt.decode(id_token, keys, algorithms=list(found.algorithms))
        except JoseError as e:
            raise Refused("the ID token's signature does not match") from e
        claims = token.claims
        self._check_claims(claims, nonce, now)
        return claims

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """The provider's userinfo answer for ``access_token`` ({} when it has no endpoint).

        :raises Refused: unreachable or refused.
        """
        endpoint = self.discovery().userinfo_endpoint
        if not endpoint or not access_token:
            return {}
        return self._get_json(endpoint, {"Authorization": f"Bearer {access_token}"})

    # -- helpers -----------------------------------------------------------------------------

    def _check_claims(self, claims: dict[str, Any], nonce: str, now: datetime) -> None:
        client_id = self.settings.client_id
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.issuer},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as e:
            claim = getattr(e, "claim", "") or "a claim"
            raise Refused(f"the ID token's {claim} is not right for this sign-in") from e
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or client_id not in audiences:
            raise Refused("the ID token's aud is not right for this sign-in")
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise Refused("the ID token's azp is not right for this sign-in")
        if int(claims["iat"]) > now.timestamp() + LEEWAY:
            raise Refused("the ID token's iat is not right for this sign-in")

    def _oauth(self) -> OAuth2Session:
        return OAuth2Session(
            client_id=self.settings.client_id,
            client_secret=self.secret.reveal() if self.secret is not None else None,
            token_endpoint_auth_method=self.discovery().token_auth,
            scope=" ".join(self.settings.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
        )

    def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            answer = self.http.get(url, timeout=TIMEOUT, headers=headers)
        except requests.RequestException:
            raise Refused(UNREACHABLE) from None
        if answer.status_code != 200:
            raise Refused(f"the sign-on provider answered HTTP {answer.status_code}")
        try:
            document = answer.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise Refused("the sign-on provider answered something other than JSON")
        return document


def _has_key(keys: KeySet, kid: object) -> bool:
    if kid is None:
        return len(keys.keys) == 1
    return any(k.kid == kid for k in keys.keys)
