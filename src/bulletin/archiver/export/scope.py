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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from bulletin.archiver import holds, ledger
from bulletin.config.settings import Settings
from bulletin.errors import UsageError
from bulletin.models import Record, RecordsRequest


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


def _matching(query: holds.Query, time_zone: str, head_seq: int) -> sa.Select[Any]:
    """Ids of every version of every item the query matches, up to ledger ``head_seq``."""
    items = (
        sa.select(col(Record.account), col(Record.kind), col(Record.remote_id))
        .where(*holds.conditions(query, time_zone))
        .distinct()
    )
    return sa.select(col(Record.id)).where(
        sa.tuple_(col(Record.account), col(Record.kind), col(Record.remote_id)).in_(items),
        col(Record.ledger_seq) <= head_seq,
    )


def count_disposed(engine: Engine, query: holds.Query, time_zone: str, head_seq: int) -> int:
    """Matching records destroyed by disposition (counted in the report, not produced)."""
    ids = _matching(query, time_zone, head_seq).where(col(Record.disposed_at).is_not(None))
    with Session(engine) as session:
        return int(
            session.execute(sa.select(sa.func.count()).select_from(ids.subquery())).scalar_one()
        )


#: SQLite's page cache for the plan's sorts, in KiB (its default is 2,000 per cache): the
#: windows of the plan query each keep one, so their memory grows with the production up
#: to that many times; what does not fit goes to temporary files
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


def plan(engine: Engine, query: holds.Query, time_zone: str, head_seq: int) -> Iterator[PlanRow]:
    """Every record to produce, in Bates order, streamed from the database."""
    ids = _matching(query, time_zone, head_seq).where(col(Record.disposed_at).is_(None))
    thread = sa.func.coalesce(col(Record.thread_id), col(Record.remote_id))
    when = sa.func.coalesce(col(Record.posted_at), col(Record.captured_at))
    # a post of a notice in several languages names its notice: its thread is grouped with
    # its siblings' threads (see below)
    languages = sa.case(
        (sa.and_(col(Record.kind) == "post", col(Record.lang).is_not(None)), col(Record.notice_id))
    )
    threads = (
        sa.select(
            col(Record.id).label("id"),
            col(Record.account).label("account"),
            thread.label("thread"),
            sa.case((col(Record.kind) == "post", 0), else_=1).label("is_comment"),
            sa.func.min(when)
            .over(partition_by=[col(Record.account), thread])
            .label("thread_start"),
            sa.func.max(languages).over(partition_by=[col(Record.account), thread]).label("notice"),
            sa.func.min(when)
            .over(partition_by=[col(Record.account), col(Record.kind), col(Record.remote_id)])
            .label("item_start"),
            col(Record.kind).label("kind"),
            col(Record.remote_id).label("remote_id"),
            col(Record.version).label("version"),
        )
        .where(col(Record.id).in_(ids))
        .subquery()
    )
    # The threads of one notice's posts in several languages follow each other, from where
    # the first of them begins: a production lists the languages of a notice together.
    group_start = sa.case(
        (threads.c.notice.is_(None), threads.c.thread_start),
        else_=sa.func.min(threads.c.thread_start).over(partition_by=threads.c.notice),
    )
    inner = sa.select(
        *threads.c,
        group_start.label("group_start"),
        sa.func.coalesce(threads.c.notice, 0).label("group_notice"),
    ).subquery()
    order = [
        inner.c.group_start,
        inner.c.group_notice,
        inner.c.thread_start,
        inner.c.account,
        inner.c.thread,
        inner.c.is_comment,
        inner.c.item_start,
        inner.c.remote_id,
        inner.c.kind,
        inner.c.version,
        inner.c.id,
    ]
    family = [inner.c.account, inner.c.thread]
    item = [inner.c.account, inner.c.kind, inner.c.remote_id]
    stmt = sa.select(
        inner.c.id,
        sa.func.row_number().over(order_by=order).label("pos"),
        sa.func.row_number().over(partition_by=family, order_by=order).label("fam_pos"),
        sa.func.count().over(partition_by=family).label("fam_size"),
        sa.func.row_number().over(partition_by=item, order_by=order).label("item_pos"),
        sa.func.count().over(partition_by=item).label("item_size"),
    ).order_by(*order)
    with engine.connect() as conn, _small_sort_cache(conn):
        result = conn.execution_options(yield_per=2000).execute(stmt)
        for record_id, pos, fam_pos, fam_size, item_pos, item_size in result:
            first = int(pos) - int(fam_pos) + 1
            item_first = int(pos) - int(item_pos) + 1
            yield PlanRow(
                int(record_id),
                int(pos),
                first,
                first + int(fam_size) - 1,
                item_first,
                item_first + int(item_size) - 1,
            )
