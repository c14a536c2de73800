"""Times on the production's pages: a machine value in UTC for ``<time datetime>`` and the
same moment in words in the agency's time zone, in English whatever the machine's locale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@lru_cache(maxsize=16)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def parse(when: datetime | str | None) -> datetime | None:
    """``when`` as an aware datetime (ISO 8601 text parsed; naive means UTC); None for
    None or ""."""
    if when is None or when == "":
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def human_time(when: datetime, zone: str, *, seconds: bool = True, clock: bool = True) -> str:
    """``Friday, November 20, 2026, 9:00:05 AM EST``: ``when`` in the agency's time zone,
    in English whatever the machine's locale."""
    local = when.astimezone(_zone(zone))
    day = f"{_DAYS[local.weekday()]}, {_MONTHS[local.month - 1]} {local.day}, {local.year}"
    if not clock:
        return day
    hour = local.hour % 12 or 12
    tail = f":{local.second:02d}" if seconds else ""
    noon = "AM" if local.hour < 12 else "PM"
    return f"{day}, {hour}:{local.minute:02d}{tail} {noon} {local.tzname()}"


def machine_time(when: datetime) -> str:
    """A valid HTML global date-time in UTC (at most milliseconds)."""
    utc = when.astimezone(UTC)
    fraction = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


@dataclass(frozen=True)
class Time:
    """A moment as HTML's ``<time>`` wants it: ``machine`` in UTC, ``human`` in words."""

    machine: str
    human: str


def time(when: datetime | str | None, zone: str, *, seconds: bool = True) -> Time | None:
    """``when`` (a datetime, or ISO 8601 text; naive means UTC) as a :class:`Time`; None when
    unknown."""
    parsed = parse(when)
    if parsed is None:
        return None
    return Time(machine_time(parsed), human_time(parsed, zone, seconds=seconds))
