"""The daemon's periodic jobs: one table of :class:`JobSpec`, turned into APScheduler jobs by
:func:`schedule` (at start and on every reload, so the table follows the configuration).

The domain registers its periodic work here (the domain never imports the service): capture
sweeps and the archive's upkeep (:mod:`bulletin.service.maintenance`, the time stamps of
checkpoints among it), the CAP feeds, the webhook sender (:mod:`bulletin.webhooks.send`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bulletin.app import export_jobs
from bulletin.app.facebook_webhooks import facebook_pages
from bulletin.archiver import ledger
from bulletin.archiver.capture import lag as capture_lag
from bulletin.archiver.capture import webhooks as facebook_webhooks
from bulletin.cap.feed import poll_feeds
from bulletin.errors import BulletinError
from bulletin.locks import exclusive_job
from bulletin.logs import get_logger
from bulletin.notify.escalate import escalate_due, send_digest
from bulletin.notify.send import prune as prune_mail
from bulletin.notify.send import send_due as send_mail
from bulletin.service.instances import HEARTBEAT_SECONDS
from bulletin.webhooks.registry import prune
from bulletin.webhooks.send import send_due

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler
    from sqlalchemy.engine import Engine

    from bulletin.service.daemon import Daemon

log = get_logger("bulletin.daemon")


@dataclass(frozen=True)
class Every:
    """An interval trigger: every ``seconds``."""

    seconds: float

    def apscheduler(self) -> tuple[str, dict[str, object]]:
        """APScheduler's trigger name and arguments."""
        return "interval", {"seconds": self.seconds}


@dataclass(frozen=True)
class Daily:
    """A cron trigger: every day at ``at`` (``"HH:MM"``) in ``time_zone``."""

    at: str
    time_zone: str

    def apscheduler(self) -> tuple[str, dict[str, object]]:
        """APScheduler's trigger name and arguments."""
        hour, minute = (int(x) for x in self.at.split(":"))
        return "cron", {"hour": hour, "minute": minute, "timezone": self.time_zone}


@dataclass(frozen=True)
class JobSpec:
    """One periodic job: ``run`` on ``trigger``, first ``first_run`` seconds after scheduling
    (None: when the trigger first fires).

    A ``guarded`` job's errors are logged as "<guarded> failed", never raised into the
    scheduler. An ``exclusive`` job runs in only one daemon a round (the advisory lock named
    ``id``, see :func:`bulletin.locks.exclusive_job`).
    """

    id: str
    run: Callable[[], object]
    trigger: Every | Daily
    guarded: str | None = None
    exclusive: bool = False
    first_run: float | None = None


