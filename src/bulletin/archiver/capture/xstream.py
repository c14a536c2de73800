"""X replies in near real time: the filtered stream, one ``conversation_id:`` rule per
followed thread, with recent search filling every gap (see docs/capture-x.md).

- **Rules.** Threads posted within ``[capture] stream_hours`` (and emergency threads within
  ``hot_hours``) are followed: each has the rule ``conversation_id:ID`` tagged
  ``bulletin:ACCOUNT:ID``. Rules are re-synchronised every ``rules_every`` seconds; only
  rules with that tag prefix are ever deleted.
- **Capture.** Each post the stream delivers is archived at once with the sweep's
  versioning rules (a version only when the representation changed) and priced as a read;
  a new record is marked as the stream's, for the capture lag's path ``stream``.
- **Gaps.** After every (re)connection, and for every thread newly followed, a catch-up
  sweep (:func:`~bulletin.archiver.capture.sweep.sweep` with ``catch_up``) lists what is new
  since each thread's cursor through recent search. The stream never moves a cursor, so a
  reply missed while disconnected is always listed by the next catch-up. A catch-up the
  scheduled sweep is holding the account for is retried until it runs.
- **Backoff.** A failed or silent connection is retried after 1 s, doubling to 60 s; a 429
  waits until its reset. The regular sweeps keep running beside the stream (edits, hidden
  replies and deletions are seen there).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from bulletin.archiver.archive import Archiver, Capture
from bulletin.archiver.capture.schedule import THREAD_COLUMNS
from bulletin.archiver.capture.spend import charge_reads
from bulletin.archiver.capture.sweep import sweep
from bulletin.archiver.capture.threads import register_published
from bulletin.archiver.capture.versioning import key, next_version
from bulletin.clock import Clock
from bulletin.connectors.base import RemoteItem
from bulletin.connectors.x import XConnector
from bulletin.db import session_scope
from bulletin.errors import ConnectorError, RateLimited
from bulletin.logs import get_logger
from bulletin.models import Account, CaptureThread, StreamCapture

log = get_logger("bulletin.capture")

MAX_RULES = 1000  # pay-per-use: rules per project
MAX_BACKOFF = 60.0


@dataclass
class StreamStats:
    """What a stream listener did so far."""

    connections: int = 0
    delivered: int = 0
    archived: int = 0
    catch_ups: int = 0
    errors: int = 0
    last_error: str = ""


class ReplyStream:
    """Follows one X account's young threads on the filtered stream. Use :meth:`run` in a
    thread of its own; set ``stop`` to end it (at the next line or keep-alive)."""

    def __init__(
        self,
        archiver: Archiver,
        connector: XConnector,
        account: str,
        clock: Clock,
        *,
        stall_seconds: float = 60.0,
        rules_every: float = 10.0,
        wait: Callable[[float], object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.archiver = archiver
        self.engine = archiver.engine
        self.connector = connector
        self.account = account
        self.clock = clock
        self.policy = archiver.settings.capture
        self.price = self.policy.price("x").read
        self.stall_seconds = stall_seconds
        self.rules_every = rules_every
        self.stop = stop or threading.Event()
        self._wait = wait or self.stop.wait
        self.stats = StreamStats()
        self._pending: set[str] = set()  # threads whose gap is not listed yet
        self._followed: set[str] = set()
        with Session(self.engine) as session:
            row = session.get(Account, account)
            self.training = bool(row.training) if row else False

    @property
    def tag_prefix(self) -> str:
        return f"bulletin:{self.account}:"

    # -- rules -------------------------------------------------------------------------------
    def followed(self) -> list[str]:
        """The threads to follow now, newest first (at most :data:`MAX_RULES`)."""
        register_published(self.engine, self.account, self.clock)
        now = self.clock.now()
        young = now - timedelta(hours=self.policy.stream_hours)
        hot = now - timedelta(hours=self.policy.hot_hours)
        began = sa.func.coalesce(col(CaptureThread.posted_at), col(CaptureThread.first_seen_at))
        with Session(self.engine) as session:  # the young ones only: threads accumulate
            threads = session.execute(
                sa.select(*THREAD_COLUMNS)
                .where(col(CaptureThread.account) == self.account)
                .where(began >= min(young, hot))
            ).all()
        chosen = [
            t
            for t in threads
            if (t.posted_at or t.first_seen_at) >= young
            or (t.priority == "emergency" and (t.posted_at or t.first_seen_at) >= hot)
        ]
        chosen.sort(key=lambda t: t.posted_at or t.first_seen_at, reverse=True)
        return [t.thread_id for t in chosen[:MAX_RULES]]

    def sync_rules(self) -> set[str]:
        """Make the app's rules follow :meth:`followed`; the threads newly followed."""
        wanted = self.followed()
        ours = {
            r["tag"][len(self.tag_prefix) :]: r["id"]
            for r in self.connector.stream_rules()
            if str(r.get("tag", "")).startswith(self.tag_prefix)
        }
        delete = [rule_id for thread, rule_id in ours.items() if thread not in wanted]
        add = [
            {"value": f"conversation_id:{t}", "tag": f"{self.tag_prefix}{t}"}
            for t in wanted
            if t not in ours
        ]
        if add or delete:
            self.connector.change_stream_rules(add=add, delete=delete)
            log.info(
                "stream rules changed", account=self.account, added=len(add), deleted=len(delete)
            )
        new = set(wanted) - self._followed
        self._followed = set(wanted)
        return new

    # -- capture -----------------------------------------------------------------------------
    def archive(self, item: RemoteItem) -> int:
        """Archive one delivered post as a sweep would; how many records are new. A new
        record is then marked as the stream's (:class:`~bulletin.models.StreamCapture`)."""
        capture = Capture(self.account, "x", item, self.training)
        latest = self.archiver.latest_versions([key(capture)])
        limits = self.connector.limits()
        capture = next_version(
            capture, latest.get(key(capture)), self.connector, limits, self.policy
        )
        records, created = self.archiver.archive_batch([capture])
        if created and records[0].id is not None:  # the capture-lag path "stream"
            with session_scope(self.engine) as session:
                session.add(StreamCapture(record_id=records[0].id))
        if self.price:
            charge_reads(self.engine, self.account, self.clock.now(), self.price, [item.remote_id])
        return created

    def catch_up(self) -> bool:
        """List what is new in the threads with a gap; False when the account's sweep is
        busy elsewhere (retried later)."""
        if not self._pending:
            return True
        result = sweep(
            self.archiver, self.connector, self.account, self.clock, catch_up=sorted(self._pending)
        )
        if result.result == "claimed-elsewhere":
            return False
        self.stats.catch_ups += 1
        if result.result == "ok":
            self._pending.clear()
        return result.result == "ok"

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> StreamStats:
        """Connect, capture, reconnect, until :attr:`stop` is set."""
        backoff = 1.0
        while not self.stop.is_set():
            try:
                self._pending |= self.sync_rules()
                if not self._followed:
                    self._wait(self.rules_every)
                    continue
                self._connected()
                backoff = 1.0
            except RateLimited as e:
                wait = backoff
                if e.retry_after is not None:
                    wait = max(1.0, (e.retry_after - self.clock.now()).total_seconds())
                self._failed(e, wait)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except ConnectorError as e:
                self._failed(e, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        return self.stats

    def _failed(self, error: ConnectorError, wait: float) -> None:
        self.stats.errors += 1
        self.stats.last_error = str(error)
        self._pending |= self._followed  # whatever was posted meanwhile is listed later
        log.warning(
            "X stream interrupted; reconnecting", account=self.account, error=str(error), wait=wait
        )
        self._wait(wait)

    def _connected(self) -> None:
        """One connection: the gap is listed once it is up, then every line is captured."""
        stream = self.connector.stream(self.stall_seconds)
        self._pending |= self._followed
        synced = time.monotonic()
        first = True
        try:
            for item in stream:
                if first:
                    self.stats.connections += 1
                    first = False
                # another account's rules may share the app's one stream: not ours
                if item is not None and item.thread_id in self._followed:
                    self.stats.delivered += 1
                    self.stats.archived += self.archive(item)
                if self.stop.is_set():
                    return
                if time.monotonic() - synced >= self.rules_every:
                    synced = time.monotonic()
                    self._pending |= self.sync_rules()
                if self._pending:
                    self.catch_up()
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        # the platform ended the stream: a gap begins
        self._pending |= self._followed
        raise _Ended(f"account {self.account}: the X stream ended")


class _Ended(ConnectorError):
    """The platform closed the stream (a restart, a disconnect): reconnect."""
