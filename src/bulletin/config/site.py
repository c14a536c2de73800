"""Where Bulletin runs and who uses it: ``[agency]``, ``[paths]``, ``[database]``, ``[users]``,
``[auth]``, ``[web]``, ``[portal]``, ``[daemon]`` and ``[sandbox]``."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from bulletin.config.oidc import OidcSettings
from bulletin.config.values import Role as Role  # re-exported: the roles are imported from here
from bulletin.config.values import (
    Section,
    checked_duration,
    known_jurisdiction,
    language_tags,
    parse_duration,
    time_of_day,
)


class AgencySettings(Section):
    name: str = "Bulletin Demo Agency"
    time_zone: str = "America/New_York"
    contact: str = ""
    website: str = ""
    jurisdiction: str = "US-MA"
    bates_prefix: str = "BUL"
    # the languages notices are written in (BCP 47 tags); the first is every notice's primary
    languages: list[str] = Field(default_factory=lambda: ["en"])

    _known_jurisdiction = field_validator("jurisdiction")(known_jurisdiction)

    @field_validator("languages")
    @classmethod
    def _language_tags(cls, value: list[str]) -> list[str]:
        return language_tags(value)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value


class PathsSettings(Section):
    data_dir: Path = Path("./bulletin-data")
    # warn (status, the daemon's hourly log) when less than this share of the space or of
    # the inodes is free where Bulletin writes; 0 turns the warning off
    warn_free_percent: float = Field(default=10.0, ge=0, le=100)


# the databases and drivers Bulletin ships with (a bare postgresql:// means psycopg 2 to
# SQLAlchemy, which is not installed)
DATABASE_SCHEMES = ("sqlite", "postgresql+psycopg")


class DatabaseSettings(Section):
    url: str = ""  # empty: sqlite:///<data_dir>/bulletin.db
    busy_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a lock")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if value and scheme.lower() not in DATABASE_SCHEMES:
            # the scheme alone is named: the rest of a URL may hold a password
            what = f"URL scheme {scheme!r}" if sep and len(scheme) <= 40 else "URL (no scheme)"
            raise ValueError(
                f"unsupported database {what}; use "
                "sqlite:///path/to/bulletin.db or postgresql+psycopg://user@host/database"
            )
        return value


class UserSettings(Section):
    roles: list[Role] = Field(default_factory=list)
    os_user: str | None = None


class AuthSettings(Section):
    # signing in with a password also needs a TOTP code for an account holding any of these
    require_mfa_for: list[Role] = Field(default_factory=list)
    # single sign-on through an OpenID Connect provider (bulletin.config.oidc); None: none
    oidc: OidcSettings | None = None


class PortalSettings(Section):
    """The public archive portal (``bulletin portal``): read-only, no sign-in."""

    # `bulletin portal` refuses to start unless this is true
    enabled: bool = False
    # where `bulletin portal` listens (host:port)
    address: str = "127.0.0.1:8081"
    # visitor comments are shown beside the agency's posts only when true
    show_comments: bool = False
    # "noindex" asks search engines not to index the portal (X-Robots-Tag, robots.txt)
    robots: Literal["index", "noindex"] = "noindex"
    # results per page by default, and the most a visitor may ask for (?size=)
    page_size: int = Field(default=20, ge=1, le=200)
    max_page_size: int = Field(default=50, ge=1, le=200)
    # the deepest result paging reaches (page x size); a search past it is asked to narrow
    max_results: int = Field(default=1000, ge=1, le=10_000)
    # candidate rows one search reads at most before it stops looking for more hits
    max_scan: int = Field(default=20_000, ge=100, le=1_000_000)
    # requests per minute from one client address before it gets 429 Too Many Requests
    rate_limit: int = Field(default=120, ge=1)
    # how long browsers and caches may keep a page (Cache-Control: public, max-age)
    cache_seconds: int = Field(default=300, ge=0)
    # series never shown (beside hidden, deleted, training and disposed records)
    withheld_series: list[str] = Field(default_factory=lambda: ["moderation-actions"])
    # addresses (or networks, CIDR) of reverse proxies whose X-Forwarded-* are believed
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as e:
                raise ValueError(f"{item!r} is not an IP address or network") from e
        return value


class WebSettings(Section):
    # the address people reach Bulletin's pages at (links it prints, e.g. to set a password);
    # empty: http://127.0.0.1:8080
    base_url: str = ""

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("give an http:// or https:// URL")
        return value.rstrip("/")

    # where the web console listens (host:port): `bulletin web`, and the daemon itself with
    # serve_with_daemon
    address: str = "127.0.0.1:8080"
    # the daemon serves the web console too (the embedded defaults do, so `make run` gives a
    # URL); a configuration file runs `bulletin web` as a unit of its own instead
    serve_with_daemon: bool = False
    # addresses (or networks, CIDR) of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; from anyone else they are ignored
    trusted_proxies: list[str] = Field(default_factory=list)
    # a session ends after this long without a request, and this long after sign-in at most
    session_idle: str = "30min"
    session_lifetime: str = "12h"
    # sign-in is slowed down (a wait doubling with each further failure) after this many
    # failures within throttle_window, per account name and per address
    throttle_account_failures: int = Field(default=5, ge=1)
    throttle_address_failures: int = Field(default=20, ge=1)
    throttle_window: str = "15min"

    _valid_duration = field_validator("session_idle", "session_lifetime", "throttle_window")(
        checked_duration
    )

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as e:
                raise ValueError(f"{item!r} is not an IP address or network") from e
        return value

    @property
    def link_base(self) -> str:
        """Where links printed for people start."""
        return self.base_url or f"http://{self.address}"

    @property
    def session_idle_delta(self) -> timedelta:
        return parse_duration(self.session_idle)

    @property
    def session_lifetime_delta(self) -> timedelta:
        return parse_duration(self.session_lifetime)

    @property
    def throttle_window_delta(self) -> timedelta:
        return parse_duration(self.throttle_window)


def host_port(value: str, lowest_port: int = 0, example: str = "127.0.0.1:8080") -> str:
    """``value`` when it is ``host:port`` with a port from ``lowest_port`` (0: any free one)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not lowest_port <= int(port) <= 65535:
        raise ValueError(f"give host:port, e.g. {example} (not {value!r})")
    return value


class SandboxSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    state_file: Path | None = None  # None: <data_dir>/sandbox.json
    start_with_daemon: bool = False


class DaemonSettings(Section):
    scan_interval: float = Field(default=1.0, gt=0, description="fallback due-scan, seconds")
    lease_seconds: int = Field(default=120, ge=5)
    # deliveries carried out at once, each of a different account (one account's go in order)
    max_parallel_deliveries: int = Field(default=4, ge=1, le=64)
    max_inline_wait: float = Field(default=5.0, ge=0)
    routine_give_up: str = "1d"
    # a delivery still retried this long after its first attempt is reported by status --check
    stuck_after: str = "30min"
    verify_at: str = "03:30"
    # host:port of a Prometheus endpoint (/metrics), e.g. "127.0.0.1:9464"; empty: none
    metrics_address: str = ""

    _time_of_day = field_validator("verify_at")(time_of_day)

    @field_validator("metrics_address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        return host_port(value, 1, "127.0.0.1:9464") if value else value

    _valid_duration = field_validator("routine_give_up", "stuck_after")(checked_duration)

    @property
    def routine_give_up_delta(self) -> timedelta:
        """How long a routine delivery is retried before it is marked failed."""
        return parse_duration(self.routine_give_up)

    @property
    def stuck_after_delta(self) -> timedelta:
        """How long after its first attempt a delivery still retried needs a person."""
        return parse_duration(self.stuck_after)
