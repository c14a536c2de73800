"""``bulletin sandbox``: the local X / Facebook stand-in for demos, tests and staff training."""

from __future__ import annotations

from pathlib import Path

import click

from bulletin.cli import Context, pass_context


@click.command("sandbox")
@click.option("--host", default=None, help="Address to listen on (default: [sandbox] host).")
@click.option("--port", default=None, type=int, help="Port (default: [sandbox] port; 0: any).")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where posts and comments persist (default: [sandbox] state_file, "
    "<data_dir>/sandbox.json).",
)
@pass_context
def sandbox(ctx: Context, host: str | None, port: int | None, state_file: Path | None) -> None:
    """Run the sandbox platform server (X API v2 and Graph API subset) until SIGTERM."""
    from bulletin.connectors.sandbox import serve

    settings = ctx.settings
    state = state_file or settings.sandbox_state_file
    state.parent.mkdir(parents=True, exist_ok=True)
    serve(host or settings.sandbox.host, settings.sandbox.port if port is None else port, state)
