"""What a production contains, and in which order.

A production covers every record its query matches and every other version of the same items
(an edit that no longer matches is still produced, as is a deleted or hidden version).
Records destroyed by an approved disposition are counted, not produced: their objects are gone.

Order (the Bates order): thread by thread, threads by when they began (the threads of one
notice's posts in several languages together, from when the first began); in a thread the
post first, then the comments in posted order; the versions of one item together, oldest
first.
A thread family (the post and its comments) is an attachment range in the load file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList
from sqlmodel import Session, col, select

from bulletin.archiver import holds, ledger
from bulletin.config.settings import Settings
from bulletin.db import reading
from bulletin.errors import UsageError
from bulletin.models import Record, RecordsRequest, UTCDateTime


@dataclass(frozen=True)
class Scope:
    """A resolved production scope: a records request's query or an ad-hoc one."""

    query: holds.Query
    request_id: int | None = None
    request_label: str = ""

    @property
    def identifier(self) -> str:
        """What bag-info's External-Identifier says."""
        return f"request-{self.request_id}" if self.request_id is not None else "ad-hoc-query"


def resolve(
    engine: Engine, settings: Settings, request_id: int | None, query_text: str | None
) -> Scope:
    """The scope of ``--request`` or ``--query`` (exactly one).

    :raises UsageError: neither or both given, a bad query, or an unknown account.
    :raises NotFound: no such request.
    """
    if (request_id is None) == (query_text is None):
        raise UsageError(
            "a production's scope is a records request or a query, exactly one",
            remedy="request-or-query",
        )
    if request_id is not None:
        from bulletin.archiver.requests import get_request

        found: RecordsRequest = get_request(engine, request_id)
        label = f"{found.requester}: {found.description}"
        scope = Scope(holds.Query.from_json(found.query), request_id, label)
    else:
        assert query_text is not None
        scope = Scope(holds.parse_query(query_text))
    check_accounts(engine, settings, scope.query)
    return scope


def check_accounts(engine: Engine, settings: Settings, query: holds.Query) -> None:
    """An account named in the query must be configured or have archived records.

    :raises UsageError: it is neither.
    """
    if not query.account or query.account in settings.accounts:
        return
    with Session(engine) as session:
        known = session.exec(
            select(Record.id).where(col(Record.account) == query.account).limit(1)
        ).first()
        if known is not None:
            return
        archived = set(session.exec(select(Record.account).distinct()).all())
    names = sorted(set(settings.accounts) | archived)
    raise UsageError(
        f"unknown account {query.account!r} in the query "
        f"(known: {', '.join(names) if names else 'none'})"
    )


@dataclass(frozen=True)
class PlanRow:
    """One record's place: its position (1-based), its thread family's first and last, and
    the first and last of its item's versions (consecutive in Bates order)."""

    record_id: int
    position: int
    family_first: int
    family_last: int
    item_first: int
    item_last: int


def head(engine: Engine) -> tuple[int, str]:
    """The ledger head now: sequence number and hash (0 and the genesis hash when empty)."""
    with Session(engine) as session:
        entry = ledger.head(session)
    return (entry.seq, entry.entry_hash) if entry else (0, ledger.GENESIS)


#: SQLite's page cache while the plan is read, in KiB (its default is 2,000): what its sorts
#: hold beyond it goes to temporary files
PLAN_CACHE_KIB = 256


