"""Each archive verify, recorded (table ``verify_runs``): the nightly job's and a person's
(``bulletin archive verify``) alike, so ``bulletin status`` and the console's status page
show the last runs, and a run that found a problem, died or is overdue is seen.

A run that finds a problem is an event (``verify.problem``, for the outbound webhooks) and a
message to the administrators, written in the transaction that finishes the run; the sender
drops a message whose subject it sent within the dedup window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.clock import utc
from bulletin.db import session_scope
from bulletin.events import record_event
from bulletin.models import VerifyRun
from bulletin.notify import outbox

if TYPE_CHECKING:  # the checks themselves load when a run starts: `status` reads runs only
    from bulletin.archiver.store.base import WormStore
    from bulletin.archiver.verify import Report
    from bulletin.config.settings import Settings

TRIGGERS = ("nightly", "command")
#: how many problem lines a run keeps
FIRST_PROBLEMS = 10
#: a verify whose last finished run is older than this is overdue (the nightly job runs
#: once a day: this is one missed night and some slack)
OVERDUE_AFTER = timedelta(hours=49)
#: a run started this long ago that has not finished is taken as dead
DEAD_AFTER = timedelta(hours=12)
SUBJECT = "Archive verification found problems"


@dataclass(frozen=True)
class RunView:
    """One recorded run, as the status pages show it."""

    id: int
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    records: int
    entries: int
    objects: int
    problems: int
    warnings: int
    first_problems: list[str]
    error: str | None

    @property
    def result(self) -> str:
        """``ok``, ``failed`` (problems found), ``error`` (it raised), ``running``."""
        if self.error:
            return "error"
        if self.finished_at is None:
            return "running"
        return "failed" if self.problems else "ok"

    def line(self) -> str:
        """One line, UTC times."""
        when = f"{self.started_at:%Y-%m-%d %H:%M} UTC ({self.trigger})"
        if self.result == "error":
            return f"{when}: stopped: {self.error}"
        if self.result == "running":
            return f"{when}: not finished"
        took = (utc(self.finished_at) - utc(self.started_at)).total_seconds()  # type: ignore[arg-type]
        return (
            f"{when}: {'OK' if not self.problems else 'FAILED'}, {self.records:,} records, "
            f"{self.entries:,} ledger entries, {self.objects:,} objects checked, "
            f"{self.problems} problems, {self.warnings} warnings, {took:.0f} s"
        )


def _view(row: VerifyRun) -> RunView:
    assert row.id is not None
    return RunView(
        id=row.id,
        trigger=row.trigger,
        started_at=row.started_at,
        finished_at=row.finished_at,
        records=row.records,
        entries=row.entries,
        objects=row.objects,
        problems=row.problems,
        warnings=row.warnings,
        first_problems=(row.first_problems or "").splitlines(),
        error=row.error,
    )


def start(engine: Engine, trigger: str, now: datetime) -> int:
    """Record that a run by ``trigger`` started at ``now``; its id."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown verify trigger {trigger!r}")
    with session_scope(engine) as session:
        row = VerifyRun(trigger=trigger, started_at=now)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def finish(engine: Engine, run_id: int, report: Report, now: datetime) -> None:
    """Record what run ``run_id`` found; on a problem, the ``verify.problem`` event and a
    message to the administrators, in the same transaction."""
    with session_scope(engine) as session:
        row = session.get(VerifyRun, run_id)
        assert row is not None
        row.finished_at = now
        row.records, row.entries, row.objects = report.records, report.entries, report.objects
        row.problems, row.warnings = len(report.problems), len(report.warnings)
        lines = [p.line() for p in report.problems[:FIRST_PROBLEMS]]
        row.first_problems = "\n".join(lines) or None
        session.add(row)
        if report.ok:
            return
        kinds = sorted({p.kind for p in report.problems})
        payload = {"problems": len(report.problems), "kinds": kinds, "records": report.records}
        record_event(session, "verify.problem", payload, at=now)
        message = [
            f"{len(report.problems)} problem(s): {', '.join(kinds)}",
            *lines[:3],
            "Run: bulletin archive verify",
        ]
        outbox.admin(session, SUBJECT, message, now)


