"""Single sign-on to the web console through the OpenID Connect provider of ``[auth.oidc]``.

:func:`begin` starts a sign-on: it records an attempt (state, nonce, PKCE verifier, bound to
the browser's pre-session cookie) and returns the provider's authorization URL.
:func:`finish` completes it when the provider sends the browser back: the attempt must be
this browser's, unused and fresh; the code is exchanged, the ID token verified
(:mod:`bulletin.users.oidc`), the person's roles mapped from ``role_claim`` through
``role_map`` and their account found by (issuer, subject), linked or created; then a new
session begins, as after a password sign-in. Roles follow the claim at every sign-on.

Refused: an unknown, used, expired or foreign attempt; anything wrong with the tokens; no
role mapped; an address outside ``allowed_domain``; a disabled account; a name taken by an
account that signs in otherwise. Each refusal that names a person is audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.app.sessions import NewSession
from bulletin.app.sessions import begin as begin_session
from bulletin.audit import record_event
from bulletin.config.oidc import OidcSettings
from bulletin.config.secrets import Secret, resolve_secret
from bulletin.db import session_scope
from bulletin.errors import AuthError, NotFound, Refused
from bulletin.names import name_problem
from bulletin.users.directory import find
from bulletin.users.models import SsoAttempt, UserAccount, UserIdentity, roles_of
from bulletin.users.oidc import Provider

ATTEMPT_LIFETIME = timedelta(minutes=10)
CALLBACK = "/sign-in/oidc/callback"
ATTEMPT_REFUSED = "this sign-in was not started in this browser, was used already or has expired"


@dataclass(frozen=True)
class SignedOn:
    """A finished sign-on: the new session and where to go next (a local path)."""

    session: NewSession
    next_path: str


def label(app: App) -> str | None:
    """What the sign-in button calls the provider, or None when single sign-on is off."""
    oidc = app.settings.auth.oidc
    return oidc.label if oidc is not None else None


def begin(app: App, pre_secret: str, next_path: str) -> str:
    """Start a sign-on for the browser holding the pre-session cookie ``pre_secret``; returns
    the provider's authorization URL to send it to. ``next_path`` (a local path, checked by
    the door) is where :func:`finish` sends it at the end.

    :raises NotFound: single sign-on is not configured.
    :raises Refused: the provider cannot be reached or its discovery document is wrong.
    """
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43 to 128
    provider = _provider(app)
    try:
        url = provider.authorization_url(state, nonce, verifier)
    finally:
        provider.close()
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        session.exec(delete(SsoAttempt).where(col(SsoAttempt.created_at) < now - ATTEMPT_LIFETIME))
        session.add(
            SsoAttempt(
                id=_digest(state),
                pre_sha256=_digest(pre_secret),
                nonce=nonce,
                code_verifier=verifier,
                next_path=next_path,
                created_at=now,
            )
        )
    return url


def finish(
    app: App,
    pre_secret: str,
    state: str,
    code: str,
    error: str,
    address: str,
) -> SignedOn:
    """Complete the sign-on the provider sent the browser back from (``state``, and ``code``
    or ``error`` as it said) and begin a session.

    :raises NotFound: single sign-on is not configured.
    :raises Refused: as the module says (one line, never a token or secret).
    """
    oidc = _settings(app)
    now = app.clock.now()
    with session_scope(app.checked_engine()) as session:
        attempt = _take_attempt(session, state, pre_secret, now)
    if error or not code:
        said = re.sub(r"[^a-z_]", "", error)[:40] or "no code"  # an OAuth error code, no prose
        raise Refused(f"the sign-on provider did not sign you in ({said})")
    provider = _provider(app)
    try:
        tokens = provider.exchange(code, attempt.code_verifier)
        claims = provider.verify(tokens.id_token, attempt.nonce, now)
        if _needs_userinfo(oidc, claims):
            found = provider.userinfo(tokens.access_token)
            if found.get("sub") == claims["sub"]:  # OIDC Core 5.3.2: else not to be used
                claims = {**found, **claims}
    finally:
        provider.close()
    return SignedOn(_sign_on(app, oidc, claims, now, address), attempt.next_path)


def _sign_on(
    app: App, oidc: OidcSettings, claims: dict[str, Any], now: datetime, address: str
) -> NewSession:
    """The session of the person ``claims`` (verified) name, or Refused (audited)."""
    subject = str(claims["sub"])
    roles = mapped_roles(oidc, claims)
    with session_scope(app.engine) as session:
        identity = session.exec(
            select(UserIdentity)
            .where(UserIdentity.issuer == oidc.issuer)
            .where(UserIdentity.subject == subject)
        ).first()
        account = session.get(UserAccount, identity.account_id) if identity else None
        linkable = True
        if account is None:  # a first sign-on: an account of that name may be linked
            account = find(session, _name_of(oidc, claims))
            linkable = account is None or (
                account.password_hash is None and not _linked(session, account)
            )
        name = account.name if account is not None else _name_of(oidc, claims)

        def audit(action: str, **more: Any) -> None:
            record_event(
                session,
                at=now,
                actor=Actor(name, "oidc", address),
                action=action,
                object_type="user",
                object_id=name,
                issuer=oidc.issuer,
                subject=subject,
                **more,
            )

        refused = _refusal(oidc, claims, roles, account, linkable)
        if refused is not None:
            audit("user.sign_in_refused", reason=str(refused))
        else:
            if account is None:
                account = UserAccount(name=name, roles=roles, created_at=now, updated_at=now)
                session.add(account)
                session.flush()
                audit("user.added", roles=roles)
            assert account.id is not None
            if identity is None:
                identity = UserIdentity(
                    account_id=account.id, issuer=oidc.issuer, subject=subject, created_at=now
                )
                session.add(identity)
            identity.last_sign_in_at = now
            before = roles_of(account)
            if before != roles:  # the provider says what the person may do, at every sign-on
                account.roles = roles
                account.updated_at = now
                audit("user.roles", roles=roles, before=before)
            audit("user.signed_in")
            return begin_session(session, name, roles, now, address)
    raise refused


def _refusal(
    oidc: OidcSettings,
    claims: dict[str, Any],
    roles: list[str],
    account: UserAccount | None,
    linkable: bool,
) -> Refused | None:
    """Why the person of ``claims`` may not sign on as ``account`` (None: a new one)."""
    if not _domain_allowed(oidc, claims):
        return Refused(f"only addresses at {oidc.allowed_domain} may sign in here")
    if not roles:
        return Refused(
            f"your {oidc.role_claim} at the sign-on provider give no Bulletin role; "
            "ask an administrator"
        )
    if account is not None and not linkable:
        return Refused(
            f"the user name {account.name!r} is taken by an account that signs in otherwise; "
            "ask an administrator"
        )
    if account is not None and account.disabled:
        return Refused("this account is disabled")
    return None


def mapped_roles(oidc: OidcSettings, claims: dict[str, Any]) -> list[str]:
    """The Bulletin roles ``role_map`` gives the values of ``role_claim`` in ``claims`` (a
    list of strings, or one string), in the order of ``role_map``."""
    value = claims.get(oidc.role_claim)
    if isinstance(value, str):
        held = {value}
    elif isinstance(value, list):
        held = {str(v) for v in value if isinstance(v, str | int)}
    else:
        held = set()
    roles: list[str] = []
    for claim, given in oidc.role_map.items():
        if claim in held:
            roles.extend(r for r in given if r not in roles)
    return roles


def _take_attempt(session: Session, state: str, pre_secret: str, now: datetime) -> SsoAttempt:
    """The attempt of ``state``, now used up, when this browser began it and it is fresh."""
    attempt = session.exec(
        select(SsoAttempt).where(SsoAttempt.id == _digest(state)).with_for_update()
    ).first()
    if (
        attempt is None
        or not state
        or not pre_secret
        or attempt.used_at is not None
        or now - attempt.created_at > ATTEMPT_LIFETIME
        or not secrets.compare_digest(attempt.pre_sha256, _digest(pre_secret))
    ):
        raise Refused(ATTEMPT_REFUSED)
    attempt.used_at = now
    session.flush()
    session.expunge(attempt)
    return attempt


def _name_of(oidc: OidcSettings, claims: dict[str, Any]) -> str:
    """The name a new account takes: ``name_claim``, else the email address, else ``sub``
    (the first one fit to stand in an audit line)."""
    for claim in (oidc.name_claim, "email", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and name_problem(value) is None:
            return value
    return f"oidc-{hashlib.sha256(str(claims['sub']).encode()).hexdigest()[:16]}"


def _domain_allowed(oidc: OidcSettings, claims: dict[str, Any]) -> bool:
    if not oidc.allowed_domain:
        return True
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is False:
        return False
    return email.rpartition("@")[2].lower() == oidc.allowed_domain


def _needs_userinfo(oidc: OidcSettings, claims: dict[str, Any]) -> bool:
    """Whether the ID token lacks a claim the provider may give from its userinfo endpoint."""
    wanted = [oidc.role_claim, oidc.name_claim] + (["email"] if oidc.allowed_domain else [])
    return any(c not in claims for c in wanted)


def _linked(session: Session, account: UserAccount) -> bool:
    return (
        session.exec(select(UserIdentity.id).where(UserIdentity.account_id == account.id)).first()
        is not None
    )


def _settings(app: App) -> OidcSettings:
    oidc = app.settings.auth.oidc
    if oidc is None:
        raise NotFound("single sign-on is not configured")
    return oidc


def _provider(app: App) -> Provider:
    oidc = _settings(app)
    secret: Secret | None = None
    if oidc.client_secret_env:
        try:
            secret = resolve_secret(oidc.client_secret_env, app.environ, "auth.oidc")
        except AuthError:
            raise Refused(
                f"single sign-on cannot start: its client secret {oidc.client_secret_env} is "
                "not set (an environment variable or a systemd credential of that name)"
            ) from None
    return Provider(oidc, secret, f"{app.settings.web.link_base}{CALLBACK}")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
