"""Finding accounts, and seeding them from ``[users.NAME]`` of the configuration.

Once any account is in the database, the database says who exists and what they may do; a
name configured in ``[users]`` but missing from the database still counts as configured
until it is seeded (so an existing configuration keeps working). The console's first admin
(:data:`FIRST_ADMIN`, made by ``bulletin init --first-admin`` when there is no account) does
not count: it opens the web console, and the command line stays in open mode until a second
account is added.
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
from bulletin.models import AuditEvent
from bulletin.users.models import UserAccount

#: the name of the console's first admin, and the audit action that made it
FIRST_ADMIN = "admin"
FIRST_ADMIN_MADE = "user.first_admin"


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
    """Whether the database holds any account but the console's first admin (then it, not
    ``[users]``, decides)."""
    made = select(AuditEvent.object_id).where(AuditEvent.action == FIRST_ADMIN_MADE)
    with _session(db) as session:
        query = select(UserAccount.id).where(col(UserAccount.name).not_in(made)).limit(1)
        return session.exec(query).first() is not None


def first_admin(db: Engine | Session) -> UserAccount | None:
    """The console's first admin, while it is the only account; else None."""
    with _session(db) as session:
        accounts = session.exec(select(UserAccount).limit(2)).all()
        if len(accounts) != 1 or accounts[0].name != FIRST_ADMIN:
            return None
        made = session.exec(
            select(AuditEvent.id)
            .where(AuditEvent.action == FIRST_ADMIN_MADE)
            .where(AuditEvent.object_id == FIRST_ADMIN)
        ).first()
        return accounts[0] if made is not None else None


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
