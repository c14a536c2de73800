"""The one query language of search, holds, records requests and exports: what people
type (:func:`parse_query`), the :class:`Query` it reads as, and the bounds every query is held
to (:func:`check_query`)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from bulletin.config.values import language_tag
from bulletin.connectors.base import ItemKind
from bulletin.errors import UsageError

STATES = ("visible", "hidden", "deleted", "edited")
KINDS: tuple[str, ...] = get_args(ItemKind)


_WORD = re.compile(r"\w+\*?", re.UNICODE)


QUERY_KEYS = (
    *("from", "to", "account", "author", "thread", "kind", "state", "series", "platform"),
    *("lang", "text"),
)
Moment = date | datetime  # a date: the whole day in the agency's zone; a datetime: an instant

# Bounds on every query (:func:`check_query`): a query past them is a mistake or an attack
# (a 100 kB word, 20,000 words ANDed), and costs the database far more than it can find.
MAX_QUERY_CHARS = 2000
MAX_WORDS = 32
MAX_PREFIXES = 8  # words ending in *
MAX_WORD_CHARS = 100
MAX_VALUE_CHARS = 200  # account:, author:, thread:, series:, platform: values


@dataclass(frozen=True)
class Query:
    """Which records: every given part must match (AND). Read from what people type by
    :func:`parse_query`; matched by :func:`conditions` (and :func:`search`, to the same rule).

    ``since``/``until`` are on the posted time (the captured time when a record has none):
    a date is a whole day in the agency's zone, both ends inclusive; a time is an instant
    (``since`` at or after it, ``until`` before it). ``thread`` is a record number (the
    thread that record belongs to, as ``archive thread N`` shows it) or the platform id of a
    thread's post. ``lang`` is the language (a BCP 47 tag) a post of a notice in several
    languages was published in. Every word of ``text`` must be in the record's text or
    author's name (full-text index; ``word*`` is a prefix).
    """

    since: Moment | None = None
    until: Moment | None = None
    account: str | None = None
    author: str | None = None
    thread: str | None = None
    kind: str | None = None
    state: str | None = None  # visible | hidden | deleted | edited: the item has such a version
    series: str | None = None
    platform: str | None = None
    lang: str | None = None
    text: tuple[str, ...] = field(default_factory=tuple)

    def empty(self) -> bool:
        return self == Query()

    def to_json(self) -> str:
        body = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        for key in ("since", "until"):
            if key in body:
                body[key] = body[key].isoformat()
        if "text" in body:
            body["text"] = list(body["text"])
        return json.dumps(body, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Query:
        body: dict[str, Any] = json.loads(text)
        for key in ("since", "until"):
            if body.get(key):
                body[key] = _moment(body[key])
        body["text"] = tuple(body.get("text", ()))
        return cls(**body)

    def describe(self) -> str:
        """The query as it is typed (``parse_query(q.describe()) == q``)."""
        parts = []
        if self.since:
            parts.append(f"from:{self.since.isoformat()}")
        if self.until:
            parts.append(f"to:{self.until.isoformat()}")
        for key in ("account", "author", "thread", "kind", "state", "series", "platform", "lang"):
            value = getattr(self, key)
            if value:
                parts.append(f"{key}:{_quoted(value)}")
        parts.extend(_quoted(t) for t in self.text)
        return " ".join(parts)


def _quoted(value: str) -> str:
    """``value`` as one token of a query: double-quoted when it holds more than a word."""
    if re.fullmatch(r"[\w@.*+:/-]+", value):
        return value
    return '"' + value.replace('"', "").replace("\\", "") + '"'


def _moment(value: str) -> Moment:
    """``2026-11-25`` as a date, ``2026-11-25T15:00`` (local unless it has an offset) as a
    datetime. :raises ValueError: neither."""
    if "T" in value or " " in value.strip():
        return datetime.fromisoformat(value)
    return date.fromisoformat(value)


def parse_query(text: str, *, empty_ok: bool = False) -> Query:
    """``account:feed author:visitor3 from:2026-11-01 to:2026-11-30 thread:42 "water main"``.

    Keys: ``from: to:`` (a date, or a local time ``2026-11-25T15:00``), ``account: author:
    thread: kind: state: series: platform: lang:``; bare words (or ``text:``) must all
    appear.

    :raises UsageError: an unknown key, a bad date, state, kind or language tag, a term with
        no word in it, a query past the bounds of :func:`check_query`, or (unless
        ``empty_ok``) nothing to match on.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise UsageError(f"the query has {len(text)} characters; at most {MAX_QUERY_CHARS}")
    try:
        tokens = shlex.split(text)
    except ValueError as e:
        raise UsageError(f"cannot read query {text!r}: {e}") from None
    values: dict[str, Any] = {}
    terms: list[str] = []
    for token in tokens:
        key, sep, value = token.partition(":")
        if not sep or key.lower() not in QUERY_KEYS:
            if sep and key.isalpha():
                raise UsageError(
                    f"unknown query key {key!r} (use {', '.join(QUERY_KEYS)}, or plain words)"
                )
            terms.append(token)
            continue
        key = key.lower()
        if not value:
            raise UsageError(f"query key {key}: needs a value")
        if key == "text":
            terms.append(value)
        elif key in {"from", "to"}:
            try:
                values["since" if key == "from" else "until"] = _moment(value)
            except ValueError:
                raise UsageError(
                    f"query {key}:{value} is not a date or time (2026-11-25 or 2026-11-25T15:00)"
                ) from None
        elif key == "state" and value not in STATES:
            raise UsageError(f"query state:{value}: use one of {', '.join(STATES)}")
        elif key == "kind" and value not in KINDS:
            raise UsageError(f"query kind:{value}: use one of {', '.join(KINDS)}")
        elif key == "lang":
            try:
                values[key] = language_tag(value)
            except ValueError as e:
                raise UsageError(f"query lang:{value}: {e}") from None
        else:
            values[key] = value
    for term in terms:
        if not words_of(term):
            raise UsageError(f"nothing to search for in {term!r} (give words or key:value)")
    query = Query(**values, text=tuple(terms))
    if query.empty() and not empty_ok:
        raise UsageError("the query matches nothing in particular; name at least one condition")
    check_query(query)
    return query


