"""The long-running service.

One dispatcher thread runs the due-scan: woken at once by a poke (see :mod:`bulletin.service.waker`)
and every ``scan_interval`` seconds as a fallback. It hands the deliveries it claims to a pool
of ``[daemon] max_parallel_deliveries`` workers, at most one per account at a time, so a slow
platform never holds up another account and one account's deliveries still go in order.
APScheduler runs the periodic jobs (capture sweeps, nightly verify, watchdog). The database
is the truth; jobs are rebuilt from it and from the configuration at start and on SIGHUP.

SIGTERM: stop claiming, finish the deliveries in hand, exit 0. SIGHUP: reload configuration
(a bad file is reported and the old configuration kept). systemd: READY=1, STOPPING=1 and
WATCHDOG=1 when ``$NOTIFY_SOCKET`` / ``$WATCHDOG_USEC`` are set.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import IO

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session, col, select

from bulletin import __version__
from bulletin.app import App
from bulletin.archiver import bucket, decisions, ledger, witness
from bulletin.archiver.capture import sweep
from bulletin.archiver.disposition import build_disposition_batch
from bulletin.archiver.requests import deadline_text, deadlines_near
from bulletin.archiver.verify import verify
from bulletin.config import load_settings
from bulletin.db import is_sqlite, session_scope
from bulletin.service.diskspace import Space, measure
from bulletin.errors import BulletinError, ConfigError, Refused, StoreUnavailable
from bulletin.locks import exclusive_job, release_instance_lock, take_instance_lock
from bulletin.service.metrics import StatusCollector, VerifyResult, serve_metrics
from bulletin.models import Account, DaemonInstance, Delivery
from bulletin.publisher import schedule
from bulletin.publisher.delivery import DeliveryWorker, Outcome
from bulletin.publisher.notices import sync_account
from bulletin.service.sandbox_child import SandboxChild
from bulletin.service.sdnotify import Notifier
from bulletin.service.waker import PgListener, Waker

log = structlog.get_logger("bulletin.daemon")

HEARTBEAT_SECONDS = 5


@dataclass
class OnceReport:
    """What ``daemon --once`` did and what it left for later."""

    outcomes: list[Outcome] = field(default_factory=list)
    deferred: list[tuple[int, str, datetime | None, str | None]] = field(default_factory=list)
    swept: dict[str, int] = field(default_factory=dict)


class Daemon:
    """Start with :meth:`start`, stop with :meth:`stop`, or run both with :meth:`serve`."""

    def __init__(self, app: App, config_path: str | None = None) -> None:
        self.app = app
        self.config_path = config_path
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.notifier = Notifier(app.environ)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 1
        self._running: dict[Future[Outcome], str] = {}  # deliveries in hand -> their account
        self._scheduler: BackgroundScheduler | None = None
        self._waker: Waker | None = None
        self._listener: PgListener | None = None
        self._lock_file: IO[str] | None = None
        self._sandbox: SandboxChild | None = None
        self._stop_metrics: Callable[[], None] | None = None
        self.last_verify: VerifyResult | None = None
        self._checkpointed = 0
        self._heartbeat = time.monotonic()
        self.worker = self._new_worker()

    def _new_worker(self) -> DeliveryWorker:
        return DeliveryWorker(
            self.app.engine,
            self.app.settings,
            self.app.clock,
            self.app.archiver,
            self.app.connector,
            self.owner,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def prepare(self) -> None:
        """Checks and repairs before any work: schema, single instance, accounts, ledger."""
        self.app.checked_engine()
        self._take_instance_lock()
        self._refuse_other_hosts()
        self._sync_accounts()
        self.recover()

    def start(self) -> None:
        """Prepare, then start the dispatcher, the waker and the scheduler."""
        self.prepare()
        data_dir = self.app.settings.data_dir
        if self.app.settings.sandbox.start_with_daemon:
            self._sandbox = SandboxChild(self.app.settings, self.config_path)
            self._sandbox.start()
        self._warm_up()  # load platform libraries before announcing readiness
        self._waker = Waker(data_dir, self._wake)
        self._waker.start()
        if self.app.engine.dialect.name == "postgresql":
            self._listener = PgListener(self.app.engine, self._wake)
            self._listener.start()
        self._register()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._schedule_jobs()
        self._scheduler.start()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatcher")
        self._dispatcher.start()
        self._serve_metrics()
        accounts = ", ".join(sorted(self.app.settings.accounts)) or "none"
        log.info(
            "started",
            version=__version__,
            owner=self.owner,
            accounts=accounts,
            config=self.app.settings.source,
            data_dir=str(data_dir),
        )
        self.notifier.ready(f"serving {len(self.app.settings.accounts)} accounts")

    def _serve_metrics(self) -> None:
        """Serve metrics at ``[daemon] metrics_address`` (stopping any endpoint before)."""
        self._end_metrics()
        address = self.app.settings.daemon.metrics_address
        if address:
            collector = StatusCollector(self.app, HEARTBEAT_SECONDS, lambda: self.last_verify)
            self._stop_metrics = serve_metrics(address, collector)

    def _end_metrics(self) -> None:
        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None

    def stop(self) -> None:
        """Finish the deliveries in hand, stop the jobs, release everything."""
        self.notifier.stopping()
        self._stop.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join()
        self._end_workers()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self._waker is not None:
            self._waker.stop()
        if self._listener is not None:
            self._listener.stop()
        if self._scheduler is not None:
            self._deregister()
        if self._sandbox is not None:
            self._sandbox.stop()
        self._end_metrics()
        self._release_instance_lock()
        log.info("stopped", owner=self.owner)

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the configuration."""

        def on_term(signum: int, _frame: FrameType | None) -> None:
            log.info("signal", signal=signal.Signals(signum).name)
            self._stop.set()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)
        self.start()
        try:
            while not self._stop.wait(0.2):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
        finally:
            self.stop()

    def reload(self) -> None:
        """Re-read the configuration; keep the old one when the new one is bad."""
        try:
            settings = load_settings(self.config_path, self.app.environ)
        except ConfigError as e:
            log.error("reload refused, keeping the running configuration", error=str(e))
            return
        if settings.database_url != self.app.settings.database_url:
            log.error("reload refused: the database cannot change while running; restart")
            return
        metrics_moved = settings.daemon.metrics_address != self.app.settings.daemon.metrics_address
        self.app.replace_settings(settings)
        if metrics_moved and self._dispatcher is not None:
            self._serve_metrics()
        self.worker = self._new_worker()
        self._sync_accounts()
        if self._scheduler is not None:
            self._schedule_jobs()
        log.info("reloaded", config=settings.source)

    # -- the due-scan --------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Build this thread's connectors before the first notice needs them."""
        for name, account in self.app.settings.accounts.items():
            if account.enabled:
                try:
                    self.app.connector(name).measure("warm-up")  # loads the length counter
                except BulletinError as e:
                    log.error("account not usable", account=name, error=str(e))

    def _dispatch_loop(self) -> None:
        self._warm_up()  # this thread's own connectors (cheap once the modules are loaded)
        interval = self.app.settings.daemon.scan_interval
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            try:
                self.dispatch_step()
            except BulletinError as e:
                log.error("due-scan failed", error=str(e))
            except Exception:
                log.exception("due-scan failed")
            self._wake.wait(timeout=interval)
            self._wake.clear()

    def schedule_due(self) -> None:
        """Before claiming: make the occurrences and follow-ups whose time came, and set aside
        routine posts that are late (see :mod:`bulletin.publisher.schedule`)."""
        app = self.app
        now = app.clock.now()
        for notice_id, number in schedule.make_occurrences(app.engine, app.settings, now):
            log.info("occurrence made", notice=notice_id, occurrence=number)
        for notice_id in schedule.make_follow_ups(app.engine, now):
            log.info("follow-up queued", notice=notice_id)
        if schedule.mark_late(app.engine, app.settings, now):
            self.warn_late()

    def warn_late(self) -> int:
        """Say loudly which notices wait for a decision because their time passed."""
        with Session(self.app.engine) as session:
            late = schedule.late_notices(session)
        if late:
            log.warning(
                "notices past their time wait for a decision: bulletin notice late ID "
                "--publish|--cancel",
                count=len(late),
                notices=schedule.late_summary(late, self.app.settings.agency.time_zone),
            )
        return len(late)

    def dispatch_due(self) -> list[Outcome]:
        """Carry out every delivery that is due now and wait for them (``--once``): those of
        different accounts at once, each account's in order; then archive the published posts
        whose archiving was postponed. Outcomes come in the order they finish."""
        self.schedule_due()
        outcomes = []
        while True:
            self._start_due()
            if not self._running:
                break
            wait(list(self._running), return_when=FIRST_COMPLETED)
            outcomes += self._reap()
        self.worker.archive_due()
        return outcomes

    def dispatch_step(self) -> None:
        """One round of the running daemon's due-scan, which never waits for a platform:
        collect the deliveries that finished, hand what is due to the free workers, archive
        the published posts whose archiving was postponed."""
        self.schedule_due()
        self._reap()
        self._start_due()
        self.worker.archive_due()

    def _start_due(self) -> None:
        """Claim due deliveries for the free workers, none of an account already in hand (a
        finished one wakes the due-scan for the next)."""
        pool = self._workers()
        while not self._stop.is_set() and len(self._running) < self._pool_size:
            claims = self.worker.claim(limit=1, skip_accounts=set(self._running.values()))
            if not claims:
                return
            future = pool.submit(self.worker.run, claims[0])
            self._running[future] = claims[0].account
            future.add_done_callback(lambda _done: self._wake.set())

    def _reap(self) -> list[Outcome]:
        """The outcomes of the deliveries that finished (each was logged as it ended)."""
        outcomes = []
        for future in [f for f in self._running if f.done()]:
            account = self._running.pop(future)
            try:
                outcomes.append(future.result())
            except BulletinError as e:  # its claim expires and another scan reconciles it
                log.error("delivery failed", account=account, error=str(e))
            except Exception:  # a bug: the same, with its traceback
                log.exception("delivery failed", account=account)
        return outcomes

    def _workers(self) -> ThreadPoolExecutor:
        """The delivery workers (their number is read at start: a reload does not change it)."""
        if self._pool is None:
            self._pool_size = self.app.settings.daemon.max_parallel_deliveries
            self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="delivery")
        return self._pool

    def _end_workers(self) -> None:
        """Wait for the deliveries in hand, then stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._reap()

    # -- periodic jobs -------------------------------------------------------------------

    def _schedule_jobs(self) -> None:
        assert self._scheduler is not None
        scheduler = self._scheduler
        for job in scheduler.get_jobs():
            job.remove()
        now = datetime.now(UTC)
        for name, account in self.app.settings.accounts.items():
            if not account.enabled:
                continue
            # The job ticks at least as often as a hot thread wants sweeping; each sweep
            # decides what is due (the post listing every capture_interval, threads by age).
            scheduler.add_job(
                self._guarded(f"capture {name}", functools.partial(self.scheduled_capture, name)),
                "interval",
                seconds=min(account.capture_interval, self.app.settings.capture.hot_interval),
                id=f"capture:{name}",
                next_run_time=now + timedelta(seconds=1),
                max_instances=1,
                coalesce=True,
            )
        hour, minute = (int(x) for x in self.app.settings.daemon.verify_at.split(":"))
        scheduler.add_job(
            self._heartbeat_job,
            "interval",
            seconds=HEARTBEAT_SECONDS,
            id="heartbeat",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guarded("nightly verify", self._exclusive("nightly", self.nightly)),
            CronTrigger(hour=hour, minute=minute, timezone=self.app.settings.agency.time_zone),
            id="nightly",
            max_instances=1,
            coalesce=True,
        )
        hour, minute = (int(x) for x in self.app.settings.retention.disposition_at.split(":"))
        scheduler.add_job(
            self._guarded("disposition listing", self.disposition),
            CronTrigger(hour=hour, minute=minute, timezone=self.app.settings.agency.time_zone),
            id="disposition",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guarded("spool drain", self.drain_spool),
            "interval",
            seconds=30,
            id="spool",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guarded("ledger checkpoint", self._exclusive("checkpoint", self.checkpoint)),
            "interval",
            seconds=ledger.CHECKPOINT_INTERVAL.total_seconds(),
            id="checkpoint",
            max_instances=1,
            coalesce=True,
            next_run_time=now + timedelta(minutes=1),
        )
        scheduler.add_job(
            self._guarded(
                "copies of holds, redactions and requests",
                self._exclusive("decisions", self.mirror_decisions),
            ),
            "interval",
            hours=1,
            id="decisions",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guarded("records request deadlines", self.warn_deadlines),
            CronTrigger(hour=8, minute=0, timezone=self.app.settings.agency.time_zone),
            id="deadlines",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guarded("disk space check", self.check_disk_space),
            "interval",
            hours=1,
            id="disk",
            max_instances=1,
            coalesce=True,
            next_run_time=now + timedelta(seconds=5),
        )
        scheduler.add_job(
            self._guarded("S3 bucket settings check", self.check_bucket),
            "interval",
            days=1,
            id="bucket",
            max_instances=1,
            coalesce=True,
            next_run_time=now + timedelta(seconds=5),
        )
        # CAP feeds ([cap] feeds), kept apart: see bulletin.publisher.cap_feed
        from bulletin.publisher.cap_feed import schedule_cap_poll

        schedule_cap_poll(self, scheduler, now)
        if self.notifier.watchdog_seconds:
            scheduler.add_job(
                self._watchdog,
                "interval",
                seconds=self.notifier.watchdog_seconds / 2,
                id="watchdog",
                next_run_time=now,
            )

    def _guarded(self, what: str, job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except BulletinError as e:
                log.error(f"{what} failed", error=str(e))
            except Exception:
                log.exception(f"{what} failed")

        return run

    def _exclusive(self, name: str, job: Callable[[], object]) -> Callable[[], None]:
        """Run ``job`` only in the one daemon that holds its lock this round."""

        def run() -> None:
            with exclusive_job(self.app.engine, name) as mine:
                if mine:
                    job()

        return run

    def scheduled_capture(self, account: str) -> int:
        """A capture sweep, unless another daemon swept it moments ago (the sweep itself
        takes the account's lock, so two daemons never sweep one account at once)."""
        interval = self.app.settings.accounts[account].capture_interval
        with Session(self.app.engine) as session:
            row = session.get(Account, account)
            last = row.last_capture_at if row else None
        if last is not None and self.app.clock.now() - last < timedelta(seconds=interval / 2):
            return 0
        return self.capture(account)

    def _register(self) -> None:
        now = self.app.clock.now()
        with session_scope(self.app.engine) as session:
            session.merge(
                DaemonInstance(
                    owner=self.owner,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    version=__version__,
                    started_at=now,
                    heartbeat_at=now,
                    local_paths=json.dumps(self.local_paths()),
                )
            )

    def _heartbeat_job(self) -> None:
        try:
            with session_scope(self.app.engine) as session:
                row = session.get(DaemonInstance, self.owner)
                if row is not None:
                    row.heartbeat_at = self.app.clock.now()
                    session.add(row)
        except BulletinError as e:
            log.error("heartbeat failed", error=str(e))

    def _deregister(self) -> None:
        try:
            with session_scope(self.app.engine) as session:
                row = session.get(DaemonInstance, self.owner)
                if row is not None:
                    row.stopped_at = self.app.clock.now()
                    session.add(row)
        except BulletinError as e:
            log.error("could not record the stop", error=str(e))

    def _watchdog(self) -> None:
        limit = self.notifier.watchdog_seconds or 0
        if time.monotonic() - self._heartbeat < max(
            limit, 2 * self.app.settings.daemon.scan_interval
        ):
            self.notifier.watchdog()

    def capture(self, account: str) -> int:
        """Sweep ``account`` now; how many records were archived. Never raises for a
        platform's failure: the sweep records it (see ``archive status``)."""
        result = sweep(self.app.archiver, self.app.connector(account), account, self.app.clock)
        return result.archived

    def drain_spool(self) -> int:
        """Send what an archive-store outage left in the local spool (no-op without one)."""
        store = self.app.store
        if store.backlog() == 0:
            return 0
        store.flush()
        return store.backlog()

    def checkpoint(self) -> str | None:
        """Write the ledger's head to the store, when it moved since the last checkpoint, and
        to every ``[archive.witness]`` target; a target that fails is logged and the next
        run writes a new checkpoint for every target."""
        with Session(self.app.engine) as session:
            last = ledger.head(session)
            if last is None or last.seq == self._checkpointed:
                return None
            seq = last.seq
            key = ledger.write_checkpoint(session, self.app.store, self.app.clock.now())
        log.info("ledger checkpoint", key=key)
        if key is not None and not self._witness(key):
            return key
        self._checkpointed = seq
        return key

    def _witness(self, key: str) -> bool:
        """Send checkpoint ``key``'s head to the witnesses; False when one failed."""
        settings = self.app.settings.archive.witness
        if not witness.configured(settings):
            return True
        point = witness.point_of(self.app.store, key)
        failed = witness.send(settings, point)
        for line in failed:
            log.error("ledger head not witnessed", seq=point.seq, error=line)
        return not failed

    def mirror_decisions(self) -> int:
        """Write to the store the hold, redaction and request changes whose copies a crash or
        an unreachable store left out (at start and hourly); returns how many."""
        mirrored = decisions.mirror_all(self.app.engine, self.app.store, self.app.clock.now())
        if mirrored:
            log.warning("copied holds, redactions and requests into the store", count=mirrored)
        return mirrored

    def warn_deadlines(self) -> list[str]:
        """Log a warning for each open records request due within ``[requests] warn_days``
        or overdue (at start, then each morning at 08:00 agency time); returns the lines."""
        near = deadlines_near(self.app.engine, self.app.settings, self.app.clock.now())
        lines = [deadline_text(row, self.app.settings) for row in near]
        for row, line in zip(near, lines, strict=True):
            log.warning("records request deadline", request=row.request.id, deadline=line)
        return lines

    def check_disk_space(self) -> list[Space]:
        """Warn, in the log, of each file system Bulletin writes to with less than
        ``[paths] warn_free_percent`` of its space or inodes free (at start, then hourly);
        returns those."""
        percent = self.app.settings.paths.warn_free_percent
        low = [s for s in measure(self.app.settings) if s.low(percent)]
        for space in low:
            log.warning(
                "disk space low where Bulletin writes",
                where=", ".join(space.roles),
                path=space.path,
                free_percent=round(space.free_percent, 1),
                free_inodes_percent=(
                    None if space.free_inode_percent is None else round(space.free_inode_percent, 1)
                ),
                warn_below_percent=percent,
            )
        return low

    def check_bucket(self) -> list[str]:
        """Log an error for each change to the S3 bucket's Object Lock configuration or
        lifecycle rules (at start, then daily; see :mod:`bulletin.archiver.bucket`); returns
        the lines. Nothing for the local store."""
        lines = bucket.check(
            self.app.store, self.app.settings.archive.s3.mode, self.app.clock.now()
        )
        for line in lines:
            log.error("archive bucket settings changed", problem=line)
        return lines

    def disposition(self) -> int | None:
        """List the records due for destruction into a batch for an approver (nightly)."""
        app = self.app
        batch = build_disposition_batch(app.engine, app.store, app.settings, app.clock.now())
        if batch is not None:
            log.info("disposition batch listed", batch=batch.id, records=batch.record_count)
        return batch.id if batch else None

    def nightly(self) -> None:
        report = verify(
            self.app.engine,
            self.app.store,
            settings=self.app.settings,
            witness=self.app.settings.archive.witness,
            now=self.app.clock.now(),
        )
        self.last_verify = VerifyResult(self.app.clock.now(), len(report.problems))
        for warning in report.warnings[:50]:
            log.warning("verify warns", warning=warning.line())
        if report.ok:
            log.info("verify ok", records=report.records, entries=report.entries)
        else:
            for problem in report.problems[:50]:
                log.error("verify found a problem", problem=problem.line())

    # -- recovery ------------------------------------------------------------------------

    def recover(self) -> None:
        """Finish what a crash interrupted: claims of a dead daemon (SQLite), the ledger
        mirror, the copies of holds, redactions and requests, archiving of published posts."""
        if self._lock_file is not None:
            orphans = self.worker.expire_foreign_leases()
            if orphans:
                log.warning("reclaiming deliveries a stopped daemon left in flight", count=orphans)
        with Session(self.app.engine) as session:
            try:
                written = ledger.repair_mirror(session, self.app.store)
            except StoreUnavailable as e:
                written = 0
                log.error("archive store unavailable; ledger mirror repair postponed", error=str(e))
            if written:
                log.warning("restored ledger mirror entries", count=written)
            unarchived = session.exec(
                select(Delivery.id).where(
                    Delivery.state == "published",
                    Delivery.archived_record_id.is_(None),  # type: ignore[union-attr]
                )
            ).all()
        try:
            self.mirror_decisions()
        except StoreUnavailable as e:
            log.error(
                "archive store unavailable; copies of holds, redactions and requests postponed",
                error=str(e),
            )
        archived = sum(
            self.worker.archive_or_queue(delivery_id)
            for delivery_id in unarchived
            if delivery_id is not None
        )
        if archived:
            log.warning("archived published posts a crash left unarchived", count=archived)
        schedule.mark_late(self.app.engine, self.app.settings, self.app.clock.now())
        self.warn_late()
        try:
            self.warn_deadlines()
        except BulletinError as e:  # a warning must never keep the daemon from starting
            log.error("records request deadlines could not be read", error=str(e))

    def run_once(self, max_wait: float) -> OnceReport:
        """Everything due now (waiting inline at most ``max_wait`` seconds), one capture sweep
        per account, then return what was deferred. With ``[sandbox] start_with_daemon`` the
        sandbox runs for as long as this takes."""
        self.prepare()
        if self.app.settings.sandbox.start_with_daemon:
            self._sandbox = SandboxChild(self.app.settings, self.config_path)
            self._sandbox.start()
        try:
            report = OnceReport()
            deadline = time.monotonic() + max_wait
            while True:
                report.outcomes.extend(self.dispatch_due())
                nxt = self.worker.next_due()
                if nxt is None:
                    break
                wait = (nxt - self.app.clock.now()).total_seconds()
                if time.monotonic() + max(wait, 0) > deadline:
                    break
                time.sleep(max(wait, 0.05))
            for name, account in self.app.settings.accounts.items():
                if account.enabled:
                    try:
                        report.swept[name] = self.capture(name)
                    except BulletinError as e:
                        log.error("capture failed", account=name, error=str(e))
            with Session(self.app.engine) as session:
                for d in session.exec(
                    select(Delivery)
                    .where(Delivery.state.in_(("pending", "uncertain", "in-flight")))  # type: ignore[attr-defined]
                    .where(Delivery.due_at.is_not(None))  # type: ignore[union-attr]
                ):
                    report.deferred.append((d.notice_id, d.account, d.due_at, d.last_error))
            return report
        finally:
            self._end_workers()
            if self._sandbox is not None:
                self._sandbox.stop()
                self._sandbox = None
            self._release_instance_lock()

    # -- instances -----------------------------------------------------------------------

    def _sync_accounts(self) -> None:
        with session_scope(self.app.engine) as session:
            for name in self.app.settings.accounts:
                sync_account(session, self.app.settings, name)

    def local_paths(self) -> list[str]:
        """The local files this daemon writes that no other host can see: a local archive
        store and the feed files of its enabled feed accounts."""
        settings = self.app.settings
        paths = [str(settings.archive_path)] if settings.archive.store == "local" else []
        return paths + [
            str(settings.feed_path(name))
            for name, account in sorted(settings.accounts.items())
            if account.platform == "feed" and account.enabled
        ]

    def _refuse_other_hosts(self) -> None:
        """On PostgreSQL, refuse to start beside a live daemon on another host when either
        writes local files (each host would keep its own archive store or feed).

        :raises Refused: naming the other daemon and the local files.
        """
        if is_sqlite(self.app.settings.database_url):
            return
        fresh = self.app.clock.now() - timedelta(seconds=3 * HEARTBEAT_SECONDS)
        with Session(self.app.engine) as session:
            others = session.exec(
                select(DaemonInstance)
                .where(col(DaemonInstance.stopped_at).is_(None))
                .where(col(DaemonInstance.heartbeat_at) >= fresh)
                .where(col(DaemonInstance.host) != socket.gethostname())
            ).all()
        mine = self.local_paths()
        for other in others:
            theirs: list[str] = json.loads(other.local_paths or "[]")
            if mine or theirs:
                files, whose = (mine, "this daemon") if mine else (theirs, "it")
                raise Refused(
                    f"a daemon runs on host {other.host} ({other.owner}) and {whose} writes "
                    f"{', '.join(files)} locally: daemons on several hosts need the S3 store "
                    "and no feed account"
                )

    def _take_instance_lock(self) -> None:
        """SQLite supports one daemon per database file; say so when a second one starts."""
        if not is_sqlite(self.app.settings.database_url):
            return
        try:
            self._lock_file = take_instance_lock(self.app.settings.data_dir, "daemon")
        except Refused as e:
            raise Refused(
                f"{e}: SQLite supports one daemon, use PostgreSQL to run several"
            ) from None

    def _release_instance_lock(self) -> None:
        if self._lock_file is not None:
            release_instance_lock(self._lock_file)
            self._lock_file = None


@contextlib.contextmanager
def running(app: App) -> Iterator[Daemon]:
    """A started daemon inside a ``with`` block (tests, embedding)."""
    daemon = Daemon(app)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
