"""``bulletin portal``: the public archive portal, served by uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import click

from bulletin.cli import Context, pass_context
from bulletin.config.site import host_port
from bulletin.errors import ConfigError


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return host_port(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("portal")
@click.option(
    "--address",
    default=None,
    metavar="HOST:PORT",
    callback=_address,
    help="Where to listen (default: [portal] address, 127.0.0.1:8081; port 0: any free one).",
)
@pass_context
def portal(ctx: Context, address: str | None) -> None:
    """Run the public archive portal (read-only, no sign-in) until SIGTERM. It serves only
    what [portal] allows; TLS is the reverse proxy's job (name it in [portal] trusted_proxies)."""
    import uvicorn

    from bulletin.portal.app import create_app

    settings = ctx.settings
    if not settings.portal.enabled:
        raise ConfigError(
            f"the public portal is off in {settings.source}; set [portal] enabled = true"
        )
    app = ctx.app
    app.checked_engine()  # an uninitialised database is said now, not at the first request
    host, _, port = (address or settings.portal.address).rpartition(":")
    click.echo(f"bulletin: public archive portal at http://{host}:{port}/", err=True)
    uvicorn.run(
        create_app(app),
        host=host.strip("[]"),
        port=int(port),
        proxy_headers=False,  # X-Forwarded-* are weighed by the app, from trusted proxies only
        server_header=False,
        log_level="warning",
    )
