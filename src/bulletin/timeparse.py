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

    A local time the clocks skip (spring forward) is refused. A local time that happens
    twice (the autumn hour) is the first of the two (fold=0, still daylight time): see
    :func:`ambiguity`; give an offset (``2026-11-01T01:30-05:00``) for the second.

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


def ambiguity(text: str, time_zone: str) -> str | None:
    """A warning when ``text`` is a local time that happens twice (the autumn hour), naming
    the one chosen; None otherwise."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return None
    zone = ZoneInfo(time_zone)
    first = parsed.replace(tzinfo=zone, fold=0)
    second = parsed.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    other = second.isoformat(timespec="minutes")
    return (
        f"{text.strip()} happens twice in {time_zone} (clocks go back); using the first, "
        f"{first.strftime('%H:%M %Z')} ({first.isoformat(timespec='minutes')}); "
        f"give {other} for the second"
    )


def local_text(when: datetime | None, time_zone: str) -> str:
    """``when`` shown in the agency's time zone, e.g. ``2026-11-25 13:00 EST``."""
    if when is None:
        return "-"
    return when.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M %Z")
