"""The plan of a production: every record to produce, in Bates order, against an independent
computation of that order from the archived rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Capture
from bulletin.archiver.export.scope import PlanRow, count_disposed, head, plan
from bulletin.archiver.holds import parse_query
from bulletin.connectors.base import ItemState, RemoteItem
from bulletin.db import make_engine
from bulletin.models import Record
from tests.plugins.bulletin_app import Instance, make_instance

POSTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
EVERYTHING = "from:2026-11-01 to:2026-11-30"
OTHER_ACCOUNT = """
[accounts.other]
platform = "feed"
title = "Lexington Police: second feed"
"""


def item(
    account: str,
    kind: str,
    remote_id: str,
    minutes: int | None,
    thread: str | None,
    text: str = "",
    state: ItemState = "visible",
    lang: str | None = None,
    notice: int | None = None,
) -> Capture:
    body = text or f"{kind} {remote_id}"
    made = RemoteItem(
        kind=kind,  # type: ignore[arg-type]
        remote_id=remote_id,
        text=body,
        author="Lexington PD" if kind == "post" else "visitor",
        posted_at=None if minutes is None else POSTED + timedelta(minutes=minutes),
        parent_id=thread if kind == "comment" else None,
        thread_id=thread,
        state=state,
        extra={"lang": lang} if lang else {},
        raw=json.dumps({"id": remote_id, "text": body, "state": state}).encode(),
    )
    return Capture(account, "feed", made, notice_id=notice)


def seed(inst: Instance) -> int:
    """Two accounts; a notice in three languages (one on the other account) whose Spanish
    thread began first; threads tied on when they began; comments posted out of id order
    and before their post; edits (one moving when the comment was posted), hidden and
    deleted versions; a comment without a thread, one without a date; records disposed of;
    versions archived after the head the plan is made at. Returns that head."""
    archive = inst.app.archiver.archive
    archive(
        [
            item("feed", "post", "p1", 0, "p1"),
            item("other", "post", "q1", 0, "q1"),
            item("feed", "post", "p2", 60, "p2", text="Parade route"),
            item("feed", "post", "n7en", 50, "n7en", lang="en", notice=7),
            item("feed", "post", "n7es", 50, "n7es", lang="es", notice=7),
            item("other", "post", "n7fr", 120, "n7fr", lang="fr", notice=7),
            item("feed", "post", "solo", 25, None),
        ]
    )
    archive(
        [
            item("feed", "comment", "c10", 3, "p1"),
            item("feed", "comment", "c9", 20, "p1"),
            item("feed", "comment", "c2", 20, "p1"),
            item("feed", "comment", "c5", 40, "p1"),
            item("feed", "comment", "c7", 45, "p1"),
            item("feed", "comment", "e1", 4, "n7es"),  # before its post: the thread began here
            item("feed", "comment", "e2", 55, "n7en"),
            item("other", "comment", "f1", 121, "n7fr"),
            item("other", "comment", "d1", 1, "q1"),
            item("feed", "comment", "c30", 61, "p2"),
            item("feed", "comment", "loose", 26, None),
            item("feed", "comment", "nodate", None, "p1"),  # when it was captured
        ]
    )
    archive([item("feed", "comment", "c9", 20, "p1", text="edited once")])
    archive([item("feed", "comment", "c9", 20, "p1", text="edited once", state="hidden")])
    archive([item("feed", "comment", "c5", 1, "p1", text="moved earlier")])
    archive([item("feed", "comment", "c2", 20, "p1", state="deleted")])
    archive([item("feed", "comment", "nodate", 70, "p1", text="dated at last")])
    archive([item("feed", "post", "n7es", 50, "n7es", text="corregido", lang="es", notice=7)])
    archive([item("feed", "post", "p2", 60, "p2", text="Parade route, again")])
    with Session(inst.app.engine) as session:
        at = session.exec(select(Record.ledger_seq).order_by(col(Record.ledger_seq).desc())).first()
    # after the head: not in the plan
    archive([item("feed", "comment", "c10", 3, "p1", text="too late")])
    archive([item("other", "comment", "late", 2, "q1")])
    with inst.app.engine.begin() as conn:
        table = Record.__table__  # type: ignore[attr-defined]
        disposed = sa.or_(
            sa.and_(table.c.remote_id == "c9", table.c.version == 1),
            table.c.remote_id == "c7",
            sa.and_(table.c.remote_id == "p2", table.c.version == 1),
        )
        conn.execute(table.update().where(disposed).values(disposed_at=POSTED))
    assert at is not None
    return at


def expected(
    inst: Instance, head_seq: int, only: set[tuple[str, str, str]] | None = None
) -> list[PlanRow]:
    """Bates order from the rules, over every archived row (of the items ``only`` when given)."""
    with Session(inst.app.engine) as session:
        rows = [
            r
            for r in session.exec(select(Record)).all()
            if r.disposed_at is None
            and (r.ledger_seq or 0) <= head_seq
            and (only is None or (r.account, r.kind, r.remote_id) in only)
        ]

    def family(r: Record) -> tuple[str, str]:
        return (r.account, r.thread_id or r.remote_id)

    def when(r: Record) -> datetime:
        return r.posted_at or r.captured_at

    begins: dict[tuple[str, str], datetime] = {}
    items: dict[tuple[str, str, str], datetime] = {}
    notices: dict[tuple[str, str], int] = {}
    for r in rows:
        begins[family(r)] = min(begins.get(family(r), when(r)), when(r))
        key = (r.account, r.kind, r.remote_id)
        items[key] = min(items.get(key, when(r)), when(r))
        if r.kind == "post" and r.lang is not None and r.notice_id is not None:
            notices[family(r)] = max(notices.get(family(r), r.notice_id), r.notice_id)
    groups: dict[int, datetime] = {}
    for fam, notice in notices.items():
        groups[notice] = min(groups.get(notice, begins[fam]), begins[fam])

    def order(r: Record) -> tuple[Any, ...]:
        fam = family(r)
        notice = notices.get(fam)
        return (
            groups[notice] if notice is not None else begins[fam],
            notice or 0,
            begins[fam],
            *fam,
            r.kind != "post",
            items[(r.account, r.kind, r.remote_id)],
            r.remote_id,
            r.kind,
            r.version,
            r.id,
        )

    ordered = sorted(rows, key=order)
    out = []
    for n, r in enumerate(ordered, start=1):
        members = [p for p, o in enumerate(ordered, start=1) if family(o) == family(r)]
        versions = [
            p
            for p, o in enumerate(ordered, start=1)
            if (o.account, o.kind, o.remote_id) == (r.account, r.kind, r.remote_id)
        ]
        out.append(PlanRow(r.id or 0, n, members[0], members[-1], versions[0], versions[-1]))
    return out


def records(inst: Instance) -> list[Record]:
    with Session(inst.app.engine) as session:
        return list(session.exec(select(Record)).all())


def planned(inst: Instance, query: str, head_seq: int) -> Iterator[PlanRow]:
    tz = inst.settings.agency.time_zone
    return plan(inst.app.engine, parse_query(query), tz, head_seq)


@pytest.fixture
def two_accounts(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = make_instance(tmp_path, db_url, OTHER_ACCOUNT)
    yield inst
    inst.app.close()


def test_the_plan_is_bates_order(two_accounts: Instance) -> None:
    """Positions, thread families and items' versions as the order's rules give them, on each
    database; a plan abandoned half-way leaves nothing behind for the next."""
    inst = two_accounts
    head_seq = seed(inst)
    everything = expected(inst, head_seq)
    got = list(planned(inst, EVERYTHING, head_seq))
    assert got == everything
    with Session(inst.app.engine) as session:
        names = {r.id: (r.remote_id, r.version) for r in session.exec(select(Record))}
    assert [names[r.record_id] for r in got] == [
        # p1 and q1 began together: by account; p1's comments by when each began (c5 was
        # moved earlier by its edit), c2 before c9 when they tie
        ("p1", 1),
        ("c5", 1),
        ("c5", 2),
        ("c10", 1),
        ("c2", 1),
        ("c2", 2),
        ("c9", 2),
        ("c9", 3),
        ("nodate", 1),
        ("nodate", 2),
        ("q1", 1),
        ("d1", 1),
        # notice 7 from its Spanish thread (begun by a comment), then English, then French
        ("n7es", 1),
        ("n7es", 2),
        ("e1", 1),
        ("n7en", 1),
        ("e2", 1),
        ("n7fr", 1),
        ("f1", 1),
        ("solo", 1),
        ("loose", 1),
        ("p2", 2),
        ("c30", 1),
    ]
    c9 = [r for r in got if names[r.record_id][0] == "c9"]
    assert [(r.item_first, r.item_last, r.family_first, r.family_last) for r in c9] == [
        (7, 8, 1, 10)
    ] * 2
    other = {(r.account, r.kind, r.remote_id) for r in records(inst) if r.account == "other"}
    assert list(planned(inst, "account:other", head_seq)) == expected(inst, head_seq, other)
    # an edit's words find every version of its item, on either side of the date's "or"
    edited = planned(inst, "edited from:2026-11-20 to:2026-11-20", head_seq)
    assert list(edited) == expected(inst, head_seq, {("feed", "comment", "c9")})
    tz = inst.settings.agency.time_zone
    assert count_disposed(inst.app.engine, parse_query(EVERYTHING), tz, head_seq) == 3
    assert count_disposed(inst.app.engine, parse_query("account:other"), tz, head_seq) == 0
    assert len(list(planned(inst, EVERYTHING, head(inst.app.engine)[0]))) == len(got) + 2

    abandoned = planned(inst, EVERYTHING, head_seq)
    assert len(list(islice(abandoned, 3))) == 3
    abandoned.close()  # type: ignore[attr-defined]
    assert list(planned(inst, EVERYTHING, head_seq)) == everything


def test_a_plan_under_way_lets_the_daemon_write(two_accounts: Instance) -> None:
    """While a plan is read (half-way, its TEMP tables filled), another connection archives
    at once: the plan holds a snapshot, never the write lock, so an approval or a sweep's
    batch does not wait for an export; the plan goes on as it began."""
    inst = two_accounts
    head_seq = seed(inst)
    everything = expected(inst, head_seq)
    under_way = planned(inst, EVERYTHING, head_seq)
    first = list(islice(under_way, 3))
    writer = make_engine(str(inst.app.engine.url), busy_timeout=0.5)
    try:
        with writer.begin() as conn:  # BEGIN IMMEDIATE on SQLite: fails if the lock is held
            conn.execute(sa.text("UPDATE records SET author = author WHERE id = 1"))
    finally:
        writer.dispose()
    inst.app.archiver.archive([item("feed", "comment", "late", 30, "p1", "after the plan began")])
    assert first + list(under_way) == everything
