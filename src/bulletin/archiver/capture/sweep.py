"""One sweep of one account (see :mod:`bulletin.archiver.capture`).

1. Lists the account's new posts (``since_id``) when the listing is due, and registers each
   post as a thread (posts Bulletin published are registered from their deliveries too).
2. Sweeps each thread whose turn it is (see :mod:`bulletin.archiver.capture.schedule`): a
   ``new`` sweep fetches only comments newer than the thread's cursor where the platform
   allows, a ``full`` sweep lists the whole thread again to see edits, hidden comments and
   deletions (see :mod:`bulletin.archiver.capture.versioning`).

What the platform said on the wire (requests and answers, credentials removed) is recorded
during the sweep and kept as a WARC object beside the snapshots of the records it produced.

Every page is archived (one group commit) before its cursor is written to the database, so a
crash, a timeout or a 500 mid-listing repeats at most one page and skips none: the next sweep
resumes from the stored cursor, and content addressing makes the repeated page a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Archiver, Capture
from bulletin.archiver.capture.schedule import THREAD_COLUMNS, Mode, ThreadRow, due_threads
from bulletin.archiver.capture.spend import charge_reads, spend_this_month
from bulletin.archiver.capture.threads import published_by_us, register_published, register_threads
from bulletin.archiver.capture.versioning import absent_items, key, next_version
from bulletin.archiver.quarantine import quarantine
from bulletin.clock import Clock
from bulletin.connectors.base import Connector, Page, platform_id
from bulletin.connectors.wire import Tape, recording
from bulletin.db import reading_session, session_scope
from bulletin.errors import AuthError, ConnectorError, MalformedResponse
from bulletin.locks import exclusive_job
from bulletin.logs import get_logger
from bulletin.models import Account, CaptureSweep, CaptureThread

log = get_logger("bulletin.capture")

PageHook = Callable[[str, int], None]  # (what, pages so far) after each stored page


@dataclass
class SweepResult:
    """What one sweep of one account did."""

    account: str
    seen: int = 0
    archived: int = 0
    threads: int = 0
    pages: int = 0
    quarantined: int = 0
    not_due: int = 0  # threads the capture schedule left for later
    reads_charged: int = 0
    result: str = "ok"  # ok | partial | auth-error | failed | claimed-elsewhere
    errors: list[str] = field(default_factory=list)
    sweep_id: int | None = None


class Sweeper:
    """One sweep of one account. Use :meth:`run`; safe to run again at any time."""

    def __init__(
        self,
        archiver: Archiver,
        connector: Connector,
        account: str,
        clock: Clock,
        *,
        full: bool = False,
        on_page: PageHook | None = None,
        batch_items: int | None = None,
        catch_up: Sequence[str] | None = None,
    ) -> None:
        """:param catch_up: sweep only these threads, now, for what is new since each one's
        cursor (a stream's backfill after a gap), whatever their schedule says."""
        self.archiver = archiver
        self.catch_up = set(catch_up) if catch_up is not None else None
        self.engine = archiver.engine
        self.settings = archiver.settings
        self.policy = archiver.settings.capture
        self.connector = connector
        self.account = account
        self.clock = clock
        self.full = full
        self.on_page = on_page
        self.limits = connector.limits()
        self.result = SweepResult(account)
        self.price = self.policy.price(connector.platform).read
        self.batch_items = batch_items or self.policy.batch_items
        self._tape = Tape(clock)  # what the platform said since the last stored batch

    # -- the sweep -----------------------------------------------------------------------

    def run(self) -> SweepResult:
        with _claim(self.engine, self.account) as claimed:
            if not claimed:
                self.result.result = "claimed-elsewhere"
                log.info("another instance is sweeping this account", account=self.account)
                return self.result
            with recording(self.clock) as self._tape:
                return self._run()

    def _run(self) -> SweepResult:
        with session_scope(self.engine) as session:
            account = session.get(Account, self.account)
            if account is None:
                raise LookupError(self.account)
            self.platform, self.training = account.platform, account.training
            # A sweep left "running" was cut short (killed); say so.
            session.execute(
                sa.update(CaptureSweep)
                .where(col(CaptureSweep.account) == self.account)
                .where(col(CaptureSweep.result) == "running")
                .values(result="interrupted")
            )
            sweep = CaptureSweep(account=self.account, started_at=self.clock.now())
            session.add(sweep)
            session.flush()
            self.result.sweep_id = sweep.id
            posts_due = self.catch_up is None and (
                self.full
                or account.last_capture_at is None
                or account.capture_page_cursor is not None
                or self.clock.now() - account.last_capture_at
                >= timedelta(seconds=self._account_settings_interval())
            )
        try:
            if posts_due:
                self._sweep_posts()
            register_published(self.engine, self.account, self.clock)
            if self.limits.supports_comments:
                self._sweep_threads()
        except AuthError as e:
            self.result.result = "auth-error"
            self.result.errors.append(str(e))
            log.error(
                "capture stopped: the platform refused the credentials; renew them",
                account=self.account,
                error=str(e),
            )
        except ConnectorError as e:
            self.result.result = "partial"
            self.result.errors.append(str(e))
            log.error("capture of the account's posts failed", account=self.account, error=str(e))
        self._finish()
        return self.result

    def _account_settings_interval(self) -> int:
        configured = self.settings.accounts.get(self.account)
        return configured.capture_interval if configured else 300

    def _finish(self) -> None:
        r = self.result
        with session_scope(self.engine) as session:
            row = session.get(CaptureSweep, r.sweep_id)
            if row is not None:
                row.finished_at = self.clock.now()
                row.result = r.result
                row.threads, row.pages, row.seen = r.threads, r.pages, r.seen
                row.archived, row.quarantined = r.archived, r.quarantined
                row.reads_charged = r.reads_charged
                row.error = "\n".join(r.errors)[:4000] or None
                session.add(row)
        log.info(
            "swept",
            account=self.account,
            result=r.result,
            threads=r.threads,
            pages=r.pages,
            seen=r.seen,
            archived=r.archived,
            quarantined=r.quarantined,
        )

    # -- posts ---------------------------------------------------------------------------

    def _sweep_posts(self) -> None:
        with Session(self.engine) as session:
            account = session.get(Account, self.account)
            assert account is not None
            since_id = account.capture_cursor
            cursor = account.capture_page_cursor
            newest = account.capture_pending_newest
        while True:
            try:
                page = self.connector.list_posts(since_id=since_id, cursor=cursor)
            except MalformedResponse as e:
                self._quarantine("list posts", e, None)
                self.result.result = "partial"
                return
            if newest is None and page.items:
                newest = platform_id(page.items[0])
            posts = page.items
            ours = published_by_us(self.engine, self.account, [p.remote_id for p in posts])
            self._store_pages(
                "list posts",
                [page],
                None,
                [
                    Capture(
                        self.account,
                        self.platform,
                        p,
                        self.training,
                        *ours.get(p.remote_id, ()),
                    )
                    for p in posts
                ],
            )
            register_threads(
                self.engine,
                self.account,
                self.clock,
                [(p.remote_id, p.posted_at, ours.get(p.remote_id, (None, None))[1]) for p in posts],
            )
            cursor = page.next_cursor
            with session_scope(self.engine) as session:
                row = session.get(Account, self.account)
                assert row is not None
                row.capture_page_cursor = cursor
                row.capture_pending_newest = newest if cursor else None
                if cursor is None:
                    if newest is not None:
                        row.capture_cursor = newest
                    row.last_capture_at = self.clock.now()
                session.add(row)
            self._after_page("posts")
            if cursor is None:
                return

    # -- threads -------------------------------------------------------------------------

    def _sweep_threads(self) -> None:
        now = self.clock.now()
        budget = self._budget()
        ratio = spend_this_month(self.engine, self.account, now) / budget if budget else 0.0
        if budget and ratio >= self.policy.warn_at:
            log.warning(
                "capture spend estimate near or over the monthly budget; sweeping less often",
                account=self.account,
                spend=round(ratio * budget, 2),
                budget=budget,
            )
        due, self.result.not_due = self._due_threads(now, ratio)
        for thread, mode in due:
            try:
                self._sweep_thread(thread, mode)
                self.result.threads += 1
            except AuthError:
                raise
            except MalformedResponse as e:
                self._quarantine(f"list comments {thread.thread_id}", e, thread.thread_id)
                self._thread_error(thread, str(e))
            except ConnectorError as e:
                self.result.result = "partial"
                self.result.errors.append(str(e))
                self._thread_error(thread, str(e))
                log.warning(
                    "thread sweep stopped; it resumes from its cursor next time",
                    account=self.account,
                    thread=thread.thread_id,
                    error=str(e),
                )

    def _due_threads(self, now: datetime, ratio: float) -> tuple[list[tuple[ThreadRow, Mode]], int]:
        """The threads to sweep now with their modes, and how many the schedule leaves for
        later. The account's threads are read as columns, a page at a time, and only those
        swept now are kept: a sweep's memory follows what it sweeps, not every thread the
        account has had (they accumulate for as long as the agency posts)."""
        query = select(*THREAD_COLUMNS).where(col(CaptureThread.account) == self.account)
        caught: list[ThreadRow] = []

        def read(rows: Iterable[ThreadRow]) -> Iterator[ThreadRow]:
            for row in rows:
                if self.catch_up is not None and row.thread_id in self.catch_up:
                    caught.append(row)
                yield row

        with reading_session(self.engine) as session:
            rows = cast(
                Iterable[ThreadRow], session.execute(query.execution_options(yield_per=500))
            )
            due, later = due_threads(
                read(rows),
                now,
                self.policy,
                full=self.full,
                spend_ratio=ratio,
                lookback_days=self.limits.lookback_days,
                supports_since_id=self.limits.supports_since_id,
            )
        if self.catch_up is not None:
            mode: Mode = "new" if self.limits.supports_since_id else "full"
            due = [(t, "full" if t.page_mode == "full" else mode) for t in caught]
        return due, later

    def _budget(self) -> float:
        configured = self.settings.accounts.get(self.account)
        return configured.monthly_budget if configured else 0.0

    def _thread_error(self, thread: ThreadRow, error: str) -> None:
        self.result.result = "partial"
        with session_scope(self.engine) as session:
            row = session.get(CaptureThread, (self.account, thread.thread_id))
            if row is not None:
                row.last_error = error[:500]
                session.add(row)

    def _sweep_thread(self, thread: ThreadRow, mode: Mode) -> None:
        """List the thread to the end. Pages are stored in batches of about
        ``batch_items`` items; the cursor is written only after its batch is stored."""
        resumed = thread.page_cursor is not None
        cursor, newest = thread.page_cursor, thread.page_newest
        use_since = mode == "new" and self.limits.supports_since_id
        since_id = thread.since_id if use_since else None
        seen: set[str] = set()
        unknown = False  # an element quarantined without a readable id: absences unknown
        buffered: list[Page] = []
        while True:
            page = self.connector.list_comments(thread.thread_id, cursor, since_id=since_id)
            ids = [platform_id(i) for i in page.items]
            newest = _max_id([newest, *ids]) if newest or ids else None
            buffered.append(page)
            cursor = page.next_cursor
            if cursor is not None and sum(len(p.items) for p in buffered) < self.batch_items:
                continue
            self._store_pages(
                f"list comments {thread.thread_id}", buffered, thread.thread_id, plain=True
            )
            seen.update(i.remote_id for p in buffered for i in p.items)
            # a quarantined item is unknown, not gone: it counts as seen
            rejects = [r for p in buffered for r in p.rejects]
            seen.update(r.remote_id for r in rejects if r.remote_id)
            unknown = unknown or any(r.remote_id is None for r in rejects)
            buffered = []
            with session_scope(self.engine) as session:
                row = session.get(CaptureThread, (self.account, thread.thread_id))
                assert row is not None
                row.page_cursor = cursor
                row.page_mode = mode if cursor else None
                row.page_newest = newest if cursor else None
                if cursor is None:
                    now = self.clock.now()
                    row.last_swept_at = now
                    if mode == "full":
                        row.last_full_at = now
                    if self.limits.supports_since_id:
                        row.since_id = _max_id([row.since_id, newest])
                    row.last_error = None
                session.add(row)
            self._after_page(thread.thread_id)
            if cursor is None:
                break
        if mode == "full" and not resumed and not unknown:
            self._record_absent(thread.thread_id, seen)
        elif mode == "full" and unknown:
            log.warning(
                "a quarantined item has no readable id: no deletion recorded in this thread",
                account=self.account,
                thread=thread.thread_id,
            )

    def _record_absent(self, thread_id: str, seen: set[str]) -> None:
        """Comments (and the account's own replies) a complete listing no longer shows are
        recorded as deleted."""
        gone = absent_items(
            self.engine,
            self.account,
            thread_id,
            seen,
            self.clock.now(),
            self.limits.lookback_days,
            self.result.sweep_id,
        )
        for start in range(0, len(gone), 500):
            chunk = gone[start : start + 500]
            _, created = self.archiver.archive_batch(
                [Capture(self.account, self.platform, i, self.training) for i in chunk]
            )
            self.result.archived += created
        if gone:
            log.info("comments gone from the platform", account=self.account, count=len(gone))

    # -- one page ------------------------------------------------------------------------

    def _store_pages(
        self,
        operation: str,
        pages: list[Page],
        thread_id: str | None,
        captures: list[Capture] | None = None,
        plain: bool = False,
    ) -> None:
        """Quarantine the pages' rejects, then archive their items (one group commit)."""
        for page in pages:
            for reject in page.rejects:
                item = f" (item {reject.remote_id})" if reject.remote_id else ""
                self._quarantine_raw(operation, reject.error + item, reject.raw, thread_id)
        if plain:
            captures = [
                Capture(self.account, self.platform, i, self.training)
                for p in pages
                for i in p.items
            ]
        if captures:
            latest = self.archiver.latest_versions([key(c) for c in captures])
            captures = [
                next_version(c, latest.get(key(c)), self.connector, self.limits, self.policy)
                for c in captures
            ]
            _, created = self.archiver.archive_batch(
                captures, resolve=False, wire=self._tape.drain()
            )
            self.result.archived += created
            self.result.seen += len(captures)
            self._charge([c.item.remote_id for c in captures])
        else:
            self._tape.drain()  # nothing new from these exchanges: no WARC
        self.result.pages += len(pages)

    def _after_page(self, what: str) -> None:
        if self.on_page is not None:
            self.on_page(what, self.result.pages)

    def _quarantine(self, operation: str, error: MalformedResponse, thread_id: str | None) -> None:
        self._quarantine_raw(operation, str(error), error.raw, thread_id)

    def _quarantine_raw(
        self, operation: str, error: str, raw: bytes, thread_id: str | None
    ) -> None:
        quarantine(
            self.engine,
            self.archiver.store,
            self.settings,
            self.clock,
            account=self.account,
            operation=operation,
            error=error,
            raw=raw,
            thread_id=thread_id,
            sweep_id=self.result.sweep_id,
        )
        self.result.quarantined += 1
        # what was quarantined is unknown, not captured: the sweep is not a plain "ok"
        if self.result.result == "ok":
            self.result.result = "partial"
        self.result.errors.append(f"{operation}: quarantined a malformed answer: {error[:200]}")

    # -- spend ---------------------------------------------------------------------------

    def _charge(self, remote_ids: list[str]) -> None:
        """Count resources read today that were not read yet today (X charges each post once
        per UTC day) and add them to this month's spend estimate."""
        if not self.price:
            return
        charged = charge_reads(self.engine, self.account, self.clock.now(), self.price, remote_ids)
        self.result.reads_charged += charged


def _max_id(ids: Sequence[str | None]) -> str | None:
    """The newest of platform ids (numeric ids compare as numbers)."""
    present = [i for i in ids if i]
    if not present:
        return None
    if all(i.isdigit() for i in present):
        return max(present, key=int)
    return present[-1]


def _claim(engine: Engine, account: str) -> AbstractContextManager[bool]:
    """One instance sweeps an account at a time (an advisory lock on PostgreSQL; SQLite runs
    one daemon per database, see the daemon's instance lock)."""
    return exclusive_job(engine, f"capture:{account}")


def sweep(
    archiver: Archiver,
    connector: Connector,
    account_name: str,
    clock: Clock,
    *,
    full: bool = False,
    on_page: PageHook | None = None,
    batch_items: int | None = None,
    catch_up: Sequence[str] | None = None,
) -> SweepResult:
    """Sweep one account now (see :class:`Sweeper`)."""
    return Sweeper(
        archiver,
        connector,
        account_name,
        clock,
        full=full,
        on_page=on_page,
        batch_items=batch_items,
        catch_up=catch_up,
    ).run()
