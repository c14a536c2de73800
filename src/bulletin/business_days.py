"""Statutory deadlines: business days in a jurisdiction, public holidays from ``holidays``.

A jurisdiction is ``"US"`` or ``"US-MA"`` (country, then an optional subdivision, as ISO 3166-2
writes them). Business days are the days that are neither a weekend day of that country nor one
of its (or the subdivision's) public holidays, observed days included, as the ``holidays``
package lists them.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any

from bulletin.errors import ConfigError


def split_jurisdiction(jurisdiction: str) -> tuple[str, str | None]:
    """``"US-MA"`` → ``("US", "MA")``; ``"US"`` → ``("US", None)``."""
    country, _, subdivision = jurisdiction.strip().partition("-")
    return country.upper(), (subdivision.upper() or None)


@cache
def _calendar(jurisdiction: str) -> Any:
    import holidays

    country, subdivision = split_jurisdiction(jurisdiction)
    try:
        holidays.country_holidays(country)
    except NotImplementedError:
        raise ConfigError(
            f"unknown country {country!r} in jurisdiction {jurisdiction!r} "
            "(ISO 3166-1, then an optional subdivision: US, US-MA)"
        ) from None
    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:
        raise ConfigError(
            f"unknown subdivision {subdivision!r} of {country} in jurisdiction {jurisdiction!r}"
        ) from None


class BusinessCalendar:
    """Which days count in ``jurisdiction``.

    :raises ConfigError: the country or subdivision is unknown.
    """

    def __init__(self, jurisdiction: str) -> None:
        self.jurisdiction = jurisdiction
        self._holidays = _calendar(jurisdiction)
        self._weekend: frozenset[int] = frozenset(getattr(self._holidays, "weekend", {5, 6}))

    def holiday(self, day: date) -> str | None:
        """The name of the public holiday on ``day``, or None."""
        name = self._holidays.get(day)
        return str(name) if name else None

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self._weekend and self.holiday(day) is None

    def add_business_days(self, start: date, days: int) -> date:
        """The ``days``-th business day after ``start`` (``start`` itself never counts)."""
        if days < 0:
            raise ValueError("days must not be negative")
        day, counted = start, 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_business_day(day):
                counted += 1
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days after ``start`` up to and including ``end``; negative when ``end`` is
        before ``start`` (days overdue)."""
        if end < start:
            return -self.business_days_between(end, start)
        day, counted = start, 0
        while day < end:
            day += timedelta(days=1)
            counted += self.is_business_day(day)
        return counted


def due_date(
    received: date, days: int, *, business_days: bool, calendar: BusinessCalendar | None
) -> date:
    """The response deadline for a request received on ``received``."""
    if business_days:
        assert calendar is not None
        return calendar.add_business_days(received, days)
    return received + timedelta(days=days)
