"""Credentials: named in configuration, read from the environment or systemd credentials.

A setting such as ``token_env = "PD_FACEBOOK_TOKEN"`` names an environment variable, or a file
of that name under ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``). Values are never
logged and never appear in error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from bulletin.errors import AuthError

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def is_variable_name(value: str) -> bool:
    """Whether ``value`` reads as the name of a variable rather than a credential pasted in its
    place: letters, digits and ``_`` (at most 64), and not shaped like a key or token (long,
    mixed-case letters with digits and no ``_``, as X keys and Graph tokens are)."""
    if not _VARIABLE_NAME.fullmatch(value):
        return False
    token_shaped = (
        len(value) >= 16
        and "_" not in value
        and any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    )
    return not token_shaped


class Secret:
    """A credential value that prints as ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def resolve_secret(name: str, environ: Mapping[str, str], account: str) -> Secret:
    """The credential called ``name``.

    :raises AuthError: neither the variable nor the credentials file exists.
    """
    if environ.get(name):
        return Secret(environ[name])
    creds_dir = environ.get("CREDENTIALS_DIRECTORY")
    if creds_dir:
        candidate = Path(creds_dir) / name
        if candidate.is_file():
            return Secret(candidate.read_text("utf-8").strip())
    raise AuthError(
        f"account {account}: credential {name} is not set "
        "(an environment variable or a systemd credential of that name)"
    )
