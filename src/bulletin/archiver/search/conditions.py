"""A :class:`~bulletin.archiver.search.query.Query` as SQL conditions on ``records``: the
full-text match of its words (SQLite FTS5, PostgreSQL tsvector) and its other filters. Also
how new records enter SQLite's full-text index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlmodel import col

from bulletin.archiver.search.query import Query, bounds, words_of
from bulletin.models import Record

# PostgreSQL's stored to_tsvector('simple', text || ' ' || author), GIN-indexed (0024)
PG_VECTOR = "records.search_vector"


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
        .where(sa.literal_column("records_fts").op("MATCH")(fts5_query(element.words, None)))
    )
    return str(compiler.process(col(Record.id).in_(matches), **kw))


@compiles(WordsMatch)
def _words_postgresql(element: WordsMatch, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(tsvector_match(tsquery_of(element.words, None)), **kw))


def tsvector_match(
    tsquery: str | None, vector: sa.ColumnElement[Any] | None = None
) -> sa.ColumnElement[bool]:
    """PostgreSQL: the records whose stored vector (``records.search_vector``, or ``vector``
    when it is read through a subquery) matches ``tsquery`` (:func:`tsquery_of`)."""
    column = sa.literal_column(PG_VECTOR) if vector is None else vector
    return column.op("@@")(sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), tsquery))


def conditions(query: Query, time_zone: str) -> list[sa.ColumnElement[bool]]:
    """The query as SQL conditions on ``records``: exactly the records :func:`search` finds
    (every matching version, where search shows each item once)."""
    where = filters(query, time_zone, hinted=False)
    if query.text:
        where.append(WordsMatch(" ".join(query.text)))
    return where


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
    return sa.func.lower(col(Record.author)).in_(author_names(author))


def author_names(author: str) -> list[str]:
    """The lower-cased names :func:`author_is` accepts for ``author``: with and without
    ``@``."""
    name = author.strip().lower().removeprefix("@")
    return [name, f"@{name}"]


def fts5_query(text: str, author: str | None) -> str | None:
    """The FTS5 query for ``text`` and the author's words (which narrow the index lookup;
    the exact author is compared afterwards); None when there is nothing to look up."""
    terms = words_of(text)
    names = [w for w, _ in words_of(author or "")]
    if not terms and not names:
        return None
    fts = " ".join(f'"{w}"{"*" if prefix else ""}' for w, prefix in terms)
    if names:
        fts = f'{fts} author : "{" ".join(names)}"'.strip()
    return fts


def tsquery_of(text: str, author: str | None) -> str | None:
    """The PostgreSQL ``to_tsquery`` text for the same words; None when there are none."""
    words = [f"{w.lower()}{':*' if prefix else ''}" for w, prefix in words_of(text)]
    words += [w.lower() for w, _ in words_of(author or "")]
    return " & ".join(words) or None


def filters(query: Query, time_zone: str, *, hinted: bool) -> list[sa.ColumnElement[bool]]:
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
    if query.lang:
        where.append(col(Record.lang) == query.lang)
    if query.thread:
        where.append(_thread_is(query.thread))
    since, until = bounds(query, time_zone)
    if since or until:
        where.append(posted_between(since, until))
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


def between(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    return [c for c in (since and column >= since, until and column < until) if c is not None]


def posted_between(since: datetime | None, until: datetime | None) -> sa.ColumnElement[bool]:
    """Posted in [since, until), or not posted (no date from the platform) and captured in
    it; written so that the posted side reads ``ix_records_posted``."""
    return sa.or_(
        sa.and_(*between(col(Record.posted_at), since, until)),
        sa.and_(col(Record.posted_at).is_(None), *between(col(Record.captured_at), since, until)),
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