def stopped(engine: Engine, run_id: int, error: str, now: datetime) -> None:
    """Record that run ``run_id`` raised ``error`` and did not finish checking."""
    with session_scope(engine) as session:
        row = session.get(VerifyRun, run_id)
        assert row is not None
        row.finished_at = now
        row.error = error
        session.add(row)
        outbox.admin(session, "Archive verification could not finish", [error], now)


def recorded_verify(
    engine: Engine,
    store: WormStore,
    *,
    trigger: str,
    now: Callable[[], datetime],
    settings: Settings | None = None,
    progress: Callable[[str, int, bool], None] | None = None,
) -> Report:
    """:func:`~bulletin.archiver.verify.verify`, recorded as a run by ``trigger``; times
    from ``now()``. Re-raises what verify raised, after recording it."""
    from bulletin.archiver.verify import verify

    run_id = start(engine, trigger, now())
    try:
        report = verify(
            engine,
            store,
            progress=progress,
            settings=settings,
            witness=settings.archive.witness if settings is not None else None,
            now=now(),
        )
    except Exception as e:
        stopped(engine, run_id, f"{type(e).__name__}: {e}", now())
        raise
    finish(engine, run_id, report, now())
    return report


def recent(engine: Engine, limit: int = 5) -> list[RunView]:
    """The last ``limit`` runs, newest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(VerifyRun)
            .order_by(col(VerifyRun.started_at).desc(), col(VerifyRun.id).desc())
            .limit(limit)
        ).all()
        return [_view(r) for r in rows]


def problems(engine: Engine, now: datetime) -> list[str]:
    """What needs a person about verify, one line each: the last finished run found problems
    or stopped; a run started over :data:`DEAD_AFTER` ago never finished; no run finished
    within :data:`OVERDUE_AFTER` (once the archive is older than that: a new install has
    nothing to verify yet)."""
    from bulletin.models import LedgerEntry

    with Session(engine) as session:
        last = session.exec(
            select(VerifyRun)
            .where(col(VerifyRun.finished_at).is_not(None))
            .order_by(col(VerifyRun.finished_at).desc(), col(VerifyRun.id).desc())
            .limit(1)
        ).first()
        dead = session.exec(
            select(VerifyRun)
            .where(col(VerifyRun.finished_at).is_(None))
            .where(col(VerifyRun.started_at) < now - DEAD_AFTER)
            .order_by(col(VerifyRun.started_at).desc())
            .limit(1)
        ).first()
        first_entry = session.exec(
            select(LedgerEntry.recorded_at).order_by(col(LedgerEntry.seq)).limit(1)
        ).first()
    out = []
    if last is not None:
        view = _view(last)
        if view.result == "error":
            out.append(f"archive verify stopped at {view.line()}")
        elif view.result == "failed":
            first = f"; first: {view.first_problems[0]}" if view.first_problems else ""
            out.append(
                f"archive verify of {view.started_at:%Y-%m-%d %H:%M} UTC found "
                f"{view.problems} problem{'' if view.problems == 1 else 's'}{first} "
                "(`bulletin archive verify`)"
            )
    if dead is not None and (last is None or utc(last.started_at) < utc(dead.started_at)):
        out.append(
            f"archive verify started {dead.started_at:%Y-%m-%d %H:%M} UTC ({dead.trigger}) "
            "never finished"
        )
    since = utc(last.finished_at) if last is not None and last.finished_at else None
    if since is None and first_entry is not None and now - utc(first_entry) > OVERDUE_AFTER:
        out.append("archive verify overdue: no run has finished since the archive began")
    elif since is not None and now - since > OVERDUE_AFTER:
        out.append(
            f"archive verify overdue: the last run finished {since:%Y-%m-%d %H:%M} UTC "
            "(the daemon's nightly job, or `bulletin archive verify`)"
        )
    return out
