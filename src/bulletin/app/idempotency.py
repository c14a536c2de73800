"""Exactly once from outside: a creating request that carries an ``Idempotency-Key`` creates
its thing once, however often it is retried.

The key is written in the same transaction as what it created (a unique constraint per acting
account and key), so two concurrent requests with one key create one thing, and a retry
after a lost answer finds the key and what it made. The same key with another request is
refused. Keys are kept :data:`KEEP` at least; older ones go when a new key is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from bulletin.app.context import App
from bulletin.errors import Refused, UsageError
from bulletin.users.models import IdempotencyKey

KEEP = timedelta(hours=24)
MAX_KEY = 255


class KeyReused(Refused):
    """The idempotency key came before with another request."""


@dataclass(frozen=True)
class Claim:
    """A request's idempotency key: who sent it, the key, the request's fingerprint and the
    status the first answer gives (what a replay answers with too)."""

    owner: str
    key: str
    fingerprint: str
    status_code: int

    @classmethod
    def of(cls, owner: str, key: str, request: Any, status_code: int) -> Claim:
        """The claim of ``key`` for ``request`` (any JSON value).

        :raises UsageError: an empty key, a longer one than :data:`MAX_KEY` or one with a
            control character.
        """
        if not key or len(key) > MAX_KEY or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
            raise UsageError(f"an idempotency key is 1 to {MAX_KEY} printable characters")
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
        return cls(owner, key, hashlib.sha256(text.encode()).hexdigest(), status_code)


@dataclass(frozen=True)
class Earlier:
    """What the first request with a key made: its notice and the status it answered."""

    notice_id: int | None
    status_code: int


def earlier(app: App, claim: Claim) -> Earlier | None:
    """What the first request with ``claim``'s key made, or None when none has been made.

    :raises KeyReused: the key came before with another request.
    """
    with Session(app.checked_engine()) as session:
        found = session.exec(
            select(IdempotencyKey)
            .where(IdempotencyKey.owner == claim.owner)
            .where(IdempotencyKey.key == claim.key)
        ).first()
    if found is None:
        return None
    if found.request_sha256 != claim.fingerprint:
        raise KeyReused(
            f"idempotency key {claim.key!r} was used before with another request",
            remedy="new-key",
        )
    return Earlier(found.notice_id, found.status_code)


def remember(app: App, claim: Claim, session: Session, notice_id: int | None) -> None:
    """Write ``claim``'s key in ``session``'s transaction (that of what it made), and remove
    keys older than :data:`KEEP`. A concurrent request with the same key fails to commit."""
    now = app.clock.now()
    session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < now - KEEP))
    session.add(
        IdempotencyKey(
            owner=claim.owner,
            key=claim.key,
            request_sha256=claim.fingerprint,
            status_code=claim.status_code,
            notice_id=notice_id,
            created_at=now,
        )
    )
    session.flush()
