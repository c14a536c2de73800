"""Every platform Bulletin publishes to, described once and registered here.

A :class:`PlatformSpec` says what the rest of Bulletin needs to know of a platform without
asking its connector: the model of its ``[accounts.NAME]`` settings, how long a post may be
and how its text is counted, whether a long text may go out as a thread, how a link is
sent, what a post is estimated to cost, the hosts its client talks to (the sandbox stands
in for them), its connector class and its sandbox API. Classes are named as
``"module:Class"`` and imported when first used: a platform's client library loads only
when that platform is used.

Adding a platform: its connector module, its sandbox API module, its settings model in
:mod:`bulletin.config.accounts` (configuration is below the connectors), and one entry in
:data:`PLATFORMS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from bulletin.config.accounts import (
    AccountSettings,
    BlueskyAccountSettings,
    FacebookAccountSettings,
    FeedAccountSettings,
    InstagramAccountSettings,
    MastodonAccountSettings,
    ThreadsAccountSettings,
    XAccountSettings,
)
from bulletin.config.publisher import PlatformCost
from bulletin.errors import ConfigError

if TYPE_CHECKING:
    from bulletin.connectors.base import Connector, Limits


@dataclass(frozen=True)
class PlatformSpec:
    """One platform. ``connector`` and ``sandbox`` are ``"module:Class"``; ``sandbox_prefix``
    is the start of the request paths its sandbox API answers (the longest match wins)."""

    name: str
    settings: type[AccountSettings]  # its member of bulletin.config.accounts.AnyAccountSettings
    connector: str
    threads: bool = False  # a long text may go out as a numbered thread of replies
    link_in_text: bool = False  # the link is appended to the text (else sent beside it)
    cost: PlatformCost = field(default_factory=PlatformCost)  # over which [publisher.costs]
    hosts: tuple[str, ...] = ()  # the API's scheme and host, rewritten to a base_url
    sandbox: str = ""
    sandbox_prefix: str = "/"

    def connector_class(self) -> type[Connector]:
        """The connector class (imported now, with its client library)."""
        cls: type[Connector] = _load(self.connector)
        return cls

    def sandbox_class(self) -> Any:
        """The class of its sandbox API (built with the sandbox's state), or None."""
        return _load(self.sandbox) if self.sandbox else None

    def limits(self) -> Limits:
        """What one post may hold, as the connector says, without credentials or network."""
        return _probe(self.name).limits()

    def measure(self, text: str) -> int:
        """The length of ``text`` as the platform counts it."""
        return _probe(self.name).measure(text)

    def as_sent(self, text: str, link: str | None) -> str:
        """The text as the connector sends it with ``link``."""
        if self.link_in_text and link and link not in text:
            return f"{text}\n{link}"
        return text


PLATFORMS: dict[str, PlatformSpec] = {
    spec.name: spec
    for spec in (
        PlatformSpec(
            "feed",
            FeedAccountSettings,
            "bulletin.connectors.feed:FeedConnector",
        ),
        PlatformSpec(
            "x",
            XAccountSettings,
            "bulletin.connectors.x:XConnector",
            threads=True,
            link_in_text=True,
            # docs.x.com pricing, 2026: a post with a URL costs more
            cost=PlatformCost(post=0.015, post_with_url=0.200),
            hosts=("https://api.twitter.com", "https://upload.twitter.com", "https://api.x.com"),
            sandbox="bulletin.connectors.sandbox.x_api:XApi",
            sandbox_prefix="/2/",
        ),
        PlatformSpec(
            "facebook",
            FacebookAccountSettings,
            "bulletin.connectors.facebook:FacebookConnector",
            hosts=("https://graph.facebook.com",),
            sandbox="bulletin.connectors.sandbox.graph_api:GraphApi",
        ),
        PlatformSpec(
            "mastodon",
            MastodonAccountSettings,
            "bulletin.connectors.mastodon:MastodonConnector",
            threads=True,
            link_in_text=True,
            sandbox="bulletin.connectors.sandbox.mastodon_api:MastodonApi",
            sandbox_prefix="/api/",
        ),
        PlatformSpec(
            "bluesky",
            BlueskyAccountSettings,
            "bulletin.connectors.bluesky:BlueskyConnector",
            threads=True,
            link_in_text=True,
            sandbox="bulletin.connectors.sandbox.bluesky_api:BlueskyApi",
            sandbox_prefix="/xrpc/",
        ),
        PlatformSpec(
            "threads",
            ThreadsAccountSettings,
            "bulletin.connectors.threads:ThreadsConnector",
            threads=True,
            link_in_text=True,
            hosts=("https://graph.threads.net", "https://graph.threads.com"),
            sandbox="bulletin.connectors.sandbox.threads_api:ThreadsApi",
        ),
        PlatformSpec(
            "instagram",
            InstagramAccountSettings,
            "bulletin.connectors.instagram:InstagramConnector",
            hosts=("https://graph.facebook.com",),
            sandbox="bulletin.connectors.sandbox.instagram_api:InstagramApi",
        ),
    )
}


def platform(name: str) -> PlatformSpec:
    """The spec of platform ``name``.

    :raises ConfigError: no such platform.
    """
    spec = PLATFORMS.get(name)
    if spec is None:
        raise ConfigError(f"no connector for platform {name!r}")
    return spec


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@cache
def _probe(name: str) -> Connector:
    """A connector of ``name``'s class, uninitialised: only ``limits`` and ``measure`` are
    called on it, and neither needs credentials or a network session."""
    from bulletin.connectors.base import Connector

    cls = platform(name).connector_class()
    probe: Connector = cls.__new__(cls)
    Connector.__init__(probe, f"({name} measure)")
    return probe
