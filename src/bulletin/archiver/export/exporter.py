"""``bulletin export``: a production as a bag, streamed, resumable, and never half-visible.

The export is built in ``<out>.partial/`` (the bag in ``bag/``, the journal beside it; see
:mod:`~bulletin.archiver.export.journal`). Records are read in chunks in Bates order and
each chunk ends with a checkpoint, so memory stays flat however large the production and an
interrupted export continues where it stopped. Only a complete bag is moved to ``<out>``, in
one rename; a zip is written beside the bag and renamed the same way. Then an ``exported``
audit event names the scope, the count and the sha256 of the payload manifest.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bulletin import audit
from bulletin.archiver.export import bates, finish, layout, pdf, plan, records, threads
from bulletin.archiver.export.bagwriter import BagWriter, truncate
from bulletin.archiver.export.job import (
    CSV,
    DAT,
    INDEX,
    PART,
    PDFS,
    RECORDS_CSV,
    RECORDS_JSONL,
    REDACTION_LOG,
    Job,
    Production,
)
from bulletin.archiver.export.journal import BAG, Journal
from bulletin.archiver.export.journal import write as write_journal
from bulletin.archiver.export.scope import Scope
from bulletin.archiver.store.base import WormStore
from bulletin.archiver.store.files import rename_no_replace, trim_heap
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import ArchiveError, Refused, UsageError
from bulletin.timeparse import iso_utc


@dataclass
class ExportResult:
    """What an export produced."""

    out: Path
    identifier: str
    records: int
    first_bates: str | None
    last_bates: str | None
    payload_sha256: str
    head_seq: int
    head_hash: str
    disposed: int
    counts: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    production: str = "public"
    redacted_records: int = 0
    # the payload manifest's RFC 3161 time stamp, one line (or why there is none)
    timestamp: str = ""
    timestamped: bool = False


def partial_dir(out: Path) -> Path:
    """Where the export to ``out`` is built."""
    return out.with_name(out.name + ".partial")


def _oserror(e: OSError, done: int, total: int, partial: Path) -> ArchiveError:
    where = f"after {done} of {total} records" if total else "before any record"
    if e.errno in {errno.ENOSPC, errno.EDQUOT}:
        reason = "no space left on the device"
    else:
        reason = f"{e.strerror or e} ({e.filename or partial})"
    return ArchiveError(
        f"export stopped {where}: {reason}; the work so far is kept in {partial}: "
        "fix the cause and resume the export",
        remedy="resume",
    )


def _open_writer(job: Job) -> BagWriter:
    """The bag writer: a fresh bag, or the interrupted one with its appended files cut back to
    the last checkpoint; the appended files' headers written when fresh."""
    bag = job.partial / BAG
    part = job.partial / PART
    sizes = job.journal.sizes
    fresh = not sizes
    if fresh:
        for leftover in (bag, part):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
    else:
        for rel, size in sizes.items():
            truncate(part if rel == PART else bag / "data" / rel, size)
    writer = BagWriter(bag, part)
    writer.files, writer.bytes = job.journal.payload_files, job.journal.payload_bytes
    appended = [DAT, CSV, RECORDS_JSONL, RECORDS_CSV, REDACTION_LOG]
    appended += [INDEX] if job.renderings else []
    for rel in appended + ([PDFS] if job.pdf else []):
        writer.open_append(rel, fresh)
    for rel in sizes:
        if rel.startswith("threads/") and rel != INDEX:
            writer.open_append(rel, False)  # a thread interrupted in the middle
    job.writer = writer
    if fresh:
        records.write_headers(job)
        if job.renderings:
            threads.write_index_head(job)
        if job.pdf:
            pdf.write_listing_head(job)
    return writer


