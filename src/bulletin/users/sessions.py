"""Ending web sessions in the database (:class:`~bulletin.users.models.WebSession`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bulletin.users.models import WebSession


def revoke_all(session: Session, name: str, now: datetime) -> int:
    """Revoke every live session of the account ``name``; returns how many there were."""
    live = session.exec(
        select(WebSession)
        .where(WebSession.account_name == name)
        .where(col(WebSession.revoked_at).is_(None))
    ).all()
    for found in live:
        found.revoked_at = now
    return len(live)
