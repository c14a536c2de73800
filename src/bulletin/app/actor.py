"""Who is acting, and how we know: every application-layer function takes an :class:`Actor`."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Literal

# How the actor was authenticated. The command line trusts the operating system: the login
# name mapped through ``[users] os_user`` ("os-user"), or a name given explicitly or through
# BULLETIN_USER in open mode ("as-given"). The daemon acts as itself ("system").
Authentication = Literal["os-user", "as-given", "system", "session", "token"]


@dataclass(frozen=True)
class Actor:
    """An authenticated person or the system itself.

    ``name`` is what audit lines record; ``via`` how it was established; ``host`` where from.
    """

    name: str
    via: Authentication = "as-given"
    host: str = ""

    @classmethod
    def system(cls) -> Actor:
        """Bulletin itself (the daemon's jobs, CAP feeds)."""
        from bulletin.identity import SYSTEM_ACTOR

        return cls(SYSTEM_ACTOR, "system", socket.gethostname())
