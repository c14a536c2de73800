"""Passwords (argon2id), one-time link tokens (only their sha256 is stored) and TOTP second
factors (RFC 6238). Nothing here logs or returns a password."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from bulletin.errors import UsageError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_PASSWORD_LENGTH = 12


@functools.cache
def _hasher() -> PasswordHasher:
    """The argon2id hasher (argon2 is imported by the commands that hash or verify only)."""
    from argon2 import PasswordHasher, Type

    return PasswordHasher(type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when an account has no password, so an unknown name takes as long."""
    return _hasher().hash(secrets.token_urlsafe(16))


def check_policy(password: str) -> None:
    """:raises UsageError: the password is shorter than :data:`MIN_PASSWORD_LENGTH`."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (``$argon2id$v=19$...``)."""
    return _hasher().hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the hash ``stored`` (False when there is none; the time
    taken is about the same either way)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str]:
    """A fresh link token and its sha256 (hex), the only form stored."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def totp_uri(secret: str, name: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads (shown once)."""
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def totp_matches(secret: str, code: str, at: datetime) -> bool:
    """Whether ``code`` is the TOTP of ``secret`` at ``at`` (one step either side allowed)."""
    code = code.strip()
    if not code.isdigit():
        return False
    import pyotp

    return pyotp.TOTP(secret).verify(code, for_time=at, valid_window=1)