class _Checkpoints:
    """The checkpoints of a run: everything written up to the end of a chunk made durable
    (one barrier), then the journal saying so. The barrier and the journal's write run on a
    thread of their own while the next chunk is written, so the copying threads do not wait
    for the disk; one checkpoint at a time, and the journal never names a chunk before the
    barrier begun after its last write has returned."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-sync")
        self.pending: Future[None] | None = None
        self.durable = job.journal.done  # records the saved journal names

    def submit(self, done: int) -> None:
        """Checkpoint after ``done`` records (all written: no file of the bag is being
        written); the previous checkpoint is waited for first."""
        self.wait()
        job, writer = self.job, self.job.writer
        part_size, sync = writer.checkpoint_begin()
        job.journal.sizes = {**writer.appended_sizes(), PART: part_size}
        job.journal.done = done
        job.journal.payload_files, job.journal.payload_bytes = writer.files, writer.bytes
        job.journal.counts = dict(job.counts)
        encoded = job.journal.encoded()

        def durable() -> None:
            sync()
            write_journal(job.partial, encoded)
            trim_heap()

        self.pending = self.pool.submit(durable)
        self.pending.add_done_callback(lambda f: self._saved(f, done))

    def _saved(self, future: Future[None], done: int) -> None:
        if not future.cancelled() and future.exception() is None:
            self.durable = done

    def wait(self) -> None:
        """Wait for the checkpoint under way. :raises OSError: it failed (the journal then
        says, in memory too, what the last one that succeeded said)."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        try:
            pending.result()
        except BaseException:
            self.job.journal.done = self.durable
            raise

    def close(self) -> None:
        """Let the checkpoint under way end (when the run stops for another reason: a
        failure of its own only leaves the journal, in memory too, as it was)."""
        with contextlib.suppress(Exception):
            self.wait()
        self.pool.shutdown(wait=True)


def _check_outside_store(out: Path, settings: Settings) -> None:
    """:raises Refused: ``out`` (symbolic links followed) lies in the local WORM store or the
    data directory's archive, where nothing but archived objects may be written."""
    real = Path(os.path.realpath(out))
    for store in {settings.archive_path, settings.data_dir / "archive"}:
        root = Path(os.path.realpath(store))
        if real == root or root in real.parents:
            raise Refused(f"{out} is inside the archive store {root}; write the export outside it")


