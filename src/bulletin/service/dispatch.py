"""The due-scan: one dispatcher thread, woken at once by a poke (see
:mod:`bulletin.service.waker`) and every ``[daemon] scan_interval`` seconds as a fallback. It
hands the deliveries it claims to a pool of ``[daemon] max_parallel_deliveries`` workers, at
most one per account at a time, so a slow platform never holds up another account and one
account's deliveries still go in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sqlmodel import Session

from bulletin.app import App
from bulletin.errors import BulletinError
from bulletin.logs import get_logger
from bulletin.publisher import schedule
from bulletin.publisher.delivery import DeliveryWorker, Outcome

log = get_logger("bulletin.daemon")


class Dispatcher:
    """Claims due deliveries as ``owner`` and carries them out; stops claiming once ``stop``
    is set; ``wake`` starts the next round at once."""

    def __init__(self, app: App, owner: str, stop: threading.Event, wake: threading.Event) -> None:
        self.app = app
        self.owner = owner
        self._stop = stop
        self._wake = wake
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 1
        self._running: dict[Future[Outcome], str] = {}  # deliveries in hand -> their account
        # captures of published posts, on threads of their own (see archive_later)
        self._archive_pool: ThreadPoolExecutor | None = None
        self._archives: set[Future[bool]] = set()
        self._archives_lock = threading.Lock()
        self.last_round = time.monotonic()  # when the loop last began a round (the watchdog)
        self.worker = self.new_worker()
        # called after every round of the running daemon (each wake-up, each fallback scan);
        # each must be quick and never wait for a platform
        self.after_round: list[Callable[[], None]] = []

    def new_worker(self) -> DeliveryWorker:
        """A worker on the current settings (made again after a reload)."""
        worker = DeliveryWorker(
            self.app.engine,
            self.app.settings,
            self.app.clock,
            self.app.archiver,
            self.app.connector,
            self.owner,
        )
        worker.archive_later = self.archive_later
        return worker

    def archive_later(self, delivery_id: int) -> None:
        """Capture a published post on an archive thread once its outcome is written, so that
        the delivery ends (and its account's next delivery starts) without waiting for the
        capture. The delivery's ``archive_due_at`` was set with the outcome: should the daemon
        stop first, a later due-scan captures it."""
        with self._archives_lock:
            if self._archive_pool is None:
                self._archive_pool = ThreadPoolExecutor(
                    self.app.settings.daemon.max_parallel_deliveries, thread_name_prefix="archive"
                )
            future = self._archive_pool.submit(self.worker.archive_or_queue, delivery_id)
            self._archives.add(future)
        future.add_done_callback(self._archived)

    def _archived(self, future: Future[bool]) -> None:
        with self._archives_lock:
            self._archives.discard(future)
        if not future.cancelled() and future.exception() is not None:  # a bug: logged
            log.error("archiving failed", error=repr(future.exception()))

    def wait_archives(self) -> None:
        """Wait for the captures handed to the archive threads so far."""
        with self._archives_lock:
            pending = list(self._archives)
        wait(pending)

    def warm_up(self) -> None:
        """Build this thread's connectors before the first notice needs them."""
        for name, account in self.app.settings.accounts.items():
            if account.enabled:
                try:
                    self.app.connector(name).measure("warm-up")  # loads the length counter
                except BulletinError as e:
                    log.error("account not usable", account=name, error=str(e))

    def loop(self) -> None:
        """The dispatcher thread: rounds until ``stop`` is set; a failed round is logged."""
        self.warm_up()  # this thread's own connectors (cheap once the modules are loaded)
        interval = self.app.settings.daemon.scan_interval
        while not self._stop.is_set():
            self.last_round = time.monotonic()
            try:
                self.step()
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
        self.wait_archives()
        self.worker.archive_due()
        return outcomes

    def step(self) -> None:
        """One round of the running daemon's due-scan, which never waits for a platform:
        collect the deliveries that finished, hand what is due to the free workers, archive
        the published posts whose archiving was postponed."""
        self.schedule_due()
        self._reap()
        self._start_due()
        self.worker.archive_due()
        for hook in self.after_round:
            hook()

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

    def end_workers(self) -> None:
        """Wait for the deliveries in hand and their captures, then stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._reap()
        with self._archives_lock:
            pool, self._archive_pool = self._archive_pool, None
        if pool is not None:
            pool.shutdown(wait=True)
