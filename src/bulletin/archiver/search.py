"""Searching the archive and reading a thread.

Full text runs on SQLite FTS5 (``records_fts``: new records are added by
:func:`index_new_records`, deletions and updates follow by triggers) or on PostgreSQL's
full-text search (a GIN index on ``to_tsvector('simple', text || ' ' || author)``); both are
created by migration 0004. Words are ANDed; ``word*`` matches a prefix. Every version of an
item is searchable (text edited away is still found); a hit is the newest matching version
of an item, shown with the item's current state.

One query language serves ``archive search``, holds, records requests and exports
(:func:`parse_query`, matched by :func:`conditions`): what a search shows is what a hold on the
same query holds.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlmodel import Session, col, select

from bulletin.connectors.base import ItemKind
from bulletin.errors import NotFound, UsageError
from bulletin.models import Record

STATES = ("visible", "hidden", "deleted", "edited")
KINDS: tuple[str, ...] = get_args(ItemKind)
RARE_STATES = ("hidden", "deleted", "edited")  # each has a partial index (migration 0010)
_WORD = re.compile(r"\w+\*?", re.UNICODE)
_PG_VECTOR = (
    "to_tsvector('simple'::regconfig, coalesce(records.text, '') || ' ' || "
    "coalesce(records.author, ''))"
)


QUERY_KEYS = (
    *("from", "to", "account", "author", "thread", "kind", "state", "series", "platform"),
    "text",
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
    thread's post. Every word of ``text`` must be in the record's text or author's name
    (full-text index; ``word*`` is a prefix).
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
        for key in ("account", "author", "thread", "kind", "state", "series", "platform"):
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
    thread: kind: state: series: platform:``; bare words (or ``text:``) must all appear.

    :raises UsageError: an unknown key, a bad date, state or kind, a term with no word in
        it, a query past the bounds of :func:`check_query`, or (unless ``empty_ok``) nothing
        to match on.
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
        else:
            values[key] = value
    for term in terms:
        if not _terms(term):
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
    for key in ("account", "author", "thread", "series", "platform"):
        value = getattr(query, key)
        if value and len(value) > MAX_VALUE_CHARS:
            raise UsageError(f"query {key}: has {len(value)} characters; at most {MAX_VALUE_CHARS}")
    words = [t for text in query.text for t in _terms(text)] + _terms(query.author or "")
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
        low, high = _bounds(query, "UTC")
    except (OverflowError, ValueError):
        raise UsageError("the query's from:/to: is beyond what a calendar holds") from None
    if low and high and high <= low:
        raise UsageError("the query's to: is before its from:")


def _bounds(query: Query, time_zone: str) -> tuple[datetime | None, datetime | None]:
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


class WordsMatch(sa.ColumnElement[bool]):
    """Records whose text or author holds every word of ``words``, through the full-text
    index of the database (SQLite FTS5, PostgreSQL tsvector): the rule :func:`search` uses."""

    inherit_cache = False  # the words are not part of a cache key
    type = sa.Boolean()

    def __init__(self, words: str) -> None:
        self.words = words


@compiles(WordsMatch, "sqlite")
def _words_sqlite(element: WordsMatch, compiler: Any, **kw: Any) -> str:
    rowid = sa.literal_column("rowid", sa.Integer)
    matches = (
        sa.select(rowid)
        .select_from(sa.table("records_fts"))
        .where(sa.literal_column("records_fts").op("MATCH")(_fts5(element.words, None)))
    )
    return str(compiler.process(col(Record.id).in_(matches), **kw))


@compiles(WordsMatch)
def _words_postgresql(element: WordsMatch, compiler: Any, **kw: Any) -> str:
    matches = sa.literal_column(_PG_VECTOR).op("@@")(
        sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), _tsquery(element.words, None))
    )
    return str(compiler.process(matches, **kw))


def conditions(query: Query, time_zone: str) -> list[sa.ColumnElement[bool]]:
    """The query as SQL conditions on ``records``: exactly the records :func:`search` finds
    (every matching version, where search shows each item once)."""
    where = _filters(query, time_zone, hinted=False)
    if query.text:
        where.append(WordsMatch(" ".join(query.text)))
    return where


@dataclass(frozen=True)
class Hit:
    record: Record  # the newest version that matched
    current_state: str
    versions: int


def index_new_records(conn: sa.Connection, first_seq: int, last_seq: int) -> None:
    """Add the records of ledger entries ``first_seq``..``last_seq`` to SQLite's full-text
    index, in the transaction that inserted them (PostgreSQL's index follows by itself).

    Every code path that inserts records calls this: one statement per batch costs a
    fraction of a row trigger (migration 0011).
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "INSERT INTO records_fts(rowid, text, author) SELECT id, text, author "
            "FROM records WHERE ledger_seq BETWEEN ? AND ?",
            (first_seq, last_seq),
        )