HOUR = 3600.0
DAY = 24 * HOUR
WEBHOOK_SECONDS = 3.0
#: how often checkpoints no time-stamp authority answered for are tried again
TIMESTAMP_BACKLOG_SECONDS = 300.0
NOTIFY_SECONDS = 5.0
# Facebook webhook deliveries are captured when the daemon is woken after their receipt; this
# is the fallback interval (a lost wake-up delays a capture this long, never loses it)
FACEBOOK_WEBHOOK_SECONDS = 5.0
FACEBOOK_WEBHOOK_JOB = "facebook-webhooks"
FACEBOOK_WEBHOOK_KEPT = timedelta(days=30)  # captured deliveries kept in the database
CAPTURE_LOG_PRUNE_JOB = "capture-log-prune"


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
            Every(min(account.capture_interval, settings.capture.hot_interval)),
            f"capture {name}",
            first_run=1,
        )
        for name, account in settings.accounts.items()
        if account.enabled
    ]
    checkpoint = ledger.CHECKPOINT_INTERVAL.total_seconds()
    decisions = "copies of holds, redactions and requests"
    morning = Daily("08:00", zone)
    jobs += [
        JobSpec("heartbeat", daemon.instance.heartbeat, Every(HEARTBEAT_SECONDS), "heartbeat"),
        JobSpec("nightly", work.nightly, Daily(settings.daemon.verify_at, zone), "nightly verify",
                exclusive=True),
        JobSpec("disposition", work.disposition, Daily(settings.retention.disposition_at, zone),
                "disposition listing"),
        JobSpec("spool", work.drain_spool, Every(30), "spool drain"),
        JobSpec("checkpoint", work.checkpoint, Every(checkpoint), "ledger checkpoint",
                exclusive=True, first_run=60),
        JobSpec("decisions", work.mirror_decisions, Every(HOUR), decisions, exclusive=True),
        JobSpec("deadlines", work.warn_deadlines, morning, "records request deadlines"),
        JobSpec("disk", work.check_disk_space, Every(HOUR), "disk space check", first_run=5),
        JobSpec("bucket", work.check_bucket, Every(DAY), "S3 bucket settings check", first_run=5),
    ]  # fmt: skip

    def exports() -> object:
        return export_jobs.resume_interrupted(app)

    jobs.append(JobSpec("export-resume", exports, Every(export_jobs.RESUME_SECONDS),
                        "export resumption", exclusive=True, first_run=10))  # fmt: skip

    def webhooks() -> object:
        return send_due(app.engine, app.clock, daemon.stopping)

    def webhook_log() -> object:
        return prune(app.engine, app.clock.now())

    jobs += [
        JobSpec("webhooks", webhooks, Every(WEBHOOK_SECONDS), "webhook sending",
                exclusive=True, first_run=3),
        JobSpec("webhook-log", webhook_log, Every(DAY), "webhook log pruning", exclusive=True,
                first_run=60),
    ]  # fmt: skip
    if settings.timestamp.enabled:
        jobs.append(JobSpec("timestamps", work.stamp_backlog, Every(TIMESTAMP_BACKLOG_SECONDS),
                            "checkpoint time-stamping", exclusive=True, first_run=30))  # fmt: skip

    def mail_log() -> object:
        return prune_mail(app.engine, app.clock.now())

    jobs.append(JobSpec("notify-log", mail_log, Every(DAY), "notification pruning",
                        exclusive=True, first_run=90))  # fmt: skip
    if settings.notify.enabled:

        def mail() -> object:
            return send_mail(app.engine, app.settings, app.environ, app.clock, daemon.stopping)

        def escalate() -> object:
            return escalate_due(app.engine, app.settings, app.clock)

        def digest() -> object:
            return send_digest(app.engine, app.settings, app.environ, app.clock)

        jobs += [
            JobSpec("notify", mail, Every(NOTIFY_SECONDS), "email notifications",
                    exclusive=True, first_run=3),
            JobSpec("escalate", escalate, Every(30), "emergency escalation", exclusive=True,
                    first_run=10),
        ]  # fmt: skip
        if settings.notify.digest:
            at = Daily(settings.notify.digest_at, zone)
            jobs.append(JobSpec("digest", digest, at, "administrators' digest", exclusive=True))
    if facebook_pages(app):
        every = Every(FACEBOOK_WEBHOOK_SECONDS)
        jobs.append(JobSpec(FACEBOOK_WEBHOOK_JOB, daemon.capture_webhooks, every,
                            "facebook webhook capture", exclusive=True, first_run=1))  # fmt: skip

    def capture_log_prune() -> object:
        """Captured webhook deliveries after 30 days; stream capture marks once their records
        are older than the capture lag looks."""
        pruned = capture_lag.prune(app.engine)
        if facebook_pages(app):
            before = app.clock.now() - FACEBOOK_WEBHOOK_KEPT
            pruned += facebook_webhooks.prune(app.engine, before)
        return pruned

    jobs.append(JobSpec(CAPTURE_LOG_PRUNE_JOB, capture_log_prune, Every(DAY),
                        "capture log pruning", exclusive=True, first_run=60))  # fmt: skip
    if settings.cap.feeds:

        def cap_poll() -> object:
            return poll_feeds(app.engine, app.settings, app.clock)

        poll = Every(settings.cap.poll_interval)
        jobs.append(JobSpec("cap-poll", cap_poll, poll, "CAP poll", exclusive=True, first_run=2))
    if daemon.notifier.watchdog_seconds:
        alive = Every(daemon.notifier.watchdog_seconds / 2)
        jobs.append(JobSpec("watchdog", daemon.watchdog, alive, first_run=0))
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
        trigger, arguments = spec.trigger.apscheduler()
        if spec.first_run is not None:
            arguments["next_run_time"] = now + timedelta(seconds=spec.first_run)
        scheduler.add_job(run, trigger, id=spec.id, max_instances=1, coalesce=True, **arguments)


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
