"""Searching the archive: the items a query matches, newest first, each shown once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.search.conditions import (
    author_names,
    filters,
    fts5_query,
    posted_between,
    tsquery_of,
    tsvector_match,
)
from bulletin.archiver.search.pages import (
    dated_pages,
    fts5_pages,
    keyset_pages,
    postgres_pages,
    state_ids,
    walk_then_bounded,
)
from bulletin.archiver.search.query import STATES, Query, bounds, words_of
from bulletin.errors import UsageError
from bulletin.models import Record

RARE_STATES = ("hidden", "deleted", "edited")  # each has a partial index (migration 0010)


_MAX_LIMIT = 2**40  # more hits than any archive holds


@dataclass
class Scan:
    """How many candidate rows a search may read (``rows``), and, after it, whether it
    stopped for that reason before it had a full page (``capped``)."""

    rows: int
    capped: bool = False


@dataclass(frozen=True)
class Hit:
    record: Record  # the newest version that matched
    current_state: str
    versions: int


def search(
    engine: Engine,
    query: Query,
    *,
    time_zone: str = "UTC",
    limit: int = 20,
    extra: Sequence[sa.ColumnElement[bool]] = (),
    scan: Scan | None = None,
) -> list[Hit]:
    """Items with a record :func:`conditions` matches, at most ``limit``: newest first by
    archive order, or by posted time (then the undated ones) when a date range is the only
    condition besides the filters. ``time_zone`` places from:/to: dates.

    ``extra`` are further conditions on ``records`` every hit must meet (the public portal's
    rules of what may be shown). With ``scan`` the walk stops once it has taken ``scan.rows``
    candidate rows (plus the page it is in), whatever it has found by then; a search by words
    also stops once it has read about that many rows: on SQLite rows of the full-text index,
    on PostgreSQL rows of ``records`` (see :func:`~.pages.postgres_pages`). ``scan.capped``
    then says whether it stopped short of a full page for that reason.

    :raises UsageError: an unknown state, or words with nothing to look up.
    """
    if query.state is not None and query.state not in STATES:
        raise UsageError(f"state must be one of {', '.join(STATES)}")
    limit = min(limit, _MAX_LIMIT)  # pages are a multiple of it, and must fit in an int64
    words = " ".join(query.text)
    wants_words = bool(words) or bool(query.author and words_of(query.author))
    hinted = engine.dialect.name == "sqlite"
    undated = replace(query, since=None, until=None)
    since, until = bounds(query, time_zone)
    dates = [posted_between(since, until)] if since or until else []
    where = [*filters(undated, time_zone, hinted=hinted), *dates, *extra]
    postgres = engine.dialect.name == "postgresql"
    with Session(engine) as session:
        if postgres:
            # Every search reads a few pages of keys: starting parallel workers costs more
            # than the work they share (about 30 ms of a 40 ms walk on two busy cores).
            session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        bound = state_ids(session, query.state) if query.state in RARE_STATES else None
        budget: list[int] | None = None  # what a search by words may still read, if bounded
        bounded: list[sa.ColumnElement[bool]] = []
        if bound is not None:
            # the versions of the items in that state, read from its partial index
            if not bound:
                return []
            plain = replace(undated, state=None)
            bounded = [
                *filters(plain, time_zone, hinted=hinted),
                _id_among(bound, postgres),
                *extra,
            ]
        if bound is not None and wants_words and engine.dialect.name == "sqlite":
            fts = fts5_query(words, query.author)
            if fts is None:
                raise UsageError(f"nothing to search for in {words!r}")
            # where the state is common its hits come early in the walk; where it is rare
            # the walk gives up after a while and the words are looked up among its ids
            pages = walk_then_bounded(
                session, fts, where, [*bounded, *dates], (since, until), limit
            )
        elif bound is not None and not wants_words:
            pages = dated_pages(session, bounded, since, until, limit)
        elif wants_words and engine.dialect.name == "sqlite":
            fts = fts5_query(words, query.author)
            if fts is None:
                raise UsageError(f"nothing to search for in {words!r}")
            budget = [scan.rows] if scan is not None else None  # index rows walked, at most
            pages = fts5_pages(session, fts, where, (since, until), limit, budget)
        elif wants_words and bound is not None:  # PostgreSQL: among the rare state's versions
            matches = [tsvector_match(_tsquery(words))] if words else []
            pages = keyset_pages(
                session, [*matches, *bounded, *dates], by_posted=False, first=limit
            )
        elif wants_words:  # PostgreSQL
            # The author's own index narrows better than the words of the name (one of them,
            # "visitor", can be in every record): the name is not added to the words here.
            others = [*filters(replace(undated, author=None), time_zone, hinted=False), *extra]
            authors = author_names(query.author) if query.author else []
            tsquery = _tsquery(words) if words else None
            budget = [scan.rows] if scan is not None else None  # rows of records, at most
            pages = postgres_pages(session, tsquery, others, (since, until), authors, limit, budget)
        else:
            base = [*filters(undated, time_zone, hinted=hinted), *extra]
            pages = dated_pages(session, base, since, until, limit)
        # The first row of an item is its newest matching version (pages come newest first).
        chosen: dict[tuple[str, str, str], int] = {}
        read = 0
        for page in pages:
            read += len(page)
            for row in page:
                chosen.setdefault((row.account, row.kind, row.remote_id), row.id)
                if len(chosen) >= limit:
                    break
            if len(chosen) >= limit or (scan is not None and read >= scan.rows):
                pages.close()
                break
        if scan is not None and len(chosen) < limit:
            scan.capped = read >= scan.rows or (budget is not None and budget[0] < 0)
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


def _tsquery(words: str) -> str:
    """:raises UsageError: nothing to look up in ``words``."""
    tsquery = tsquery_of(words, None)
    if tsquery is None:
        raise UsageError(f"nothing to search for in {words!r}")
    return tsquery


def _id_among(ids: list[int], postgres: bool) -> sa.ColumnElement[bool]:
    """``records.id`` is one of ``ids`` (at most ``_STATE_CAP``): one array parameter on
    PostgreSQL rather than a parameter per id."""
    if postgres:
        return col(Record.id) == sa.any_(
            sa.bindparam("ids", ids, type_=ARRAY(sa.Integer), unique=True)
        )
    return col(Record.id).in_(ids)


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