def author_is(author: str) -> sa.ColumnElement[bool]:
    """Records by ``author``, ignoring case and a leading ``@`` (``@username`` on X)."""
    name = author.strip().lower().removeprefix("@")
    return sa.func.lower(col(Record.author)).in_([name, f"@{name}"])


def _terms(text: str) -> list[tuple[str, bool]]:
    return [(w.rstrip("*"), w.endswith("*")) for w in _WORD.findall(text) if w.rstrip("*")]


def _fts5(text: str, author: str | None) -> str | None:
    """The FTS5 query for ``text`` and the author's words (which narrow the index lookup;
    the exact author is compared afterwards); None when there is nothing to look up."""
    terms = _terms(text)
    names = [w for w, _ in _terms(author or "")]
    if not terms and not names:
        return None
    fts = " ".join(f'"{w}"{"*" if prefix else ""}' for w, prefix in terms)
    if names:
        fts = f'{fts} author : "{" ".join(names)}"'.strip()
    return fts


def _tsquery(text: str, author: str | None) -> str | None:
    """The PostgreSQL ``to_tsquery`` text for the same words; None when there are none."""
    words = [f"{w.lower()}{':*' if prefix else ''}" for w, prefix in _terms(text)]
    words += [w.lower() for w, _ in _terms(author or "")]
    return " & ".join(words) or None


def _filters(query: Query, time_zone: str, *, hinted: bool) -> list[sa.ColumnElement[bool]]:
    """Every condition of ``query`` except the words, on ``records``.

    ``hinted`` (SQLite search) writes the equality filters (account, platform, kind)
    ``+column`` so that the planner never walks an index on them (``ix_records_remote``,
    ``ix_records_thread`` start with ``account``) instead of the key the hits are ordered by:
    with a handful of accounts such a walk reads most of the table and sorts it. The records
    matched are the same.
    """
    where: list[sa.ColumnElement[bool]] = []
    if query.author:
        where.append(author_is(query.author))
    for name in ("account", "platform", "kind"):
        value = getattr(query, name)
        if value:
            column: Any = (
                sa.literal_column(f"+records.{name}", sa.String)
                if hinted
                else getattr(Record, name)
            )
            where.append(column == value)
    if query.series:
        where.append(col(Record.series) == query.series)
    if query.thread:
        where.append(_thread_is(query.thread))
    since, until = _bounds(query, time_zone)
    if since or until:
        where.append(_posted_between(since, until))
    if query.state:
        # The item has (had) a version in that state: a comment edited, hidden or deleted
        # is found by words of any of its versions.
        other = Record.__table__.alias("other")  # type: ignore[attr-defined]
        wanted = (
            other.c.change == "edited" if query.state == "edited" else other.c.state == query.state
        )
        where.append(
            sa.exists().where(
                other.c.account == col(Record.account),
                other.c.kind == col(Record.kind),
                other.c.remote_id == col(Record.remote_id),
                wanted,
            )
        )
    return where


