"""The settings model, assembled from its sections. Built once at start by
:func:`bulletin.config.load_settings`.

Relative paths are resolved against the current directory when the settings are loaded, so
every later use sees absolute paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from bulletin.config.accounts import (
    ACCOUNT_NAME,
    AccountSettings,
    AnyAccountSettings,
    FacebookSettings,
    FeedAccountSettings,
)
from bulletin.config.archive import (
    PERMANENT_SERIES,
    ArchiveSettings,
    CaptureSettings,
    Disposition,
    ExportSettings,
    RedactionSettings,
    RequestsSettings,
    RetentionSettings,
)
from bulletin.config.notify import NotifySettings
from bulletin.config.publisher import CapSettings, PolicySettings, PublisherSettings
from bulletin.config.site import (
    AgencySettings,
    AuthSettings,
    DaemonSettings,
    DatabaseSettings,
    PathsSettings,
    PortalSettings,
    SandboxSettings,
    UserSettings,
    WebSettings,
)
from bulletin.config.timestamp import TimestampSettings
from bulletin.config.values import Section, parse_period
from bulletin.errors import ConfigError
from bulletin.names import name_problem, printable
from bulletin.timeparse import Span

A = TypeVar("A", bound=AccountSettings)


class Settings(Section):
    """Everything Bulletin is configured with. ``source`` names the file it came from."""

    agency: AgencySettings = AgencySettings()
    paths: PathsSettings = PathsSettings()
    database: DatabaseSettings = DatabaseSettings()
    archive: ArchiveSettings = ArchiveSettings()
    retention: RetentionSettings = RetentionSettings()
    requests: RequestsSettings = RequestsSettings()
    export: ExportSettings = ExportSettings()
    users: dict[str, UserSettings] = Field(default_factory=dict)
    auth: AuthSettings = AuthSettings()
    web: WebSettings = WebSettings()
    portal: PortalSettings = PortalSettings()
    accounts: dict[str, AnyAccountSettings] = Field(default_factory=dict)
    facebook: FacebookSettings = FacebookSettings()
    sandbox: SandboxSettings = SandboxSettings()
    daemon: DaemonSettings = DaemonSettings()
    publisher: PublisherSettings = PublisherSettings()
    policy: PolicySettings = PolicySettings()
    capture: CaptureSettings = CaptureSettings()
    cap: CapSettings = CapSettings()
    redaction: RedactionSettings = RedactionSettings()
    timestamp: TimestampSettings = TimestampSettings()
    notify: NotifySettings = NotifySettings()
    source: str = "built-in defaults"

    @field_validator("users")
    @classmethod
    def _user_names(cls, value: dict[str, UserSettings]) -> dict[str, UserSettings]:
        for name in value:
            problem = name_problem(name)
            if problem:
                raise ValueError(f"user name '{printable(name)}' {problem}")
        return value

    @field_validator("accounts")
    @classmethod
    def _account_names(cls, value: dict[str, AnyAccountSettings]) -> dict[str, AnyAccountSettings]:
        for name in value:
            if not ACCOUNT_NAME.fullmatch(name):
                raise ValueError(
                    f"account name {name!r} must be letters, digits, '-' or '_' (at most 64), "
                    "starting with a letter or digit: it names files and appears in ids"
                )
        return value

    @model_validator(mode="after")
    def _account_languages(self) -> Settings:
        known = self.agency.languages
        for name, account in self.accounts.items():
            unknown = [t for t in account.languages if t != "*" and t not in known]
            if unknown:
                raise ValueError(
                    f"account {name} posts {', '.join(unknown)}, which is not among the "
                    f"agency's languages ({', '.join(known)})"
                )
        return self

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
        """Where feed account ``account`` writes its file."""
        return self.account(account, FeedAccountSettings).path or self.data_dir / f"{account}.xml"

    def account(self, name: str, kind: type[A]) -> A:
        """``[accounts.NAME]`` as the model of its platform.

        :raises ConfigError: the account is of another platform.
        """
        account = self.accounts[name]
        if not isinstance(account, kind):
            raise ConfigError(f"account {name} is a {account.platform} account")
        return account

    def retain_for(self, series: str) -> Span | None:
        """Retention period of ``series``, a calendar span (None = permanent)."""
        if series in PERMANENT_SERIES:
            return None
        configured = self.retention.series.get(series)
        return parse_period(configured.period if configured else self.retention.default_period)

    def is_permanent(self, series: str) -> bool:
        """Whether records of ``series`` are kept for good (a legal hold that no release of a
        hold or request ever lifts)."""
        return self.retain_for(series) is None

    def anchor_for(self, series: str) -> Literal["posted", "captured"]:
        """Whether ``series`` counts from the posted or the captured date."""
        configured = self.retention.series.get(series)
        return configured.anchor if configured else self.retention.default_anchor

    def disposition_for(self, series: str) -> Disposition:
        """What happens to a record of ``series`` once its retention has passed."""
        if series in PERMANENT_SERIES:
            return "review"
        configured = self.retention.series.get(series)
        return configured.disposition if configured else self.retention.default_disposition
