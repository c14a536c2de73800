"""The register of Bates numbers issued: a number is given to one document only, ever.

Each production under a prefix takes the range after every one issued under it, unless it is
told where to start; a range that overlaps an issued one is refused. A production reserves its
range when its plan is made, under the name of its run (``Journal.run``), so an interrupted
export resumed keeps the range it took. The register is mirrored into the store
(:mod:`bulletin.archiver.decisions`), so ``archive rebuild-index`` brings it back.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver import decisions
from bulletin.archiver.export import layout
from bulletin.archiver.store.base import WormStore
from bulletin.db import session_scope
from bulletin.errors import Refused, UsageError
from bulletin.models import BatesRange


def next_start(session: Session, prefix: str) -> int:
    """The number after every one issued under ``prefix`` (1 when none was)."""
    last = session.exec(
        select(sa.func.max(BatesRange.last)).where(BatesRange.prefix == prefix)
    ).one()
    return (last or 0) + 1


def check_start(engine: Engine, prefix: str, start: int) -> None:
    """Refuse a first number already issued (the whole range is checked once it is known).

    :raises Refused: ``start`` lies in an issued range.
    """
    with Session(engine) as session:
        _refuse_overlap(session, prefix, start, start)


def _refuse_overlap(session: Session, prefix: str, first: int, last: int) -> None:
    taken = session.exec(
        select(BatesRange)
        .where(BatesRange.prefix == prefix)
        .where(col(BatesRange.first) <= last)
        .where(col(BatesRange.last) >= first)
        .order_by(col(BatesRange.first))
    ).first()
    if taken is None:
        return
    after = layout.bates(prefix, next_start(session, prefix))
    asked, issued = _span(prefix, first, last), _span(prefix, taken.first, taken.last)
    raise Refused(
        f"Bates numbers {asked} overlap {issued}, issued to production {taken.identifier} "
        f"on {taken.issued_at.date().isoformat()}; the numbers continue at {after}",
        remedy="no-bates-start",
    )


def _span(prefix: str, first: int, last: int) -> str:
    return layout.bates(prefix, first) + (
        "" if first == last else f" to {layout.bates(prefix, last)}"
    )


def reserve(
    engine: Engine,
    store: WormStore,
    *,
    prefix: str,
    start: int | None,
    count: int,
    run: str,
    identifier: str,
    production: str,
    actor: str,
    now: datetime,
) -> int:
    """Issue ``count`` numbers to the production run ``run`` and return the first: from
    ``start``, or after every range issued under ``prefix``. A run that already holds a range
    gets it back. Nothing is issued for an empty production. The range is mirrored into the
    store (durable on return, or reported by ``archive verify`` when the store is down).

    :raises Refused: the range overlaps one issued before.
    """
    with session_scope(engine) as session:
        if session.get_bind().dialect.name == "postgresql":  # one reservation at a time
            session.execute(sa.text("LOCK TABLE bates_ranges IN SHARE ROW EXCLUSIVE MODE"))
        held = session.exec(select(BatesRange).where(BatesRange.run == run)).first()
        if held is not None:
            return held.first
        first = start if start is not None else next_start(session, prefix)
        if not count:
            return first
        last = first + count - 1
        if last > layout.MAX_BATES:
            raise UsageError(
                f"{count} records from Bates number {first} end at {last}, past the last of "
                f"{len(str(layout.MAX_BATES))} digits ({layout.MAX_BATES})",
                remedy="lower-bates-start",
            )
        _refuse_overlap(session, prefix, first, first + count - 1)
        issued = BatesRange(
            prefix=prefix,
            first=first,
            last=first + count - 1,
            run=run,
            identifier=identifier,
            production=production,
            issued_by=actor,
            issued_at=now,
        )
        session.add(issued)
        session.flush()
        issued_id = issued.id or 0
    decisions.mirror_bates(engine, store, [issued_id], now)
    return first
