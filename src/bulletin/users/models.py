"""The tables of people: ``user_accounts`` and the one-time set-password links of
``user_tokens`` (``accounts`` names the platform accounts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text
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
