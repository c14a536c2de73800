"""Who is acting. The command line trusts the operating system (see DESIGN "Who acts"): with
accounts, the invoking OS user, as the kernel says, mapped through ``os_user``."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from bulletin.config.settings import Settings
from bulletin.config.site import Role
from bulletin.config.values import holds_role
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


class Acting(NamedTuple):
    """Who acts (:func:`resolve_actor`): ``name``, and whether it was given as it stands
    (open mode) rather than mapped from the OS user."""

    name: str
    as_given: bool


class Kernel(Protocol):
    """Where the invoking OS user comes from: the kernel (:class:`SystemKernel`); a test
    running the command line in-process injects its own, as it does the clock."""

    def real_uid(self) -> int:
        """The process's real user id."""
        ...

    def user_name(self, uid: int) -> str | None:
        """The login name of ``uid``, or None when no such user exists."""
        ...


class SystemKernel:
    """The kernel's word: the real uid and the password database."""

    def real_uid(self) -> int:
        return os.getuid()

    def user_name(self, uid: int) -> str | None:
        try:
            return pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            return None


class PeerKernel(SystemKernel):
    """The kernel's word about the process at the other end of a Unix socket: its uid as
    ``SO_PEERCRED`` gave it. The daemon running a command for that process
    (:mod:`bulletin.service.commands`) asks who runs it as the command line asks itself."""

    def __init__(self, uid: int) -> None:
        self.uid = uid

    def real_uid(self) -> int:
        return self.uid


def speaks_for_sudo(uid: int, service_path: Path | None) -> bool:
    """Whether a process of ``uid`` is believed about who ran sudo: root, and the owner of
    ``service_path`` (the data directory: the service's own user)."""
    return uid == 0 or uid == _owner(service_path)


def invoking_os_user(
    kernel: Kernel, environ: Mapping[str, str], service_path: Path | None = None
) -> str:
    """The OS user who runs this process: the real uid's login name, or, when sudo ran us as
    root or as the owner of ``service_path`` (the data directory: the service's own user,
    ``sudo -u bulletin``), the user who ran sudo (``SUDO_UID``, else ``SUDO_USER``, which
    sudo sets itself). Anyone else could set those variables, so from anyone else they are
    ignored (the owner of the data could write the records directly anyway). Empty when no
    name is known."""
    uid = kernel.real_uid()
    if speaks_for_sudo(uid, service_path):
        sudo_uid = environ.get("SUDO_UID", "")
        by_sudo = kernel.user_name(int(sudo_uid)) if sudo_uid.isdigit() else None
        by_sudo = by_sudo or environ.get("SUDO_USER", "")
        if by_sudo:
            return by_sudo
    return kernel.user_name(uid) or ""


def _owner(path: Path | None) -> int | None:
    try:
        return None if path is None else path.stat().st_uid
    except OSError:
        return None


def resolve_actor(
    settings: Settings,
    explicit: str | None,
    environ: Mapping[str, str],
    role: Role | None = None,
    db: Engine | Session | None = None,
    *,
    login: str,
) -> Acting:
    """Who acts, for the OS user ``login`` (:func:`invoking_os_user`).

    With accounts (in ``db``) or ``[users]``: the account whose ``os_user`` is ``login`` (of
    ``db``, else of ``[users]``); ``explicit`` (``--as``/``--by``) or ``BULLETIN_USER`` may
    only name that account. It must hold ``role`` (see :func:`require_role`). In open mode:
    ``explicit``, else ``BULLETIN_USER``, else ``login``, as given (``as_given`` says
    whether a name was given rather than taken from the OS).

    :raises UsageError: open mode and no name can be found.
    :raises Refused: ``login`` maps to no account, a name other than its account is given,
        or the account is disabled or lacks ``role``.
    """
    given = explicit or environ.get("BULLETIN_USER") or ""
    as_given = False
    if not settings.open_mode or (db is not None and not is_open_mode(settings, db)):
        name = _mapped(settings, login, db)
        if not name:
            raise Refused(
                f"the OS user '{printable(login or '?')}' is no account's os_user",
                remedy="os-user",
            )
        if given and given != name:
            raise Refused(
                f"the OS user '{printable(login)}' acts as '{printable(name)}' only, not as "
                f"'{printable(given)}'",
                remedy="as",
            )
    else:
        name, as_given = given or login, bool(given)
        if not name:
            raise UsageError("say who is acting", remedy="as-given")
    check_name(name, "the acting user's name")
    require_role(settings, name, role, db)
    return Acting(name, as_given)


def _mapped(settings: Settings, login: str, db: Engine | Session | None) -> str:
    """The account whose ``os_user`` is ``login`` (an account in ``db`` first, else a
    ``[users]`` entry not seeded yet), or empty."""
    if not login:
        return ""
    if db is not None:
        from bulletin.users.directory import find_by_os_user

        account = find_by_os_user(db, login)
        if account is not None:
            return account.name
    mapped = sorted(n for n, u in settings.users.items() if u.os_user and u.os_user == login)
    return mapped[0] if mapped else ""


def require_role(
    settings: Settings, name: str, role: Role | None, db: Engine | Session | None = None
) -> None:
    """``name`` must exist and hold ``role`` (or a role implying it: a records officer holds
    the clerk's, :data:`bulletin.config.values.IMPLIED`): by its account in the database
    when ``db`` is given and holds any account (a disabled account holds nothing), else by
    ``[users]`` (which also covers a configured name not seeded yet); in open mode any name
    will do.

    :raises Refused: unknown user, disabled account or missing role.
    """
    if db is not None:
        from bulletin.users.directory import any_accounts, find
        from bulletin.users.models import roles_of

        account = find(db, name)
        if account is not None:
            if account.disabled:
                raise Refused(f"user {name!r} is disabled")
            if role is not None and not holds_role(roles_of(account), role):
                raise Refused(f"user {name!r} does not hold the {role} role")
            return
        if name not in settings.users and any_accounts(db):
            raise Refused(f"unknown user {name!r}")
    if settings.open_mode:
        return
    user = settings.users.get(name)
    if user is None:
        raise Refused(f"unknown user {name!r} (not in [users] of {settings.source})")
    if role is not None and not holds_role(user.roles, role):
        raise Refused(f"user {name!r} does not hold the {role} role")


def is_open_mode(settings: Settings, db: Engine | Session) -> bool:
    """No accounts in ``db`` and no ``[users]``: names are recorded as given, roles not
    enforced."""
    from bulletin.users.directory import any_accounts

    return settings.open_mode and not any_accounts(db)
