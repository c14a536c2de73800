"""The command line: one group, subcommands by noun. Errors print one line, never a traceback.

Exit codes: 0 done, 1 refused or failed, 2 usage or configuration error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from bulletin import __version__
from bulletin.app import App
from bulletin.clock import Clock, SystemClock
from bulletin.config import Settings, load_settings
from bulletin.errors import BulletinError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """What every command receives: the configuration source and, lazily, the app (on
    ``clock``, else the wall clock)."""

    config_path: str | None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Clock | None = None
    _settings: Settings | None = None
    _app: App | None = None
    _warned: bool = False

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            warnings: list[str] = []
            self._settings = load_settings(self.config_path, self.environ, warnings=warnings)
            for line in warnings:
                click.echo(f"bulletin: warning: {line}", err=True)
        return self._settings

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = App(self.settings, self.environ, self.clock or SystemClock())
        return self._app

    def warn_open_mode(self) -> None:
        if self.settings.open_mode and not self._warned:
            self._warned = True
            click.echo(
                "bulletin: warning: no [users] configured; names are recorded as given and "
                "roles are not enforced",
                err=True,
            )

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


class BulletinGroup(click.Group):
    """Turns :class:`BulletinError` into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BulletinError as e:
            click.echo(f"bulletin: error: {e}", err=True)
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as e:  # a bug: still one line for the user, the detail in the log
            import logging

            logging.getLogger("bulletin").debug("unexpected error", exc_info=True)
            click.echo(
                f"bulletin: error: unexpected {type(e).__name__}: {e} (please report this)",
                err=True,
            )
            sys.exit(1)
        finally:
            obj = ctx.obj
            if isinstance(obj, Context):
                obj.close()


def json_option(func: F) -> F:
    """``--json``: print one JSON object instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def emit(as_json: bool, payload: dict[str, Any], text: str | list[str]) -> None:
    """Print ``payload`` as JSON or ``text`` for people."""
    if as_json:
        click.echo(json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True))
        return
    for line in [text] if isinstance(text, str) else text:
        click.echo(line)


pass_context = click.make_pass_decorator(Context)


@click.group(cls=BulletinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BULLETIN_CONFIG",
    help="Configuration file (default: $BULLETIN_CONFIG, ./bulletin.toml, built-in defaults).",
)
@click.version_option(__version__, prog_name="bulletin")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Bulletin publishes an agency's public notices to every platform exactly once and keeps
    the public record: every post and comment, in write-once storage."""
    # Run in-process, a caller may give the clock every command reads: invoke(..., obj=clock).
    ctx.obj = Context(config_path, clock=ctx.obj if isinstance(ctx.obj, Clock) else None)


def main() -> None:
    """Console entry point."""
    cli(prog_name="bulletin")


# The subcommand modules import the helpers above, so they are registered last.
from bulletin.cli import (  # noqa: E402
    admin,
    archive,
    comment,
    notice,
    records,
    redact,
    retention,
    sandbox,
    template,
)
from bulletin.cli import export as export_cli  # noqa: E402

for _module in (
    admin,
    archive,
    comment,
    notice,
    records,
    redact,
    retention,
    sandbox,
    template,
    export_cli,
):
    _module.register(cli)

from bulletin.cli import cap  # noqa: E402

cap.register(cli)
