"""Times as people type them: entered in the agency's time zone, stored in UTC."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bulletin.errors import UsageError

_RELATIVE = re.compile(r"^\+(\d+)\s*([smhd])$")


def parse_when(text: str, time_zone: str, now: datetime) -> datetime:
    """``now``, ``+30m``/``+2h``/``+1d``, or ISO 8601 (a time without an offset is in the
    agency's zone). Returns aware UTC.

    :raises UsageError: not a time we understand, or a local time that does not exist.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    match = _RELATIVE.match(value.lower())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now + timedelta(**{unit: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"cannot read time {text!r} (use now, +30m, or 2026-11-25T18:00 in {time_zone})"
        ) from None
    if parsed.tzinfo is None:
        zone = ZoneInfo(time_zone)
        local = parsed.replace(tzinfo=zone)
        round_trip = local.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)
        if round_trip != parsed:
            raise UsageError(f"{text} does not exist in {time_zone} (clocks skip it)")
        parsed = local
    return parsed.astimezone(ZoneInfo("UTC"))


def local_text(when: datetime | None, time_zone: str) -> str:
    """``when`` shown in the agency's time zone, e.g. ``2026-11-25 13:00 EST``."""
    if when is None:
        return "-"
    return when.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M %Z")
