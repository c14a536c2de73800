"""``bulletin web``: the web console alone, served by uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import click

from bulletin.cli import Context, pass_context
from bulletin.config.site import host_port


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return host_port(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("web")
@click.option(
    "--address",
    default=None,
    metavar="HOST:PORT",
    callback=_address,
    help="Where to listen (default: [web] address, 127.0.0.1:8080; port 0: any free one).",
)
@pass_context
def web(ctx: Context, address: str | None) -> None:
    """Run the web console (sign-in, sessions) until SIGTERM. TLS is the reverse proxy's job;
    name it in [web] trusted_proxies so its X-Forwarded-* headers are believed."""
    from bulletin.web import server

    app = ctx.app
    app.checked_engine()  # an uninitialised database is said now, not at the first request
    sock = server.bind(address or ctx.settings.web.address)
    click.echo(f"bulletin: web console at http://{server.bound_address(sock)}/", err=True)
    server.run(app, sock)
