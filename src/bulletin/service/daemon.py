"""The long-running service: its lifecycle.

A dispatcher thread runs the due-scan (:mod:`bulletin.service.dispatch`); APScheduler runs the
periodic jobs of the job table (:mod:`bulletin.service.jobs`); this daemon's row and locks are
in :mod:`bulletin.service.instances`. The database is the truth; jobs are rebuilt from it and
from the configuration at start and on SIGHUP.

With ``[web] serve_with_daemon`` the web console is served too, by uvicorn in a thread
(:mod:`bulletin.web.server`); an address it cannot take is logged and reported by
``bulletin status --check`` (:data:`~bulletin.service.status.WEB_UNAVAILABLE`) and the
daemon works on without it.

SIGTERM: stop the web console, stop claiming, finish the deliveries in hand, exit 0. SIGHUP:
reload configuration (a bad file is reported and the old configuration kept). systemd:
READY=1, STOPPING=1 and WATCHDOG=1 when ``$NOTIFY_SOCKET`` / ``$WATCHDOG_USEC`` are set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, col, select

from bulletin import __version__
from bulletin.app import App
from bulletin.app.facebook_webhooks import capture_webhook_events, facebook_pages
from bulletin.archiver import ledger
from bulletin.archiver.capture.webhooks import pending_count
from bulletin.audit import record_event
from bulletin.config import load_settings
from bulletin.db import session_scope
from bulletin.errors import BulletinError, ConfigError, DatabaseError, StoreUnavailable
from bulletin.identity import SYSTEM_ACTOR
from bulletin.logs import get_logger
from bulletin.models import Delivery
from bulletin.publisher import schedule
from bulletin.publisher.delivery import Outcome
from bulletin.publisher.notices import sync_account
from bulletin.service import jobs
from bulletin.service.commands import CommandServer
from bulletin.service.dispatch import Dispatcher
from bulletin.service.instances import HEARTBEAT_SECONDS, Instance
from bulletin.service.maintenance import Maintenance
from bulletin.service.memory import Trimmer, limit_arenas
from bulletin.service.memtrace import MemTrace
from bulletin.service.metrics import StatusCollector, serve_metrics
from bulletin.service.sandbox_child import SandboxChild
from bulletin.service.sdnotify import Notifier
from bulletin.service.status import WEB_UNAVAILABLE
from bulletin.service.streams import Streams
from bulletin.service.waker import PgListener, Waker
from bulletin.states import DeliveryState

if TYPE_CHECKING:
    from bulletin.web.server import Console

log = get_logger("bulletin.daemon")
#: the states of a delivery ``--once`` reports as left for later (when it has a due time)
_WAITING = (DeliveryState.PENDING, DeliveryState.UNCERTAIN, DeliveryState.IN_FLIGHT)


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
        self.instance = Instance(app, self.owner)
        self.dispatcher = Dispatcher(app, self.owner, self._stop, self._wake)
        # through a weak reference: a Daemon only prepared (never started) is freed, and its
        # instance lock with it, as soon as it is dropped
        this = weakref.ref(self)

        def kick() -> None:
            daemon = this()
            if daemon is not None:
                daemon._kick_webhook_capture()

        self.dispatcher.after_round.append(kick)
        self.maintenance = Maintenance(app)
        self._dispatch_thread: threading.Thread | None = None
        self._streams = Streams(app)
        self._scheduler: BackgroundScheduler | None = None
        self._waker: Waker | None = None
        self._listener: PgListener | None = None
        self._sandbox: SandboxChild | None = None
        self._stop_metrics: Callable[[], None] | None = None
        self._console: Console | None = None
        self._capturing_webhooks = threading.Event()
        # answer commands on command.sock (bulletin.service.commands); serve() turns it on
        self.serve_commands = False
        self._commands: CommandServer | None = None

    @property
    def stopping(self) -> threading.Event:
        """Set once the daemon is asked to stop: long jobs end between two steps."""
        return self._stop

    # -- lifecycle -----------------------------------------------------------------------

    def prepare(self) -> None:
        """Checks and repairs before any work: schema, single instance, accounts, ledger."""
        self.app.checked_engine()
        self.instance.take_lock()
        self.instance.refuse_other_hosts()
        self._sync_accounts()
        self.recover()

    def start(self) -> None:
        """Prepare, then start the dispatcher, the waker and the scheduler."""
        self.prepare()
        data_dir = self.app.settings.data_dir
        self._start_sandbox()
        self.dispatcher.warm_up()  # load platform libraries before announcing readiness
        self._waker = Waker(data_dir, self._wake)
        self._waker.start()
        if self.app.engine.dialect.name == "postgresql":
            self._listener = PgListener(self.app.engine, self._wake)
            self._listener.start()
        self.instance.register()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._schedule_jobs()
        self._scheduler.start()
        self._dispatch_thread = threading.Thread(target=self.dispatcher.loop, name="dispatcher")
        self._dispatch_thread.start()
        self._streams.start()
        self._serve_metrics()
        self._serve_web()
        self._serve_commands()
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

    def stop(self) -> None:
        """Finish the deliveries in hand, stop the jobs, release everything."""
        self.notifier.stopping()
        self._end_commands()
        self._end_web()  # no new requests while the deliveries in hand finish
        self._stop.set()
        self._wake.set()
        self._streams.stop()
        if self._dispatch_thread is not None:
            self._dispatch_thread.join()
        self.dispatcher.end_workers()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self._waker is not None:
            self._waker.stop()
        if self._listener is not None:
            self._listener.stop()
        if self._scheduler is not None:
            self.instance.deregister()
        self._stop_sandbox()
        self._end_metrics()
        self.instance.release_lock()
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
        trace = MemTrace.from_environ(self.app.environ)
        if trace is not None:  # opt-in: BULLETIN_TRACEMALLOC=DIR (see bulletin.service.memtrace)
            trace.start()
            signal.signal(signal.SIGUSR2, lambda _s, _f: trace.request())
        limit_arenas(self.app.environ)  # before the threads: they share two malloc arenas
        self.serve_commands = True
        self.start()
        trimmer = Trimmer(time.monotonic())  # freed memory back to the system each minute
        try:
            while not self._stop.wait(0.2):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                trimmer.tick(time.monotonic())
                if trace is not None:
                    trace.dump_if_requested()
        finally:
            self.stop()
            if trace is not None:
                trace.stop()

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
        web_moved = [
            key
            for key in ("address", "serve_with_daemon", "trusted_proxies")
            if getattr(settings.web, key) != getattr(self.app.settings.web, key)
        ]
        served = self.app.settings.web.serve_with_daemon or settings.web.serve_with_daemon
        if web_moved and served:
            log.warning("[web] changes take effect at the next start", keys=", ".join(web_moved))
        self.app.replace_settings(settings)
        if metrics_moved and self._dispatch_thread is not None:
            self._serve_metrics()
        self.dispatcher.worker = self.dispatcher.new_worker()
        self._sync_accounts()
        if self._scheduler is not None:
            self._schedule_jobs()
        log.info("reloaded", config=settings.source)

    def dispatch_due(self) -> list[Outcome]:
        """Carry out every delivery due now and wait for them (see
        :meth:`~bulletin.service.dispatch.Dispatcher.dispatch_due`)."""
        return self.dispatcher.dispatch_due()

    def watchdog(self) -> None:
        """Tell systemd this daemon lives while its due-scan still turns."""
        limit = self.notifier.watchdog_seconds or 0
        since = time.monotonic() - self.dispatcher.last_round
        if since < max(limit, 2 * self.app.settings.daemon.scan_interval):
            self.notifier.watchdog()

    def _schedule_jobs(self) -> None:
        assert self._scheduler is not None
        jobs.schedule(self._scheduler, jobs.table(self), self.app.engine)

    def capture_webhooks(self) -> int:
        """The Facebook webhook capture job: runs until no delivery waits (those received
        meanwhile included), or one is left for a platform failure; how many it took."""
        self._capturing_webhooks.set()
        taken = 0
        try:
            while not self._stop.is_set():
                result = capture_webhook_events(self.app)
                taken += result.events
                if result.events == 0 or result.deferred:
                    break
        finally:
            self._capturing_webhooks.clear()
        return taken

    def _kick_webhook_capture(self) -> None:
        """Run the Facebook webhook capture now when deliveries wait (the daemon was woken
        after one was received), instead of at its next fallback run; not while it runs
        (it takes what arrives meanwhile)."""
        scheduler = self._scheduler
        if scheduler is None or self._capturing_webhooks.is_set():
            return
        if scheduler.get_job(jobs.FACEBOOK_WEBHOOK_JOB) is None:
            return
        if pending_count(self.app.engine):
            scheduler.modify_job(jobs.FACEBOOK_WEBHOOK_JOB, next_run_time=datetime.now(UTC))

    def _serve_metrics(self) -> None:
        """Serve metrics at ``[daemon] metrics_address`` (stopping any endpoint before)."""
        self._end_metrics()
        address = self.app.settings.daemon.metrics_address
        if address:
            collector = StatusCollector(
                self.app,
                HEARTBEAT_SECONDS,
                lambda: self.maintenance.last_verify,
                lambda: self.maintenance.last_stamping,
            )
            self._stop_metrics = serve_metrics(address, collector)

    def _end_metrics(self) -> None:
        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None

    def _serve_web(self) -> None:
        """Serve the web console at ``[web] address`` with ``[web] serve_with_daemon``. An
        address it cannot take is logged and recorded for ``status --check``, never fatal:
        publishing goes on without the console."""
        web = self.app.settings.web
        if not web.serve_with_daemon:
            return
        from bulletin.web import server

        try:
            console = server.Console(self.app, server.bind(web.address))
        except ConfigError as e:
            self._web_unavailable(str(e))
            return
        if not console.start():
            console.stop()
            self._web_unavailable(f"the web console at {web.address} did not start")
            return
        self._console = console
        log.info("web console", url=f"http://{console.address}/")

    def _serve_commands(self) -> None:
        """Answer commands on the data directory's ``command.sock``; a socket that cannot be
        made is logged, never fatal (commands then run in their own process)."""
        if not self.serve_commands:
            return
        server = CommandServer(self.app)
        try:
            server.start()
        except OSError as e:
            log.error("command socket not served", error=str(e), path=str(server.path))
            return
        self._commands = server

    def _end_commands(self) -> None:
        if self._commands is not None:
            self._commands.stop()
            self._commands = None

    def _web_unavailable(self, problem: str) -> None:
        log.error("web console not served", error=problem)
        try:
            with session_scope(self.app.engine) as session:
                record_event(
                    session,
                    at=self.app.clock.now(),
                    actor=SYSTEM_ACTOR,
                    action=WEB_UNAVAILABLE,
                    object_type="daemon",
                    object_id=self.owner,
                    error=problem,
                )
        except DatabaseError as e:  # already logged; the daemon goes on either way
            log.error("could not record that the web console is not served", error=str(e))

    def _end_web(self) -> None:
        if self._console is not None:
            self._console.stop()
            self._console = None

    def _start_sandbox(self) -> None:
        """Start the sandbox beside the daemon with ``[sandbox] start_with_daemon``."""
        if self.app.settings.sandbox.start_with_daemon:
            self._sandbox = SandboxChild(self.app.settings, self.config_path)
            self._sandbox.start()

    def _stop_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None

    def _sync_accounts(self) -> None:
        with session_scope(self.app.engine) as session:
            for name in self.app.settings.accounts:
                sync_account(session, self.app.settings, name)

    # -- recovery and --once -------------------------------------------------------------

    def recover(self) -> None:
        """Finish what a crash interrupted: claims of a dead daemon (SQLite), the ledger
        mirror, the copies of holds, redactions and requests, archiving of published posts."""
        worker = self.dispatcher.worker
        if self.instance.locked:
            orphans = worker.expire_foreign_leases()
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
                    Delivery.state == DeliveryState.PUBLISHED,
                    Delivery.archived_record_id.is_(None),  # type: ignore[union-attr]
                )
            ).all()
        try:
            self.maintenance.mirror_decisions()
        except StoreUnavailable as e:
            log.error(
                "archive store unavailable; copies of holds, redactions and requests postponed",
                error=str(e),
            )
        archived = sum(
            worker.archive_or_queue(delivery_id)
            for delivery_id in unarchived
            if delivery_id is not None
        )
        if archived:
            log.warning("archived published posts a crash left unarchived", count=archived)
        schedule.mark_late(self.app.engine, self.app.settings, self.app.clock.now())
        self.dispatcher.warn_late()
        try:
            self.maintenance.warn_deadlines(announce=False)
        except BulletinError as e:  # a warning must never keep the daemon from starting
            log.error("records request deadlines could not be read", error=str(e))

    def run_once(self, max_wait: float) -> OnceReport:
        """Everything due now (waiting inline at most ``max_wait`` seconds), one capture sweep
        per account, then return what was deferred. With ``[sandbox] start_with_daemon`` the
        sandbox runs for as long as this takes."""
        self.prepare()
        self._start_sandbox()
        try:
            report = OnceReport()
            deadline = time.monotonic() + max_wait
            while True:
                report.outcomes.extend(self.dispatcher.dispatch_due())
                nxt = self.dispatcher.worker.next_due()
                if nxt is None:
                    break
                wait = (nxt - self.app.clock.now()).total_seconds()
                if time.monotonic() + max(wait, 0) > deadline:
                    break
                time.sleep(max(wait, 0.05))
            if facebook_pages(self.app):  # what webhooks reported, before the sweeps
                try:
                    self.capture_webhooks()  # every pending delivery, not one batch
                except BulletinError as e:
                    log.error("facebook webhook capture failed", error=str(e))
            for name, account in self.app.settings.accounts.items():
                if account.enabled:
                    try:
                        report.swept[name] = self.maintenance.capture(name)
                    except BulletinError as e:
                        log.error("capture failed", account=name, error=str(e))
            with Session(self.app.engine) as session:
                for d in session.exec(
                    select(Delivery)
                    .where(col(Delivery.state).in_(_WAITING))
                    .where(col(Delivery.due_at).is_not(None))
                ):
                    report.deferred.append((d.notice_id, d.account, d.due_at, d.last_error))
            return report
        finally:
            self.dispatcher.end_workers()
            self._stop_sandbox()
            self.instance.release_lock()


@contextlib.contextmanager
def running(app: App) -> Iterator[Daemon]:
    """A started daemon inside a ``with`` block (tests, embedding)."""
    daemon = Daemon(app)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