@contextmanager
def _small_sort_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, the connection's page cache made :data:`PLAN_CACHE_KIB` while the plan is
    read, then given back its size (the connection returns to the pool)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{PLAN_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


# Temporary tables of the plan's connection, gone with its transaction (rolled back when the
# connection closes). In SQLite they spill to a temporary file beyond their page cache, where
# the lists behind ``IN (subquery)``, DISTINCT and window functions stay in memory whole.
_TEMP = sa.MetaData()

#: every item the query matches (one row for all its versions)
_ITEMS = sa.Table(
    "plan_item",
    _TEMP,
    sa.Column("account", sa.String, primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("remote_id", sa.String, primary_key=True),
    prefixes=["TEMPORARY"],
)

#: every thread family of the production: when it began, and the notice of its post when
#: that is a post of a notice in several languages
_FAMILIES = sa.Table(
    "plan_family",
    _TEMP,
    sa.Column("account", sa.String, primary_key=True),
    sa.Column("thread", sa.String, primary_key=True),
    sa.Column("thread_start", UTCDateTime, nullable=False),
    sa.Column("notice", sa.Integer),
    prefixes=["TEMPORARY"],
)

_THREAD = sa.func.coalesce(col(Record.thread_id), col(Record.remote_id))
_WHEN = sa.func.coalesce(col(Record.posted_at), col(Record.captured_at))


def _fill_items(conn: Connection, query: holds.Query, time_zone: str) -> None:
    """:data:`_ITEMS`: the items ``query`` matches."""
    _ITEMS.drop(conn, checkfirst=True)
    _ITEMS.create(conn)
    key = [col(Record.account), col(Record.kind), col(Record.remote_id)]
    # an item found by both sides of a condition "this or that" is there once
    insert = (
        postgresql.insert(_ITEMS).on_conflict_do_nothing()
        if conn.dialect.name == "postgresql"
        else _ITEMS.insert().prefix_with("OR IGNORE")
    )
    for where in _branches(holds.conditions(query, time_zone)):
        matched = sa.select(*key).where(*where).group_by(*key)
        conn.execute(insert.from_select(["account", "kind", "remote_id"], matched))
    _analyze(conn, _ITEMS)


def _analyze(conn: Connection, table: sa.Table) -> None:
    """PostgreSQL's statistics of a temporary table just filled (autovacuum never makes
    them): without them it takes the table for a few rows and joins in nested loops."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {table.name}")


def _branches(where: list[sa.ColumnElement[bool]]) -> list[list[sa.ColumnElement[bool]]]:
    """``where`` as the conditions of several selects whose union it matches: one for each
    side of its first "this or that" (a date's posted-or-captured), so that SQLite reads
    each through its index, where one select would gather the row ids of both in memory."""
    for n, condition in enumerate(where):
        if isinstance(condition, BooleanClauseList) and condition.operator is operators.or_:
            rest = where[:n] + where[n + 1 :]
            return [[*rest, side] for side in condition.clauses]
    return [where]


def _versions(head_seq: int, disposed: bool = False) -> sa.Select[Any]:
    """A select of every version of the items in :data:`_ITEMS` up to ledger ``head_seq``,
    destroyed by disposition or not (columns to be added)."""
    return (
        sa.select()
        .select_from(_ITEMS)
        .join(
            Record,
            sa.and_(
                col(Record.account) == _ITEMS.c.account,
                col(Record.kind) == _ITEMS.c.kind,
                col(Record.remote_id) == _ITEMS.c.remote_id,
            ),
        )
        .where(
            col(Record.ledger_seq) <= head_seq,
            col(Record.disposed_at).is_not(None) if disposed else col(Record.disposed_at).is_(None),
        )
    )


def count_disposed(engine: Engine, query: holds.Query, time_zone: str, head_seq: int) -> int:
    """Matching records destroyed by disposition (counted in the report, not produced)."""
    with reading(engine.connect()) as conn, _small_sort_cache(conn):
        _fill_items(conn, query, time_zone)
        count = conn.execute(_versions(head_seq, disposed=True).add_columns(sa.func.count()))
        return int(count.scalar_one())


def _fill_families(conn: Connection, head_seq: int) -> None:
    """:data:`_FAMILIES` for the versions to produce (after :func:`_fill_items`):
    aggregates, where windows over the whole production kept it in SQLite's memory."""
    # a post of a notice in several languages names its notice: its thread is grouped with
    # its siblings' threads (see _plan_query)
    languages = sa.case(
        (sa.and_(col(Record.kind) == "post", col(Record.lang).is_not(None)), col(Record.notice_id))
    )
    families = (
        _versions(head_seq)
        .add_columns(col(Record.account), _THREAD, sa.func.min(_WHEN), sa.func.max(languages))
        .group_by(col(Record.account), _THREAD)
    )
    _FAMILIES.drop(conn, checkfirst=True)
    _FAMILIES.create(conn)
    conn.execute(
        _FAMILIES.insert().from_select(["account", "thread", "thread_start", "notice"], families)
    )
    _analyze(conn, _FAMILIES)


def _plan_query(head_seq: int) -> sa.Select[Any]:
    """The versions to produce, thread family by thread family in Bates order (after
    :func:`_fill_families`); in a family by remote id, kind, version and id (what decides
    among equals in the order within it, compared by the database as text).

    Columns: id, kind, remote id, when the record was posted (or captured), and its family's
    account and thread.
    """
    family = _FAMILIES.alias("family")
    # The threads of one notice's posts in several languages follow each other, from where
    # the first of them begins: a production lists the languages of a notice together.
    notices = (
        sa.select(
            _FAMILIES.c.notice.label("notice"),
            sa.func.min(_FAMILIES.c.thread_start).label("group_start"),
        )
        .where(_FAMILIES.c.notice.is_not(None))
        .group_by(_FAMILIES.c.notice)
        .subquery("notices")
    )
    return (
        _versions(head_seq)
        .add_columns(
            col(Record.id),
            col(Record.kind),
            col(Record.remote_id),
            _WHEN,
            family.c.account,
            family.c.thread,
        )
        .join(family, sa.and_(family.c.account == col(Record.account), family.c.thread == _THREAD))
        .outerjoin(notices, notices.c.notice == family.c.notice)
        .order_by(
            sa.func.coalesce(notices.c.group_start, family.c.thread_start),
            sa.func.coalesce(family.c.notice, 0),
            family.c.thread_start,
            family.c.account,
            family.c.thread,
            col(Record.remote_id),
            col(Record.kind),
            col(Record.version),
            col(Record.id),
        )
    )


#: a record of the plan query: id, kind, remote id, when posted (or captured)
_Member = tuple[int, str, str, datetime]


def _family_rows(members: list[_Member], first: int) -> Iterator[PlanRow]:
    """A thread family's rows from position ``first``: the post first, then the comments
    by when their items began, the versions of an item together (``members`` come in remote
    id, kind, version and id order, which decides among equals)."""
    starts: dict[tuple[str, str], datetime] = {}
    for _, kind, remote_id, at in members:
        known = starts.get((kind, remote_id))
        if known is None or at < known:
            starts[(kind, remote_id)] = at
    ordered = sorted(members, key=lambda m: (m[1] != "post", starts[(m[1], m[2])]))  # stable
    last = first + len(ordered) - 1
    position = first
    for _, versions in groupby(ordered, key=lambda m: (m[1], m[2])):
        item = [m[0] for m in versions]
        item_last = position + len(item) - 1
        for offset, record_id in enumerate(item):
            yield PlanRow(record_id, position + offset, first, last, position, item_last)
        position = item_last + 1


def plan(engine: Engine, query: holds.Query, time_zone: str, head_seq: int) -> Iterator[PlanRow]:
    """Every record to produce, in Bates order, streamed from the database.

    The database sorts the production by thread family (its sorts spill to temporary
    files); one family at a time is held here, so the memory follows the largest family, not
    the production. An item's versions are taken to share its thread (its family).
    """
    position = 1
    members: list[_Member] = []
    family: tuple[str, str] | None = None
    with reading(engine.connect()) as conn, _small_sort_cache(conn):
        _fill_items(conn, query, time_zone)
        _fill_families(conn, head_seq)
        result = conn.execution_options(yield_per=2000).execute(_plan_query(head_seq))
        for record_id, kind, remote_id, at, account, thread in result:
            if (account, thread) != family:
                yield from _family_rows(members, position)
                position += len(members)
                members = []
                family = (account, thread)
            members.append((int(record_id), kind, remote_id, at))
        yield from _family_rows(members, position)
