"""Pathological queries (a 100 kB word, thousands of words, dates no calendar holds): refused by
the one query parser at every door, never recorded half-way as a hold, and a hold already
stored with such a query never stops capture or release, and is reported."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver import decisions, holds
from bulletin.db import session_scope
from bulletin.errors import Refused, UsageError
from bulletin.models import Hold, HoldRecord, RecordsRequest
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.test_export import post
from tests.test_retention import hold_on, list_batch, release

HUGE_WORD = "a" * 100_000
MANY_WORDS = " ".join(f"w{i}" for i in range(20_000))
MANY_PREFIXES = " ".join(f"w{i}*" for i in range(20))


def _cli(inst: Instance, *args: str) -> tuple[int, str]:
    result = invoke(inst, *args)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (HUGE_WORD, "the query has 100000 characters; at most 2000"),
        (f"{'b' * 150} water", "the query word bbbbbbbbbbbbbbbbbbbb... has 150 characters"),
        (" ".join(f"w{i}" for i in range(40)), "the query has 40 words; at most 32"),
        (MANY_PREFIXES, "the query has 20 words* (prefixes); at most 8"),
        ("to:9999-12-31", "the query's from:/to: is beyond what a calendar holds"),
    ],
    ids=["100 kB word", "150-character word", "40 words", "20 prefixes", "year 9999"],
)
def test_every_door_refuses_a_query_past_the_bounds(
    instance: Instance, query: str, says: str
) -> None:
    """Search, hold, request and export refuse the query in one line and record nothing."""
    instance.app.archiver.archive([post("p1", "Missing: Tom near the common")])
    doors = [
        ("archive", "search", query),
        ("hold", "create", "--name", "n", "--reason", "r", "--query", query, "--allow-empty"),
        (
            "request",
            "open",
            "--requester",
            "Bo",
            "--received",
            "2026-11-20",
            "--description",
            "d",
            "--query",
            query,
            "--allow-empty",
        ),
        ("export", "--query", query, "--out", str(instance.data_dir / "bundle")),
    ]
    for door in doors:
        code, stderr = _cli(instance, *door)
        lines = [line for line in stderr.splitlines() if "warning:" not in line]
        assert code == 2, (door[:2], stderr[:300])
        assert len(lines) == 1 and says in lines[0], (door[:2], stderr[:300])
    with Session(instance.app.engine) as session:
        assert session.exec(select(Hold)).all() == []
        assert session.exec(select(RecordsRequest)).all() == []


def test_a_hold_the_database_cannot_evaluate_is_not_placed(instance: Instance) -> None:
    """A hold whose query cannot be evaluated is refused before anything is recorded: no hold
    row without its store mirror, nothing for verify to find."""
    instance.app.archiver.archive([post("p1", "Missing: Tom near the common")])
    with pytest.raises(UsageError, match="beyond what a calendar holds"):
        holds.create_hold(
            instance.app.engine,
            instance.app.store,
            name="runaway",
            query=holds.Query(until=date(9999, 12, 31)),
            reason="r",
            actor="clerk1",
            now=instance.clock.now(),
            time_zone=instance.settings.agency.time_zone,
            allow_empty=True,
        )
    with Session(instance.app.engine) as session:
        assert session.exec(select(Hold)).all() == []
    assert decisions.check(instance.app.engine, instance.app.store) == []


def _stored_before_bounds(inst: Instance, query: str) -> int:
    """An open hold as an older version stored it (or a rebuild restored it): its query is
    past today's bounds."""
    with session_scope(inst.app.engine) as session:
        hold = Hold(
            name="old", query=query, reason="r", created_by="clerk1", created_at=inst.clock.now()
        )
        session.add(hold)
        session.flush()
        assert hold.id is not None
        return hold.id


def test_a_hold_that_cannot_be_evaluated_never_blocks_capture_or_release(
    instance: Instance,
) -> None:
    """With an unevaluable hold open, capture goes on and other holds still apply to new
    records; both holds can be released; ``status --check`` names the bad hold; nothing is
    listed for destruction while it is open."""
    instance.app.archiver.archive([post("p1", "Missing: Tom near the common")])
    good = hold_on(instance, "Missing")
    bad = _stored_before_bounds(instance, '{"text": ["' + HUGE_WORD + '"], "until": "9999-12-31"}')
    new, _ = instance.app.archiver.archive_batch([post("p2", "Missing: Ann, 7")])
    with Session(instance.app.engine) as session:
        held = session.exec(select(HoldRecord.record_id).where(HoldRecord.hold_id == good)).all()
    assert new[0].id in held
    result = invoke(instance, "status", "--check")
    assert f"CHECK: hold {bad} (old) cannot be evaluated" in result.stdout, result.output
    with pytest.raises(Refused, match=f"hold {bad} cannot be evaluated"):
        list_batch(instance)  # what it should keep is unknown: nothing is listed for destruction
    release(instance, bad)
    release(instance, good)
    with Session(instance.app.engine) as session:
        states = session.execute(sa.select(col(Hold.state))).scalars().all()
    assert states == ["released", "released"]