def _between(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    return [c for c in (since and column >= since, until and column < until) if c is not None]


def _posted_between(since: datetime | None, until: datetime | None) -> sa.ColumnElement[bool]:
    """Posted in [since, until), or not posted (no date from the platform) and captured in
    it; written so that the posted side reads ``ix_records_posted``."""
    return sa.or_(
        sa.and_(*_between(col(Record.posted_at), since, until)),
        sa.and_(col(Record.posted_at).is_(None), *_between(col(Record.captured_at), since, until)),
    )


MAX_RECORD_NUMBER = 2**31 - 1  # records.id is a 32-bit integer on PostgreSQL


def _thread_is(value: str) -> sa.ColumnElement[bool]:
    """Records of a thread: a record number names the thread that record is in (its
    account, and its post's id); any value also matches a platform thread or item id."""
    by_platform_id = sa.or_(col(Record.thread_id) == value, col(Record.remote_id) == value)
    if not (value.isascii() and value.isdigit() and int(value) <= MAX_RECORD_NUMBER):
        return by_platform_id  # an X id is digits too, far above any record number
    anchor = Record.__table__.alias("anchor")  # type: ignore[attr-defined]
    thread = sa.func.coalesce(col(Record.thread_id), col(Record.remote_id))
    of_record = sa.exists().where(
        anchor.c.id == int(value),
        anchor.c.account == col(Record.account),
        sa.func.coalesce(anchor.c.thread_id, anchor.c.remote_id) == thread,
    )
    return sa.or_(of_record, by_platform_id)


def search(engine: Engine, query: Query, *, time_zone: str = "UTC", limit: int = 20) -> list[Hit]:
    """Items with a record :func:`conditions` matches, at most ``limit``: newest first by
    archive order, or by posted time (then the undated ones) when a date range is the only
    condition besides the filters. ``time_zone`` places from:/to: dates.

    :raises UsageError: an unknown state, or words with nothing to look up.
    """
    if query.state is not None and query.state not in STATES:
        raise UsageError(f"state must be one of {', '.join(STATES)}")
    limit = min(limit, _MAX_LIMIT)  # pages are a multiple of it, and must fit in an int64
    words = " ".join(query.text)
    wants_words = bool(words) or bool(query.author and _terms(query.author))
    hinted = engine.dialect.name == "sqlite"
    undated = replace(query, since=None, until=None)
    since, until = _bounds(query, time_zone)
    dates = [_posted_between(since, until)] if since or until else []
    where = [*_filters(undated, time_zone, hinted=hinted), *dates]
    with Session(engine) as session:
        bound = _state_ids(session, query.state) if query.state in RARE_STATES else None
        bounded: list[sa.ColumnElement[bool]] = []
        if bound is not None:
            # the versions of the items in that state, read from its partial index
            if not bound:
                return []
            plain = replace(undated, state=None)
            bounded = [*_filters(plain, time_zone, hinted=hinted), col(Record.id).in_(bound)]
        if bound is not None and wants_words and engine.dialect.name == "sqlite":
            fts = _fts5(words, query.author)
            if fts is None:
                raise UsageError(f"nothing to search for in {words!r}")
            # where the state is common its hits come early in the walk; where it is rare
            # the walk gives up after a while and the words are looked up among its ids
            pages = _walk_then_bounded(
                session, fts, where, [*bounded, *dates], (since, until), limit
            )
        elif bound is not None and not wants_words:
            pages = _dated_pages(session, bounded, since, until, limit)
        elif wants_words and engine.dialect.name == "sqlite":
            fts = _fts5(words, query.author)
            if fts is None:
                raise UsageError(f"nothing to search for in {words!r}")
            pages = _fts5_pages(session, fts, where, (since, until), limit)
        elif wants_words:
            tsquery = _tsquery(words, query.author)
            if tsquery is None:
                raise UsageError(f"nothing to search for in {words!r}")
            matches = sa.literal_column(_PG_VECTOR).op("@@")(
                sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), tsquery)
            )
            pages = _keyset_pages(session, [matches, *where], by_posted=False, first=limit)
        else:
            base = _filters(undated, time_zone, hinted=hinted)
            pages = _dated_pages(session, base, since, until, limit)
        # The first row of an item is its newest matching version (pages come newest first).
        chosen: dict[tuple[str, str, str], int] = {}
        for page in pages:
            for row in page:
                chosen.setdefault((row.account, row.kind, row.remote_id), row.id)
                if len(chosen) >= limit:
                    break
            if len(chosen) >= limit:
                pages.close()
                break
        records = {
            r.id: r
            for r in session.exec(select(Record).where(col(Record.id).in_(chosen.values()))).all()
        }
        current = _current(session, list(chosen))
    hits = [records[i] for i in chosen.values()]
    return [
        Hit(record, *current.get(key, (record.state, record.version)))
        for key, record in zip(chosen, hits, strict=True)
    ]


