"""What capture costs: resources read are counted once per UTC day (X charges each post once
a day) and priced into an estimate of the month's spend, which slows the capture schedule as
it nears the account's ``monthly_budget``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.db import session_scope
from bulletin.models import CaptureRead, CaptureSpend


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


def spend_this_month(engine: Engine, account: str, now: datetime) -> float:
    """Estimated spend of ``account`` in the current UTC month, in US dollars."""
    with Session(engine) as session:
        row = session.get(CaptureSpend, (account, month_of(now)))
    return row.usd if row else 0.0


def charge_reads(
    engine: Engine, account: str, now: datetime, price: float, remote_ids: Sequence[str]
) -> int:
    """Count the resources read that were not read yet today, at ``price`` each, into this
    month's spend estimate; how many were charged."""
    day = now.strftime("%Y-%m-%d")
    wanted = sorted(set(remote_ids))
    with session_scope(engine) as session:
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            known.update(
                session.exec(
                    select(CaptureRead.remote_id)
                    .where(CaptureRead.account == account)
                    .where(CaptureRead.day == day)
                    .where(col(CaptureRead.remote_id).in_(wanted[start : start + 500]))
                ).all()
            )
        new = [r for r in wanted if r not in known]
        if not new:
            return 0
        session.execute(
            sa.insert(CaptureRead),
            [{"account": account, "day": day, "remote_id": r} for r in new],
        )
        # Yesterday's reads no longer decide anything.
        session.execute(
            sa.delete(CaptureRead)
            .where(col(CaptureRead.account) == account)
            .where(col(CaptureRead.day) < day)
        )
        spend = session.get(CaptureSpend, (account, month_of(now)))
        if spend is None:
            spend = CaptureSpend(account=account, month=month_of(now))
        spend.reads += len(new)
        spend.usd = round(spend.usd + len(new) * price, 6)
        session.add(spend)
    return len(new)
