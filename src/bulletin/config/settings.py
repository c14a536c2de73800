"""The settings model. Built once at start by :func:`bulletin.config.load_settings`.

Relative paths are resolved against the current directory when the settings are loaded, so
every later use sees absolute paths.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["dispatcher", "approver", "clerk", "admin"]
Priority = Literal["emergency", "advisory", "community"]
Platform = Literal["feed", "x", "facebook"]

DEFAULT_CATEGORIES: dict[str, Priority] = {
    "weather-emergency": "emergency",
    "missing-person": "emergency",
    "endangered-person": "emergency",
    "evacuation": "emergency",
    "shelter-in-place": "emergency",
    "road-closure": "advisory",
    "traffic": "advisory",
    "public-safety-advisory": "advisory",
    "tip-request": "advisory",
    "special-event": "community",
    "crime-prevention": "community",
    "crime-data": "community",
    "community-outreach": "community",
    "recruitment": "community",
    "general": "community",
}

_PERIOD = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")


def parse_period(text: str) -> timedelta | None:
    """``"7y"``, ``"90d"``, ``"6m"``, ``"2w"`` as a timedelta; ``"permanent"`` as None.

    Years count 365.25 days and months 30.44, so a period never falls short of the calendar.
    """
    if text.strip().lower() == "permanent":
        return None
    match = _PERIOD.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a period (use e.g. 7y, 6m, 2w, 90d or permanent)")
    count, unit = int(match.group(1)), match.group(2)
    days = {"d": 1.0, "w": 7.0, "m": 30.44, "y": 365.25}[unit] * count
    return timedelta(days=round(days + 0.5))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencySettings(_Section):
    name: str = "Bulletin Demo Agency"
    time_zone: str = "America/New_York"
    contact: str = ""
    website: str = ""
    jurisdiction: str = "US-MA"
    bates_prefix: str = "BUL"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value


class PathsSettings(_Section):
    data_dir: Path = Path("./bulletin-data")


class DatabaseSettings(_Section):
    url: str = ""  # empty: sqlite:///<data_dir>/bulletin.db
    busy_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a lock")


class LocalStoreSettings(_Section):
    path: Path | None = None  # None: <data_dir>/archive


class S3StoreSettings(_Section):
    bucket: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    create_bucket: bool = False


class ArchiveSettings(_Section):
    store: Literal["local", "s3"] = "local"
    local: LocalStoreSettings = LocalStoreSettings()
    s3: S3StoreSettings = S3StoreSettings()


class SeriesSettings(_Section):
    period: str
    anchor: Literal["posted", "captured"] = "captured"
    disposition: Literal["destroy-after-approval", "transfer-to-archives", "review"] = "review"

    @field_validator("period")
    @classmethod
    def _valid_period(cls, value: str) -> str:
        parse_period(value)
        return value


class RetentionSettings(_Section):
    default_period: str = "7y"
    series: dict[str, SeriesSettings] = Field(default_factory=dict)

    @field_validator("default_period")
    @classmethod
    def _valid_period(cls, value: str) -> str:
        parse_period(value)
        return value


class UserSettings(_Section):
    roles: list[Role] = Field(default_factory=list)
    os_user: str | None = None


class AccountSettings(_Section):
    """One account on one platform. Credentials are named here, never stored here."""

    platform: Platform
    base_url: str = ""
    enabled: bool = True
    capture_interval: int = Field(
        default=300, ge=1, description="seconds between listings of the account's posts"
    )
    monthly_budget: float = Field(
        default=0.0, ge=0, description="estimated platform spend per month, USD; 0 = none"
    )
    # feed
    path: Path | None = None
    title: str = ""
    link: str = ""
    max_entries: int = Field(default=500, ge=1)
    # x (OAuth 1.0a user context)
    consumer_key_env: str = ""
    consumer_secret_env: str = ""
    access_token_env: str = ""
    access_token_secret_env: str = ""
    # facebook
    page_id: str = ""
    token_env: str = ""
    graph_version: str = "v26.0"

    @model_validator(mode="after")
    def _platform_fields(self) -> AccountSettings:
        missing: list[str] = []
        if self.platform == "x":
            missing = [
                k
                for k in (
                    "consumer_key_env",
                    "consumer_secret_env",
                    "access_token_env",
                    "access_token_secret_env",
                )
                if not getattr(self, k)
            ]
        elif self.platform == "facebook":
            missing = [k for k in ("page_id", "token_env") if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.platform} account needs {', '.join(missing)}")
        return self


class SandboxSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    state_file: Path | None = None  # None: <data_dir>/sandbox.json
    start_with_daemon: bool = False


class DaemonSettings(_Section):
    scan_interval: float = Field(default=1.0, gt=0, description="fallback due-scan, seconds")
    lease_seconds: int = Field(default=120, ge=5)
    max_inline_wait: float = Field(default=5.0, ge=0)
    routine_give_up: str = "1d"
    verify_at: str = "03:30"

    @field_validator("routine_give_up")
    @classmethod
    def _valid_period(cls, value: str) -> str:
        if parse_period(value) is None:
            raise ValueError("routine_give_up cannot be permanent")
        return value


class PlatformPrices(_Section):
    """Pay-per-use prices of one platform, in US dollars."""

    read: float = Field(default=0.0, ge=0, description="per resource read, once per UTC day")


class CaptureSettings(_Section):
    """How often threads are swept. Intervals in seconds; a budget slows, never stops."""

    hot_interval: int = Field(default=60, ge=1, description="emergency thread while hot")
    hot_hours: float = Field(default=6.0, ge=0)
    warm_interval: int = Field(default=300, ge=1, description="thread under a day old")
    cool_interval: int = Field(default=1800, ge=1, description="thread under three days old")
    cold_interval: int = Field(default=6 * 3600, ge=1, description="older threads")
    full_interval: int = Field(
        default=6 * 3600, ge=1, description="complete re-listing (edits, deletions)"
    )
    lookback_margin_hours: float = Field(default=24.0, ge=0)
    warn_at: float = Field(default=0.8, gt=0, description="share of the budget that warns")
    slow_factor: float = Field(default=4.0, ge=1, description="interval factor over budget")
    batch_items: int = Field(
        default=1000, ge=1, description="items stored per group commit before a cursor moves"
    )
    fetch_media: bool = True
    media_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    prices: dict[str, PlatformPrices] = Field(
        default_factory=lambda: {"x": PlatformPrices(read=0.005)}
    )

    def price(self, platform: str) -> PlatformPrices:
        return self.prices.get(platform, PlatformPrices())


class PublisherSettings(_Section):
    categories: dict[str, Priority] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    max_text_length: int = Field(default=5000, ge=1)
    past_grace_minutes: int = Field(default=5, ge=0)


class Settings(_Section):
    """Everything Bulletin is configured with. ``source`` names the file it came from."""

    agency: AgencySettings = AgencySettings()
    paths: PathsSettings = PathsSettings()
    database: DatabaseSettings = DatabaseSettings()
    archive: ArchiveSettings = ArchiveSettings()
    retention: RetentionSettings = RetentionSettings()
    users: dict[str, UserSettings] = Field(default_factory=dict)
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    sandbox: SandboxSettings = SandboxSettings()
    daemon: DaemonSettings = DaemonSettings()
    publisher: PublisherSettings = PublisherSettings()
    capture: CaptureSettings = CaptureSettings()
    source: str = "built-in defaults"

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'bulletin.db'}"

    @property
    def archive_path(self) -> Path:
        return self.archive.local.path or self.data_dir / "archive"

    @property
    def sandbox_state_file(self) -> Path:
        return self.sandbox.state_file or self.data_dir / "sandbox.json"

    @property
    def open_mode(self) -> bool:
        """No ``[users]`` configured: names are recorded as given, roles not enforced."""
        return not self.users

    def is_sandbox(self, account: str) -> bool:
        """Whether ``account`` talks to a sandbox (any loopback address): its records are
        marked training, and the sandbox's well-known fake credentials may stand in."""
        base_url = self.accounts[account].base_url
        if not base_url:
            return False
        host = urlsplit(base_url).hostname or ""
        return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")

    def feed_path(self, account: str) -> Path:
        settings = self.accounts[account]
        return settings.path or self.data_dir / f"{account}.xml"

    def retain_for(self, series: str) -> timedelta | None:
        """Retention period of ``series`` (None = permanent)."""
        configured = self.retention.series.get(series)
        return parse_period(configured.period if configured else self.retention.default_period)
