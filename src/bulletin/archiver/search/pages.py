"""How :func:`~bulletin.archiver.search.find.search` reads its candidates: the keys of
matching records, newest first, in pages that grow, along whichever index answers the query
best (the primary key, ``ix_records_posted``, the FTS5 index, a rare state's partial index,
PostgreSQL's ``ix_records_author``)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from bulletin.archiver.search.conditions import (
    PG_VECTOR,
    between,
    posted_between,
    tsvector_match,
)
from bulletin.models import Record


def dated_pages(
    session: Session,
    where: list[sa.ColumnElement[bool]],
    since: datetime | None,
    until: datetime | None,
    first: int,
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """Keys of the records matching ``where``: newest first by id; with a date range, those
    posted in it by posted time (``ix_records_posted``), then the undated ones captured in it."""
    if not (since or until):
        yield from keyset_pages(session, where, by_posted=False, first=first)
        return
    posted = between(col(Record.posted_at), since, until)
    yield from keyset_pages(session, [*where, *posted], by_posted=True, first=first)
    undated = [col(Record.posted_at).is_(None), *between(col(Record.captured_at), since, until)]
    yield from keyset_pages(session, [*where, *undated], by_posted=False, first=first)


# Rows are read in pages that grow, so a query whose first rows hold its hits costs one
# small read, and one whose hits are rare still reads each row once. A page carries only
# the columns that tell items apart; whole records are read for the hits alone.
_FIRST_PAGE_FACTOR = 4
_MAX_PAGE = 4096


# A date range holding at most this many records bounds the full-text walk by record id.
_SPAN_CAP = 20_000
# A state held by at most this many versions is rare: the search is bounded to its items'
# ids (at most _STATE_CAP of them).
_STATE_ITEMS = 500
_STATE_CAP = 20_000
# How many full-text rows a search by state walks before it looks among the state's ids.
_WALK_BUDGET = 8_192
# How many of the newest rows a bounded PostgreSQL search walks before it asks the GIN index
# for the older matches (a word in one record of a hundred fills a page within it).
_NEWEST_WALK = 2_048
_KEYS = (col(Record.id), col(Record.account), col(Record.kind), col(Record.remote_id))


def keyset_pages(
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


def fts5_pages(
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
        span = _posted_span(session, *dates, _SPAN_CAP if budget is None else budget[0])
        if span is None and budget is not None:
            # more records in the range than the budget: walk it, then the index
            yield from ranged_pages(session, ("fts5", fts), where, dates, limit, budget)
            return
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


def postgres_pages(
    session: Session,
    tsquery: str | None,
    where: list[sa.ColumnElement[bool]],
    dates: tuple[datetime | None, datetime | None],
    authors: list[str],
    first: int,
    budget: list[int] | None = None,
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """PostgreSQL: keys of the records matching the words (``tsquery``, if any), ``where``,
    the date range and (if any) one of the lower-cased ``authors``, newest first by id.

    The path is chosen here, not by the planner, which misjudges two things: the GIN bitmap
    of a common word costs far more than it estimates (40-90 ms at 1,000,000 records), so it
    ANDs that bitmap with a narrow index; and a walk of the primary key for an author's rows
    reads far more rows than it estimates. So:

    - a date range holding at most ``_SPAN_CAP`` records (with a ``budget``, at most what
      :func:`ranged_pages` would walk) is read first through ``ix_records_posted`` (a
      ``MATERIALIZED`` CTE) and the rest is checked on its rows; a wider one with words and
      a budget is :func:`ranged_pages`;
    - else an author's records are walked newest first along ``ix_records_author``
      (``lower(author), id``), one walk per spelling of the name, merged;
    - else every condition is checked on a walk by id, whose hits come early when nothing
      narrows; with a ``budget`` (a one-element list: rows of ``records``) that walk is
      :func:`_budgeted_pages`, which reads at most about that many rows and leaves the budget
      below zero when it stopped short."""
    since, until = dates
    dated = [posted_between(since, until)] if since or until else []
    author = [sa.func.lower(col(Record.author)).in_(authors)] if authors else []
    matches = [tsvector_match(tsquery)] if tsquery else []
    if dated:
        # With a budget only a range the walk would read whole is read first: counting
        # further reads a heap row per index entry here (30 ms for 20,000).
        cap = _SPAN_CAP if budget is None else min(budget[0] // 2, _NEWEST_WALK)
        span = _posted_span(session, since, until, cap)
        if span is not None and span[0] == 0:
            return
        if span is not None:
            yield from _narrowed_pages(session, tsquery, [*where, *dated, *author], first)
            return
        if budget is not None and tsquery and not authors:
            # more records in the range than the budget: walk it, then the index
            yield from ranged_pages(session, ("tsquery", tsquery), where, dates, first, budget)
            return
    if authors:
        yield from _author_pages(session, authors, [*matches, *where, *dated], first)
        return
    if budget is not None and tsquery:
        yield from _budgeted_pages(session, tsquery, [*where, *dated], first, budget)
        return
    yield from keyset_pages(session, [*matches, *where, *dated], by_posted=False, first=first)


def _budgeted_pages(
    session: Session,
    tsquery: str,
    where: list[sa.ColumnElement[bool]],
    first: int,
    budget: list[int],
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """PostgreSQL: keys of the records matching ``tsquery`` and ``where``, newest first,
    reading at most about ``budget[0]`` rows of ``records`` (the portal's ``max_scan``).

    First the newest rows are walked by id in chunks (each chunk a ``MATERIALIZED`` CTE
    under a ``LIMIT``, so it reads that many rows and no more, and the GIN bitmap of a
    common word is never built), checking every condition on them: a common word's hits
    come early. After half the budget (at most ``_NEWEST_WALK`` rows), the older matches
    are listed through the GIN index alone, at most the rest of the budget plus one (a ``LIMIT`` on
    the bitmap heap scan; ``tsquery_of`` writes only ``&`` and prefixes, which the index
    answers exactly, so no row read is thrown away by a recheck): if they fit in the budget
    the other conditions are checked on them by key; if not, the search stops there and the
    budget is left below zero (the results were capped)."""
    walk = min(budget[0] // 2, _NEWEST_WALK)
    size = max(first * _FIRST_PAGE_FACTOR, 16)
    after: int | None = None
    records = Record.__table__  # type: ignore[attr-defined]
    match = tsvector_match(tsquery)
    while walk > 0:
        size = min(size, walk)
        chunk = sa.select(
            records.c.id,
            records.c.account,
            records.c.kind,
            records.c.remote_id,
            sa.and_(match, *where).label("hit"),
        )
        if after is not None:
            chunk = chunk.where(records.c.id < after)
        newest = chunk.order_by(records.c.id.desc()).limit(size).cte("newest")
        newest = newest.prefix_with("MATERIALIZED")
        low = sa.select(sa.func.min(newest.c.id)).scalar_subquery()
        read = sa.select(sa.func.count()).select_from(newest).scalar_subquery()
        rows = session.execute(
            sa.select(
                newest.c.id,
                newest.c.account,
                newest.c.kind,
                newest.c.remote_id,
                newest.c.hit,
                low.label("low"),
                read.label("read"),
            )
            .where(sa.or_(newest.c.hit.is_(True), newest.c.id == low))
            .order_by(newest.c.id.desc())
        ).all()
        if not rows:
            return
        hits = [r for r in rows if r.hit]
        if hits:
            yield hits
        count = int(rows[0].read)
        budget[0] -= count
        walk -= count
        if count < size:
            return  # the whole table was walked
        after = int(rows[0].low)
        size = min(size * 4, _MAX_PAGE)
    # The older matches, through the GIN index only.
    if budget[0] <= 0:
        budget[0] = -1
        return
    allowed = budget[0]
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    session.execute(sa.text("SET LOCAL enable_indexscan = off"))
    try:
        older = sa.select(records.c.id).where(match)
        if after is not None:
            # written "+ 0" so that only the GIN index can answer it
            older = older.where(records.c.id + 0 < after)
        ids = list(session.execute(older.limit(allowed + 1)).scalars())
    finally:
        session.execute(sa.text("SET LOCAL enable_seqscan TO DEFAULT"))
        session.execute(sa.text("SET LOCAL enable_indexscan TO DEFAULT"))
    budget[0] -= len(ids)
    if len(ids) > allowed:
        return
    if ids:
        rows = session.execute(
            sa.select(*_KEYS)
            .where(col(Record.id) == sa.any_(sa.bindparam("older", ids, type_=ARRAY(sa.Integer))))
            .where(*where)
            .order_by(col(Record.id).desc())
        ).all()
        if rows:
            yield rows


def ranged_pages(
    session: Session,
    words: tuple[str, str],
    where: list[sa.ColumnElement[bool]],
    dates: tuple[datetime | None, datetime | None],
    first: int,
    budget: list[int],
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """Keys of the records in a wide date range matching the words and ``where``, newest
    first by posted time (then the undated ones captured in the range, newest first by id),
    reading at most about ``budget[0]`` rows (the portal's ``max_scan``).

    ``words`` is ``("fts5", query)`` on SQLite or ``("tsquery", query)`` on PostgreSQL.
    The range is walked first, along ``ix_records_posted`` from its newest end, in chunks
    under a ``LIMIT``, each row of which is checked for ``where`` and the words (its stored
    vector on PostgreSQL; on SQLite the FTS5 index read for the chunk's ids, see
    :func:`_fts5_among`): a word
    common in the range fills a page there, however far back the range lies. After half the
    budget (at most ``_NEWEST_WALK`` rows) the words' own index is asked for their matches
    (at most the rest of the budget plus one, newest first), which are checked for the rest
    of the range and ``where`` by key: a word rare in the archive is found wherever it is in
    the range. If they do not fit, the search stops there with the budget below zero."""
    since, until = dates
    records = Record.__table__  # type: ignore[attr-defined]
    kind, text = words
    fts5 = kind == "fts5"
    # SQLite checks the words of a chunk's rows in the FTS5 index afterwards (_fts5_among)
    match: sa.ColumnElement[bool] = sa.true() if fts5 else tsvector_match(text)
    posted_range = between(records.c.posted_at, since, until)
    undated_range = [records.c.posted_at.is_(None), *between(records.c.captured_at, since, until)]
    walk = min(budget[0] // 2, _NEWEST_WALK)
    size = max(first * _FIRST_PAGE_FACTOR, 16)
    after: tuple[datetime, int] | None = None  # the last (posted_at, id) walked
    after_id: int | None = None  # the last id walked among the undated
    undated = False  # the posted side is walked to its end
    finished = False
    while walk > 0:
        size = min(size, walk)
        chunk = sa.select(
            records.c.id,
            records.c.account,
            records.c.kind,
            records.c.remote_id,
            records.c.posted_at,
            sa.and_(match, *where).label("hit"),
        )
        if not undated:
            chunk = chunk.where(*posted_range)
            if after is not None:
                chunk = chunk.where(*_before(records, after))
            chunk = chunk.order_by(records.c.posted_at.desc(), records.c.id.desc())
        else:
            chunk = chunk.where(*undated_range)
            if after_id is not None:
                chunk = chunk.where(records.c.id < after_id)
            chunk = chunk.order_by(records.c.id.desc())
        rows = session.execute(chunk.limit(size)).all()
        budget[0] -= len(rows)
        walk -= len(rows)
        hits = [r for r in rows if r.hit]
        if fts5 and hits:
            having = _fts5_among(session, text, [r.id for r in hits])
            hits = [r for r in hits if r.id in having]
        if hits:
            yield hits
        if len(rows) < size:
            if undated:
                finished = True
                break
            undated = True
            continue
        if undated:
            after_id = rows[-1].id
        else:
            after = (rows[-1].posted_at, rows[-1].id)
        size = min(size * 4, _MAX_PAGE)
    if finished:
        return
    # The rest of the range, through the words' index.
    rest: list[sa.ColumnElement[bool]]
    if undated:
        rest = [*undated_range, *([records.c.id < after_id] if after_id is not None else [])]
    else:
        posted_rest = [*posted_range, *(_before(records, after) if after is not None else [])]
        rest = [sa.or_(sa.and_(*posted_rest), sa.and_(*undated_range))]
    if budget[0] <= 0:
        budget[0] = -1
        return
    allowed = budget[0]
    ids = _word_ids(session, kind, text, allowed + 1)
    budget[0] -= len(ids)
    if len(ids) > allowed:
        return
    if ids:
        found = session.execute(
            sa.select(records.c.id, records.c.account, records.c.kind, records.c.remote_id)
            .where(_among(records.c.id, ids, kind == "tsquery"), *rest, *where)
            .order_by(records.c.posted_at.desc(), records.c.id.desc())
        ).all()
        if found:
            yield found


def _fts5_among(session: Session, fts: str, ids: list[int]) -> set[int]:
    """SQLite: which of ``ids`` match the words. When they lie close together (a range's
    records were mostly captured together) the index rows between the lowest and the highest
    are read in one go, at most four per id; else each id is looked up (``rowid IN``), which
    costs FTS5 a seek apiece."""
    rowid = sa.literal_column("rowid", sa.Integer)
    lookup = (
        sa.select(rowid)
        .select_from(sa.table("records_fts"))
        .where(sa.literal_column("records_fts").op("MATCH")(fts))
    )
    low, high = min(ids), max(ids)
    if high - low < 4 * len(ids):
        lookup = lookup.where(rowid >= low, rowid <= high)
    else:
        lookup = lookup.where(rowid.in_(ids))
    return set(session.execute(lookup).scalars()) & set(ids)


def _before(records: Any, after: tuple[datetime, int]) -> list[sa.ColumnElement[bool]]:
    """Older than ``after`` in (posted_at, id) order, written so that ``ix_records_posted``
    bounds it."""
    posted, key = after
    return [
        records.c.posted_at <= posted,
        sa.or_(records.c.posted_at < posted, records.c.id < key),
    ]


def _among(column: Any, ids: list[int], postgres: bool) -> sa.ColumnElement[bool]:
    among: sa.ColumnElement[bool]
    if postgres:
        among = column == sa.any_(sa.bindparam("among", ids, type_=ARRAY(sa.Integer)))
    else:
        among = column.in_(ids)
    return among


def _word_ids(session: Session, kind: str, text: str, most: int) -> list[int]:
    """Ids of the records matching the words, newest first, at most ``most``, from the
    full-text index alone (FTS5 rowids; PostgreSQL's GIN index under a ``LIMIT``)."""
    if kind == "fts5":
        rowid = sa.literal_column("rowid", sa.Integer)
        found = session.execute(
            sa.select(rowid)
            .select_from(sa.table("records_fts"))
            .where(sa.literal_column("records_fts").op("MATCH")(text))
            .order_by(rowid.desc())
            .limit(most)
        ).scalars()
        return [int(i) for i in found]
    records = Record.__table__  # type: ignore[attr-defined]
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    session.execute(sa.text("SET LOCAL enable_indexscan = off"))
    try:
        found = session.execute(
            sa.select(records.c.id).where(tsvector_match(text)).limit(most)
        ).scalars()
        return [int(i) for i in found]
    finally:
        session.execute(sa.text("SET LOCAL enable_seqscan TO DEFAULT"))
        session.execute(sa.text("SET LOCAL enable_indexscan TO DEFAULT"))


def _narrowed_pages(
    session: Session, tsquery: str | None, where: list[sa.ColumnElement[bool]], first: int
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """PostgreSQL: the records matching ``where`` (a few) read first, then the words checked
    on their stored vectors; newest first by id."""
    vector: sa.Label[Any] = sa.literal_column(PG_VECTOR).label("search_vector")
    narrowed = sa.select(*_KEYS, vector).where(*where).cte("narrowed").prefix_with("MATERIALIZED")
    keys = (narrowed.c.id, narrowed.c.account, narrowed.c.kind, narrowed.c.remote_id)
    size = max(first * _FIRST_PAGE_FACTOR, 16)
    after: int | None = None
    while True:
        statement = sa.select(*keys)
        if tsquery:
            statement = statement.where(tsvector_match(tsquery, narrowed.c.search_vector))
        if after is not None:
            statement = statement.where(narrowed.c.id < after)
        rows = session.execute(statement.order_by(narrowed.c.id.desc()).limit(size)).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].id
        size = min(size * 4, _MAX_PAGE)


def _author_pages(
    session: Session, authors: list[str], where: list[sa.ColumnElement[bool]], first: int
) -> Generator[Sequence[sa.Row[Any]], None, None]:
    """PostgreSQL: the records by one of ``authors`` matching ``where``, newest first by
    id: each name's rows walked backwards along ``ix_records_author``, merged."""
    size = max(first * _FIRST_PAGE_FACTOR, 16)
    after: int | None = None
    while True:
        walks = []
        for name in authors:
            walk = sa.select(*_KEYS).where(sa.func.lower(col(Record.author)) == name, *where)
            if after is not None:
                walk = walk.where(col(Record.id) < after)
            walks.append(sa.select(walk.order_by(col(Record.id).desc()).limit(size).subquery()))
        merged = sa.union_all(*walks).subquery()
        rows = session.execute(sa.select(merged).order_by(merged.c.id.desc()).limit(size)).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].id
        size = min(size * 4, _MAX_PAGE)


def state_ids(session: Session, state: str) -> list[int] | None:
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


def walk_then_bounded(
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
    yield from fts5_pages(session, fts, where, dates, limit, budget)
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
    session: Session, since: datetime | None, until: datetime | None, cap: int = _SPAN_CAP
) -> tuple[int, int, int] | None:
    """(count, lowest id, highest id) of the records in the date range (posted in it, or
    undated and captured in it), read from ``ix_records_posted``; None when the range holds
    more than ``cap`` (at most ``_SPAN_CAP``) records."""
    cap = min(cap, _SPAN_CAP)
    counted = []
    for where in (
        between(col(Record.posted_at), since, until),
        [col(Record.posted_at).is_(None), *between(col(Record.captured_at), since, until)],
    ):
        sub = select(col(Record.id)).where(*where).limit(cap + 1).subquery()
        counted.append(sa.select(sa.func.count(), sa.func.min(sub.c.id), sa.func.max(sub.c.id)))
    count, low, high = 0, None, None
    for n, lo, hi in session.execute(sa.union_all(*counted)).all():  # one round trip
        count += n
        if n:
            low = lo if low is None else min(low, lo)
            high = hi if high is None else max(high, hi)
    if count > cap:
        return None
    return int(count), int(low or 0), int(high or 0)
