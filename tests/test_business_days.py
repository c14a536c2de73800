"""Statutory deadlines in business days: weekends, public holidays, year ends."""

from __future__ import annotations

from datetime import date

import pytest

from bulletin.business_days import BusinessCalendar, due_date, split_jurisdiction
from bulletin.errors import ConfigError

MA = BusinessCalendar("US-MA")
US = BusinessCalendar("US")


def test_jurisdiction_is_country_and_subdivision() -> None:
    """'US-MA' is country US, subdivision MA; 'US' has no subdivision."""
    assert split_jurisdiction("US-MA") == ("US", "MA")
    assert split_jurisdiction("us") == ("US", None)


def test_ten_business_days_skip_thanksgiving_and_weekends() -> None:
    """Received the day before Thanksgiving 2026: Thursday and two weekends do not count."""
    assert MA.holiday(date(2026, 11, 26)) == "Thanksgiving Day"
    assert MA.add_business_days(date(2026, 11, 25), 10) == date(2026, 12, 10)


def test_christmas_and_new_year_across_the_year_end() -> None:
    """Received 21 December 2026: Christmas Day and New Year's Day 2027 are skipped."""
    assert MA.add_business_days(date(2026, 12, 21), 10) == date(2027, 1, 6)


def test_patriots_day_counts_only_in_massachusetts() -> None:
    """Patriots' Day (19 April 2027) is a holiday in US-MA, not for the US as a whole."""
    assert MA.holiday(date(2027, 4, 19)) == "Patriots' Day"
    assert MA.add_business_days(date(2027, 4, 9), 10) == date(2027, 4, 26)
    assert US.add_business_days(date(2027, 4, 9), 10) == date(2027, 4, 23)


def test_received_on_a_weekend_starts_counting_on_monday() -> None:
    """A request received on Saturday: day 1 is the Monday after."""
    assert MA.add_business_days(date(2026, 11, 28), 1) == date(2026, 11, 30)
    assert MA.add_business_days(date(2026, 11, 28), 10) == date(2026, 12, 11)


def test_days_left_counts_business_days_and_overdue_is_negative() -> None:
    """From Friday to the next Tuesday is 2 business days; the other way round is -2."""
    assert MA.business_days_between(date(2026, 12, 4), date(2026, 12, 8)) == 2
    assert MA.business_days_between(date(2026, 12, 8), date(2026, 12, 4)) == -2
    assert MA.business_days_between(date(2026, 12, 8), date(2026, 12, 8)) == 0


def test_calendar_day_rule() -> None:
    """With business_days off, the deadline is plain calendar days."""
    assert due_date(date(2026, 12, 21), 10, business_days=False, calendar=None) == date(
        2026, 12, 31
    )


def test_unknown_jurisdiction_is_a_configuration_error() -> None:
    """A country the holidays package does not know is refused with its name."""
    with pytest.raises(ConfigError, match="XX"):
        BusinessCalendar("XX-YY")
