"""Recurring notices: a small rule syntax, its occurrences in the agency's time zone, and the
line that tells one occurrence's text from the next.

Syntax (case does not matter)::

    FREQ[;interval=N][;byday=MO,TH][;bymonthday=1,15][;at=HH:MM]

``FREQ`` is ``daily``, ``weekly`` or ``monthly``; ``byday`` takes two-letter weekdays
(MO TU WE TH FR SA SU); ``at`` is the local time of day (default: the time of ``--at``).
``--every day|week|month|weekday`` is short for ``daily``, ``weekly``, ``monthly`` and
``weekly;byday=MO,TU,WE,TH,FR``. At most one occurrence per day, so the date line always
tells occurrences apart.

Occurrences are computed in local wall-clock time (python-dateutil's ``rrule``) and then
converted to UTC, so "weekly at 09:00" stays at 09:00 local across daylight-saving changes
while its UTC time moves by an hour. Two local times need a rule (the same as RFC 5545):

- a time that does not exist (the spring-forward gap, e.g. 02:30 on 2027-03-14 in New York)
  is read with the offset in force before the gap, so it moves forward by the gap's length:
  02:30 becomes 03:30 EDT that day, and 02:30 again the next week;
- a time that happens twice (the autumn hour, e.g. 01:30 on 2026-11-01) is the first of the
  two (``fold=0``, still daylight time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule

from bulletin.errors import UsageError

FREQS = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "monthly": rrule.MONTHLY}
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
EVERY = {
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "weekday": "weekly;byday=MO,TU,WE,TH,FR",
}
_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# Occurrences further apart than this are not looked for (a rule that never matches).
_HORIZON = timedelta(days=800)


@dataclass(frozen=True)
class Rule:
    """A parsed recurrence rule."""

    freq: str
    interval: int = 1
    byday: tuple[str, ...] = ()
    bymonthday: tuple[int, ...] = ()
    at: time | None = None

    def text(self) -> str:
        """The normalised rule, as stored and shown."""
        parts = [self.freq]
        if self.interval != 1:
            parts.append(f"interval={self.interval}")
        if self.byday:
            parts.append("byday=" + ",".join(self.byday))
        if self.bymonthday:
            parts.append("bymonthday=" + ",".join(str(d) for d in self.bymonthday))
        if self.at is not None:
            parts.append(f"at={self.at:%H:%M}")
        return ";".join(parts)

    def with_at(self, at: time) -> Rule:
        return Rule(self.freq, self.interval, self.byday, self.bymonthday, at)


def parse_rule(text: str) -> Rule:
    """Read ``FREQ[;key=value...]``.

    :raises UsageError: with what is wrong and the syntax.
    """
    syntax = (
        "use e.g. weekly;byday=MO;at=09:00 (daily|weekly|monthly; interval, byday, bymonthday, at)"
    )
    items = [p.strip() for p in text.strip().lower().split(";") if p.strip()]
    if not items or items[0] not in FREQS:
        raise UsageError(f"recurrence {text!r}: it starts with daily, weekly or monthly ({syntax})")
    freq, interval, at = items[0], 1, None
    byday: tuple[str, ...] = ()
    bymonthday: tuple[int, ...] = ()
    for item in items[1:]:
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not value:
            raise UsageError(f"recurrence {text!r}: {item!r} is not key=value ({syntax})")
        if key == "interval":
            if not value.isdigit() or not 1 <= int(value) <= 366:
                raise UsageError(f"recurrence {text!r}: interval is a whole number from 1")
            interval = int(value)
        elif key == "byday":
            days = tuple(d.strip().upper() for d in value.split(","))
            unknown = [d for d in days if d not in WEEKDAYS]
            if unknown:
                raise UsageError(
                    f"recurrence {text!r}: unknown weekday {', '.join(unknown)} "
                    "(MO TU WE TH FR SA SU)"
                )
            byday = tuple(sorted(set(days), key=WEEKDAYS.__getitem__))
        elif key == "bymonthday":
            try:
                days_of_month = tuple(sorted({int(d) for d in value.split(",")}))
            except ValueError:
                raise UsageError(f"recurrence {text!r}: bymonthday takes numbers 1-31") from None
            if any(not 1 <= d <= 31 for d in days_of_month):
                raise UsageError(f"recurrence {text!r}: bymonthday takes numbers 1-31")
            bymonthday = days_of_month
        elif key == "at":
            match = _AT.match(value)
            if not match:
                raise UsageError(f"recurrence {text!r}: at is a local time like 09:00")
            at = time(int(match.group(1)), int(match.group(2)))
        else:
            raise UsageError(f"recurrence {text!r}: unknown key {key!r} ({syntax})")
    if byday and freq == "daily":
        raise UsageError(f"recurrence {text!r}: byday needs weekly or monthly")
    return Rule(freq, interval, byday, bymonthday, at)


def parse_every(word: str) -> Rule:
    """``--every day|week|month|weekday``.

    :raises UsageError: another word.
    """
    rule = EVERY.get(word.strip().lower())
    if rule is None:
        raise UsageError(f"repeat every {word!r}: use one of {', '.join(EVERY)}")
    return parse_rule(rule)


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time in UTC: a time in the spring-forward gap moves forward
    by the gap; a time in the repeated autumn hour is the first of the two (fold=0)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _rrule(rule: Rule, anchor: datetime, zone: ZoneInfo) -> rrule.rrule:
    assert rule.at is not None
    start = datetime.combine(anchor.astimezone(zone).date(), rule.at)
    return rrule.rrule(
        FREQS[rule.freq],
        dtstart=start,
        interval=rule.interval,
        byweekday=[WEEKDAYS[d] for d in rule.byday] or None,
        bymonthday=list(rule.bymonthday) or None,
    )


def occurrence_after(
    rule: Rule, anchor: datetime, zone: ZoneInfo, after: datetime, inclusive: bool = False
) -> datetime | None:
    """The first occurrence (UTC) at or after (``inclusive``) or strictly after ``after``.

    ``anchor`` (UTC) fixes the series' first day, which ``interval`` counts from.
    """
    rule_set = _rrule(rule, anchor, zone)
    # a day early in local time, so that no occurrence is skipped around an offset change
    begin = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    limit = after + _HORIZON
    for local in rule_set.xafter(begin, inc=True):
        when = to_utc(local, zone)
        if when > limit:
            return None
        if when > after or (inclusive and when == after):
            return when
    return None


def occurrences_between(
    rule: Rule, anchor: datetime, zone: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    """Every occurrence strictly after ``after`` and at or before ``until`` (UTC)."""
    found: list[datetime] = []
    cursor = after
    while True:
        nxt = occurrence_after(rule, anchor, zone, cursor)
        if nxt is None or nxt > until:
            return found
        found.append(nxt)
        cursor = nxt


def date_line(when: datetime, zone: ZoneInfo) -> str:
    """What tells one occurrence's text from another's: its local date, e.g.
    ``(Mon 30 Nov 2026)``."""
    return when.astimezone(zone).strftime("(%a %d %b %Y)")


def with_date_line(text: str, when: datetime, zone: ZoneInfo) -> str:
    return f"{text}\n{date_line(when, zone)}"
