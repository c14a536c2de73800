"""Capture sweeps: every post of an account and every comment and reply on them, archived.

A sweep of one account:

1. Lists the account's new posts (``since_id``) when the listing is due, and registers each
   post as a thread (posts Bulletin published are registered from their deliveries too).
2. Sweeps each thread whose turn it is (see :mod:`bulletin.archiver.schedule`): a ``new``
   sweep fetches only comments newer than the thread's cursor where the platform allows, a
   ``full`` sweep lists the whole thread again to see edits, hidden comments and deletions.

Every page is archived (one group commit) before its cursor is written to the database, so a
crash, a timeout or a 500 mid-listing repeats at most one page and skips none: the next sweep
resumes from the stored cursor, and content addressing makes the repeated page a no-op.

A comment (or a reply of the account's own) absent from a complete full listing is recorded
as deleted (a new version; the earlier ones stay). On a platform with a look-back window (X:
seven days) only comments young enough to be listed at all count as absent. Unusable answers
are quarantined (see :mod:`bulletin.archiver.quarantine`) as unknown, never as gone: an item
quarantined in a listing counts as seen, and the sweep ends ``partial``, not ``ok``. An
expired token stops this account's sweep, is logged as an error and shown in ``archive
status``, and never touches other accounts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Archiver, Capture, Key, Latest, MediaBlob, content_hash
from bulletin.archiver.quarantine import quarantine
from bulletin.archiver.schedule import Mode, ThreadView, decide
from bulletin.clock import Clock
from bulletin.connectors.base import (
    Connector,
    Page,
    RemoteItem,
    attachment_alt_texts,
    attachment_urls,
    platform_id,
)
from bulletin.db import session_scope
from bulletin.errors import AuthError, BulletinError, ConnectorError, MalformedResponse
from bulletin.locks import exclusive_job
from bulletin.models import (
    Account,
    CaptureRead,
    CaptureSpend,
    CaptureSweep,
    CaptureThread,
    Delivery,
    Notice,
    Record,
)

log = structlog.get_logger("bulletin.capture")

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


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


def spend_this_month(engine: Engine, account: str, now: datetime) -> float:
    """Estimated spend of ``account`` in the current UTC month, in US dollars."""
    with Session(engine) as session:
        row = session.get(CaptureSpend, (account, month_of(now)))
    return row.usd if row else 0.0


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
    ) -> None:
        self.archiver = archiver
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

    # -- the sweep -----------------------------------------------------------------------

    def run(self) -> SweepResult:
        with _claim(self.engine, self.account) as claimed:
            if not claimed:
                self.result.result = "claimed-elsewhere"
                log.info("another instance is sweeping this account", account=self.account)
                return self.result
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
            posts_due = (
                self.full
                or account.last_capture_at is None
                or account.capture_page_cursor is not None
                or self.clock.now() - account.last_capture_at
                >= timedelta(seconds=self._account_settings_interval())
            )
        try:
            if posts_due:
                self._sweep_posts()
            self._register_published()
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
            ours = _published_by_us(self.engine, self.account, [p.remote_id for p in posts])
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
            self._register_threads(
                [(p.remote_id, p.posted_at, ours.get(p.remote_id, (None, None))[1]) for p in posts]
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

    def _register_threads(self, posts: Sequence[tuple[str, datetime | None, str | None]]) -> None:
        if not posts:
            return
        ids = [p[0] for p in posts]
        with session_scope(self.engine) as session:
            known = set(
                session.exec(
                    select(CaptureThread.thread_id)
                    .where(CaptureThread.account == self.account)
                    .where(col(CaptureThread.thread_id).in_(ids))
                ).all()
            )
            now = self.clock.now()
            for thread_id, posted_at, priority in posts:
                if thread_id in known:
                    continue
                known.add(thread_id)
                session.add(
                    CaptureThread(
                        account=self.account,
                        thread_id=thread_id,
                        priority=priority or "community",
                        posted_at=posted_at,
                        first_seen_at=now,
                    )
                )

    def _register_published(self) -> None:
        """Posts Bulletin published become threads at once, with their notice's priority."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Delivery.remote_id, Delivery.published_at, Notice.priority)
                .join(Notice, col(Notice.id) == col(Delivery.notice_id))
                .where(col(Delivery.account) == self.account)
                .where(col(Delivery.state) == "published")
                .where(col(Delivery.remote_id).is_not(None))
                .where(
                    ~sa.exists().where(
                        col(CaptureThread.account) == self.account,
                        col(CaptureThread.thread_id) == col(Delivery.remote_id),
                    )
                )
            ).all()
        self._register_threads([(rid, at, prio) for rid, at, prio in rows if rid])

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
        with Session(self.engine) as session:
            threads = session.exec(
                select(CaptureThread).where(CaptureThread.account == self.account)
            ).all()
        due: list[tuple[CaptureThread, Mode]] = []
        for thread in threads:
            if thread.page_cursor is not None:  # an interrupted listing: resume it now
                due.append((thread, "full" if thread.page_mode == "full" else "new"))
                continue
            decision = decide(
                ThreadView(
                    thread.priority,
                    thread.posted_at,
                    thread.first_seen_at,
                    thread.last_swept_at,
                    thread.last_full_at,
                ),
                now,
                self.policy,
                spend_ratio=ratio,
                lookback_days=self.limits.lookback_days,
                supports_since_id=self.limits.supports_since_id,
            )
            if self.full:
                due.append((thread, "full"))
            elif decision.sweep:
                due.append((thread, decision.mode))
            else:
                self.result.not_due += 1
        _never = now - timedelta(days=36500)
        due.sort(key=lambda d: (d[0].priority != "emergency", d[0].last_swept_at or _never))
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

    def _budget(self) -> float:
        configured = self.settings.accounts.get(self.account)
        return configured.monthly_budget if configured else 0.0

    def _thread_error(self, thread: CaptureThread, error: str) -> None:
        self.result.result = "partial"
        with session_scope(self.engine) as session:
            row = session.get(CaptureThread, (self.account, thread.thread_id))
            if row is not None:
                row.last_error = error[:500]
                session.add(row)

    def _sweep_thread(self, thread: CaptureThread, mode: Mode) -> None:
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
        now = self.clock.now()
        lookback = self.limits.lookback_days
        # On a platform with a look-back window, only comments young enough to be listed at
        # all can be told apart from ones that merely aged out of it (an hour's margin).
        visible_since = now - timedelta(days=lookback) + timedelta(hours=1) if lookback else None
        gone = []
        for record in latest_in_thread(self.engine, self.account, thread_id):
            listed = record.kind == "comment" or (
                record.kind == "post" and record.remote_id != thread_id
            )
            if not listed or record.state == "deleted" or record.remote_id in seen:
                continue
            if visible_since is not None and (
                record.posted_at is None or record.posted_at < visible_since
            ):
                continue
            gone.append(
                RemoteItem(
                    kind="post" if record.kind == "post" else "comment",
                    remote_id=record.remote_id,
                    text=record.text,
                    author=record.author,
                    posted_at=record.posted_at,
                    url=record.url,
                    parent_id=record.parent_id,
                    thread_id=record.thread_id,
                    state="deleted",
                    extra={
                        "absent_from_sweep": self.result.sweep_id,
                        "state_before": record.state,
                        "record_before": record.id,
                    },
                )
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
            latest = self.archiver.latest_versions([_key(c) for c in captures])
            captures = [self._prepare(c, latest.get(_key(c))) for c in captures]
            _, created = self.archiver.archive_batch(captures, resolve=False)
            self.result.archived += created
            self.result.seen += len(captures)
            self._charge([c.item.remote_id for c in captures])
        self.result.pages += len(pages)

    def _prepare(self, capture: Capture, latest: Latest | None) -> Capture:
        item = capture.item
        if (
            not self.limits.reports_hidden
            and latest is not None
            and latest.state == "hidden"
            and item.state == "visible"
            and latest.text == item.text
        ):
            # The platform does not say a reply is hidden; it stays as we hid it.
            item = replace(item, state="hidden")
            capture = replace(capture, item=item)
        urls = attachment_urls(item)
        if not urls or not self.policy.fetch_media:
            return capture
        if latest is not None and latest.content_sha256 == content_hash(item):
            return capture  # not a new version: nothing is archived, nothing to fetch
        blobs = []
        for url, alt_text in zip(urls, attachment_alt_texts(item), strict=True):
            try:
                data, mime = self.connector.fetch_media(url, self.policy.media_max_bytes)
                blobs.append(MediaBlob(url, data, mime, alt_text=alt_text))
            except BulletinError as e:
                blobs.append(MediaBlob(url, error=str(e), alt_text=alt_text))
                log.warning("attachment not fetched", account=self.account, error=str(e))
        return replace(capture, media=tuple(blobs))

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
        now = self.clock.now()
        day = now.strftime("%Y-%m-%d")
        wanted = sorted(set(remote_ids))
        with session_scope(self.engine) as session:
            known: set[str] = set()
            for start in range(0, len(wanted), 500):
                known.update(
                    session.exec(
                        select(CaptureRead.remote_id)
                        .where(CaptureRead.account == self.account)
                        .where(CaptureRead.day == day)
                        .where(col(CaptureRead.remote_id).in_(wanted[start : start + 500]))
                    ).all()
                )
            new = [r for r in wanted if r not in known]
            if not new:
                return
            session.execute(
                sa.insert(CaptureRead),
                [{"account": self.account, "day": day, "remote_id": r} for r in new],
            )
            # Yesterday's reads no longer decide anything.
            session.execute(
                sa.delete(CaptureRead)
                .where(col(CaptureRead.account) == self.account)
                .where(col(CaptureRead.day) < day)
            )
            spend = session.get(CaptureSpend, (self.account, month_of(now)))
            if spend is None:
                spend = CaptureSpend(account=self.account, month=month_of(now))
            spend.reads += len(new)
            spend.usd = round(spend.usd + len(new) * self.price, 6)
            session.add(spend)
        self.result.reads_charged += len(new)


def latest_in_thread(engine: Engine, account: str, thread_id: str) -> list[Record]:
    """The newest version of every item of a thread."""
    with Session(engine) as session:
        newest = (
            sa.select(
                col(Record.kind).label("kind"),
                col(Record.remote_id).label("remote_id"),
                sa.func.max(col(Record.version)).label("version"),
            )
            .where(col(Record.account) == account)
            .where(col(Record.thread_id) == thread_id)
            .group_by(col(Record.kind), col(Record.remote_id))
            .subquery()
        )
        rows = session.exec(
            select(Record)
            .join(
                newest,
                sa.and_(
                    col(Record.kind) == newest.c.kind,
                    col(Record.remote_id) == newest.c.remote_id,
                    col(Record.version) == newest.c.version,
                ),
            )
            .where(col(Record.account) == account)
            .where(col(Record.thread_id) == thread_id)
        ).all()
        return list(rows)


def _key(capture: Capture) -> Key:
    return (capture.account, capture.item.kind, capture.item.remote_id)


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


def _published_by_us(
    engine: Engine, account: str, remote_ids: list[str]
) -> dict[str, tuple[int, str]]:
    """remote id -> (notice id, priority) for the posts Bulletin itself published."""
    if not remote_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.remote_id, Notice.id, Notice.priority)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.account) == account)
            .where(col(Delivery.remote_id).in_(remote_ids))
        ).all()
    return {rid: (nid, prio) for rid, nid, prio in rows if rid and nid is not None}


def sweep(
    archiver: Archiver,
    connector: Connector,
    account_name: str,
    clock: Clock,
    *,
    full: bool = False,
    on_page: PageHook | None = None,
    batch_items: int | None = None,
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
    ).run()
