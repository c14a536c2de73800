"""The daemon's periodic jobs: one table of :class:`JobSpec`, turned into APScheduler jobs by
:func:`schedule` (at start and on every reload, so the table follows the configuration).

The domain registers its periodic work here (the domain never imports the service): capture
sweeps and the archive's upkeep (:mod:`bulletin.service.maintenance`), the CAP feeds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import structlog

from bulletin.archiver import ledger
from bulletin.errors import BulletinError
from bulletin.locks import exclusive_job
from bulletin.publisher.cap_feed import poll_feeds
from bulletin.service.instances import HEARTBEAT_SECONDS

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler
    from sqlalchemy.engine import Engine

    from bulletin.service.daemon import Daemon

log = structlog.get_logger("bulletin.daemon")


@dataclass(frozen=True)
class JobSpec:
    """One periodic job.

    ``trigger`` and ``trigger_args`` are APScheduler's (``"interval"`` with ``seconds=``...,
    ``"cron"`` with ``hour=``, ``minute=``, ``timezone=``); ``first_run`` is how many seconds
    after scheduling the job first runs (None: when its trigger first fires). An ``exclusive``
    job runs in only one daemon a round (the advisory lock named ``id``); a ``guarded`` job's
    errors are logged as "<guarded> failed", never raised into the scheduler.
    """

    id: str
    run: Callable[[], object]
    trigger: Literal["interval", "cron"]
    trigger_args: Mapping[str, object] = field(default_factory=dict)
    first_run: float | None = None
    exclusive: bool = False
    guarded: str | None = None


def daily(at: str, time_zone: str) -> dict[str, object]:
    """The ``cron`` arguments for every day at ``at`` (``"HH:MM"``) in ``time_zone``."""
    hour, minute = (int(x) for x in at.split(":"))
    return {"hour": hour, "minute": minute, "timezone": time_zone}


def table(daemon: Daemon) -> list[JobSpec]:
    """The jobs ``daemon`` runs on its current configuration."""
    app = daemon.app
    settings = app.settings
    zone = settings.agency.time_zone
    work = daemon.maintenance
    # A capture job ticks at least as often as a hot thread wants sweeping; each sweep decides
    # what is due (the post listing every capture_interval, threads by age).
    jobs = [
        JobSpec(
            f"capture:{name}",
            functools.partial(work.scheduled_capture, name),
            "interval",
            {"seconds": min(account.capture_interval, settings.capture.hot_interval)},
            first_run=1,
            guarded=f"capture {name}",
        )
        for name, account in settings.accounts.items()
        if account.enabled
    ]
    jobs += [
        JobSpec(
            "heartbeat",
            daemon.instance.heartbeat,
            "interval",
            {"seconds": HEARTBEAT_SECONDS},
            guarded="heartbeat",
        ),
        JobSpec(
            "nightly",
            work.nightly,
            "cron",
            daily(settings.daemon.verify_at, zone),
            exclusive=True,
            guarded="nightly verify",
        ),
        JobSpec(
            "disposition",
            work.disposition,
            "cron",
            daily(settings.retention.disposition_at, zone),
            guarded="disposition listing",
        ),
        JobSpec("spool", work.drain_spool, "interval", {"seconds": 30}, guarded="spool drain"),
        JobSpec(
            "checkpoint",
            work.checkpoint,
            "interval",
            {"seconds": ledger.CHECKPOINT_INTERVAL.total_seconds()},
            first_run=60,
            exclusive=True,
            guarded="ledger checkpoint",
        ),
        JobSpec(
            "decisions",
            work.mirror_decisions,
            "interval",
            {"hours": 1},
            exclusive=True,
            guarded="copies of holds, redactions and requests",
        ),
        JobSpec(
            "deadlines",
            work.warn_deadlines,
            "cron",
            daily("08:00", zone),
            guarded="records request deadlines",
        ),
        JobSpec(
            "disk",
            work.check_disk_space,
            "interval",
            {"hours": 1},
            first_run=5,
            guarded="disk space check",
        ),
        JobSpec(
            "bucket",
            work.check_bucket,
            "interval",
            {"days": 1},
            first_run=5,
            guarded="S3 bucket settings check",
        ),
    ]
    if settings.cap.feeds:
        jobs.append(
            JobSpec(
                "cap-poll",
                lambda: poll_feeds(app.engine, app.settings, app.clock),
                "interval",
                {"seconds": settings.cap.poll_interval},
                first_run=2,
                exclusive=True,
                guarded="CAP poll",
            )
        )
    if daemon.notifier.watchdog_seconds:
        jobs.append(
            JobSpec(
                "watchdog",
                daemon.watchdog,
                "interval",
                {"seconds": daemon.notifier.watchdog_seconds / 2},
                first_run=0,
            )
        )
    return jobs


def schedule(scheduler: BaseScheduler, jobs: Sequence[JobSpec], engine: Engine) -> None:
    """Replace ``scheduler``'s jobs by ``jobs`` (each at most one run at a time, missed runs
    coalesced); ``engine`` holds the exclusive jobs' locks."""
    for job in scheduler.get_jobs():
        job.remove()
    now = datetime.now(UTC)
    for spec in jobs:
        run = spec.run
        if spec.exclusive:
            run = exclusive(engine, spec.id, run)
        if spec.guarded is not None:
            run = guarded(spec.guarded, run)
        first = (
            {}
            if spec.first_run is None
            else {"next_run_time": now + timedelta(seconds=spec.first_run)}
        )
        scheduler.add_job(
            run,
            spec.trigger,
            id=spec.id,
            max_instances=1,
            coalesce=True,
            **spec.trigger_args,
            **first,
        )


def guarded(what: str, job: Callable[[], object]) -> Callable[[], None]:
    """``job``, its errors logged as "``what`` failed" (with a traceback for a bug)."""

    def run() -> None:
        try:
            job()
        except BulletinError as e:
            log.error(f"{what} failed", error=str(e))
        except Exception:
            log.exception(f"{what} failed")

    return run


def exclusive(engine: Engine, name: str, job: Callable[[], object]) -> Callable[[], None]:
    """``job``, run only in the one daemon that holds lock ``name`` this round."""

    def run() -> None:
        with exclusive_job(engine, name) as mine:
            if mine:
                job()

    return run
