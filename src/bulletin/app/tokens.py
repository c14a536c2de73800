"""API tokens: a program (a CAD system, a script) acts through the HTTP API as one account,
with the intersection of that account's roles and the token's scopes.

A token is shown once, when created, and only its sha256 is kept. It is refused (401) once
revoked, expired (by the app's clock) or when its account is disabled or gone. Creating one
for another account and revoking another account's token are an admin's actions; everything
is audited. The scope check of every API operation is :func:`require_scope`, here, once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.audit import record_event
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.identity import check_name, require_role
from bulletin.users.directory import find, seed_from_config
from bulletin.users.models import ApiToken, UserAccount

PREFIX = "bltn_"  # lets secret scanners spot a leaked token
# What a token may be allowed to do; the API operation says which one it needs.
SCOPES: tuple[str, ...] = (
    "notices:read",
    "notices:write",
    "templates:read",
    "status:read",
    "accounts:read",
    "records:read",
    "holds:read",
    "holds:write",
    "requests:read",
    "requests:write",
    "exports:read",
    "exports:write",
    "webhooks:read",
    "webhooks:write",
)
UNAUTHENTICATED = "this API token is not valid (unknown, revoked or expired)"
SEEN_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


class Unauthenticated(Refused):
    """No usable credential came with the request (the HTTP API answers 401)."""


@dataclass(frozen=True)
class TokenView:
    """A token as listed: never the token nor its hash."""

    name: str
    account: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken, account: str) -> TokenView:
        return cls(
            token.name,
            account,
            list(token.scopes or []),
            token.created_by,
            token.created_at,
            token.expires_at,
            token.revoked_at,
            token.last_used_at,
        )


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``token`` is shown this once and kept nowhere."""

    view: TokenView
    token: str


@dataclass(frozen=True)
class Bearer:
    """Who a request's token acts as, and what its scopes allow."""

    actor: Actor
    scopes: frozenset[str]


def digest(token: str) -> str:
    """The sha256 (hex) of ``token``, the only form stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@acts
def create(
    app: App,
    actor: Actor,
    name: str,
    scopes: list[str],
    *,
    expires_in: timedelta | None = None,
    account: str | None = None,
) -> NewToken:
    """Create token ``name`` acting for ``account`` (default: the actor's own) with
    ``scopes``, expiring ``expires_in`` from now (None: never).

    :raises Refused: the actor is unknown or disabled; acting for another account without the
        admin role; a usable token of that name exists already.
    :raises NotFound: no such account.
    :raises UsageError: a bad name, no scope or an unknown one, a non-positive lifetime.
    """
    engine = app.checked_engine()
    owner = account or actor.name
    require_role(app.settings, actor.name, "admin" if owner != actor.name else None, engine)
    check_name(name, "token name")
    scopes = _checked_scopes(scopes)
    if expires_in is not None and expires_in <= timedelta(0):
        raise UsageError("a token's lifetime must be positive", remedy="expires")
    now = app.clock.now()
    with session_scope(engine) as session:
        seed_from_config(session, app.settings, now)
        session.flush()
        holder = find(session, owner)
        if holder is None:
            raise NotFound(f"no user {owner!r} (a token acts for an account)")
        if holder.disabled:
            raise Refused(f"user {owner!r} is disabled")
        if _usable(session, name, now) is not None:
            raise Refused(f"a token named {name!r} exists already (revoke it first)")
        assert holder.id is not None
        token = PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            name=name,
            account_id=holder.id,
            token_sha256=digest(token),
            scopes=scopes,
            created_by=actor.name,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        session.add(row)
        session.flush()
        _audit(session, actor, now, "token.created", name, account=owner, scopes=scopes)
        return NewToken(TokenView.of(row, owner), token)


@acts
def list_tokens(app: App, actor: Actor) -> list[TokenView]:
    """Every token of the actor's account (an admin: every token), newest first; never the
    token or its hash.

    :raises Refused: the actor is unknown or disabled.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, None, engine)
    admin = _is_admin(app, actor)
    with Session(engine) as session:
        query = (
            select(ApiToken, UserAccount.name)
            .join(UserAccount, col(UserAccount.id) == col(ApiToken.account_id))
            .order_by(col(ApiToken.id).desc())
        )
        if not admin:
            query = query.where(UserAccount.name == actor.name)
        return [TokenView.of(t, owner) for t, owner in session.exec(query).all()]


@acts
def revoke(app: App, actor: Actor, name: str) -> TokenView:
    """Revoke the usable token ``name``: it authenticates nothing from now on.

    :raises Refused: the token is another account's and the actor is not an admin.
    :raises NotFound: no usable token of that name.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, None, engine)
    admin = _is_admin(app, actor)  # before the transaction: SQLite's write lock is one
    now = app.clock.now()
    with session_scope(engine) as session:
        token = _usable(session, name, now)
        owner = session.get(UserAccount, token.account_id) if token is not None else None
        if token is None or owner is None:
            raise NotFound(f"no usable token named {name!r}")
        if owner.name != actor.name and not admin:
            raise Refused(f"token {name!r} is another user's; an admin may revoke it")
        token.revoked_at = now
        _audit(session, actor, now, "token.revoked", name, account=owner.name)
        return TokenView.of(token, owner.name)


def authenticate(app: App, token: str, host: str = "") -> Bearer:
    """Who ``token`` acts as, from ``host``; notes when it was last used.

    :raises Unauthenticated: unknown, revoked or expired, or its account disabled or gone.
    """
    if not token.startswith(PREFIX):
        raise Unauthenticated(UNAUTHENTICATED)
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        found = session.exec(select(ApiToken).where(ApiToken.token_sha256 == digest(token))).first()
        owner = session.get(UserAccount, found.account_id) if found is not None else None
        if found is None or owner is None or owner.disabled or not found.usable(now):
            raise Unauthenticated(UNAUTHENTICATED)
        if found.last_used_at is None or now - found.last_used_at >= SEEN_EVERY:
            found.last_used_at = now
        scopes = frozenset(found.scopes or []) & frozenset(SCOPES)
        return Bearer(Actor(owner.name, "token", host), scopes)


def require_scope(bearer: Bearer, scope: str) -> Actor:
    """The bearer's actor, when its token holds ``scope`` (the roles are the action's own
    check, against the token's account).

    :raises Refused: the token lacks ``scope``.
    """
    if scope not in bearer.scopes:
        raise Refused(f"this API token does not hold the {scope} scope", remedy="token-scope")
    return bearer.actor


def _usable(session: Session, name: str, now: datetime) -> ApiToken | None:
    for token in session.exec(
        select(ApiToken).where(ApiToken.name == name).where(col(ApiToken.revoked_at).is_(None))
    ).all():
        if token.usable(now):
            return token
    return None


def _is_admin(app: App, actor: Actor) -> bool:
    try:
        require_role(app.settings, actor.name, "admin", app.checked_engine())
    except Refused:
        return False
    return True


def _checked_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise UsageError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise UsageError("give at least one scope", remedy="scope")
    return list(dict.fromkeys(scopes))


def _audit(
    session: Session, actor: Actor, now: datetime, action: str, name: str, **detail: Any
) -> None:
    record_event(
        session,
        at=now,
        actor=actor,
        action=action,
        object_type="api-token",
        object_id=name,
        **detail,
    )
