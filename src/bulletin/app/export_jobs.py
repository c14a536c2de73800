"""Productions started from afar (the console, the HTTP API): a clerk starts one, follows its
progress, resumes it after an interruption and downloads the zip when it is done.

A job is a row of ``export_jobs`` (:class:`~bulletin.models.ExportJobRow`), so every process
on the database sees it and a restart loses none. It is worked on by a thread of the process
that started (or resumed) it, under a lease in the row that a second thread renews every
:data:`RENEW_SECONDS`; a job still ``running`` whose lease ran out was interrupted (the
process died) and shows as ``interrupted``. Resuming claims the row only if the lease has run
out (one conditional UPDATE, so two processes never work on one job) and continues from the
export's journal in ``<out>.partial/``. A failed job whose work so far is kept may be resumed
too. The zip is written under the data directory (``exports/``) and checked like
``bulletin export verify`` once written; the result is kept with the job. Only the clerk who
started a job, or an admin, may follow, resume or fetch it.

The daemon takes up interrupted jobs by itself (:func:`resume_interrupted`, every
:data:`RESUME_SECONDS`), acting for the clerk who started each (the job records who) and
audited as "resumed by daemon on behalf of" that clerk; a job interrupted again after
:data:`MAX_RESUMES` resumes is marked failed with a message saying so, its work so far kept
for a person to resume once the cause is found.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
import structlog
from sqlmodel import Session, col, select

from bulletin.app import exports
from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.archiver.export import resolve
from bulletin.archiver.export.exporter import partial_dir
from bulletin.audit import record_event
from bulletin.errors import BulletinError, NotFound, Refused
from bulletin.identity import SYSTEM_ACTOR, require_role
from bulletin.models import ExportJobRow

log = structlog.get_logger("bulletin.app.export_jobs")

#: how long a worker's claim on a job lasts without renewal
LEASE = timedelta(seconds=60)
#: how often the worker renews it
RENEW_SECONDS = 15.0
#: the most jobs a listing shows
MAX_LISTED = 100
#: how often the daemon looks for interrupted jobs to take up
RESUME_SECONDS = 30.0
#: how many resumes (by the daemon or by hand) a job gets before the daemon gives up on it
MAX_RESUMES = 3

State = Literal["running", "interrupted", "done", "failed"]
_WORKER = f"{socket.gethostname()}:{os.getpid()}"
_THREADS: dict[str, threading.Thread] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ExportJob:
    """One production as it stands: ``done`` of ``total`` records written; when done the
    records, payload hash, Bates range and the check of the bundle (``verified``); when
    failed ``error`` (one line) and whether the work so far is kept (``resumable``)."""

    id: str
    owner: str
    production: exports.Production
    request_id: int | None
    query: str | None
    state: State
    done: int
    total: int
    error: str | None
    records: int | None
    payload_sha256: str | None
    first_bates: str | None
    last_bates: str | None
    verified: str | None
    resumes: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    out: Path
    resumable: bool

    @property
    def scope(self) -> str:
        """What it produces, in words."""
        return f"request {self.request_id}" if self.request_id else f"query {self.query}"

    @property
    def percent(self) -> int:
        """How far it has got, 0 to 100."""
        if self.state == "done":
            return 100
        return int(100 * self.done / self.total) if self.total else 0


def _view(row: ExportJobRow, now: datetime) -> ExportJob:
    state: State = row.state  # type: ignore[assignment]
    if state == "running" and (row.lease_until is None or row.lease_until < now):
        state = "interrupted"
    out = Path(row.out)
    resumable = state == "interrupted" or (state == "failed" and partial_dir(out).is_dir())
    return ExportJob(
        id=row.id,
        owner=row.owner,
        production="counsel" if row.production == "counsel" else "public",
        request_id=row.request_id,
        query=row.query,
        state=state,
        done=row.done,
        total=row.total,
        error=row.error,
        records=row.records,
        payload_sha256=row.payload_sha256,
        first_bates=row.first_bates,
        last_bates=row.last_bates,
        verified=row.verified,
        resumes=row.resumes,
        started_at=row.started_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        out=out,
        resumable=resumable,
    )


def _update(app: App, job_id: str, claim: str, **values: object) -> bool:
    """Set ``values`` on job ``job_id`` if ``claim`` still holds it; whether it did."""
    table = ExportJobRow.__table__  # type: ignore[attr-defined]
    with app.checked_engine().begin() as conn:
        done = conn.execute(
            sa.update(table)
            .where(table.c.id == job_id, table.c.claimed_by == claim)
            .values(**values)
        )
    return bool(done.rowcount)


def _work(app: App, actor: Actor, row: ExportJobRow, claim: str, resume: bool) -> None:
    """Produce ``row``'s bundle under ``claim`` (renewing the lease), check it and record the
    outcome; run in a thread of its own."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(RENEW_SECONDS):
            _update(app, row.id, claim, lease_until=app.clock.now() + LEASE)

    def told(done: int, total: int) -> None:
        now = app.clock.now()
        _update(app, row.id, claim, done=done, total=total, updated_at=now, lease_until=now + LEASE)

    renewer = threading.Thread(target=renew, name=f"lease-{row.id[:6]}", daemon=True)
    renewer.start()
    out = Path(row.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        result = exports.produce(
            app,
            actor,
            request_id=row.request_id,
            query=row.query,
            out=out,
            production="counsel" if row.production == "counsel" else "public",
            as_zip=True,
            resume=resume,
            progress=told,
        )
        report = exports.verify_bundle(actor, out, app)
        if report.ok:
            verified = f"verified: {report.files} files, {report.records} records, no problem"
        else:
            verified = f"{len(report.problems)} problem(s): " + "; ".join(report.problems[:3])
        now = app.clock.now()
        _update(
            app,
            row.id,
            claim,
            state="done",
            done=result.records,
            total=result.records,
            records=result.records,
            payload_sha256=result.payload_sha256,
            first_bates=result.first_bates,
            last_bates=result.last_bates,
            verified=verified,
            updated_at=now,
            finished_at=now,
            claimed_by=None,
            lease_until=None,
        )
    except Exception as e:
        if isinstance(e, BulletinError):
            error = str(e)
        else:  # a bug: the job says so, the log has it
            log.exception("export failed", job=row.id)
            error = f"unexpected {type(e).__name__}"
        now = app.clock.now()
        _update(
            app,
            row.id,
            claim,
            state="failed",
            error=error,
            updated_at=now,
            finished_at=now,
            claimed_by=None,
            lease_until=None,
        )
    finally:
        stop.set()
        with _LOCK:
            _THREADS.pop(row.id, None)


def _launch(app: App, actor: Actor, row: ExportJobRow, claim: str, resume: bool) -> None:
    thread = threading.Thread(
        target=_work, args=(app, actor, row, claim, resume), name=f"export-{row.id[:6]}"
    )
    thread.daemon = True
    with _LOCK:
        _THREADS[row.id] = thread
    thread.start()


def start(
    app: App,
    actor: Actor,
    *,
    request_id: int | None = None,
    query: str | None = None,
    production: exports.Production = "public",
) -> ExportJob:
    """Start the production of request ``request_id`` or of ``query`` (exactly one) as a zip,
    in a thread of this process.

    :raises Refused: ``actor`` is not a clerk.
    :raises UsageError: neither or both scopes, a bad query, an unknown account.
    :raises NotFound: no such request.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "clerk", engine)
    resolve(engine, app.settings, request_id, query)  # refuse a bad scope now, not later
    job_id = secrets.token_urlsafe(18)
    claim = f"{_WORKER}:{secrets.token_hex(4)}"
    now = app.clock.now()
    row = ExportJobRow(
        id=job_id,
        owner=actor.name,
        production=production,
        request_id=request_id,
        query=query,
        out=str(app.settings.data_dir / "exports" / f"api-{job_id}.zip"),
        state="running",
        started_at=now,
        updated_at=now,
        claimed_by=claim,
        lease_until=now + LEASE,
    )
    with Session(engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
        session.expunge(row)
    _launch(app, actor, row, claim, resume=False)
    return _view(row, now)


def _row(app: App, actor: Actor, job_id: str) -> ExportJobRow:
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    with Session(app.checked_engine()) as session:
        row = session.get(ExportJobRow, job_id)
        if row is not None:
            session.expunge(row)
    if row is None:
        raise NotFound(f"no export {job_id}")
    if row.owner != actor.name:
        try:
            require_role(app.settings, actor.name, "admin", app.checked_engine())
        except Refused:
            raise Refused("this export was started by someone else") from None
    return row


def progress(app: App, actor: Actor, job_id: str) -> ExportJob:
    """The job ``job_id``, as far as it has got.

    :raises Refused: ``actor`` is not a clerk, or neither started it nor is an admin.
    :raises NotFound: no such job.
    """
    return _view(_row(app, actor, job_id), app.clock.now())


def resume(app: App, actor: Actor, job_id: str) -> ExportJob:
    """Take up an interrupted job (or a failed one whose work so far is kept) where its
    journal left off, in a thread of this process.

    :raises Refused: as :func:`progress`; the job is running elsewhere or is done, or
        another process took it up first.
    :raises NotFound: as :func:`progress`.
    """
    row = _row(app, actor, job_id)
    now = app.clock.now()
    job = _view(row, now)
    if not job.resumable:
        raise Refused(f"export {job_id} is {job.state}; only an interrupted export is resumed")
    claim = f"{_WORKER}:{secrets.token_hex(4)}"
    table = ExportJobRow.__table__  # type: ignore[attr-defined]
    free = sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    with app.checked_engine().begin() as conn:
        taken = conn.execute(
            sa.update(table)
            .where(table.c.id == job_id, table.c.state == row.state, free)
            .values(
                state="running",
                error=None,
                finished_at=None,
                claimed_by=claim,
                lease_until=now + LEASE,
                updated_at=now,
                resumes=table.c.resumes + 1,
            )
        )
    if not taken.rowcount:
        raise Refused(f"export {job_id} was taken up by another process first")
    with Session(app.checked_engine()) as session:
        record_event(
            session,
            at=now,
            actor=actor,
            action="export.resumed",
            object_type="export",
            object_id=job_id,
            reason=actor.reason or None,
            was=job.state,
            done=row.done,
            total=row.total,
        )
        session.commit()
    log.info("export resumed", job=job_id, by=actor.by or actor.name, owner=row.owner)
    _launch(app, actor, row, claim, resume=True)
    return progress(app, actor, job_id)


def on_behalf_of(owner: str) -> Actor:
    """The daemon acting for ``owner`` (who started a job): the owner's authority, audited
    as the daemon's with "resumed by daemon on behalf of ``owner``"."""
    system = Actor.system()
    return Actor(
        owner,
        "system",
        system.host,
        by=SYSTEM_ACTOR,
        reason=f"resumed by daemon on behalf of {owner}",
    )


def resume_interrupted(app: App) -> list[str]:
    """The daemon's periodic job: take up every interrupted job (still ``running``, its
    lease run out) in a thread of this process, as :func:`resume` does, acting for the one
    who started it (:func:`on_behalf_of`). A job already resumed :data:`MAX_RESUMES` times
    is marked failed instead ("interrupted N times; …"), its journal kept; so is one its
    owner may no longer resume (the role was taken away). A failed job is never taken up
    by the daemon. Returns the ids taken up."""
    engine = app.checked_engine()
    now = app.clock.now()
    table = ExportJobRow.__table__  # type: ignore[attr-defined]
    lapsed = sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(ExportJobRow)
                .where(col(ExportJobRow.state) == "running", lapsed)
                .order_by(col(ExportJobRow.started_at))
                .limit(MAX_LISTED)
            )
        )
        session.expunge_all()
    taken: list[str] = []
    for row in rows:
        if row.resumes >= MAX_RESUMES:
            _give_up(
                app,
                row,
                f"interrupted {row.resumes + 1} times; the daemon stopped resuming it after "
                f"{MAX_RESUMES} resumes (its work so far is kept: resume it by hand once the "
                "cause is found)",
            )
            continue
        try:
            resume(app, on_behalf_of(row.owner), row.id)
        except NotFound:
            continue
        except Refused as e:
            if "taken up by another process" in str(e):
                continue
            _give_up(app, row, f"the daemon could not resume it for {row.owner}: {e}")
            continue
        taken.append(row.id)
    return taken


