"""The tables of people: ``user_accounts``, the one-time set-password links of
``user_tokens`` (``accounts`` names the platform accounts), web sessions, the API tokens of
programs acting for an account and the idempotency keys of their creating requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bulletin.columns import JSONText
from bulletin.models import _ts


class UserAccount(SQLModel, table=True):
    """A person who signs in. ``password_hash`` is an argon2id hash (None until a password is
    set); ``totp_secret`` the base32 secret of an enrolled second factor."""

    __tablename__ = "user_accounts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSONText(), nullable=False))
    os_user: str | None = None
    email: str | None = None  # where notifications reach the person
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    totp_secret: str | None = None
    disabled: bool = False
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class UserToken(SQLModel, table=True):
    """A one-time set-password link: only the sha256 of its token is kept. Usable once
    (``used_at``), until ``expires_at``, unless ``revoked_at``."""

    __tablename__ = "user_tokens"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="user_accounts.id", index=True)
    token_sha256: str = Field(unique=True)
    purpose: str = "set-password"
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)
    used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()

    def usable(self, now: datetime) -> bool:
        """Not used, not revoked and not expired at ``now``."""
        return self.used_at is None and self.revoked_at is None and now < self.expires_at


def roles_of(account: UserAccount) -> list[str]:
    """The account's roles as stored (a JSON list)."""
    value: Any = account.roles
    return [str(r) for r in value or []]


class WebSession(SQLModel, table=True):
    """A signed-in web session. ``id`` is the sha256 (hex) of the random value of its cookie,
    which is kept nowhere; ``csrf_secret`` keys its forms' tokens. Valid until ``revoked_at``,
    ``[web] session_idle`` after ``last_seen_at`` or ``session_lifetime`` after
    ``created_at``."""

    __tablename__ = "web_sessions"

    id: str = Field(primary_key=True)
    account_name: str = Field(index=True)
    created_at: datetime = _ts(nullable=False)
    last_seen_at: datetime = _ts(nullable=False)
    csrf_secret: str
    revoked_at: datetime | None = _ts()


class SignInFailure(SQLModel, table=True):
    """One refused sign-in: the name tried and the address it came from (for throttling)."""

    __tablename__ = "sign_in_failures"

    id: int | None = Field(default=None, primary_key=True)
    account_name: str = Field(index=True)
    address: str = Field(index=True)
    at: datetime = _ts(nullable=False, index=True)


class UserIdentity(SQLModel, table=True):
    """An account's identity at an OpenID Connect provider: the ID token's ``iss`` and
    ``sub``, which together name one person for good (a name or an email address may change
    hands). An account signing in this way has no password."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="user_accounts.id", index=True)
    issuer: str
    subject: str
    created_at: datetime = _ts(nullable=False)
    last_sign_in_at: datetime | None = _ts()


class SsoAttempt(SQLModel, table=True):
    """A single sign-on under way: the browser went to the provider and has not come back
    yet. Known by the sha256 of its ``state``; bound to the browser's pre-session cookie (its
    sha256); carries the nonce and the PKCE verifier the answer must match. Used once."""

    __tablename__ = "sso_attempts"

    id: str = Field(primary_key=True)
    pre_sha256: str
    nonce: str
    code_verifier: str
    next_path: str
    created_at: datetime = _ts(nullable=False, index=True)
    used_at: datetime | None = _ts()


class ApiToken(SQLModel, table=True):
    """A program's credential for the HTTP API: it acts as the account ``account_id`` with
    the intersection of that account's roles and its ``scopes``. Only the sha256 of the token
    is kept (the token is shown once). Usable until ``expires_at`` (None: no expiry), unless
    ``revoked_at``; ``last_used_at`` says when it last authenticated a request."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    account_id: int = Field(foreign_key="user_accounts.id", index=True)
    token_sha256: str = Field(unique=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSONText(), nullable=False))
    created_by: str
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()

    def usable(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class IdempotencyKey(SQLModel, table=True):
    """An ``Idempotency-Key`` a client sent with a creating request: written in the same
    transaction as what it created (``notice_id``), so a retry finds it or finds nothing.
    Unique per ``owner`` (the acting account) and ``key``; ``request_sha256`` fingerprints
    the request it came with; kept at least a day after ``created_at``."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),)

    id: int | None = Field(default=None, primary_key=True)
    owner: str
    key: str
    request_sha256: str
    status_code: int
    notice_id: int | None = None
    created_at: datetime = _ts(nullable=False, index=True)
