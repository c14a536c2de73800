"""Reading a thread: its post, then comments and replies in order, each with every version."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.errors import NotFound
from bulletin.models import Record


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
