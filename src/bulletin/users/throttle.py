"""Sign-in throttling, kept in the database so every web process agrees.

After ``limit`` refused sign-ins within the window, for one account name or from one address,
the next try must wait: :data:`FIRST_WAIT` after the last failure, doubling with each further
failure, never more than the window itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from bulletin.config.site import WebSettings
from bulletin.users.models import SignInFailure

FIRST_WAIT = timedelta(seconds=30)


def wait_needed(
    session: Session, name: str, address: str, now: datetime, web: WebSettings
) -> timedelta | None:
    """How long a sign-in as ``name`` from ``address`` must still wait, or None."""
    window = web.throttle_window_delta
    since = now - window
    longest: timedelta | None = None
    for column, value, limit in (
        (SignInFailure.account_name, name, web.throttle_account_failures),
        (SignInFailure.address, address, web.throttle_address_failures),
    ):
        count, last = session.exec(
            select(func.count(), func.max(SignInFailure.at))
            .where(column == value)
            .where(col(SignInFailure.at) > since)
        ).one()
        if count < limit or last is None:
            continue
        wait = min(FIRST_WAIT * 2 ** min(count - limit, 20), window)
        left = _aware(last) + wait - now
        if left > timedelta(0) and (longest is None or left > longest):
            longest = left
    return longest


def record_failure(
    session: Session, name: str, address: str, now: datetime, web: WebSettings
) -> None:
    """Count a refused sign-in; failures older than the window are forgotten."""
    session.exec(
        delete(SignInFailure).where(col(SignInFailure.at) <= now - web.throttle_window_delta)
    )
    session.add(SignInFailure(account_name=name[:200], address=address, at=now))


def forget(session: Session, name: str) -> None:
    """A successful sign-in clears the account's failures (not its address's)."""
    session.exec(delete(SignInFailure).where(col(SignInFailure.account_name) == name))


def _aware(when: datetime) -> datetime:
    from bulletin.clock import utc

    return utc(when)
