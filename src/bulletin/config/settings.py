"""The settings model. Built once at start by :func:`bulletin.config.load_settings`.

Relative paths are resolved against the current directory when the settings are loaded, so
every later use sees absolute paths.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bulletin.config.secrets import is_variable_name
from bulletin.names import name_problem, printable
from bulletin.timeparse import Span, parse_span

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

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def parse_duration(text: str) -> timedelta:
    """A wait of fixed length in the one span syntax (:func:`bulletin.timeparse.parse_span`):
    ``"90s"``, ``"30min"``, ``"2h"``, ``"1d"``, ``"2w"``.

    :raises ValueError: not a span, or months or years (which have no fixed length).
    """
    return parse_span(text).exact()


@lru_cache(maxsize=256)  # called once per archived record, with a handful of values
def parse_period(text: str) -> Span | None:
    """A retention period: ``"7y"``, ``"6mo"``, ``"2w"``, ``"90d"`` (or long forms, ``"6
    months"``) as a calendar :class:`~bulletin.timeparse.Span`; ``"permanent"`` as None.

    :raises ValueError: not a span (``"6m"`` is refused as ambiguous, ``"0d"`` as no time).
    """
    if text.strip().lower() == "permanent":
        return None
    return parse_span(text)


_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})$")


def time_of_day(value: str) -> str:
    """``value`` when it is a 24-hour ``HH:MM`` clock time (``03:30``, ``4:00``).

    :raises ValueError: anything else, ``3am`` and ``25:00`` included.
    """
    match = _TIME_OF_DAY.match(value.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time of day (use 24-hour HH:MM, e.g. 03:30)")
    return value.strip()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def known_jurisdiction(value: str) -> str:
    """``value`` when its business-day calendar can be built (the ``holidays`` package knows
    its country and subdivision); empty is allowed (it means "inherit")."""
    if not value:
        return value
    from bulletin.business_days import BusinessCalendar
    from bulletin.errors import ConfigError

    try:
        BusinessCalendar(value)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return value


class AgencySettings(_Section):
    name: str = "Bulletin Demo Agency"
    time_zone: str = "America/New_York"
    contact: str = ""
    website: str = ""
    jurisdiction: str = "US-MA"
    bates_prefix: str = "BUL"

    _known_jurisdiction = field_validator("jurisdiction")(known_jurisdiction)

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
    # warn (status, the daemon's hourly log) when less than this share of the space or of
    # the inodes is free where Bulletin writes; 0 turns the warning off
    warn_free_percent: float = Field(default=10.0, ge=0, le=100)


# the databases and drivers Bulletin ships with (a bare postgresql:// means psycopg 2 to
# SQLAlchemy, which is not installed)
DATABASE_SCHEMES = ("sqlite", "postgresql+psycopg")


class DatabaseSettings(_Section):
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


class LocalStoreSettings(_Section):
    path: Path | None = None  # None: <data_dir>/archive


class S3StoreSettings(_Section):
    bucket: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    create_bucket: bool = False
    # how many objects of one batch are sent at once (each a look-up and a put)
    max_concurrency: int = Field(default=8, ge=1, le=64)


class WitnessSettings(_Section):
    """Where each ledger checkpoint's head is also written, outside the store (another trust
    domain: see docs/security.md). Every target is off by default."""

    syslog: bool = False
    # a Unix socket path, or host:port (UDP) of a remote syslog
    syslog_address: str = "/dev/log"
    webhook: str = ""  # HTTP(S) URL: POST {"head", "seq", "at", "hash"} as JSON
    # GET answering the points received, as a JSON array (empty: verify does not read back)
    webhook_read_url: str = ""
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)
    file: Path | None = None  # appended to, one JSON line per checkpoint; on another mount

    @field_validator("webhook", "webhook_read_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in {"http", "https"}:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class ArchiveSettings(_Section):
    store: Literal["local", "s3"] = "local"
    local: LocalStoreSettings = LocalStoreSettings()
    s3: S3StoreSettings = S3StoreSettings()
    witness: WitnessSettings = WitnessSettings()


Disposition = Literal["destroy-after-approval", "transfer-to-archives", "review"]
PERMANENT_SERIES = frozenset({"ledger", "certificates"})


class SeriesSettings(_Section):
    period: str
    anchor: Literal["posted", "captured"] = "captured"
    disposition: Disposition = "review"
    description: str = ""
    authority: str = ""  # the schedule item this follows, e.g. "GS50-01-12 Rev. 1"

    @field_validator("period")
    @classmethod
    def _valid_period(cls, value: str) -> str:
        parse_period(value)
        return value


class RetentionSettings(_Section):
    """The retention schedule: a period, anchor and disposition per record series.

    A series not listed uses the defaults. ``ledger`` and ``certificates`` are always
    permanent. Only ``destroy-after-approval`` series are ever listed for destruction, and then
    only through an approved disposition batch.
    """

    default_period: str = "7y"
    default_anchor: Literal["posted", "captured"] = "captured"
    default_disposition: Disposition = "review"
    disposition_at: str = Field(default="04:00", description="nightly batch listing, HH:MM")
    series: dict[str, SeriesSettings] = Field(default_factory=dict)

    _time_of_day = field_validator("disposition_at")(time_of_day)

    @field_validator("default_period")
    @classmethod
    def _valid_period(cls, value: str) -> str:
        parse_period(value)
        return value

    @field_validator("series")
    @classmethod
    def _permanent_series(cls, value: dict[str, SeriesSettings]) -> dict[str, SeriesSettings]:
        for name in PERMANENT_SERIES & set(value):
            if parse_period(value[name].period) is not None:
                raise ValueError(f"series {name!r} is always permanent")
        return value


class RequestsSettings(_Section):
    """Records requests: the statutory response deadline.

    ``response_days`` counted in business days (weekends and the jurisdiction's public holidays
    skipped) when ``business_days`` is true, else in calendar days; day 1 is the day after
    receipt. ``jurisdiction`` empty means ``[agency] jurisdiction``.
    """

    response_days: int = Field(default=10, ge=1)
    business_days: bool = True
    jurisdiction: str = ""

    _known_jurisdiction = field_validator("jurisdiction")(known_jurisdiction)
    # warn (bulletin status, the daemon's log each morning) this many days before a deadline
    warn_days: int = Field(default=3, ge=0)


class UserSettings(_Section):
    roles: list[Role] = Field(default_factory=list)
    os_user: str | None = None


CREDENTIAL_NAME_KEYS = (
    "consumer_key_env",
    "consumer_secret_env",
    "access_token_env",
    "access_token_secret_env",
    "token_env",
)


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
    link: str = ""  # the page an entry opens; empty: [agency] website
    feed_url: str = ""  # where the feed itself is served (rel="self"); empty: <link>/<file>
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
        for key in CREDENTIAL_NAME_KEYS:
            value = getattr(self, key)
            if value and not is_variable_name(value):
                # the value is never repeated: it may be the credential itself
                raise ValueError(
                    f"{key} must name an environment variable or systemd credential (such as "
                    "PD_X_ACCESS_TOKEN), not hold the credential; its value is not shown"
                )
        return self


class SandboxSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    state_file: Path | None = None  # None: <data_dir>/sandbox.json
    start_with_daemon: bool = False


class DaemonSettings(_Section):
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
        if not value:
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("give host:port, e.g. 127.0.0.1:9464")
        return value

    @field_validator("routine_give_up", "stuck_after")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def routine_give_up_delta(self) -> timedelta:
        """How long a routine delivery is retried before it is marked failed."""
        return parse_duration(self.routine_give_up)

    @property
    def stuck_after_delta(self) -> timedelta:
        """How long after its first attempt a delivery still retried needs a person."""
        return parse_duration(self.stuck_after)


class PlatformCost(_Section):
    """Estimated price of creating one post, in US dollars (X: docs.x.com pricing, 2026)."""

    post: float = Field(default=0.0, ge=0)
    post_with_url: float = Field(default=0.0, ge=0)


DEFAULT_COSTS: dict[Platform, PlatformCost] = {
    "x": PlatformCost(post=0.015, post_with_url=0.200),
    "facebook": PlatformCost(),
    "feed": PlatformCost(),
}


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
    # ``default`` and per-category overrides: how many people other than the author approve.
    approvals: dict[str, int] = Field(default_factory=lambda: {"default": 1})
    costs: dict[Platform, PlatformCost] = Field(default_factory=lambda: dict(DEFAULT_COSTS))
    # A routine post this far past its time when a daemon first sees it (the daemon was down)
    # waits for a person (state ``late``); an emergency one goes out at once.
    late_grace: str = "30min"

    @field_validator("late_grace")
    @classmethod
    def _valid_grace(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def late_grace_delta(self) -> timedelta:
        return parse_duration(self.late_grace)

    @model_validator(mode="after")
    def _known_approval_keys(self) -> PublisherSettings:
        for key, count in self.approvals.items():
            if key != "default" and key not in self.categories:
                raise ValueError(f"approvals.{key}: not a category (use default or a category)")
            if count < 1:
                raise ValueError(
                    f"approvals.{key}: at least one approval is needed (the department's "
                    "policy); use a pre-approved template for notices that cannot wait"
                )
        return self

    def approvals_needed(self, category: str) -> int:
        """How many approvals a notice of ``category`` needs."""
        return self.approvals.get(category, self.approvals.get("default", 1))

    def cost_of(self, platform: str) -> PlatformCost:
        for table in (self.costs, DEFAULT_COSTS):
            for name, cost in table.items():
                if name == platform:
                    return cost
        return PlatformCost()


RuleKind = Literal["pattern", "words", "length", "link-required", "alt-text"]


class PolicyRule(_Section):
    """One content-policy check. ``patterns`` are regular expressions matched without regard
    to case; a match that lies inside a match of one of ``exceptions`` does not count.
    ``words`` match whole words only (with common endings: s, es, ed, ing, er, ers)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kind: RuleKind = "pattern"
    message: str
    patterns: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    exceptions: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)  # empty: every category
    not_categories: list[str] = Field(default_factory=list)
    severity: Literal["block", "warn"] = "block"
    overridable: bool = True
    link_prefix: str = ""  # link-required: empty means the agency's website

    @field_validator("patterns", "exceptions")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                regex.compile(pattern, regex.VERSION0)  # as publisher.policy compiles them
            except regex.error as e:
                raise ValueError(f"bad regular expression {pattern!r}: {e}") from e
        return value

    def applies_to(self, category: str) -> bool:
        if self.categories and category not in self.categories:
            return False
        return category not in self.not_categories


