"""Searching the archive and reading a thread.

Full text runs on SQLite FTS5 (``records_fts``, kept by triggers) or on PostgreSQL's
full-text search (a GIN index on ``to_tsvector('simple', text || ' ' || author)``); both are
created by migration 0004. Words are ANDed; ``word*`` matches a prefix. Every version of an
item is searchable (text edited away is still found); a hit is the newest matching version
of an item, shown with the item's current state.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.errors import NotFound, UsageError
from bulletin.models import Record

STATES = ("visible", "hidden", "deleted", "edited")
_WORD = re.compile(r"\w+\*?", re.UNICODE)
_PG_VECTOR = (
    "to_tsvector('simple'::regconfig, coalesce(records.text, '') || ' ' || "
    "coalesce(records.author, ''))"
)


@dataclass(frozen=True)
class Query:
    """What to look for; every part is optional and they combine with AND."""

    text: str | None = None
    author: str | None = None
    account: str | None = None
    platform: str | None = None
    kind: str | None = None
    since: datetime | None = None  # posted at or after
    until: datetime | None = None  # posted before
    state: str | None = None  # visible | hidden | deleted | edited: the item has such a version
    limit: int = 20


@dataclass(frozen=True)
class Hit:
    record: Record  # the newest version that matched
    current_state: str
    versions: int


def _terms(text: str) -> list[tuple[str, bool]]:
    return [(w.rstrip("*"), w.endswith("*")) for w in _WORD.findall(text) if w.rstrip("*")]


def _match(engine: Engine, text: str, author: str | None = None) -> sa.ColumnElement[bool]:
    """The full-text condition for ``text`` (and the author's words, which narrow the index
    lookup; the exact author is compared afterwards)."""
    terms = _terms(text)
    names = [w for w, _ in _terms(author or "")]
    if not terms and not names:
        raise UsageError(f"nothing to search for in {text!r}")
    if engine.dialect.name == "postgresql":
        words = [f"{w.lower()}{':*' if prefix else ''}" for w, prefix in terms]
        query = " & ".join(words + [n.lower() for n in names])
        return sa.literal_column(_PG_VECTOR).op("@@")(
            sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), query)
        )
    fts = " ".join(f'"{w}"{"*" if prefix else ""}' for w, prefix in terms)
    if names:
        phrase = " ".join(names)
        fts = f'{fts} author : "{phrase}"'.strip()
    matching: sa.Select[Any] = (
        sa.select(sa.literal_column("rowid"))
        .select_from(sa.table("records_fts"))
        .where(sa.literal_column("records_fts").op("MATCH")(fts))
    )
    return col(Record.id).in_(matching)


def search(engine: Engine, query: Query) -> list[Hit]:
    """Items matching ``query``, newest first, at most ``query.limit``."""
    if query.state is not None and query.state not in STATES:
        raise UsageError(f"state must be one of {', '.join(STATES)}")
    statement = select(Record)
    if query.text or (query.author and _terms(query.author)):
        statement = statement.where(_match(engine, query.text or "", query.author))
    if query.author:
        statement = statement.where(sa.func.lower(col(Record.author)) == query.author.lower())
    for name in ("account", "platform", "kind"):
        value = getattr(query, name)
        if value:
            statement = statement.where(getattr(Record, name) == value)
    if query.since:
        statement = statement.where(col(Record.posted_at) >= query.since)
    if query.until:
        statement = statement.where(col(Record.posted_at) < query.until)
    if query.state:
        # The item has (had) a version in that state: a comment edited, hidden or deleted
        # is found by words of any of its versions.
        other = Record.__table__.alias("other")  # type: ignore[attr-defined]
        wanted = (
            other.c.change == "edited" if query.state == "edited" else other.c.state == query.state
        )
        statement = statement.where(
            sa.exists().where(
                other.c.account == col(Record.account),
                other.c.kind == col(Record.kind),
                other.c.remote_id == col(Record.remote_id),
                wanted,
            )
        )
    if (query.since or query.until) and not query.text:
        # A date range alone: walk the posted-time index, newest first.
        statement = statement.order_by(col(Record.posted_at).desc(), col(Record.id).desc())
    else:
        statement = statement.order_by(col(Record.id).desc())
    statement = statement.limit(query.limit * 4)
    with Session(engine) as session:
        rows = session.exec(statement).all()
        hits: dict[tuple[str, str, str], Record] = {}
        for record in rows:
            hits.setdefault((record.account, record.kind, record.remote_id), record)
            if len(hits) >= query.limit:
                break
        current = _current(session, list(hits))
    return [
        Hit(record, *current.get(key, (record.state, record.version)))
        for key, record in hits.items()
    ]


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
