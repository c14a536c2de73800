"""Finding accounts, and seeding them from ``[users.NAME]`` of the configuration.

Once any account is in the database, the database says who exists and what they may do; a
name configured in ``[users]`` but missing from the database still counts as configured
until it is seeded (so an existing configuration keeps working).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.audit import record_event
from bulletin.config.settings import Settings
from bulletin.identity import SYSTEM_ACTOR
from bulletin.users.models import UserAccount


@contextmanager
def _session(db: Engine | Session) -> Iterator[Session]:
    if isinstance(db, Session):
        yield db
    else:
        with Session(db) as session:
            yield session


def find(db: Engine | Session, name: str) -> UserAccount | None:
    """The account named ``name``, or None."""
    with _session(db) as session:
        return session.exec(select(UserAccount).where(UserAccount.name == name)).first()


def find_by_os_user(db: Engine | Session, login: str) -> UserAccount | None:
    """The account whose ``os_user`` is ``login`` (the first by name), or None."""
    with _session(db) as session:
        return session.exec(
            select(UserAccount).where(UserAccount.os_user == login).order_by(col(UserAccount.name))
        ).first()


def any_accounts(db: Engine | Session) -> bool:
    """Whether the database holds any account (then it, not ``[users]``, decides)."""
    with _session(db) as session:
        return session.exec(select(UserAccount.id).limit(1)).first() is not None


def all_accounts(session: Session) -> list[UserAccount]:
    """Every account, by name."""
    return list(session.exec(select(UserAccount).order_by(col(UserAccount.name))).all())


def seed_from_config(session: Session, settings: Settings, now: datetime) -> list[str]:
    """Add each ``[users.NAME]`` that has no account yet (its roles and ``os_user``, no
    password); returns the names added. Idempotent: an existing account is left as it is."""
    existing = set(session.exec(select(UserAccount.name)).all())
    added = []
    for name, user in sorted(settings.users.items()):
        if name in existing:
            continue
        session.add(
            UserAccount(
                name=name,
                roles=list(user.roles),
                os_user=user.os_user,
                created_at=now,
                updated_at=now,
            )
        )
        record_event(
            session,
            at=now,
            actor=SYSTEM_ACTOR,
            action="user.seeded",
            object_type="user",
            object_id=name,
            roles=list(user.roles),
        )
        added.append(name)
    return added
