"""``bulletin sandbox``: run the sandbox platform server in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from bulletin.connectors.sandbox import serve


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0: any free).")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file keeping the sandbox's posts and comments across restarts "
    "(default: in memory only).",
)
def sandbox(host: str, port: int, state_file: Path | None) -> None:
    """Run the local X / Facebook sandbox until Ctrl-C or SIGTERM."""
    serve(host, port, state_file)