def check_query(query: Query) -> None:
    """The bounds every query is held to, wherever it comes from: at most ``MAX_WORDS`` words
    (text and author), ``MAX_PREFIXES`` of them prefixes, each at most ``MAX_WORD_CHARS``
    long; values at most ``MAX_VALUE_CHARS``; dates a calendar can hold, from: before to:.

    :raises UsageError: one line naming the bound passed.
    """
    for key in ("account", "author", "thread", "series", "platform", "lang"):
        value = getattr(query, key)
        if value and len(value) > MAX_VALUE_CHARS:
            raise UsageError(f"query {key}: has {len(value)} characters; at most {MAX_VALUE_CHARS}")
    words = [t for text in query.text for t in words_of(text)] + words_of(query.author or "")
    if len(words) > MAX_WORDS:
        raise UsageError(
            f"the query has {len(words)} words; at most {MAX_WORDS} (every word must match, "
            "so a few distinctive ones find the same records)"
        )
    prefixes = sum(1 for _, prefix in words if prefix)
    if prefixes > MAX_PREFIXES:
        raise UsageError(f"the query has {prefixes} words* (prefixes); at most {MAX_PREFIXES}")
    for word, _ in words:
        if len(word) > MAX_WORD_CHARS:
            raise UsageError(
                f"the query word {word[:20]}... has {len(word)} characters; "
                f"at most {MAX_WORD_CHARS}"
            )
    try:
        low, high = bounds(query, "UTC")
    except (OverflowError, ValueError):
        raise UsageError("the query's from:/to: is beyond what a calendar holds") from None
    if low and high and high <= low:
        raise UsageError("the query's to: is before its from:")


def bounds(query: Query, time_zone: str) -> tuple[datetime | None, datetime | None]:
    """The query's from:/to: as instants: [since, until)."""
    zone = ZoneInfo(time_zone)

    def instant(value: Moment | None, end: bool) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(), zone)

    low, high = instant(query.since, False), instant(query.until, True)
    return (low and low.astimezone(UTC)), (high and high.astimezone(UTC))


def words_of(text: str) -> list[tuple[str, bool]]:
    return [(w.rstrip("*"), w.endswith("*")) for w in _WORD.findall(text) if w.rstrip("*")]
