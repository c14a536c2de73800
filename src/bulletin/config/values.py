"""What every section of the settings shares: the frozen, closed base model and the parsers of
durations, retention periods, times of day and jurisdictions that their validators use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bulletin.business_days import BusinessCalendar
from bulletin.errors import ConfigError
from bulletin.timeparse import Span, parse_span

# What a person may do (bulletin.identity enforces it); shared by [users], [auth] and SSO.
Role = Literal["dispatcher", "approver", "clerk", "records-officer", "admin", "reader"]

# A role that carries another's powers with its own: a records officer does what a clerk does
# (requests, holds, redactions, productions) and also approves disposition batches.
IMPLIED: dict[str, tuple[str, ...]] = {"records-officer": ("clerk",)}


def holds_role(held: Iterable[str], role: str) -> bool:
    """Whether roles ``held`` give ``role``: held itself, or implied by one held
    (:data:`IMPLIED`)."""
    held = list(held)
    return role in held or any(role in IMPLIED.get(h, ()) for h in held)


class Section(BaseModel):
    """A table of the configuration: unknown keys are refused, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


def checked_duration(value: str) -> str:
    """``value`` when :func:`parse_duration` reads it (a field validator)."""
    parse_duration(value)
    return value


def checked_period(value: str) -> str:
    """``value`` when :func:`parse_period` reads it (a field validator)."""
    parse_period(value)
    return value


_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})$")


def time_of_day(value: str) -> str:
    """``value`` when it is a 24-hour ``HH:MM`` clock time (``03:30``, ``4:00``).

    :raises ValueError: anything else, ``3am`` and ``25:00`` included.
    """
    match = _TIME_OF_DAY.match(value.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time of day (use 24-hour HH:MM, e.g. 03:30)")
    return value.strip()


def known_jurisdiction(value: str) -> str:
    """``value`` when its business-day calendar can be built (the ``holidays`` package knows
    its country and subdivision); empty is allowed (it means "inherit")."""
    if not value:
        return value
    try:
        BusinessCalendar(value)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return value


def language_tag(value: str) -> str:
    """``value`` as a valid BCP 47 language tag in its standard form (``zh-hans`` →
    ``zh-Hans``), checked with ``langcodes``."""
    import langcodes

    tag = value.strip()
    if not tag or not langcodes.tag_is_valid(tag):
        raise ValueError(f"{value!r} is not a BCP 47 language tag (such as en, es, zh-Hans)")
    return str(langcodes.standardize_tag(tag))


def language_tags(values: list[str], wildcard: bool = False) -> list[str]:
    """Each of ``values`` as a standard language tag, none twice, at least one; with
    ``wildcard``, ``["*"]`` (every language) is allowed too."""
    if wildcard and values == ["*"]:
        return values
    if not values:
        raise ValueError("at least one language is needed")
    tags = [language_tag(v) for v in values]
    if len(set(tags)) != len(tags):
        raise ValueError("a language is named twice")
    return tags
