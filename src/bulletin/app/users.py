"""People's accounts: an admin adds, disables, re-roles and resets them; a person sets a
password through a one-time link, enrols a TOTP second factor and signs in.

Passwords are hashed with argon2id and never logged, audited or returned. A link is shown
once and only its sha256 is kept; it expires :data:`LINK_LIFETIME` after it was issued and
works once. ``[users.NAME]`` of the configuration seeds accounts that are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, get_args

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.audit import record_event
from bulletin.config.site import Role
from bulletin.db import session_scope
from bulletin.errors import DatabaseError, NotFound, Refused, UsageError
from bulletin.identity import check_name, require_role
from bulletin.users import credentials
from bulletin.users import sessions as web_sessions
from bulletin.users.directory import (
    FIRST_ADMIN,
    FIRST_ADMIN_MADE,
    all_accounts,
    any_accounts,
    find,
    first_admin,
    seed_from_config,
)
from bulletin.users.models import UserAccount, UserToken, roles_of

LINK_LIFETIME = timedelta(hours=24)
SIGN_IN_REFUSED = "wrong user name or password"
LINK_REFUSED = "this set-password link is not valid (used, expired or unknown)"
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True)
class UserView:
    """An account as shown: never its hash or secret, only whether they are set."""

    name: str
    roles: list[str]
    os_user: str | None
    disabled: bool
    has_password: bool
    has_totp: bool
    email: str | None = None

    @classmethod
    def of(cls, account: UserAccount) -> UserView:
        return cls(
            account.name,
            roles_of(account),
            account.os_user,
            account.disabled,
            account.password_hash is not None,
            account.totp_secret is not None,
            account.email,
        )


@dataclass(frozen=True)
class SetPasswordLink:
    """A one-time link for ``name`` to set a password, until ``expires_at``; ``url`` is shown
    once and kept nowhere (only its token's sha256 is)."""

    name: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class FirstAdmin:
    """What :func:`open_console` did: ``state`` is ``"made"`` (the first admin was added, with
    ``link``), ``"renewed"`` (it has no password yet: a fresh ``link``, earlier ones revoked),
    ``"ready"`` (its password is set) or ``"staffed"`` (other accounts exist: nothing to do).
    ``console`` is where the web console is reached."""

    console: str
    state: str
    link: SetPasswordLink | None = None


@acts
def open_console(app: App, actor: Actor, os_user: str = "") -> FirstAdmin:
    """Make sure someone can sign in to the web console: with no account at all, add the
    first admin (:data:`~bulletin.users.directory.FIRST_ADMIN`, role admin, no password,
    acting on the command line as ``os_user``: whoever set Bulletin up) and issue its
    set-password link; while that admin has not set a password, issue a fresh link
    (the earlier ones stop working). Safe to run again. Needs no role: it runs before anyone
    can sign in. The first admin leaves the command line in open mode.

    :raises DatabaseError: the database is not initialised.
    """
    now = app.clock.now()
    console = f"{app.settings.web.link_base}/"
    with session_scope(app.checked_engine()) as session:
        seed_from_config(session, app.settings, now)
        session.flush()
        account = first_admin(session)
        if account is None:
            if any_accounts(session) or find(session, FIRST_ADMIN) is not None:
                return FirstAdmin(console, "staffed")
            account = UserAccount(
                name=FIRST_ADMIN,
                roles=["admin"],
                os_user=os_user or None,
                created_at=now,
                updated_at=now,
            )
            session.add(account)
            session.flush()
            _audit(session, actor, now, FIRST_ADMIN_MADE, FIRST_ADMIN, roles=["admin"])
            return FirstAdmin(console, "made", _issue_link(app, session, account, now))
        if account.password_hash is not None or account.disabled:
            return FirstAdmin(console, "ready")
        _revoke_links(session, account, now)
        _audit(session, actor, now, "user.reset", FIRST_ADMIN)
        return FirstAdmin(console, "renewed", _issue_link(app, session, account, now))


def seed(app: App) -> list[str]:
    """Add an account for each ``[users.NAME]`` that has none; returns the names added."""
    with session_scope(app.checked_engine()) as session:
        return seed_from_config(session, app.settings, app.clock.now())


@acts
def directory(app: App) -> Engine | None:
    """The database that says who exists, or None while it is not initialised or current
    (then ``[users]`` alone does)."""
    try:
        return app.checked_engine()
    except DatabaseError:
        return None


def act_for(app: App, admin: Actor, name: str, reason: str) -> Actor:
    """``admin`` acting on behalf of ``name``, for ``reason``: an actor with ``name``'s
    authority (its roles, its name on what it does, the two-person rule as ``name``) whose
    audit events record ``admin`` as their actor, and ``name`` and ``reason`` beside it.

    :raises Refused: ``admin`` is no admin, or ``name`` is unknown or disabled.
    :raises UsageError: no reason, or a name that cannot stand in an audit line.
    """
    engine = directory(app)
    require_role(app.settings, admin.name, "admin", engine)
    if not reason.strip():
        raise UsageError("acting on behalf of someone needs a reason", remedy="reason")
    check_name(name, "the name acted for")
    require_role(app.settings, name, None, engine)
    return replace(admin, name=name, by=admin.name, reason=reason)


def add(
    app: App,
    actor: Actor,
    name: str,
    roles: list[str],
    os_user: str | None = None,
    email: str | None = None,
) -> SetPasswordLink:
    """Add an account (no password yet) and issue its set-password link.

    :raises Refused: ``actor`` is not an admin, or the name is taken.
    :raises UsageError: a bad name or an unknown role.
    """
    _require_admin(app, actor)
    check_name(name, "user name")
    roles = _checked_roles(roles)
    email = _checked_email(email)
    now = app.clock.now()
    with session_scope(app.engine) as session:
        seed_from_config(session, app.settings, now)
        if find(session, name) is not None:
            raise Refused(f"user {name!r} exists already")
        account = UserAccount(
            name=name,
            roles=roles,
            os_user=os_user or None,
            email=email,
            created_at=now,
            updated_at=now,
        )
        session.add(account)
        session.flush()
        link = _issue_link(app, session, account, now)
        _audit(session, actor, now, "user.added", name, roles=roles, os_user=os_user)
        return link


@acts
def list_users(app: App, actor: Actor) -> list[UserView]:
    """Every account, by name (configured users not seeded yet included); anyone may list."""
    with Session(app.checked_engine()) as session:
        found = {a.name: UserView.of(a) for a in all_accounts(session)}
    for name, user in app.settings.users.items():
        found.setdefault(name, UserView(name, list(user.roles), user.os_user, False, False, False))
    return [found[n] for n in sorted(found)]


@acts
def disable(app: App, actor: Actor, name: str) -> UserView:
    """Disable ``name``: it can no longer sign in or act. Its links and web sessions are
    revoked.

    :raises Refused: ``actor`` is not an admin, or disables themselves.
    :raises NotFound: no such user.
    """
    _require_admin(app, actor)
    if name == actor.name:
        raise Refused("an admin cannot disable their own account")
    now = app.clock.now()
    with session_scope(app.engine) as session:
        account = _account(app, session, name, now)
        account.disabled = True
        account.updated_at = now
        _revoke_links(session, account, now)
        web_sessions.revoke_all(session, name, now)
        _audit(session, actor, now, "user.disabled", name)
        return UserView.of(account)


@acts
def set_email(app: App, actor: Actor, name: str, email: str) -> UserView:
    """Set where ``name``'s notifications go (empty: nowhere).

    :raises Refused: ``actor`` is not an admin.
    :raises UsageError: not an email address.
    :raises NotFound: no such user.
    """
    _require_admin(app, actor)
    checked = _checked_email(email)
    now = app.clock.now()
    with session_scope(app.engine) as session:
        account = _account(app, session, name, now)
        account.email = checked
        account.updated_at = now
        session.add(account)
        _audit(session, actor, now, "user.email", name, email=checked)
        return UserView.of(account)


def _checked_email(email: str | None) -> str | None:
    """``email`` stripped (None when empty), when it reads as one address."""
    value = (email or "").strip()
    if not value:
        return None
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>,;" for c in value):
        raise UsageError(f"{value!r} is not an email address (name@example.org)")
    return value


@acts
def set_roles(app: App, actor: Actor, name: str, roles: list[str]) -> UserView:
    """Give ``name`` exactly ``roles``.

    :raises Refused: ``actor`` is not an admin. :raises NotFound: no such user.
    :raises UsageError: an unknown role.
    """
    _require_admin(app, actor)
    roles = _checked_roles(roles)
    now = app.clock.now()
    with session_scope(app.engine) as session:
        account = _account(app, session, name, now)
        before = roles_of(account)
        account.roles = roles
        account.updated_at = now
        _audit(session, actor, now, "user.roles", name, roles=roles, before=before)
        return UserView.of(account)


@acts
def reset(app: App, actor: Actor, name: str) -> SetPasswordLink:
    """Issue a new set-password link for ``name``; earlier links stop working and the old
    password with them, and its web sessions end.

    :raises Refused: ``actor`` is not an admin. :raises NotFound: no such user.
    """
    _require_admin(app, actor)
    now = app.clock.now()
    with session_scope(app.engine) as session:
        account = _account(app, session, name, now)
        _revoke_links(session, account, now)
        web_sessions.revoke_all(session, name, now)
        account.password_hash = None
        account.updated_at = now
        link = _issue_link(app, session, account, now)
        _audit(session, actor, now, "user.reset", name)
        return link


def link_holder(app: App, token: str) -> str:
    """The name of the account the set-password link ``token`` was issued for.

    :raises Refused: the link is unknown, used, revoked or expired, or its account disabled.
    """
    with Session(app.checked_engine()) as session:
        return _usable_link(session, token, app.clock.now())[1].name


def set_password(
    app: App, token: str, password: str, host: str = "", name: str | None = None
) -> str:
    """Set the password of the account ``token`` (a set-password link's) was issued for, and
    use the link up; returns the account's name. With ``name``, the link must be that
    account's.

    :raises UsageError: the password is too short (the link stays usable).
    :raises Refused: the link is unknown, used, revoked or expired, or its account disabled.
    """
    credentials.check_policy(password)
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        link, account = _usable_link(session, token, now, lock=True)
        if name is not None and account.name != name:
            raise Refused(LINK_REFUSED)
        link.used_at = now
        account.password_hash = credentials.hash_password(password)
        account.updated_at = now
        _audit(session, Actor(account.name, "link", host), now, "user.password_set", account.name)
        return account.name


def verify_password(
    app: App, name: str, password: str, code: str | None = None, host: str = ""
) -> Actor:
    """The actor ``name`` signing in with ``password`` (and a TOTP ``code`` when one of its
    roles is in ``[auth] require_mfa_for``, or it has enrolled one).

    :raises Refused: one message for an unknown name, a wrong password and a disabled
        account; a missing or wrong code (remedy ``totp-code``).
    """
    now = app.clock.now()
    who = Actor(name, "password", host)
    with session_scope(app.checked_engine()) as session:  # a refusal's audit is committed too
        account = find(session, name)
        stored = account.password_hash if account is not None else None
        matches = credentials.password_matches(stored, password)  # as slow for an unknown name
        refused: Refused | None
        if account is None or not matches or account.disabled:
            refused = Refused(SIGN_IN_REFUSED)
        else:
            refused = _second_factor(app, account, code, now)
        if account is not None:
            action = "user.signed_in" if refused is None else "user.sign_in_refused"
            _audit(session, who, now, action, name)
    if refused is not None:
        raise refused
    return who


@acts
def enrol_totp(app: App, actor: Actor, name: str) -> str:
    """Give ``name`` a new TOTP secret (replacing any); returns its ``otpauth://`` URI, for an
    authenticator app, to be shown once.

    :raises Refused: ``actor`` is neither ``name`` nor an admin. :raises NotFound: no such user.
    """
    if actor.name != name:
        _require_admin(app, actor)
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        account = _account(app, session, name, now)
        account.totp_secret = credentials.new_totp_secret()
        account.updated_at = now
        _audit(session, actor, now, "user.totp_enrolled", name)
        return credentials.totp_uri(account.totp_secret, name, app.settings.agency.name)


def verify_totp(app: App, name: str, code: str) -> None:
    """:raises Refused: ``name`` has no second factor, or ``code`` is not its current code."""
    with Session(app.checked_engine()) as session:
        account = find(session, name)
    secret = account.totp_secret if account is not None else None
    if secret is None or not credentials.totp_matches(secret, code, app.clock.now()):
        raise Refused("wrong one-time code", remedy="totp-code")


def _second_factor(
    app: App, account: UserAccount, code: str | None, now: datetime
) -> Refused | None:
    needed = bool(set(roles_of(account)) & set(app.settings.auth.require_mfa_for))
    if account.totp_secret is None:
        return Refused("this account must enrol a second factor first") if needed else None
    if not code:
        return Refused("a one-time code is needed", remedy="totp-code")
    if not credentials.totp_matches(account.totp_secret, code, now):
        return Refused("wrong one-time code", remedy="totp-code")
    return None


def _usable_link(
    session: Session, token: str, now: datetime, lock: bool = False
) -> tuple[UserToken, UserAccount]:
    query = select(UserToken).where(UserToken.token_sha256 == credentials.token_digest(token))
    link = session.exec(query.with_for_update() if lock else query).first()
    account = session.get(UserAccount, link.account_id) if link is not None else None
    if link is None or account is None or not link.usable(now) or account.disabled:
        raise Refused(LINK_REFUSED)
    return link, account


def _require_admin(app: App, actor: Actor) -> None:
    require_role(app.settings, actor.name, "admin", app.checked_engine())


def _checked_roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise UsageError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    if not roles:
        raise UsageError("give at least one role", remedy="role")
    return list(dict.fromkeys(roles))


def _account(app: App, session: Session, name: str, now: datetime) -> UserAccount:
    seed_from_config(session, app.settings, now)
    session.flush()
    account = session.exec(
        select(UserAccount).where(UserAccount.name == name).with_for_update()
    ).first()
    if account is None:
        raise NotFound(f"no user {name!r}")
    return account


def _issue_link(app: App, session: Session, account: UserAccount, now: datetime) -> SetPasswordLink:
    assert account.id is not None
    token, digest = credentials.new_token()
    expires = now + LINK_LIFETIME
    session.add(
        UserToken(account_id=account.id, token_sha256=digest, created_at=now, expires_at=expires)
    )
    url = f"{app.settings.web.link_base}/set-password/{token}"
    return SetPasswordLink(account.name, url, expires)


def _revoke_links(session: Session, account: UserAccount, now: datetime) -> None:
    for link in session.exec(
        select(UserToken)
        .where(UserToken.account_id == account.id)
        .where(col(UserToken.used_at).is_(None))
        .where(col(UserToken.revoked_at).is_(None))
    ).all():
        link.revoked_at = now


def _audit(
    session: Session, actor: Actor, now: datetime, action: str, name: str, **detail: Any
) -> None:
    record_event(
        session, at=now, actor=actor, action=action, object_type="user", object_id=name, **detail
    )
