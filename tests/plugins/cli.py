"""The command line in-process, the one way every test runs it: ``bulletin --config FILE ...``
through click's runner, with ``BULLETIN_USER`` cleared (so the acting user comes from the
command, as for a person at a terminal), when given the instance's clock, and when given the
OS user who runs it (``login``), injected as the clock is: the kernel's word is never faked
through the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from bulletin.cli import InProcess, cli
from bulletin.clock import Clock
from bulletin.identity import Kernel
from tests.plugins.bulletin_app import Instance

LOGIN_UID = 4242  # the uid an injected login runs as: neither root nor the data's owner


@dataclass(frozen=True)
class Passwd:
    """A :class:`~bulletin.identity.Kernel` of a test's own: the real uid and a password
    database (uid to login name)."""

    uid: int
    names: Mapping[int, str] = field(default_factory=dict)

    def real_uid(self) -> int:
        return self.uid

    def user_name(self, uid: int) -> str | None:
        return self.names.get(uid)


def as_login(login: str | Kernel | None) -> Kernel | None:
    """The kernel that says ``login`` runs the command (a name: an ordinary user's uid)."""
    if isinstance(login, str):
        return Passwd(LOGIN_UID, {LOGIN_UID: login})
    return login


def invoke(
    target: Instance | Path | str | None,
    *args: str,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    login: str | Kernel | None = None,
) -> Result:
    """``bulletin --config <target's config> *args`` (no ``--config`` for ``None``: the
    configuration is found as a person's shell would find it), run by the OS user ``login``
    (a name or a :class:`Passwd`; default: this process's real user); the result, whatever
    the exit code."""
    config = target.config if isinstance(target, Instance) else target
    where = [] if config is None else ["--config", str(config)]
    environ = {"BULLETIN_USER": "", **(env or {})}
    given = InProcess(clock, as_login(login))
    return CliRunner().invoke(cli, [*where, *args], env=environ, input=input, obj=given)


def run(
    target: Instance | Path | str,
    *args: str,
    code: int = 0,
    clock: Clock | None = None,
    stdout: bool = False,
    login: str | Kernel | None = None,
) -> str:
    """Like :func:`invoke`, asserting the exit code: what it printed, stdout and stderr
    together (with ``stdout``, stdout alone)."""
    result = invoke(target, *args, clock=clock, login=login)
    assert result.exit_code == code, result.output
    return result.stdout if stdout else result.output