def export_bundle(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    scope: Scope,
    *,
    out: Path,
    actor: str,
    now: Callable[[], datetime],
    as_zip: bool = False,
    resume: bool = False,
    bates_start: int | None = None,
    chunk: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    production: Production = "public",
    renderings: bool = True,
    wacz: bool = False,
    pdf: bool = True,
) -> ExportResult:
    """Write the production ``scope`` as a bag at ``out`` (a directory, or a zip).

    A ``public`` production withholds the text under the redactions in force (a box with the
    exemption in the text, load files and thread pages) and leaves out the natives of redacted
    records; a ``counsel`` production holds everything, the withheld text marked. Both carry
    the redaction log. Without ``renderings`` the thread pages are left out (a production
    for a review platform, which reads the load file). With ``wacz`` the WARC files under
    ``data/warc/`` are also packaged as a WACZ (:mod:`~bulletin.archiver.export.wacz`).
    With ``pdf`` (and renderings) each thread page is also rendered as PDF/A-2b beside it
    (:mod:`~bulletin.archiver.export.pdf`), listed in the manifest like every file.

    Bates numbers start at ``bates_start``, or after every range issued under the prefix
    (:mod:`~bulletin.archiver.export.bates`); a resumed export keeps the range it took.

    ``progress(done, total)`` is called after each chunk.

    :raises Refused: ``out`` exists, or an interrupted export is there and ``resume`` is off,
        or it is of another scope, or its Bates numbers overlap numbers issued before.
    :raises UsageError: ``out`` cannot be created (a path under a regular file...).
    :raises IntegrityError: an archived object fails its hash (the export stops, resumable).
    :raises ArchiveError: the disk filled or another write failed (resumable).
    """
    out = Path(os.path.abspath(out))
    _check_outside_store(out, settings)
    partial = partial_dir(out)
    if bates_start is not None and bates_start < 1:
        raise UsageError("the first Bates number must be 1 or more")
    if bates_start is not None and bates_start > layout.MAX_BATES:
        raise UsageError(
            f"the first Bates number {bates_start} is past the last of "
            f"{len(str(layout.MAX_BATES))} digits ({layout.MAX_BATES})",
            remedy="lower-bates-start",
        )
    try:
        prefix = layout.check_prefix(settings.agency.bates_prefix)
    except ValueError as e:
        raise UsageError(f"[agency] bates_prefix: {e}") from None
    if os.path.lexists(out):
        raise Refused(f"{out} already exists; an export never replaces anything: choose another")
    wanted = {
        "identifier": scope.identifier,
        "request_id": scope.request_id,
        "query": scope.query.to_json(),
        "prefix": prefix,
        "bates_start": bates_start,
        "zip": as_zip,
        "production": production,
        "renderings": renderings,
        **({"wacz": True} if wacz else {}),
        **({"pdf": True} if pdf and renderings else {}),
    }
    started = now()
    journal: Journal | None = None
    if os.path.lexists(partial):
        if not resume:
            raise Refused(
                f"an interrupted export is at {partial}; resume it, or remove it to start again",
                remedy="resume",
            )
        journal = Journal.load(partial) if partial.is_dir() else None
        if journal is not None and _unnumbered(journal.scope) != _unnumbered(wanted):
            raise Refused(
                f"{partial} holds an export of another scope ({journal.scope['identifier']}, "
                f"query {journal.scope['query']}); remove it or export elsewhere",
                remedy="another-out",
            )
        if journal is not None:
            _same_numbers(journal, bates_start, prefix)
            journal.resumed.append(iso_utc(started))
    elif bates_start is not None:
        bates.check_start(engine, prefix, bates_start)
    try:
        partial.mkdir(mode=finish.PRIVATE_DIR, parents=True, exist_ok=True)
        # nothing in it is readable by others while it is written
        os.chmod(partial, finish.PRIVATE_DIR)
    except OSError as e:
        raise UsageError(f"cannot write the export at {out}: {e.strerror or e}") from None
    resumed = journal is not None
    if journal is None:
        journal = Journal(scope=wanted, started_at=iso_utc(started), actor=actor)
    job = Job(engine, store, settings, scope, journal, partial)
    try:
        journal.save(partial)
        try:
            plan.ensure_plan(job, started)
        except Refused:
            if not resumed:  # nothing was written under any number: leave nothing behind
                shutil.rmtree(partial, ignore_errors=True)
            raise
        plan.load_redactions(job)
        writer = _open_writer(job)
        total = journal.total
        checkpoints = _Checkpoints(job)
        try:
            done = journal.done
            rows = plan.rows(job, done)
            while batch := list(islice(rows, chunk)):
                records.write_chunk(job, batch)
                done = batch[-1].position
                checkpoints.submit(done)
                if progress:
                    progress(done, total)
            checkpoints.wait()
            payload_sha, facts, stamped = finish.finish(job, now())
        finally:
            checkpoints.close()
            writer.close()
            job.pool.shutdown(wait=True, cancel_futures=True)
        if as_zip:
            finish.zip_bag(partial / BAG, partial / "bundle.zip", out.stem)
            source = partial / "bundle.zip"
        else:
            source = partial / BAG
        # a bag begun by an earlier run may hold files made under other rules: walk it
        finish.make_private(source, walk=resumed or not finish.umask_keeps_owner_bits())
        if not rename_no_replace(str(source), str(out)):
            raise Refused(f"{out} appeared while exporting; the finished bag is kept in {partial}")
    except OSError as e:
        raise _oserror(e, journal.done, journal.total, partial) from None
    shutil.rmtree(partial, ignore_errors=True)
    result = ExportResult(
        out=out,
        identifier=scope.identifier,
        records=journal.total,
        first_bates=facts["first_bates"],
        last_bates=facts["last_bates"],
        payload_sha256=payload_sha,
        head_seq=journal.head_seq,
        head_hash=journal.head_hash,
        disposed=journal.disposed,
        counts={k: v for k, v in job.counts.items() if not k.startswith("~")},
        resumed=resumed,
        production=production,
        redacted_records=facts["redacted_records"],
        timestamp=stamped.line(),
        timestamped=stamped.stamp is not None,
    )
    with session_scope(engine) as session:
        audit.record_event(
            session,
            at=now(),
            actor=actor,
            action="exported",
            object_type="request" if scope.request_id is not None else "query",
            object_id=scope.request_id if scope.request_id is not None else scope.identifier,
            query=scope.query.describe(),
            records=result.records,
            payload_manifest_sha256=payload_sha,
            bates=f"{result.first_bates}-{result.last_bates}" if result.records else None,
            ledger_head=f"{result.head_seq} {result.head_hash}",
            bundle=str(out),
            zip=as_zip,
            production=production,
            redacted_records=result.redacted_records,
            timestamp=result.timestamp,
        )
    return result


def _unnumbered(scope: dict[str, Any]) -> dict[str, Any]:
    """What an export produces, whatever its Bates numbers."""
    return {k: v for k, v in scope.items() if k != "bates_start"}


def _same_numbers(journal: Journal, bates_start: int | None, prefix: str) -> None:
    """A resumed export keeps its Bates numbers: another first number is refused."""
    first = journal.bates_first
    if first is None and journal.planned:  # planned before numbers were registered
        first = journal.scope.get("bates_start") or 1
        journal.scope["bates_start"] = first
    if bates_start is not None and first is not None and bates_start != first:
        raise Refused(
            f"the interrupted export is numbered from {layout.bates(prefix, first)}; "
            "resume it with those numbers",
            remedy="no-bates-start",
        )