@cache
def shipped_policy_rules() -> tuple[PolicyRule, ...]:
    """The default rule set shipped as ``config/policy.toml``."""
    text = resources.files("bulletin.config").joinpath("policy.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return tuple(PolicyRule.model_validate(rule) for rule in data.get("rules", []))


class PolicySettings(_Section):
    """``[policy]``: the shipped rules (unless ``defaults = false``), minus ``disabled``, with
    ``[[policy.rules]]`` added; a rule with a shipped rule's id replaces it."""

    defaults: bool = True
    disabled: list[str] = Field(default_factory=list)
    rules: list[PolicyRule] = Field(default_factory=list)

    def effective_rules(self) -> list[PolicyRule]:
        own = {rule.id: rule for rule in self.rules}
        merged: dict[str, PolicyRule] = {}
        if self.defaults:
            merged.update({rule.id: rule for rule in shipped_policy_rules()})
        merged.update(own)
        return [rule for rule_id, rule in merged.items() if rule_id not in self.disabled]


class ExemptionCode(_Section):
    """One legal ground for withholding text: ``label`` is what a production shows."""

    label: str = Field(min_length=1)
    description: str = ""


@cache
def shipped_exemption_sets() -> dict[str, dict[str, ExemptionCode]]:
    """The example exemption sets shipped in ``config/exemptions/*.toml``, by file stem."""
    folder = resources.files("bulletin.config").joinpath("exemptions")
    sets: dict[str, dict[str, ExemptionCode]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            data: dict[str, Any] = tomllib.loads(entry.read_text("utf-8"))
            sets[entry.name.removesuffix(".toml")] = {
                code.lower(): ExemptionCode.model_validate(value)
                for code, value in data.get("codes", {}).items()
            }
    return sets


class RedactionSettings(_Section):
    """``[redaction]``: the exemption codes a redaction may cite.

    ``exemption_set`` names a shipped set (``example-ma``: Massachusetts G.L. c.4 §7(26), an
    example to confirm with counsel) or ``none``; ``[redaction.exemptions.CODE]`` adds codes
    (``label``, ``description``) or replaces a shipped one. Codes match without regard to case.
    """

    exemption_set: str = "example-ma"
    exemptions: dict[str, ExemptionCode] = Field(default_factory=dict)

    @field_validator("exemption_set")
    @classmethod
    def _known_set(cls, value: str) -> str:
        known = shipped_exemption_sets()
        if value != "none" and value not in known:
            raise ValueError(
                f"unknown exemption set {value!r} (shipped: {', '.join(sorted(known))}, or none)"
            )
        return value

    def codes(self) -> dict[str, ExemptionCode]:
        """Every code that may be cited, lower-cased, shipped ones first."""
        merged = dict(shipped_exemption_sets().get(self.exemption_set, {}))
        merged.update({code.lower(): value for code, value in self.exemptions.items()})
        return merged


CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]


class CapSettings(_Section):
    """``[cap]``: Common Alerting Protocol 1.2 alerts turned into draft notices.

    ``feeds`` are Atom feeds of CAP entries (api.weather.gov, IPAWS), polled every
    ``poll_interval`` seconds by the daemon. ``events`` (empty: every event) and
    ``ignore_events`` filter by event type; ``areas`` (empty: everywhere) keeps alerts whose
    areaDesc contains one of them or whose geocodes (UGC, SAME/FIPS) equal one of them;
    ``min_severity`` drops milder alerts; only alerts whose status is in ``statuses`` are
    imported. ``categories`` maps an event to a notice category (over the built-in map);
    ``[cap.templates]`` maps an event to an approved template that covers it. With
    ``trust_store`` (a PEM file of certificates) an enveloped XML signature is verified.
    An alert a feed links to is fetched only from the feed's host or ``allowed_hosts``.
    """

    feeds: list[str] = Field(default_factory=list)
    poll_interval: int = Field(default=120, ge=5, description="seconds between feed polls")
    targets: list[str] = Field(default_factory=list)
    actor: str = "cap"
    language: str = "en"
    events: list[str] = Field(default_factory=list)
    ignore_events: list[str] = Field(default_factory=list)
    areas: list[str] = Field(default_factory=list)
    min_severity: CapSeverity = "Unknown"
    statuses: list[CapStatus] = Field(default_factory=lambda: list[CapStatus](["Actual"]))
    categories: dict[str, str] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict)
    trust_store: Path | None = None
    require_signature: bool = False
    max_bytes: int = Field(default=2_000_000, ge=1024)
    fetch_timeout: float = Field(default=15.0, gt=0)
    # hosts an alert linked from a feed may be fetched from, besides the feeds' own hosts
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("feeds")
    @classmethod
    def _feed_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if urlsplit(url).scheme not in ("http", "https", "file"):
                raise ValueError(f"{url!r} is not an http(s) or file URL")
        return value


class Settings(_Section):
    """Everything Bulletin is configured with. ``source`` names the file it came from."""

    agency: AgencySettings = AgencySettings()
    paths: PathsSettings = PathsSettings()
    database: DatabaseSettings = DatabaseSettings()
    archive: ArchiveSettings = ArchiveSettings()
    retention: RetentionSettings = RetentionSettings()
    requests: RequestsSettings = RequestsSettings()
    users: dict[str, UserSettings] = Field(default_factory=dict)
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    sandbox: SandboxSettings = SandboxSettings()
    daemon: DaemonSettings = DaemonSettings()
    publisher: PublisherSettings = PublisherSettings()
    policy: PolicySettings = PolicySettings()
    capture: CaptureSettings = CaptureSettings()
    cap: CapSettings = CapSettings()
    redaction: RedactionSettings = RedactionSettings()
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
    def _account_names(cls, value: dict[str, AccountSettings]) -> dict[str, AccountSettings]:
        for name in value:
            if not _ACCOUNT_NAME.fullmatch(name):
                raise ValueError(
                    f"account name {name!r} must be letters, digits, '-' or '_' (at most 64), "
                    "starting with a letter or digit: it names files and appears in ids"
                )
        return value

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
