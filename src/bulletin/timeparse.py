"""Times as people type them: entered in the agency's time zone, stored in UTC.

One syntax for every span of time Bulletin reads (retention periods, grace and give-up
durations, ``+30min`` publish times): a whole number and a unit, ``s``, ``min``, ``h``, ``d``,
``w``, ``mo`` or ``y``, or a long form (``30 minutes``, ``6 months``, ``1 year``). A bare
``m`` is refused: minutes and months must never be confused.

Also the one reading and writing of ISO 8601 instants that code exchanges (files, stores,
platform APIs): :func:`parse_iso`, :func:`iso_utc` and :func:`iso_basic`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from bulletin.clock import utc
from bulletin.errors import UsageError

_DAY_TIME = re.compile(r"^(today|tomorrow)\s+(\d{1,2})(?::(\d{2}))?(?:\s*([ap])\.?m\.?)?$")
HINT = "use now, +30min, tomorrow 07:00, today 5:30pm or 2026-11-25T18:00"

_SPAN = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
    **dict.fromkeys(("mo", "mos", "month", "months"), "months"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "years"),
}
_SHORT = {"seconds": "s", "minutes": "min", "hours": "h", "days": "d", "weeks": "w"}
_SHORT |= {"months": "mo", "years": "y"}
SPAN_HINT = "e.g. 90s, 30min, 2h, 1d, 2w, 6mo or 7y"
# A time typed this far from now is a typo (a year 9999, +99999999999d): refused before
# anything adds to it and overflows.
MAX_DISTANCE = timedelta(days=100 * 365)


@dataclass(frozen=True)
class Span:
    """A span of time as typed: ``count`` of ``unit`` (seconds ... years).

    Seconds, minutes and hours are exact. Days, weeks, months and years are calendar spans,
    added to the agency's local date and time (:meth:`after`)."""

    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count}{_SHORT[self.unit]}"

    @property
    def calendar(self) -> bool:
        """Months and years: no fixed length."""
        return self.unit in ("months", "years")

    def exact(self) -> timedelta:
        """The span as a fixed length (a day is 24 hours).

        :raises ValueError: months or years, which have none.
        """
        if self.calendar:
            raise ValueError(f"{self} has no fixed length; give it in s, min, h, d or w")
        return timedelta(**{self.unit: self.count})

    def after(self, when: datetime, time_zone: str) -> datetime:
        """``when`` plus this span, aware UTC. s/min/h are added to the instant; d, w, mo
        and y to the local date in ``time_zone`` with dateutil's ``relativedelta`` (same
        local time of day), except that a day clamped to the end of a shorter month (29
        February plus a year, 31 August plus six months) becomes the first day of the next
        month: a period never ends before the calendar says it has passed."""
        if self.unit in ("seconds", "minutes", "hours"):
            return (when + self.exact()).astimezone(UTC)
        zone = ZoneInfo(time_zone)
        local = when.astimezone(zone).replace(tzinfo=None)
        moved: datetime = local + relativedelta(**{self.unit: self.count})
        if self.calendar and moved.day < local.day:
            moved += timedelta(days=1)
        return moved.replace(tzinfo=zone).astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """ISO 8601 text as aware UTC: an offset as ``Z``, ``+00:00`` or ``+0000``; a time
    without one is taken to be UTC already.

    :raises ValueError: not ISO 8601.
    """
    return utc(datetime.fromisoformat(text.strip()))


def iso_utc(when: datetime, timespec: str = "auto") -> str:
    """``when`` as ISO 8601 UTC text ending in ``Z`` (``2026-11-25T15:00:00Z``; a naive
    ``when`` is taken to be UTC). ``timespec`` as :meth:`datetime.isoformat` takes it:
    ``"microseconds"`` gives fixed-width text that sorts as text."""
    return utc(when).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_basic(when: datetime) -> str:
    """``when`` as compact ISO 8601 UTC text for file and key names: ``20261125T150000Z``."""
    return utc(when).strftime("%Y%m%dT%H%M%SZ")


def parse_span(text: str) -> Span:
    """``"30min"``, ``"6mo"``, ``"7y"``, ``"30 minutes"``, ``"6 months"``: a positive span.

    :raises ValueError: zero, a bare ``m`` (minutes or months?), or anything else; the message
        says what to write instead.
    """
    match = _SPAN.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a span of time ({SPAN_HINT})")
    count, word = int(match.group(1)), match.group(2)
    if word == "m":
        raise ValueError(
            f"{text!r} is ambiguous: write {count}min for minutes or {count}mo for months"
        )
    unit = _UNITS.get(word)
    if unit is None:
        raise ValueError(f"{text!r}: unknown unit {word!r} ({SPAN_HINT})")
    if count == 0:
        raise ValueError(f"{text!r} is no time at all; give at least 1 ({SPAN_HINT})")
    return Span(count, unit)


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
    """``now``, ``+30min``/``+2h``/``+1d`` (any span, :func:`parse_span`), ``today 17:00``/
    ``tomorrow 7am``, or ISO 8601 (a time without an offset is in the agency's zone). Returns
    aware UTC.

    A time more than 100 years from ``now`` is refused, and so is a local time the clocks skip
    (spring forward). A local time that happens twice (the autumn hour) is the first of the
    two (fold=0, still daylight time): see :func:`ambiguity`; give an offset
    (``2026-11-01T01:30-05:00``) for the second.

    :raises UsageError: not a time we understand, or a local time that does not exist.
    """
    try:
        when = _when(text, time_zone, now)
    except OverflowError:
        when = None
    _near(text, when, now)
    assert when is not None
    return when


def _near(text: str, when: datetime | None, now: datetime) -> None:
    """:raises UsageError: ``when`` (None: out of range) is more than 100 years from now."""
    if when is None or abs(when - now) > MAX_DISTANCE:
        raise UsageError(
            f"time {text!r} is more than {MAX_DISTANCE.days // 365} years from now; "
            "give one within that"
        )


def _when(text: str, time_zone: str, now: datetime) -> datetime:
    """:func:`parse_when` without the distance bound. :raises OverflowError: out of range."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if value.startswith("+"):
        try:
            return parse_span(value[1:]).after(now, time_zone)
        except ValueError as e:
            raise UsageError(f"cannot read time {text!r}: {e}") from None
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
    try:
        next_day = datetime.combine(day + timedelta(days=1), time()).replace(tzinfo=zone)
        end = next_day.astimezone(ZoneInfo("UTC")) - timedelta(seconds=1)
    except OverflowError:
        end = None
    _near(text, end, now)
    assert end is not None
    return end


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
