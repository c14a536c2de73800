"""Who is acting. The command line trusts the operating system (see DESIGN "Who acts")."""

from __future__ import annotations

import getpass
from collections.abc import Mapping

from bulletin.config.settings import Settings
from bulletin.config.site import Role
from bulletin.errors import Refused, UsageError
from bulletin.names import name_problem, printable

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
) -> str:
    """The acting user's name: ``explicit`` (``--as``/``--by``), else ``BULLETIN_USER``, else the
    login name mapped through ``os_user``.

    With ``[users]`` configured the name must exist and hold ``role``.

    :raises UsageError: no name can be found.
    :raises Refused: unknown user or missing role.
    """
    name = explicit or environ.get("BULLETIN_USER") or ""
    if not name:
        login = _login_name()
        mapped = [n for n, u in settings.users.items() if u.os_user and u.os_user == login]
        name = mapped[0] if mapped else (login if settings.open_mode else "")
    if not name:
        raise UsageError("say who is acting", remedy="as")
    check_name(name, "the acting user's name")
    require_role(settings, name, role)
    return name


def require_role(settings: Settings, name: str, role: Role | None) -> None:
    """With ``[users]`` configured, ``name`` must exist and hold ``role``; in open mode any
    name will do.

    :raises Refused: unknown user or missing role.
    """
    if settings.open_mode:
        return
    user = settings.users.get(name)
    if user is None:
        raise Refused(f"unknown user {name!r} (not in [users] of {settings.source})")
    if role is not None and role not in user.roles:
        raise Refused(f"user {name!r} does not hold the {role} role")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
