"""Build the connector for a configured account."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from bulletin.config.settings import Settings
from bulletin.connectors.base import Connector
from bulletin.errors import ConfigError, NotFound

# platform -> "module:Class"; each class has
# ``from_settings(name, settings, environ) -> Connector``.
IMPLEMENTATIONS: dict[str, str] = {
    "feed": "bulletin.connectors.feed:FeedConnector",
    "x": "bulletin.connectors.x:XConnector",
    "facebook": "bulletin.connectors.facebook:FacebookConnector",
}


def connector_class(platform: str) -> type[Connector]:
    """The connector class of ``platform``.

    :raises ConfigError: the platform has no implementation.
    """
    target = IMPLEMENTATIONS.get(platform)
    if target is None:
        raise ConfigError(f"no connector for platform {platform!r}")
    module_name, class_name = target.split(":")
    cls: type[Connector] = getattr(importlib.import_module(module_name), class_name)
    return cls


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
