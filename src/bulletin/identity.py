"""Who is acting. The command line trusts the operating system (see DESIGN "Who acts")."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bulletin.config.settings import Settings
from bulletin.config.site import Role
from bulletin.errors import Refused, UsageError
from bulletin.names import name_problem, printable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

SYSTEM_ACTOR = "bulletin"


def check_name(name: str, what: str = "name") -> str:
    """``name`` when it can stand in an audit line (see :func:`bulletin.names.name_problem`).

    :raises UsageError: naming what is wrong and where.
    """
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{what} '{printable(name)}' {problem}")
    return name


def resolve_actor(
    settings: Settings,
    explicit: str | None,
    environ: Mapping[str, str],
    role: Role | None = None,
    db: Engine | Session | None = None,
) -> str:
    """The acting user's name: ``explicit`` (``--as``/``--by``), else ``BULLETIN_USER``, else
    the login name mapped through ``os_user`` (of an account in ``db``, else of ``[users]``).

    With accounts or ``[users]`` the name must exist and hold ``role``
    (see :func:`require_role`).

    :raises UsageError: no name can be found.
    :raises Refused: unknown user or missing role.
    """
    name = explicit or environ.get("BULLETIN_USER") or ""
    if not name:
        login = _login_name()
        mapped = [n for n, u in settings.users.items() if u.os_user and u.os_user == login]
        if db is not None and login:
            from bulletin.users.directory import find_by_os_user

            account = find_by_os_user(db, login)
            mapped = [account.name] if account is not None else mapped
        name = mapped[0] if mapped else (login if settings.open_mode else "")
    if not name:
        raise UsageError("say who is acting", remedy="as")
    check_name(name, "the acting user's name")
    require_role(settings, name, role, db)
    return name


def require_role(
    settings: Settings, name: str, role: Role | None, db: Engine | Session | None = None
) -> None:
    """``name`` must exist and hold ``role``: by its account in the database when ``db`` is
    given and holds any account (a disabled account holds nothing), else by ``[users]``
    (which also covers a configured name not seeded yet); in open mode any name will do.

    :raises Refused: unknown user, disabled account or missing role.
    """
    if db is not None:
        from bulletin.users.directory import any_accounts, find
        from bulletin.users.models import roles_of

        account = find(db, name)
        if account is not None:
            if account.disabled:
                raise Refused(f"user {name!r} is disabled")
            if role is not None and role not in roles_of(account):
                raise Refused(f"user {name!r} does not hold the {role} role")
            return
        if name not in settings.users and any_accounts(db):
            raise Refused(f"unknown user {name!r}")
    if settings.open_mode:
        return
    user = settings.users.get(name)
    if user is None:
        raise Refused(f"unknown user {name!r} (not in [users] of {settings.source})")
    if role is not None and role not in user.roles:
        raise Refused(f"user {name!r} does not hold the {role} role")


def is_open_mode(settings: Settings, db: Engine | Session) -> bool:
    """No accounts in ``db`` and no ``[users]``: names are recorded as given, roles not
    enforced."""
    from bulletin.users.directory import any_accounts

    return settings.open_mode and not any_accounts(db)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
