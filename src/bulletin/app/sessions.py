"""Web sessions: signing in (throttled), finding who a session cookie belongs to, signing out,
and an admin ending every session of an account.

A session is known by the sha256 of its cookie's random value; the value is given out once at
sign-in and kept nowhere. Every sign-in makes a new session (a value set before is never
promoted). A session ends when revoked, ``[web] session_idle`` after its last request or
``session_lifetime`` after sign-in, or when its account is disabled.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.app.users import UserView, verify_password
from bulletin.audit import record_event
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused
from bulletin.identity import require_role
from bulletin.users import credentials, throttle
from bulletin.users import sessions as web_sessions
from bulletin.users.directory import find
from bulletin.users.models import WebSession, roles_of


class Throttled(Refused):
    """Too many refused sign-ins lately; ``retry_after`` says how long to wait."""

    def __init__(self, retry_after: timedelta) -> None:
        seconds = max(1, int(retry_after.total_seconds() + 0.999))
        super().__init__(f"too many failed sign-ins; try again in {seconds} seconds")
        self.retry_after = seconds


@dataclass(frozen=True)
class SignedIn:
    """Who a live session belongs to, and the secret its form tokens are keyed with."""

    actor: Actor
    roles: list[str]
    csrf_secret: str


@dataclass(frozen=True)
class NewSession:
    """A session just begun: ``cookie`` is the value to hand the browser (shown once)."""

    cookie: str
    signed_in: SignedIn


def sign_in(app: App, name: str, password: str, code: str | None, address: str) -> NewSession:
    """Sign ``name`` in from ``address`` and begin a new session.

    :raises Throttled: too many failures lately for the name or the address (audited).
    :raises Refused: as :func:`bulletin.app.users.verify_password` (each failure counted).
    """
    web = app.settings.web
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        wait = throttle.wait_needed(session, name, address, now, web)
        if wait is not None:
            who = Actor(name[:200], "password", address)
            _audit(session, who, now, "user.sign_in_throttled", address=address)
    if wait is not None:
        raise Throttled(wait)
    try:
        verify_password(app, name, password, code, host=address)
    except Refused:
        with session_scope(app.engine) as session:
            throttle.record_failure(session, name, address, now, web)
        raise
    with session_scope(app.engine) as session:
        throttle.forget(session, name)
        account = find(session, name)
        roles = roles_of(account) if account is not None else []
        return begin(session, name, roles, now, address)


def begin(session: Session, name: str, roles: list[str], now: datetime, address: str) -> NewSession:
    """A new session for ``name``, whose sign-in was verified (by password or by single
    sign-on); added to ``session``."""
    cookie, digest = credentials.new_token()
    csrf_secret = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=digest, account_name=name, created_at=now, last_seen_at=now, csrf_secret=csrf_secret
        )
    )
    return NewSession(cookie, SignedIn(Actor(name, "session", address), roles, csrf_secret))


def current(app: App, cookie: str, address: str) -> SignedIn | None:
    """Who the session of ``cookie`` belongs to (and it is seen now), or None when there is
    no such session or it has ended."""
    if not cookie:
        return None
    web = app.settings.web
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        found = session.get(WebSession, credentials.token_digest(cookie))
        if (
            found is None
            or found.revoked_at is not None
            or now - found.last_seen_at > web.session_idle_delta
            or now - found.created_at > web.session_lifetime_delta
        ):
            return None
        account = find(session, found.account_name)
        if account is None or account.disabled:
            return None
        found.last_seen_at = now
        actor = Actor(found.account_name, "session", address)
        return SignedIn(actor, roles_of(account), found.csrf_secret)


def sign_out(app: App, cookie: str, address: str) -> None:
    """End the session of ``cookie`` (nothing when there is none)."""
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        found = session.get(WebSession, credentials.token_digest(cookie))
        if found is None or found.revoked_at is not None:
            return
        found.revoked_at = now
        _audit(session, Actor(found.account_name, "session", address), now, "user.signed_out")


@acts
def sign_out_everywhere(app: App, actor: Actor, name: str) -> int:
    """End every live session of ``name``; returns how many there were.

    :raises Refused: ``actor`` is neither ``name`` nor an admin. :raises NotFound: no such user.
    """
    engine = app.checked_engine()
    if actor.name != name:
        require_role(app.settings, actor.name, "admin", engine)
    now = app.clock.now()
    with session_scope(engine) as session:
        if find(session, name) is None:
            raise NotFound(f"no user {name!r}")
        ended = web_sessions.revoke_all(session, name, now)
        _audit(session, actor, now, "user.sessions_revoked", name, sessions=ended)
        return ended


@acts
def profile(app: App, actor: Actor) -> UserView:
    """``actor``'s own account, as shown.

    :raises Refused: the account is unknown or disabled.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, None, engine)
    with Session(engine) as session:
        account = find(session, actor.name)
    if account is None:
        raise Refused(f"unknown user {actor.name!r}")
    return UserView.of(account)


def _audit(
    session: Session, actor: Actor, now: datetime, action: str, name: str = "", **detail: Any
) -> None:
    """An audit event about the account ``name`` (default: the actor's own)."""
    record_event(
        session,
        at=now,
        actor=actor,
        action=action,
        object_type="user",
        object_id=name or actor.name,
        **detail,
    )
