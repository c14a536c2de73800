"""Productions started from afar (the HTTP API): a clerk starts one, follows its progress and
downloads the zip when it is done.

A job runs in a thread of the process that started it and is known there only, by an id
too long to guess; its zip is written under the data directory (``exports/``). Only the clerk
who started it, or an admin, may follow or fetch it.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from bulletin.app import exports
from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.archiver.export import ExportResult, resolve
from bulletin.errors import BulletinError, NotFound, Refused
from bulletin.identity import require_role

log = structlog.get_logger("bulletin.app.export_jobs")
_JOBS: dict[str, ExportJob] = {}
_LOCK = threading.Lock()


@dataclass
class ExportJob:
    """One production under way or done: ``done`` of ``total`` records written; on success
    ``result``, on failure ``error`` (one line)."""

    id: str
    owner: str
    production: exports.Production
    started_at: datetime
    out: Path
    done: int = 0
    total: int = 0
    finished: bool = False
    error: str | None = None
    result: ExportResult | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def state(self) -> str:
        if not self.finished:
            return "running"
        return "failed" if self.error else "done"


def start(
    app: App,
    actor: Actor,
    *,
    request_id: int | None = None,
    query: str | None = None,
    production: exports.Production = "public",
) -> ExportJob:
    """Start the production of request ``request_id`` or of ``query`` (exactly one) as a zip.

    :raises Refused: ``actor`` is not a clerk.
    :raises UsageError: neither or both scopes, a bad query, an unknown account.
    :raises NotFound: no such request.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "clerk", engine)
    resolve(engine, app.settings, request_id, query)  # refuse a bad scope now, not later
    job_id = secrets.token_urlsafe(18)
    out = app.settings.data_dir / "exports" / f"api-{job_id}.zip"
    job = ExportJob(job_id, actor.name, production, app.clock.now(), out)

    def told(done: int, total: int) -> None:
        job.done, job.total = done, total

    def run() -> None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            job.result = exports.produce(
                app,
                actor,
                request_id=request_id,
                query=query,
                out=out,
                production=production,
                as_zip=True,
                progress=told,
            )
        except BulletinError as e:
            job.error = str(e)
        except Exception as e:  # a bug: the job says so, the log has it
            log.exception("export failed", job=job_id)
            job.error = f"unexpected {type(e).__name__}"
        finally:
            job.finished = True

    job._thread = threading.Thread(target=run, name=f"export-{job_id[:6]}", daemon=True)
    with _LOCK:
        _JOBS[job_id] = job
    job._thread.start()
    return job


def progress(app: App, actor: Actor, job_id: str) -> ExportJob:
    """The job ``job_id``, as far as it has got.

    :raises Refused: ``actor`` is not a clerk, or neither started it nor is an admin.
    :raises NotFound: no such job in this process.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    with _LOCK:
        job = _JOBS.get(job_id)
    if job is None:
        raise NotFound("no such export here (it may have run in another Bulletin process)")
    if job.owner != actor.name:
        try:
            require_role(app.settings, actor.name, "admin", app.checked_engine())
        except Refused:
            raise Refused("this export was started by someone else") from None
    return job


def download(app: App, actor: Actor, job_id: str) -> Path:
    """The zip of a finished job.

    :raises Refused: as :func:`progress`; the job is still running or failed.
    :raises NotFound: as :func:`progress`.
    """
    job = progress(app, actor, job_id)
    if job.state != "done" or job.result is None:
        raise Refused(f"export {job_id} is {job.state}, nothing to download yet")
    return job.result.out


def wait(job: ExportJob, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``job`` to finish; whether it did."""
    if job._thread is not None:
        job._thread.join(timeout)
    return job.finished