def _give_up(app: App, row: ExportJobRow, error: str) -> None:
    """Mark interrupted job ``row`` failed with ``error`` (if it is still interrupted),
    audited as the daemon's."""
    now = app.clock.now()
    table = ExportJobRow.__table__  # type: ignore[attr-defined]
    lapsed = sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    engine = app.checked_engine()
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(table)
            .where(table.c.id == row.id, table.c.state == "running", lapsed)
            .values(
                state="failed",
                error=error,
                finished_at=now,
                updated_at=now,
                claimed_by=None,
                lease_until=None,
            )
        )
    if not done.rowcount:
        return
    with Session(engine) as session:
        record_event(
            session,
            at=now,
            actor=Actor.system(),
            action="export.abandoned",
            object_type="export",
            object_id=row.id,
            reason=error,
            owner=row.owner,
            resumes=row.resumes,
        )
        session.commit()
    log.warning("export abandoned", job=row.id, owner=row.owner, error=error)


def list_jobs(app: App, actor: Actor) -> list[ExportJob]:
    """The jobs ``actor`` started (an admin: everyone's), newest first, at most
    :data:`MAX_LISTED`.

    :raises Refused: ``actor`` is not a clerk.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "clerk", engine)
    try:
        require_role(app.settings, actor.name, "admin", engine)
        everyone = True
    except Refused:
        everyone = False
    query = select(ExportJobRow)
    if not everyone:
        query = query.where(ExportJobRow.owner == actor.name)
    query = query.order_by(col(ExportJobRow.started_at).desc()).limit(MAX_LISTED)
    with Session(engine) as session:
        rows = list(session.exec(query))
        session.expunge_all()
    now = app.clock.now()
    return [_view(r, now) for r in rows]


def download(app: App, actor: Actor, job_id: str) -> Path:
    """The zip of a finished job.

    :raises Refused: as :func:`progress`; the job is not done.
    :raises NotFound: as :func:`progress`; the zip is gone from the data directory.
    """
    job = progress(app, actor, job_id)
    if job.state != "done":
        raise Refused(f"export {job_id} is {job.state}, nothing to download yet")
    if not job.out.is_file():
        raise NotFound(f"the zip of export {job_id} is no longer at {job.out}")
    return job.out


def wait(job_id: str, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for this process's work on ``job_id`` to end; whether
    it did (or none was under way here)."""
    with _LOCK:
        thread = _THREADS.get(job_id)
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True
