"""An index row against what the store holds of it: its snapshot (a retained record) or
its certificate of destruction (a disposed one), column by column."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bulletin.archiver.archive import Latest
from bulletin.archiver.rebuild import snapshot_row
from bulletin.models import Record

# what a person or a production reads of a retained record, as its snapshot gives it
LIVE_COLUMNS = (
    "account",
    "platform",
    "kind",
    "remote_id",
    "parent_id",
    "thread_id",
    "state",
    "author",
    "text",
    "url",
    "posted_at",
    "captured_at",
    "series",
    "training",
    "content_sha256",
    "raw_sha256",
    "notice_id",
    "size",
)
# what a destroyed record's certificate says of it
DISPOSED_COLUMNS = (
    "account",
    "platform",
    "kind",
    "remote_id",
    "version",
    "series",
    "posted_at",
    "captured_at",
    "retain_until",
    "content_sha256",
    "object_sha256",
    "raw_sha256",
    "disposed_at",
    "disposal_batch_id",
)


def _shown(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S.%f} UTC"
    if isinstance(value, StrEnum):
        value = value.value  # a state column reads back as its member: show the stored word
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def contradictions(
    record: Record, expected: dict[str, Any], columns: tuple[str, ...], source: str
) -> list[str]:
    """Each of ``columns`` on which ``record`` and ``expected`` differ, in words."""
    return [
        f"{name}: the index says {_shown(getattr(record, name))}, "
        f"{source} says {_shown(expected[name])}"
        for name in columns
        if getattr(record, name) != expected[name]
    ]


@dataclass(frozen=True)
class Earlier:
    """The version a row says it follows, as the index has it."""

    item: tuple[str, str, str]  # account, kind, remote id
    latest: Latest
    disposed: bool


def earlier_versions(session: Session, rows: Sequence[Record]) -> dict[int, Earlier]:
    """The rows that ``rows`` say they follow, by id (one query)."""
    ids = sorted({r.previous_record_id for r in rows if r.previous_record_id is not None})
    table = Record.__table__  # type: ignore[attr-defined]
    wanted = ("id", "version", "content_sha256", "state", "text", "notice_id", "lang")
    item = ("account", "kind", "remote_id")
    found: dict[int, Earlier] = {}
    for start in range(0, len(ids), 500):
        chosen = sa.select(*(table.c[n] for n in (*wanted, *item, "disposed_at")))
        for row in session.execute(chosen.where(table.c.id.in_(ids[start : start + 500]))):
            values = row._mapping
            found[values["id"]] = Earlier(
                (values["account"], values["kind"], values["remote_id"]),
                Latest(*(values[n] for n in wanted)),
                values["disposed_at"] is not None,
            )
    return found


def snapshot_contradictions(
    record: Record, data: bytes, earlier: dict[int, Earlier] | None = None
) -> list[str]:
    """Where the index row ``record`` disagrees with its snapshot object's bytes ``data`` on
    what a person or a production reads (empty: it agrees). With ``earlier`` (the rows that
    rows follow, by id) its version, the version it follows and its change are checked too.

    :raises ValueError: ``data`` is not a readable snapshot.
    """
    before = None
    columns: tuple[str, ...] = LIVE_COLUMNS
    problems: list[str] = []
    if earlier is not None:
        found = earlier.get(record.previous_record_id or 0)
        if record.previous_record_id is None or found is not None:  # else: row-missing
            columns += ("version", "previous_record_id")
        if found is not None:
            before = found.latest
            if found.item != (record.account, record.kind, record.remote_id):
                problems.append(
                    f"previous_record_id: the index says {record.previous_record_id}, "
                    "a version of another item"
                )
            if not found.disposed:  # a destroyed version's state and text went with it
                columns += ("change",)
        elif record.previous_record_id is None:
            columns += ("change",)
    try:
        snapshot = json.loads(data)
        expected = snapshot_row(
            snapshot,
            len(data),
            record_id=record.id,
            seq=record.ledger_seq,
            object_sha256=record.object_sha256,
            before=before,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a readable snapshot ({e!r})") from e
    if before is None and record.previous_record_id is not None and expected["notice_id"] is None:
        # a later version archived before snapshots named the notice they carry: its notice
        # is its earlier version's, unknown here
        columns = tuple(c for c in columns if c != "notice_id")
    return contradictions(record, expected, columns, "its snapshot") + problems
