"""The archive's periodic work, each a method the job table (:mod:`bulletin.service.jobs`)
schedules: capture sweeps, the spool drain, ledger checkpoints with their witnesses and time
stamps (and the backlog of those no time-stamp authority answered for), the nightly verify,
copies of decisions, records request deadlines, disk space, the S3 bucket's settings and the
disposition listing. Each logs what a person must know and returns it for tests.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from sqlmodel import Session

from bulletin.app import App
from bulletin.archiver import bucket, decisions, ledger, witness
from bulletin.archiver.capture.sweep import sweep
from bulletin.archiver.disposition import build_disposition_batch
from bulletin.archiver.requests import announce_deadlines, deadline_text, deadlines_near
from bulletin.archiver.timestamp.checkpoints import (
    Backlog,
    stamp_backlog,
    stamp_checkpoint,
    unstamped,
)
from bulletin.archiver.timestamp.client import TimestampUnavailable
from bulletin.archiver.verify_runs import recorded_verify
from bulletin.errors import StoreUnavailable
from bulletin.logs import get_logger
from bulletin.models import Account
from bulletin.service.diskspace import Space, measure
from bulletin.service.metrics import StampingResult, VerifyResult

log = get_logger("bulletin.daemon")


class Maintenance:
    """The periodic work on ``app``; remembers the last verify, the last checkpoint and the
    time-stamp backlog."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.last_verify: VerifyResult | None = None
        self.last_stamping: StampingResult | None = None
        self._checkpointed = 0

    def capture(self, account: str) -> int:
        """Sweep ``account`` now; how many records were archived. Never raises for a
        platform's failure: the sweep records it (see ``archive status``)."""
        result = sweep(self.app.archiver, self.app.connector(account), account, self.app.clock)
        return result.archived

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
        if key is not None:
            self._stamp(key)
        if key is not None and not self._witness(key):
            return key
        self._checkpointed = seq
        return key

    def _stamp(self, key: str) -> None:
        """Time-stamp checkpoint ``key`` now when ``[timestamp]`` names authorities; when none
        answers, log it and leave it to :meth:`stamp_backlog` (nothing waits for a TSA)."""
        settings = self.app.settings.timestamp
        if not settings.enabled:
            return
        error = None
        try:
            stamp = stamp_checkpoint(self.app.store, settings, key, self.app.clock.now())
        except (TimestampUnavailable, StoreUnavailable) as e:
            error = str(e)
            log.warning("ledger checkpoint not time-stamped yet", key=key, error=error)
        else:
            log.info("ledger checkpoint time-stamped", key=key,
                     at=stamp.info.gen_time.isoformat(), tsa=stamp.url)  # fmt: skip
        with contextlib.suppress(StoreUnavailable):  # else the backlog job counts them later
            self._stamping(Backlog(waiting=unstamped(self.app.store), error=error))

    def stamp_backlog(self) -> Backlog:
        """Time-stamp the checkpoints no authority answered for (every few minutes while
        ``[timestamp]`` names authorities); returns what it did."""
        result = stamp_backlog(self.app.store, self.app.settings.timestamp, self.app.clock.now())
        if result.stamped:
            log.info("ledger checkpoints time-stamped late", count=len(result.stamped),
                     first=result.stamped[0])  # fmt: skip
        if result.waiting:
            log.warning("ledger checkpoints wait for a time stamp", count=len(result.waiting),
                        error=result.error)  # fmt: skip
        self._stamping(result)
        return result

    def _stamping(self, result: Backlog) -> None:
        now = self.app.clock.now()
        previous = self.last_stamping
        ok_at = now if result.error is None else (previous.last_ok_at if previous else None)
        self.last_stamping = StampingResult(now, len(result.waiting), result.oldest_waiting, ok_at)

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

    def warn_deadlines(self, announce: bool = True) -> list[str]:
        """Log a warning for each open records request due within ``[requests] warn_days``
        or overdue (at start, then each morning at 08:00 agency time); returns the lines.
        With ``announce`` (each morning) each is also a ``request.due_soon`` event."""
        now = self.app.clock.now()
        near = deadlines_near(self.app.engine, self.app.settings, now)
        if announce and near:
            announce_deadlines(self.app.engine, near, now)
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
        """List the records due for destruction into a batch for a records officer (nightly)."""
        app = self.app
        batch = build_disposition_batch(app.engine, app.store, app.settings, app.clock.now())
        if batch is not None:
            log.info("disposition batch listed", batch=batch.id, records=batch.record_count)
        return batch.id if batch else None

    def nightly(self) -> None:
        """Warn of platform tokens about to expire; verify the archive (records, ledger,
        witnesses), recorded as a run: problems are logged as errors, and the administrators
        are told."""
        from bulletin.notify.token_expiry import warn_expiring

        for name in warn_expiring(self.app.engine, self.app.settings, self.app.clock.now()):
            log.warning("platform token expires soon", account=name)
        report = recorded_verify(
            self.app.engine,
            self.app.store,
            trigger="nightly",
            now=self.app.clock.now,
            settings=self.app.settings,
        )
        self.last_verify = VerifyResult(self.app.clock.now(), len(report.problems))
        for warning in report.warnings[:50]:
            log.warning("verify warns", warning=warning.line())
        if report.ok:
            log.info("verify ok", records=report.records, entries=report.entries)
        else:  # the run's record told the administrators and the webhooks
            for problem in report.problems[:50]:
                log.error("verify found a problem", problem=problem.line())
