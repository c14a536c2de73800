"""Build the connector for a configured account, through its platform's spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulletin.config.settings import Settings
from bulletin.connectors.base import Connector
from bulletin.connectors.platforms import platform as spec_of
from bulletin.errors import ConfigError, NotFound


def connector_class(platform: str) -> type[Connector]:
    """The connector class of ``platform`` (see :mod:`bulletin.connectors.platforms`).

    :raises ConfigError: the platform has no implementation.
    """
    return spec_of(platform).connector_class()


def build_connector(
    name: str, settings: Settings, environ: Mapping[str, str], **options: Any
) -> Connector:
    """The connector for account ``name``; ``options`` (``retry``, ``timeout``, ``clock``)
    go to the network connectors' constructors.

    :raises NotFound: no such account in the configuration.
    :raises ConfigError: the platform has no implementation.
    :raises AuthError: a named credential is missing.
    """
    account = settings.accounts.get(name)
    if account is None:
        known = ", ".join(sorted(settings.accounts)) or "none configured"
        raise NotFound(f"unknown account {name!r} (known: {known})")
    try:
        cls: Any = connector_class(account.platform)  # each has its own from_settings
    except ConfigError as e:
        raise ConfigError(f"accounts.{name}.platform: {e}") from None
    if settings.is_sandbox(name):
        from bulletin.connectors.sandbox import SANDBOX_ENV

        environ = {**SANDBOX_ENV, **environ}
    connector: Connector = cls.from_settings(name, settings, environ, **options)
    return connector
