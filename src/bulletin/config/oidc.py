"""``[auth.oidc]``: single sign-on to the web console through an OpenID Connect provider.

The client secret is named (``client_secret_env``), never written here: an environment
variable or a systemd credential of that name holds it (:mod:`bulletin.config.secrets`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from bulletin.config.secrets import is_variable_name
from bulletin.config.values import Role, Section

NAME_CLAIMS = ("preferred_username", "email", "sub")


class OidcSettings(Section):
    """One OpenID Connect provider. ``issuer`` is where its discovery document lives
    (``<issuer>/.well-known/openid-configuration``) and what its ID tokens' ``iss`` says."""

    issuer: str
    client_id: str = Field(min_length=1)
    # the variable (or systemd credential) holding the client secret; empty: a public client
    # (PKCE alone), as some providers allow
    client_secret_env: str = ""
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    # the ID token claim listing the person's groups or roles ("groups", "roles", ...)
    role_claim: str = "groups"
    # a value of role_claim -> the Bulletin roles it gives; nobody signs in without one
    role_map: dict[str, list[Role]] = Field(min_length=1)
    # when set, only people whose verified email address is at this domain sign in
    allowed_domain: str = ""
    # the claim that names a new account (then email, then sub when it is missing)
    name_claim: str = "preferred_username"
    # the sign-in button says "Sign in with <label>"
    label: str = Field(default="single sign-on", min_length=1, max_length=60)

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}  # a test provider
        secure = parts.scheme == "https" or (parts.scheme == "http" and loopback)
        if not parts.hostname or not secure:
            raise ValueError("give the provider's https:// issuer URL")
        return value.rstrip("/")

    @field_validator("client_secret_env")
    @classmethod
    def _variable(cls, value: str) -> str:
        if value and not is_variable_name(value):
            raise ValueError(
                "name the environment variable (or systemd credential) that holds the "
                "secret, not the secret itself"
            )
        return value

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError('the scopes must include "openid"')
        return value

    @field_validator("role_map")
    @classmethod
    def _some_role(cls, value: dict[str, list[Role]]) -> dict[str, list[Role]]:
        for claim, roles in value.items():
            if not roles:
                raise ValueError(f"{claim!r} maps to no role; give at least one")
        return value

    @field_validator("allowed_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("@")
        if value and ("." not in value or "@" in value or "/" in value):
            raise ValueError("give a domain name such as example.org")
        return value

    @field_validator("role_claim", "name_claim")
    @classmethod
    def _claim(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name a claim")
        return value.strip()
