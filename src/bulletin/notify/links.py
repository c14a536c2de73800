"""Signed one-time links to the approval page: ``{base}/approvals/{notice}?t=TOKEN``.

A token is ``<link id>.<expiry, unix seconds>.<HMAC-SHA256>`` (base64url, no padding) of
``approval:<link id>:<notice id>:<expiry>`` with the server's link key. Each link is a row of
``approval_links``: it is good once (``used_at``) and until ``expires_at``. A link only takes
its holder to the page: signing in is still required and it never approves anything.

The key is ``[notify] link_secret_env`` when set, else a random key kept in ``server_keys``
(made on first use, so every process on one database shares it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from bulletin.config.notify import NotifySettings
from bulletin.config.secrets import resolve_secret
from bulletin.models import _ts

KEY_NAME = "approval-links"


class ServerKey(SQLModel, table=True):
    """A key the server signs with, made once (base64url of 32 random bytes)."""

    __tablename__ = "server_keys"

    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    created_at: datetime = _ts(nullable=False)


class ApprovalLink(SQLModel, table=True):
    """One link sent to one address for one notice."""

    __tablename__ = "approval_links"

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(index=True)
    recipient: str
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)
    used_at: datetime | None = _ts()


class LinkRefused(Exception):
    """A token that is malformed, forged, expired or already used (the reason is a short
    phrase safe to show)."""


def link_key(
    session: Session, settings: NotifySettings, environ: Mapping[str, str], now: datetime
) -> bytes:
    """The key approval links are signed with (see the module's docstring)."""
    if settings.link_secret_env:
        return resolve_secret(settings.link_secret_env, environ, "notify").reveal().encode()
    row = session.get(ServerKey, KEY_NAME)
    if row is None:
        fresh = ServerKey(name=KEY_NAME, value=secrets.token_urlsafe(32), created_at=now)
        try:
            with session.begin_nested():
                session.add(fresh)
        except IntegrityError:  # another process made it first
            pass
        row = session.get(ServerKey, KEY_NAME)
        assert row is not None
    return row.value.encode()


def _mac(key: bytes, link_id: int, notice_id: int, expires: int) -> str:
    message = f"approval:{link_id}:{notice_id}:{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(
    session: Session, key: bytes, notice_id: int, recipient: str, now: datetime, ttl: timedelta
) -> str:
    """A new token for ``recipient`` to open notice ``notice_id``'s approval page."""
    expires = now + ttl
    row = ApprovalLink(notice_id=notice_id, recipient=recipient, created_at=now,
                       expires_at=expires)  # fmt: skip
    session.add(row)
    session.flush()
    assert row.id is not None
    stamp = int(expires.timestamp())
    return f"{row.id}.{stamp}.{_mac(key, row.id, notice_id, stamp)}"


def url(base: str, notice_id: int, token: str) -> str:
    """The link itself."""
    return f"{base.rstrip('/')}/approvals/{notice_id}?t={token}"


def redeem(session: Session, key: bytes, notice_id: int, token: str, now: datetime) -> str:
    """Use ``token`` for notice ``notice_id``: marks it used; returns its recipient.

    :raises LinkRefused: malformed, not for this notice, forged, expired or already used.
    """
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise LinkRefused("this link is not valid")
    link_id, stamp = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_mac(key, link_id, notice_id, stamp), parts[2]):
        raise LinkRefused("this link is not valid")
    row = session.get(ApprovalLink, link_id, with_for_update=True)
    if row is None or row.notice_id != notice_id:
        raise LinkRefused("this link is not valid")
    if now >= row.expires_at or now >= datetime.fromtimestamp(stamp, UTC):
        raise LinkRefused("this link has expired")
    if row.used_at is not None:
        raise LinkRefused("this link was already used")
    row.used_at = now
    session.add(row)
    return row.recipient
