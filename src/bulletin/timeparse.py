"""Times as people type them: entered in the agency's time zone, stored in UTC."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bulletin.errors import UsageError

_RELATIVE = re.compile(r"^\+(\d+)\s*([smhd])$")
_DAY_TIME = re.compile(r"^(today|tomorrow)\s+(\d{1,2})(?::(\d{2}))?(?:\s*([ap])\.?m\.?)?$")
HINT = "use now, +30m, tomorrow 07:00, today 5:30pm or 2026-11-25T18:00"


def _day_time(value: str, time_zone: str, now: datetime) -> str | None:
    """``today 17:00``, ``tomorrow 7am``, ``tomorrow 7:30 pm`` (the agency's calendar day) as
    a local ISO 8601 text; None when ``value`` is not of that form.

    :raises UsageError: an hour or minute that does not exist on a clock.
    """
    match = _DAY_TIME.match(value.lower())
    if match is None:
        return None
    day_word, hour_text, minute_text, half = match.groups()
    hour, minute = int(hour_text), int(minute_text or 0)
    if half is None and minute_text is None:
        raise UsageError(f"{value!r}: give minutes (07:00) or am/pm (7am)")
    if half is not None:
        if not 1 <= hour <= 12:
            raise UsageError(f"{value!r}: an am/pm hour is 1 to 12")
        hour = hour % 12 + (12 if half == "p" else 0)
    if hour > 23 or minute > 59:
        raise UsageError(f"{value!r}: no such time of day")
    day = now.astimezone(ZoneInfo(time_zone)).date()
    if day_word == "tomorrow":
        day += timedelta(days=1)
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def parse_when(text: str, time_zone: str, now: datetime) -> datetime:
    """``now``, ``+30m``/``+2h``/``+1d``, ``today 17:00``/``tomorrow 7am``, or ISO 8601 (a
    time without an offset is in the agency's zone). Returns aware UTC.

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
    value = _day_time(value, time_zone, now) or value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"cannot read time {text!r} ({HINT} in {time_zone})") from None
    if parsed.tzinfo is None:
        zone = ZoneInfo(time_zone)
        local = parsed.replace(tzinfo=zone)
        round_trip = local.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)
        if round_trip != parsed:
            raise UsageError(f"{text} does not exist in {time_zone} (clocks skip it)")
        parsed = local
    return parsed.astimezone(ZoneInfo("UTC"))


def parse_until(text: str, time_zone: str, now: datetime) -> datetime:
    """An end time (inclusive) as :func:`parse_when` reads it, except that a date alone
    (``2027-03-16``) means the end of that day in the agency's zone: its last second.

    :raises UsageError: as :func:`parse_when`.
    """
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return parse_when(text, time_zone, now)
    zone = ZoneInfo(time_zone)
    # the next day's first instant (a midnight the clocks skip moves forward with them)
    next_day = datetime.combine(day + timedelta(days=1), time()).replace(tzinfo=zone, fold=0)
    return next_day.astimezone(ZoneInfo("UTC")) - timedelta(seconds=1)


def ambiguity(text: str, time_zone: str, now: datetime | None = None) -> str | None:
    """A warning when ``text`` is a local time that happens twice (the autumn hour), naming
    the one chosen; None otherwise. ``now`` places ``today``/``tomorrow``."""
    value = text.strip()
    try:
        if now is not None:
            value = _day_time(value, time_zone, now) or value
        parsed = datetime.fromisoformat(value)
    except (ValueError, UsageError):
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
        f"{value} happens twice in {time_zone} (clocks go back); using the first, "
        f"{first.strftime('%H:%M %Z')} ({first.isoformat(timespec='minutes')}); "
        f"give {other} for the second"
    )


def local_text(when: datetime | None, time_zone: str) -> str:
    """``when`` shown in the agency's time zone, e.g. ``2026-11-25 13:00 EST``."""
    if when is None:
        return "-"
    return when.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M %Z")
