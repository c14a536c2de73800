"""Warn the administrators before a platform account's access token expires: Meta's Page and
user tokens last about 60 days, and a post to an account whose token expired fails. Each
account with ``token_expires`` set is announced once :data:`WARN_DAYS` days before (and once
more :data:`LAST_DAYS` days before), through the administrators' messages (deduplicated by
account, expiry and stage; gathered into the daily digest where configured)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import select

from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.notify.outbox import Notification

WARN_DAYS = 14
LAST_DAYS = 3


def warn_expiring(engine: Engine, settings: Settings, now: datetime) -> list[str]:
    """Queue a warning for each enabled account whose token expires within
    :data:`WARN_DAYS` days (the start of its ``token_expires`` day, agency zone), once per
    stage; returns the accounts warned now."""
    zone = ZoneInfo(settings.agency.time_zone)
    warned: list[str] = []
    with session_scope(engine) as session:
        for name, account in sorted(settings.accounts.items()):
            if not account.enabled or account.token_expires is None:
                continue
            expires = datetime.combine(account.token_expires, time(0), zone)
            left = (expires - now).total_seconds() / 86400
            if left > WARN_DAYS:
                continue
            stage = LAST_DAYS if left <= LAST_DAYS else WARN_DAYS
            key = f"token-expiry/{name}/{account.token_expires.isoformat()}/{stage}"
            found = session.exec(
                select(Notification.id)
                .where(Notification.kind == "admin")
                .where(Notification.once_key == key)
            ).first()
            if found is not None:
                continue
            when = "has expired" if left <= 0 else f"expires on {account.token_expires}"
            lines = [
                f"The access token of account {name} ({account.platform}) {when}.",
                "Posts to it fail once it has expired: renew it and set token_expires in "
                f"[accounts.{name}] to the new token's expiry.",
            ]
            session.add(
                Notification(
                    kind="admin",
                    subject=f"The token of {name} {when}",
                    facts={"lines": lines},
                    once_key=key,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
            warned.append(name)
    return warned
