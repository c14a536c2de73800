"""What is kept and for how long: ``[archive]`` (the WORM store and its witnesses),
``[retention]``, ``[requests]``, ``[capture]`` and ``[redaction]``."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from bulletin.config.values import (
    Section,
    checked_period,
    known_jurisdiction,
    parse_period,
    time_of_day,
)


class LocalStoreSettings(Section):
    path: Path | None = None  # None: <data_dir>/archive


class S3StoreSettings(Section):
    bucket: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    create_bucket: bool = False
    # how many objects of one batch are sent at once (each a look-up and a put)
    max_concurrency: int = Field(default=8, ge=1, le=64)


class WitnessSettings(Section):
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


class ArchiveSettings(Section):
    store: Literal["local", "s3"] = "local"
    local: LocalStoreSettings = LocalStoreSettings()
    s3: S3StoreSettings = S3StoreSettings()
    witness: WitnessSettings = WitnessSettings()


Disposition = Literal["destroy-after-approval", "transfer-to-archives", "review"]
PERMANENT_SERIES = frozenset({"ledger", "certificates"})


class SeriesSettings(Section):
    period: str
    anchor: Literal["posted", "captured"] = "captured"
    disposition: Disposition = "review"
    description: str = ""
    authority: str = ""  # the schedule item this follows, e.g. "GS50-01-12 Rev. 1"

    _valid_period = field_validator("period")(checked_period)


class RetentionSettings(Section):
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

    _valid_period = field_validator("default_period")(checked_period)

    @field_validator("series")
    @classmethod
    def _permanent_series(cls, value: dict[str, SeriesSettings]) -> dict[str, SeriesSettings]:
        for name in PERMANENT_SERIES & set(value):
            if parse_period(value[name].period) is not None:
                raise ValueError(f"series {name!r} is always permanent")
        return value


class RequestsSettings(Section):
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


class PlatformPrices(Section):
    """Pay-per-use prices of one platform, in US dollars."""

    read: float = Field(default=0.0, ge=0, description="per resource read, once per UTC day")


class CaptureSettings(Section):
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
    stream_hours: float = Field(
        default=48.0, ge=0, description="X threads this young are followed on the stream"
    )
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


class ExemptionCode(Section):
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


class ExportSettings(Section):
    """``[export]``: what a production holds unless the clerk says otherwise.

    ``pdf``: each thread page also as PDF/A-2b (the slow part of an export; ``bulletin export
    --no-pdf`` or ``--pdf`` decides for one production, this for the console's and the API's).
    """

    pdf: bool = True


class RedactionSettings(Section):
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
