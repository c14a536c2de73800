"""Who is acting, and how we know: every application-layer function takes an :class:`Actor`."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar

from bulletin import audit

P = ParamSpec("P")
R = TypeVar("R")

# How the actor was authenticated. The command line trusts the operating system: the login
# name mapped through ``[users] os_user`` ("os-user"), or a name given explicitly or through
# BULLETIN_USER in open mode ("as-given"). The daemon acts as itself ("system"). An account
# signs in with its password ("password") or through an OpenID Connect provider ("oidc"),
# or sets a password through a one-time link ("link").
Authentication = Literal[
    "os-user", "as-given", "system", "session", "token", "password", "link", "oidc"
]


@dataclass(frozen=True)
class Actor:
    """An authenticated person or the system itself.

    ``name`` is whose authority the action carries: the roles checked, the name the records
    keep (author, approver) and the two-person rule; ``via`` how it was established; ``host``
    where from. ``by`` is an admin acting on behalf of ``name`` (for ``reason``): the audit
    events then record ``by`` as their actor, and ``name`` and ``reason`` beside it (see
    :func:`bulletin.app.users.act_for`, the one way to make such an actor).
    """

    name: str
    via: Authentication = "as-given"
    host: str = ""
    by: str = ""
    reason: str = ""

    @classmethod
    def system(cls) -> Actor:
        """Bulletin itself (the daemon's jobs, CAP feeds)."""
        from bulletin.identity import SYSTEM_ACTOR

        return cls(SYSTEM_ACTOR, "system", socket.gethostname())


def acts(action: Callable[P, R]) -> Callable[P, R]:
    """Mark an application-layer function: while it runs, the audit events written in the name
    of its :class:`Actor` argument record how that actor was authenticated and from where
    (:func:`bulletin.audit.acting`)."""

    @functools.wraps(action)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        actor = next((a for a in (*args, *kwargs.values()) if isinstance(a, Actor)), None)
        if actor is None:
            return action(*args, **kwargs)
        with audit.acting(actor):
            return action(*args, **kwargs)

    return run