def _dated_pages(
    session: Session,
    where: list[sa.ColumnElement[bool]],
    since: datetime | None,
    until: datetime | None,
    first: int,
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """Keys of the records matching ``where``: newest first by id; with a date range, those
    posted in it by posted time (``ix_records_posted``), then the undated ones captured in it."""
    if not (since or until):
        yield from _keyset_pages(session, where, by_posted=False, first=first)
        return
    posted = _between(col(Record.posted_at), since, until)
    yield from _keyset_pages(session, [*where, *posted], by_posted=True, first=first)
    undated = [col(Record.posted_at).is_(None), *_between(col(Record.captured_at), since, until)]
    yield from _keyset_pages(session, [*where, *undated], by_posted=False, first=first)


# Rows are read in pages that grow, so a query whose first rows hold its hits costs one
# small read, and one whose hits are rare still reads each row once. A page carries only
# the columns that tell items apart; whole records are read for the hits alone.
_FIRST_PAGE_FACTOR = 4
_MAX_PAGE = 4096
_MAX_LIMIT = 2**40  # more hits than any archive holds
# A date range holding at most this many records bounds the full-text walk by record id.
_SPAN_CAP = 20_000
# A state held by at most this many versions is rare: the search is bounded to its items'
# ids (at most _STATE_CAP of them).
_STATE_ITEMS = 500
_STATE_CAP = 20_000
# How many full-text rows a search by state walks before it looks among the state's ids.
_WALK_BUDGET = 8_192
_KEYS = (col(Record.id), col(Record.account), col(Record.kind), col(Record.remote_id))


def _keyset_pages(
    session: Session, where: list[sa.ColumnElement[bool]], *, by_posted: bool, first: int
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """Keys (id, account, kind, remote_id) of the records matching ``where``, newest first
    (by id, or by posted time then id), in pages.

    Ordered by id the walk uses the primary key; by posted time, ``ix_records_posted``
    (SQLite keeps the row id as that index's last column, so no sort is needed)."""
    size = max(first * _FIRST_PAGE_FACTOR, 16)
    after: tuple[datetime, int] | int | None = None
    while True:
        statement = sa.select(*_KEYS, col(Record.posted_at)).where(*where)
        if by_posted:
            statement = statement.where(col(Record.posted_at).is_not(None)).order_by(
                col(Record.posted_at).desc(), col(Record.id).desc()
            )
            if isinstance(after, tuple):
                statement = statement.where(
                    sa.tuple_(col(Record.posted_at), col(Record.id)) < sa.tuple_(*after)
                )
        else:
            statement = statement.order_by(col(Record.id).desc())
            if isinstance(after, int):
                statement = statement.where(col(Record.id) < after)
        rows = session.execute(statement.limit(size)).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1]
        after = (last.posted_at, last.id) if by_posted and last.posted_at else last.id
        size = min(size * 4, _MAX_PAGE)


def _fts5_pages(
    session: Session,
    fts: str,
    where: list[sa.ColumnElement[bool]],
    dates: tuple[datetime | None, datetime | None],
    limit: int,
    budget: list[int] | None = None,
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """SQLite: keys of the records matching the words and ``where``, newest first.

    The FTS5 index is walked in chunks newest first (``ORDER BY rowid DESC`` with a
    ``LIMIT`` stops early, where ``rowid IN (MATCH ...)`` would list every match before the
    first row), and each chunk is joined to ``records`` with the other conditions inside
    SQLite. A narrow date range first bounds the walk to the ids of its records. With a
    ``budget`` (a one-element list) the walk stops once it has read that many index rows,
    leaving the budget below zero."""
    lowest: int | None = None
    before: int | None = None
    if dates[0] or dates[1]:
        span = _posted_span(session, *dates)
        if span is not None:
            count, low, high = span
            if count == 0:
                return
            lowest, before = low, high + 1
    rowid = sa.literal_column("rowid", sa.Integer)
    size = max(limit * _FIRST_PAGE_FACTOR, 16)
    while True:
        chunk = (
            sa.select(rowid)
            .select_from(sa.table("records_fts"))
            .where(sa.literal_column("records_fts").op("MATCH")(fts))
        )
        if before is not None:
            chunk = chunk.where(rowid < before)
        if lowest is not None:
            chunk = chunk.where(rowid >= lowest)
        chunk = chunk.order_by(rowid.desc()).limit(size)
        walked = chunk.subquery()
        count, low = session.execute(sa.select(sa.func.count(), sa.func.min(walked.c.rowid))).one()
        if count:
            rows = session.execute(
                sa.select(*_KEYS)
                .where(col(Record.id).in_(chunk), *where)
                .order_by(col(Record.id).desc())
            ).all()
            if rows:
                yield rows
        if count < size:
            return
        if budget is not None:
            budget[0] -= count
            if budget[0] < 0:
                return
        before = int(low)
        size = min(size * 4, _MAX_PAGE)


def _state_ids(session: Session, state: str) -> list[int] | None:
    """Ids of every version of the items that have a version in ``state`` (hidden, deleted,
    edited), through the partial index of that state; None when the state is not rare (more
    than ``_STATE_ITEMS`` such versions, or more than ``_STATE_CAP`` ids): the walk finds
    its hits early then.

    The condition is written with a literal, as the partial index's own, so that the
    planner may use it."""
    notable = Record.__table__.alias("notable")  # type: ignore[attr-defined]
    column = notable.c.change if state == "edited" else notable.c.state
    in_state = column == sa.literal_column(f"'{state}'")
    few = sa.select(notable.c.id).where(in_state).limit(_STATE_ITEMS + 1).subquery()
    if session.execute(sa.select(sa.func.count()).select_from(few)).scalar_one() > _STATE_ITEMS:
        return None
    items = (
        sa.select(notable.c.account, notable.c.kind, notable.c.remote_id)
        .where(in_state)
        .distinct()
        .subquery()
    )
    records = Record.__table__  # type: ignore[attr-defined]
    ids = session.execute(
        sa.select(records.c.id)
        .join(
            items,
            sa.and_(
                records.c.account == items.c.account,
                records.c.kind == items.c.kind,
                records.c.remote_id == items.c.remote_id,
            ),
        )
        .limit(_STATE_CAP + 1)
    ).scalars()
    found = list(ids)
    return None if len(found) > _STATE_CAP else found


def _walk_then_bounded(
    session: Session,
    fts: str,
    where: list[sa.ColumnElement[bool]],
    bounded: list[sa.ColumnElement[bool]],
    dates: tuple[datetime | None, datetime | None],
    limit: int,
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """The newest-first walk for at most ``_WALK_BUDGET`` index rows, then, if it has not
    ended, the matches among the bounded ids (the items it already gave keep their place)."""
    budget = [_WALK_BUDGET]
    yield from _fts5_pages(session, fts, where, dates, limit, budget)
    if budget[0] < 0:
        yield from _bounded_fts5(session, fts, bounded)


def _bounded_fts5(
    session: Session, fts: str, where: list[sa.ColumnElement[bool]]
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """SQLite: keys of the records matching the words among a small set of ids ``where``
    names, newest first, in one page."""
    rowid = sa.literal_column("rowid", sa.Integer)
    matches = (
        sa.select(rowid)
        .select_from(sa.table("records_fts"))
        .where(sa.literal_column("records_fts").op("MATCH")(fts))
    )
    rows = session.execute(
        sa.select(*_KEYS).where(col(Record.id).in_(matches), *where).order_by(col(Record.id).desc())
    ).all()
    if rows:
        yield rows


def _posted_span(
    session: Session, since: datetime | None, until: datetime | None
) -> tuple[int, int, int] | None:
    """(count, lowest id, highest id) of the records in the date range (posted in it, or
    undated and captured in it), read from ``ix_records_posted``; None when the range holds
    more than ``_SPAN_CAP`` records."""
    count, low, high = 0, None, None
    for where in (
        _between(col(Record.posted_at), since, until),
        [col(Record.posted_at).is_(None), *_between(col(Record.captured_at), since, until)],
    ):
        sub = select(col(Record.id)).where(*where).limit(_SPAN_CAP + 1).subquery()
        n, lo, hi = session.execute(
            sa.select(sa.func.count(), sa.func.min(sub.c.id), sa.func.max(sub.c.id))
        ).one()
        count += n
        if n:
            low = lo if low is None else min(low, lo)
            high = hi if high is None else max(high, hi)
    if count > _SPAN_CAP:
        return None
    return int(count), int(low or 0), int(high or 0)


def _current(
    session: Session, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], tuple[str, int]]:
    """(state, number of versions) of each item now."""
    if not keys:
        return {}
    rows: list[Any] = []
    for account in sorted({k[0] for k in keys}):
        rows.extend(
            session.execute(
                sa.select(
                    col(Record.account),
                    col(Record.kind),
                    col(Record.remote_id),
                    col(Record.version),
                    col(Record.state),
                )
                .where(col(Record.account) == account)
                .where(col(Record.remote_id).in_(sorted({k[2] for k in keys if k[0] == account})))
                .order_by(col(Record.version))
            ).all()
        )
    found: dict[tuple[str, str, str], tuple[str, int]] = {}
    for account, kind, remote_id, version, state in rows:
        found[(account, kind, remote_id)] = (state, version)
    return found


@dataclass(frozen=True)
class ThreadItem:
    """One post or comment of a thread: every version, oldest first, and its depth."""

    versions: list[Record]
    depth: int

    @property
    def latest(self) -> Record:
        return self.versions[-1]


def thread_of(engine: Engine, record_id: int) -> tuple[Record, list[ThreadItem]]:
    """The thread holding record ``record_id``: its post first, then comments and replies in
    order (replies under their parent), each with all its versions.

    :raises NotFound: no such record.
    """
    with Session(engine) as session:
        record = session.get(Record, record_id)
        if record is None:
            raise NotFound(f"no archived record {record_id}")
        thread_id = record.thread_id or record.remote_id
        rows = session.exec(
            select(Record)
            .where(Record.account == record.account)
            .where(col(Record.thread_id) == thread_id)
            .order_by(col(Record.id))
        ).all()
        if not rows:
            rows = [record]
    by_item: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.version):
        by_item[(row.kind, row.remote_id)].append(row)
    children: dict[str | None, list[tuple[str, str]]] = defaultdict(list)
    posts = [k for k in by_item if k[0] == "post"]
    for key, versions in by_item.items():
        if key[0] == "post":
            continue
        parent = versions[-1].parent_id
        if parent is None or parent == thread_id or (("comment", parent) not in by_item):
            parent = None
        children[parent].append(key)

    def order(key: tuple[str, str]) -> tuple[Any, ...]:
        first = by_item[key][0]
        return (first.posted_at or first.captured_at, first.id or 0)

    out = [ThreadItem(by_item[k], 0) for k in sorted(posts, key=order)]

    def walk(parent: str | None, depth: int) -> None:
        for key in sorted(children.get(parent, []), key=order):
            out.append(ThreadItem(by_item[key], depth))
            walk(key[1], depth + 1)

    walk(None, 1)
    return record, out
