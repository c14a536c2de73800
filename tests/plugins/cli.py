"""The command line in-process, the one way every test runs it: ``bulletin --config FILE ...``
through click's runner, with ``BULLETIN_USER`` cleared (so the acting user comes from the
command, as for a person at a terminal) and, when given, the instance's clock."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner, Result

from bulletin.cli import cli
from bulletin.clock import Clock
from tests.plugins.bulletin_app import Instance


def invoke(
    target: Instance | Path | str | None,
    *args: str,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> Result:
    """``bulletin --config <target's config> *args`` (no ``--config`` for ``None``: the
    configuration is found as a person's shell would find it); the result, whatever the exit
    code."""
    config = target.config if isinstance(target, Instance) else target
    where = [] if config is None else ["--config", str(config)]
    environ = {"BULLETIN_USER": "", **(env or {})}
    return CliRunner().invoke(cli, [*where, *args], env=environ, input=input, obj=clock)


def run(
    target: Instance | Path | str,
    *args: str,
    code: int = 0,
    clock: Clock | None = None,
    stdout: bool = False,
) -> str:
    """Like :func:`invoke`, asserting the exit code: what it printed, stdout and stderr
    together (with ``stdout``, stdout alone)."""
    result = invoke(target, *args, clock=clock)
    assert result.exit_code == code, result.output
    return result.stdout if stdout else result.output
