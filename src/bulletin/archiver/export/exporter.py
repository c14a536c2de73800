"""``bulletin export``: a production as a bag, streamed, resumable, and never half-visible.

The export is built in ``<out>.partial/`` (the bag in ``bag/``, the journal beside it; see
:mod:`~bulletin.archiver.export.journal`). Records are read in chunks in Bates order and
each chunk ends with a checkpoint, so memory stays flat however large the production and an
interrupted export continues where it stopped. Only a complete bag is moved to ``<out>``, in
one rename; a zip is written beside the bag and renamed the same way. Then an ``exported``
audit event names the scope, the count and the sha256 of the payload manifest.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import socket
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bulletin import __version__, audit
from bulletin.archiver import redaction as redact
from bulletin.archiver.export import bates, layout, loadfile, render
from bulletin.archiver.export.bagwriter import BagWriter, truncate
from bulletin.archiver.export.journal import BAG, PLAN, Journal
from bulletin.archiver.export.scope import PlanRow, Scope, count_disposed, head, plan
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.archiver.store.files import rename_no_replace
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import ArchiveError, IntegrityError, NotFound, Refused, UsageError
from bulletin.models import LedgerEntry, Record

Production = Literal["public", "counsel"]

DAT = "loadfile/production.dat"
CSV = "loadfile/production.csv"
RECORDS_JSONL = "manifest/records.jsonl"
RECORDS_CSV = "manifest/records.csv"
INDEX = "threads/index.html"
PART = "payload-manifest.part"
COPY_THREADS = 4
COPY_SLICE = 50  # records per task given to a copying thread
PRIVATE_FILE = 0o600  # a production's modes, whatever the umask
PRIVATE_DIR = 0o700
REDACTION_LOG = "redactions/redaction-log.csv"
REDACTION_LOG_HTML = "redactions/redaction-log.html"
REDACTIONS = "redactions.jsonl"  # the redactions in force when the export began
REDACTION_LOG_COLUMNS = (
    "bates",
    "record_id",
    "version",
    "redaction_id",
    "characters",
    "exemption",
    "exemption_label",
    "reason",
    "redacted_by",
    "redacted_at",
)
RECORD_COLUMNS = (
    "bates",
    "record_id",
    "account",
    "platform",
    "kind",
    "remote_id",
    "version",
    "state",
    "object_sha256",
    "raw_sha256",
    "ledger_seq",
    "ledger_entry_hash",
    "native",
    "raw",
    "text",
)


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


def partial_dir(out: Path) -> Path:
    """Where the export to ``out`` is built."""
    return out.with_name(out.name + ".partial")


def _utc(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


@dataclass(frozen=True)
class _Withheld:
    """A redaction as it stood when the export began (see ``_freeze_redactions``)."""

    id: int
    record_id: int
    start: int
    end: int
    exemption: str
    reason: str
    created_by: str
    created_at: str  # UTC, ISO 8601


@dataclass
class _Files:
    """The files one record's natives and text went to, with their hashes, in order."""

    native: str
    raw: str = ""
    text: str = ""
    media: list[dict[str, Any]] = field(default_factory=list)
    listed: list[tuple[str, str, int]] = field(default_factory=list)

    def add(self, writer: BagWriter, rel: str, data: bytes) -> None:
        self.listed.append((rel, writer.write_unlisted(rel, data), len(data)))


class _Export:
    """One run of an export; see :func:`export_bundle`."""

    def __init__(
        self,
        engine: Engine,
        store: WormStore,
        settings: Settings,
        scope: Scope,
        journal: Journal,
        partial: Path,
    ) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        self.scope = scope
        self.journal = journal
        self.partial = partial
        self.prefix = str(journal.scope["prefix"])
        self.counts: Counter[str] = Counter(journal.counts)
        self.writer: BagWriter | None = None
        self.pool = ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="export")
        self.production: Production = journal.scope.get("production", "public")
        self.renderings: bool = journal.scope.get("renderings", True)
        self.redactions: dict[int, list[_Withheld]] = {}

    @property
    def start(self) -> int:
        """The first Bates number, once issued (see :meth:`issue_numbers`)."""
        return self.journal.bates_first or 1

    def bates(self, position: int) -> str:
        return layout.bates(self.prefix, self.start + position - 1)

    # -- planning ------------------------------------------------------------------------------

    def ensure_plan(self, now: datetime) -> None:
        if self.journal.planned:
            self.issue_numbers(now)  # an export planned before numbers were registered
            return
        seq, digest = head(self.engine)
        tz = self.settings.agency.time_zone
        temp = self.partial / (PLAN + ".tmp")
        total = 0
        with open(temp, "w", encoding="ascii") as handle:
            for row in plan(self.engine, self.scope.query, tz, seq):
                handle.write(
                    f"{row.record_id}\t{row.family_first}\t{row.family_last}\t"
                    f"{row.item_first}\t{row.item_last}\n"
                )
                total += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.partial / PLAN)
        self._refuse_unredacted_copies()
        self._freeze_redactions()
        self.journal.total = total
        self.journal.head_seq, self.journal.head_hash = seq, digest
        self.journal.disposed = count_disposed(self.engine, self.scope.query, tz, seq)
        try:
            self.issue_numbers(now)
        except UsageError:  # the numbers would not fit: nothing was issued, nothing is left
            shutil.rmtree(self.partial, ignore_errors=True)
            raise
        self.journal.planned = True
        self.journal.save(self.partial)

    def issue_numbers(self, now: datetime) -> None:
        """Take this production's Bates range from the register, once (a resumed export
        keeps it); saved in the journal before any number is written.

        :raises Refused: the range asked for overlaps one issued before.
        """
        if self.journal.bates_first is not None:
            return
        self.journal.bates_first = bates.reserve(
            self.engine,
            self.store,
            prefix=self.prefix,
            start=self.journal.scope.get("bates_start"),
            count=self.journal.total,
            run=self.journal.run,
            identifier=self.scope.identifier,
            production=self.production,
            actor=self.journal.actor,
            now=now,
        )
        self.journal.save(self.partial)

    def _refuse_unredacted_copies(self) -> None:
        """A public production may not hold, in another version of a redacted item, the very
        text the redaction withholds (a version captured after the redaction was made)."""
        if self.production != "public":
            return
        with self.engine.connect() as conn:
            copies = redact.unredacted_copies(conn, redact.active(conn))
        if not copies:
            return
        candidates = {c.record_id: c for c in copies}
        found = []
        with open(self.partial / PLAN, encoding="ascii") as handle:
            for line in handle:
                copy = candidates.get(int(line.split("\t", 1)[0]))
                if copy is not None:
                    found.append(copy)
        if not found:
            return
        shutil.rmtree(self.partial, ignore_errors=True)
        listed = ", ".join(
            f"record {c.record_id} (version {c.version}; redaction {c.redaction_id})"
            for c in found[:5]
        )
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise Refused(
            f"text withheld by a redaction stands unredacted in another version of the same "
            f"item in this production: {listed}{more}; withhold it there too by propagating the "
            "redaction, or make the counsel production",
            remedy="propagate-or-counsel",
        )

    def _freeze_redactions(self) -> None:
        """The redactions in force now, kept beside the plan so that a resumed export
        withholds exactly what the first run did."""
        temp = self.partial / (REDACTIONS + ".tmp")
        with self.engine.connect() as conn, open(temp, "w", encoding="utf-8") as handle:
            for item in redact.active(conn):
                frozen = _Withheld(
                    id=item.id or 0,
                    record_id=item.record_id,
                    start=item.start,
                    end=item.end,
                    exemption=item.exemption,
                    reason=item.reason,
                    created_by=item.created_by,
                    created_at=_utc(item.created_at),
                )
                handle.write(json.dumps(asdict(frozen), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.partial / REDACTIONS)

    def load_redactions(self) -> None:
        self.redactions = {}
        with open(self.partial / REDACTIONS, encoding="utf-8") as handle:
            for line in handle:
                item = _Withheld(**json.loads(line))
                self.redactions.setdefault(item.record_id, []).append(item)

    def spans(self, record: Record) -> list[redact.Span]:
        """What this production withholds of ``record`` (labels as configured)."""
        return [
            redact.Span(r.start, r.end, redact.label_of(self.settings, r.exemption))
            for r in self.redactions.get(record.id or -1, ())
        ]

    def withholds(self, record: Record) -> bool:
        """Whether this is a public production and ``record`` has text withheld."""
        return self.production == "public" and (record.id or -1) in self.redactions

    def rows(self, after: int) -> Iterator[PlanRow]:
        with open(self.partial / PLAN, encoding="ascii") as handle:
            for position, line in enumerate(handle, start=1):
                if position <= after:
                    continue
                record_id, first, last, *item = line.split("\t")
                # a plan written before item ranges were recorded: one version per item
                item_first, item_last = map(int, item) if item else (position, position)
                yield PlanRow(
                    int(record_id), position, int(first), int(last), item_first, item_last
                )

    # -- writing -------------------------------------------------------------------------------

    def open_writer(self) -> BagWriter:
        bag = self.partial / BAG
        part = self.partial / PART
        sizes = self.journal.sizes
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
        writer.files, writer.bytes = self.journal.payload_files, self.journal.payload_bytes
        appended = [DAT, CSV, RECORDS_JSONL, RECORDS_CSV, REDACTION_LOG]
        for rel in appended + ([INDEX] if self.renderings else []):
            writer.open_append(rel, fresh)
        for rel in sizes:
            if rel.startswith("threads/") and rel != INDEX:
                writer.open_append(rel, False)  # a thread interrupted in the middle
        if fresh:
            header = list(loadfile.FIELDS)
            writer.append(DAT, (loadfile.BOM + loadfile.dat_line(header)).encode())
            writer.append(CSV, (loadfile.BOM + loadfile.csv_line(header)).encode())
            writer.append(RECORDS_CSV, loadfile.csv_line(list(RECORD_COLUMNS)).encode())
            writer.append(
                REDACTION_LOG,
                (loadfile.BOM + loadfile.csv_line(list(REDACTION_LOG_COLUMNS))).encode(),
            )
            if self.renderings:
                writer.append(
                    INDEX,
                    render.index_head(
                        self.settings.agency.name,
                        self.scope.identifier,
                        zone=self.settings.agency.time_zone,
                        records=self.journal.total,
                        counsel=self.production == "counsel",
                    ).encode(),
                )
        self.writer = writer
        return writer

    def _object(self, record: Record, digest: str, what: str, position: int) -> bytes:
        key = object_key(digest)
        try:
            return self.store.read_object(key)
        except IntegrityError:
            raise IntegrityError(
                f"record {record.id} ({self.bates(position)}): its {what} {key} in the archive "
                "does not match its sha256; export stopped (run `bulletin archive verify`)"
            ) from None
        except NotFound:
            raise IntegrityError(
                f"record {record.id} ({self.bates(position)}): its {what} {key} is missing "
                "from the archive; export stopped (run `bulletin archive verify`)"
            ) from None

    def copy_files(self, record: Record, position: int) -> _Files:
        """Read a record's objects from the store and write its natives and text."""
        writer = self.writer
        assert writer is not None
        number = self.start + position - 1
        files = _Files(native=layout.native_path(self.prefix, number))
        snapshot = self._object(record, record.object_sha256, "snapshot", position)
        withhold = self.withholds(record)
        text = record.text
        if withhold:
            # the natives hold the withheld text: they go to the counsel production only
            files.native = ""
            text = redact.redacted_text(record.text, self.spans(record))
        else:
            files.add(writer, files.native, snapshot)
            if record.raw_sha256:
                raw = self._object(record, record.raw_sha256, "raw response", position)
                files.raw = layout.raw_path(self.prefix, number, raw)
                files.add(writer, files.raw, raw)
        files.media = self._media(record, snapshot, number, position, files)
        files.text = layout.text_path(self.prefix, number)
        files.add(writer, files.text, text.encode("utf-8"))
        return files

    def write_chunk(self, rows: list[PlanRow]) -> None:
        ids = [r.record_id for r in rows]
        table = Record.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            # plain rows, read by attribute like the models: building model objects would cost
            # more than the rest of the export's own work per record
            records: dict[int, Record] = {
                row.id: cast(Record, row)
                for row in conn.execute(sa.select(table).where(table.c.id.in_(ids)))
            }
            seqs = [r.ledger_seq for r in records.values() if r.ledger_seq is not None]
            ledger_table = LedgerEntry.__table__  # type: ignore[attr-defined]
            entries: dict[int, LedgerEntry] = {
                row.seq: cast(LedgerEntry, row)
                for row in conn.execute(sa.select(ledger_table).where(ledger_table.c.seq.in_(seqs)))
            }
        work: list[tuple[PlanRow, Record, LedgerEntry]] = []
        for row in rows:
            record = records.get(row.record_id)
            if record is None:
                raise IntegrityError(
                    f"record {row.record_id} ({self.bates(row.position)}) left the index while "
                    "it was being exported; export stopped"
                )
            entry = entries.get(record.ledger_seq or -1)
            if (
                entry is None
                or entry.record_id != record.id
                or entry.object_sha256 != record.object_sha256
            ):
                raise IntegrityError(
                    f"record {record.id} ({self.bates(row.position)}): ledger entry "
                    f"{record.ledger_seq} does not name it and its object; export stopped "
                    "(run `bulletin archive verify`)"
                )
            work.append((row, record, entry))
        assert self.writer is not None
        # Reading objects and creating files is mostly waiting on the kernel: worker threads
        # do it while this thread writes the load files and pages, in Bates order.
        slices = [work[i : i + COPY_SLICE] for i in range(0, len(work), COPY_SLICE)]
        copies = [self.pool.submit(self._copy_slice, part) for part in slices]
        try:
            for part, copy in zip(slices, copies, strict=True):
                for (row, record, entry), files in zip(part, copy.result(), strict=True):
                    for rel, digest, size in files.listed:
                        self.writer.list(rel, digest, size)
                    self.write_record(row, record, entry, files)
        finally:
            for copy in copies:
                copy.cancel()
            wait(copies)

    def _copy_slice(self, part: list[tuple[PlanRow, Record, LedgerEntry]]) -> list[_Files]:
        return [self.copy_files(record, row.position) for row, record, _ in part]

    def write_record(self, row: PlanRow, record: Record, entry: LedgerEntry, files: _Files) -> None:
        """The record's lines in the load files and manifests, and its place in its thread."""
        writer = self.writer
        assert writer is not None
        bates = self.bates(row.position)
        native, raw_rel, text_rel, media = files.native, files.raw, files.text, files.media
        posted, captured = _utc(record.posted_at), _utc(record.captured_at)
        spans = self.spans(record)
        withhold = self.withholds(record)
        # a hash of a withheld native would let anyone confirm a guess at the withheld text
        object_sha = None if withhold else record.object_sha256
        raw_sha = None if withhold else record.raw_sha256
        entry_hash = None if withhold else entry.entry_hash
        text = redact.redacted_text(record.text, spans) if withhold else record.text
        labels = sorted({span.label for span in spans})
        fields = [
            bates,
            bates,
            self.bates(row.family_first),
            self.bates(row.family_last),
            record.platform,
            record.account,
            record.kind,
            record.remote_id,
            record.parent_id or "",
            record.thread_id or "",
            record.author or "",
            posted,
            captured,
            record.state,
            str(record.version),
            object_sha or "",
            raw_sha or "",
            str(record.ledger_seq),
            record.url or "",
            native,
            raw_rel,
            text_rel,
            "; ".join(m["path"] for m in media),
            text,
            "Y" if spans else "",
            "; ".join(labels),
        ]
        writer.append(DAT, loadfile.dat_line(fields).encode("utf-8"))
        writer.append(CSV, loadfile.csv_line(fields).encode("utf-8"))
        line: dict[str, Any] = {
            "bates": bates,
            "record_id": record.id,
            "account": record.account,
            "platform": record.platform,
            "kind": record.kind,
            "remote_id": record.remote_id,
            "parent_id": record.parent_id,
            "thread_id": record.thread_id,
            "version": record.version,
            "state": record.state,
            "author": record.author,
            "posted_at": posted or None,
            "captured_at": captured,
            "object_sha256": object_sha,
            "raw_sha256": raw_sha,
            "ledger_seq": record.ledger_seq,
            "ledger_entry_hash": entry_hash,
            "family": [self.bates(row.family_first), self.bates(row.family_last)],
            "native": native or None,
            "raw": raw_rel or None,
            "text": text_rel,
            "media": media,
            "redacted": bool(spans),
            "exemptions": labels,
            "natives_withheld": withhold,
        }
        if spans and self.production == "counsel":
            line["redactions"] = [
                {"characters": f"{r.start}:{r.end}", "exemption": r.exemption, "label": s.label}
                for r, s in zip(self.redactions[record.id or -1], spans, strict=True)
            ]
        writer.append(
            RECORDS_JSONL,
            json.dumps(line, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n",
        )
        writer.append(
            RECORDS_CSV,
            loadfile.csv_line(
                ["" if line[c] is None else str(line[c]) for c in RECORD_COLUMNS]
            ).encode("utf-8"),
        )
        if self.renderings:
            self._thread(row, record, bates, posted, captured, native, spans, media)
        self.counts[f"{record.kind}/{record.state}"] += 1
        if spans:
            self._log(record, bates, spans)

    def _log(self, record: Record, bates: str, spans: list[redact.Span]) -> None:
        """The record's lines in the redaction log (never the withheld text)."""
        writer = self.writer
        assert writer is not None
        for item, span in zip(self.redactions[record.id or -1], spans, strict=True):
            writer.append(
                REDACTION_LOG,
                loadfile.csv_line(
                    [
                        bates,
                        str(record.id),
                        str(record.version),
                        str(item.id),
                        f"{item.start}:{item.end}",
                        item.exemption,
                        span.label,
                        item.reason,
                        item.created_by,
                        item.created_at,
                    ]
                ).encode("utf-8"),
            )
        self.counts["~redacted_records"] += 1
        self.counts["~redactions"] += len(spans)

    def _media(
        self, record: Record, snapshot: bytes, number: int, position: int, files: _Files
    ) -> list[dict[str, Any]]:
        """Images the snapshot names (``media``: url, sha256, mime_type), copied beside it."""
        if b'"media"' not in snapshot:
            return []
        body = json.loads(snapshot)
        listed = body.get("media") if isinstance(body, dict) else None
        out: list[dict[str, Any]] = []
        for index, item in enumerate(listed or [], start=1):
            digest = item.get("sha256") if isinstance(item, dict) else None
            if not digest:
                continue
            data = self._object(record, str(digest), f"image {index}", position)
            rel = layout.media_path(self.prefix, number, index, item.get("mime_type"))
            assert self.writer is not None
            files.add(self.writer, rel, data)
            alt = item.get("alt_text")
            out.append(
                {
                    "path": rel,
                    "sha256": digest,
                    "url": item.get("url"),
                    "alt_text": alt if isinstance(alt, str) else None,
                }
            )
        return out

    def _thread(
        self,
        row: PlanRow,
        record: Record,
        bates: str,
        posted: str,
        captured: str,
        native: str,
        spans: list[redact.Span],
        media: list[dict[str, Any]],
    ) -> None:
        writer = self.writer
        assert writer is not None
        rel = layout.thread_path(self.prefix, self.start + row.family_first - 1)
        first, last = self.bates(row.family_first), self.bates(row.family_last)
        zone = self.settings.agency.time_zone
        if row.position == row.family_first:
            writer.open_append(rel, True)
            head = render.thread_head(
                record,
                first,
                last,
                zone=zone,
                agency=self.settings.agency.name,
                production=self.scope.identifier,
                counsel=self.production == "counsel",
            )
            writer.append(rel, head.encode("utf-8"))
            writer.append(
                INDEX,
                render.index_item(
                    rel, first, last, record, row.family_last - row.family_first + 1, zone=zone
                ).encode("utf-8"),
            )
        counsel = self.production == "counsel"
        cut = redact.pieces(record.text, spans, withhold=not counsel) if spans else None
        place = render.Place(
            index=row.position - row.item_first + 1,
            count=row.item_last - row.item_first + 1,
            previous=self.bates(row.position - 1) if row.position > row.item_first else None,
            next=self.bates(row.position + 1) if row.position < row.item_last else None,
        )
        item = render.thread_item(
            record,
            bates,
            posted,
            captured,
            native,
            zone=zone,
            place=place,
            media=media,
            pieces=cut,
            counsel=counsel,
        )
        writer.append(rel, item.encode("utf-8"))
        if row.position == row.family_last:
            writer.append(rel, render.PAGE_FOOT.encode())
            writer.close_append(rel)

    def checkpoint(self, done: int) -> None:
        writer = self.writer
        assert writer is not None
        part_size = writer.checkpoint()
        self.journal.sizes = {**writer.appended_sizes(), PART: part_size}
        self.journal.done = done
        self.journal.payload_files, self.journal.payload_bytes = writer.files, writer.bytes
        self.journal.counts = dict(self.counts)
        self.journal.save(self.partial)

    # -- the end -------------------------------------------------------------------------------

    def facts(self, completed_at: str) -> dict[str, Any]:
        total = self.journal.total
        by_kind_state: dict[tuple[str, str], int] = {}
        for key, count in self.counts.items():
            if key.startswith("~"):
                continue
            kind, _, state = key.partition("/")
            by_kind_state[(kind, state)] = count
        return {
            "agency": self.settings.agency.name,
            "identifier": self.scope.identifier,
            "request_id": self.scope.request_id,
            "request_label": self.scope.request_label,
            "query": self.scope.query.describe(),
            "query_json": self.scope.query.to_json(),
            "actor": self.journal.actor,
            "started_at": self.journal.started_at,
            "completed_at": completed_at,
            "resumed": self.journal.resumed,
            "version": __version__,
            "host": socket.gethostname(),
            "store": self.store.kind,
            "records": total,
            "disposed": self.journal.disposed,
            "first_bates": self.bates(1) if total else None,
            "last_bates": self.bates(total) if total else None,
            "by_kind_state": by_kind_state,
            "head_seq": self.journal.head_seq,
            "head_hash": self.journal.head_hash,
            "bates_prefix": self.prefix,
            "bates_start": self.start,
            "production": self.production,
            "redactions": self.counts["~redactions"],
            "redacted_records": self.counts["~redacted_records"],
        }

    def finish(self, completed: datetime) -> tuple[str, dict[str, Any]]:
        writer = self.writer
        assert writer is not None
        facts = self.facts(_utc(completed))
        if self.renderings:
            writer.append(INDEX, render.INDEX_FOOT.encode())
        writer.close_append(REDACTION_LOG)
        with open(writer.data / REDACTION_LOG, encoding="utf-8-sig", newline="") as handle:
            log = list(csv.DictReader(handle))
        writer.write(
            REDACTION_LOG_HTML,
            render.redaction_log_html(
                log,
                self.production,
                agency=facts["agency"],
                identifier=facts["identifier"],
                zone=self.settings.agency.time_zone,
                threads=self.renderings,
            ).encode("utf-8"),
        )
        markdown = render.custody_markdown(facts)
        writer.write("custody/chain-of-custody.md", markdown.encode("utf-8"))
        title = f"Chain of custody: {facts['agency']} production {facts['identifier']}"
        writer.write(
            "custody/chain-of-custody.html",
            render.custody_html(
                markdown,
                title,
                agency=facts["agency"],
                production=facts["identifier"],
                counsel=self.production == "counsel",
                threads=self.renderings,
            ).encode("utf-8"),
        )
        summary = {
            **{k: v for k, v in facts.items() if k != "by_kind_state"},
            "by_kind_state": [
                {"kind": k, "state": s, "records": n}
                for (k, s), n in sorted(facts["by_kind_state"].items())
            ],
            "format": "bulletin.production/1",
            "load_file": {"dat": DAT, "csv": CSV, "fields": list(loadfile.FIELDS)},
            "redaction_log": {"csv": REDACTION_LOG, "html": REDACTION_LOG_HTML},
        }
        writer.write(
            "manifest/production.json",
            json.dumps(summary, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8"),
        )
        empty = "  (EMPTY: no archived record matched the scope)" if not facts["records"] else ""
        readme = render.README.format(
            agency=facts["agency"],
            identifier=facts["identifier"],
            records=facts["records"],
            empty=empty,
            first=facts["first_bates"] or "none",
            last=facts["last_bates"] or "none",
            threads=render.THREADS_LINE[self.renderings],
            production=render.PRODUCTION_NOTE[self.production].format(
                redacted=facts["redacted_records"]
            ),
        )
        writer.write("README.txt", readme.encode("utf-8"))
        agency = self.settings.agency
        info: list[tuple[str, str]] = [("Source-Organization", agency.name)]
        if agency.website:
            info.append(("Organization-Address", agency.website))
        info.append(("Contact-Name", f"{agency.name} records office"))
        if agency.contact:
            kind = "Contact-Email" if "@" in agency.contact else "Contact-Phone"
            info.append((kind, agency.contact))
        description = (
            f"Production of archived social-media records: {facts['records']} records"
            + (", EMPTY: no archived record matched the scope" if not facts["records"] else "")
            + f"; scope: {facts['query']}"
        )
        info += [
            ("External-Description", description),
            ("Bagging-Date", completed.astimezone(UTC).date().isoformat()),
            ("External-Identifier", self.scope.identifier),
            ("Bag-Count", "1 of 1"),
            ("Internal-Sender-Identifier", f"bulletin-export {self.scope.identifier}"),
            ("Internal-Sender-Description", f"exported by {self.journal.actor}"),
            ("Bulletin-Version", __version__),
            ("Bulletin-Production", self.production),
            ("Bulletin-Records", str(facts["records"])),
            (
                "Bulletin-Bates-Range",
                f"{facts['first_bates']}-{facts['last_bates']}" if facts["records"] else "none",
            ),
            ("Bulletin-Ledger-Head", f"{facts['head_seq']} {facts['head_hash']}"),
        ]
        payload_sha = writer.finish(info)
        return payload_sha, facts


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
) -> ExportResult:
    """Write the production ``scope`` as a bag at ``out`` (a directory, or a zip).

    A ``public`` production withholds the text under the redactions in force (a box with the
    exemption in the text, load files and thread pages) and leaves out the natives of redacted
    records; a ``counsel`` production holds everything, the withheld text marked. Both carry
    the redaction log. Without ``renderings`` the thread pages are left out (a production
    for a review platform, which reads the load file).

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
            journal.resumed.append(_utc(started))
    elif bates_start is not None:
        bates.check_start(engine, prefix, bates_start)
    try:
        partial.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        os.chmod(partial, PRIVATE_DIR)  # nothing in it is readable by others while it is written
    except OSError as e:
        raise UsageError(f"cannot write the export at {out}: {e.strerror or e}") from None
    resumed = journal is not None
    if journal is None:
        journal = Journal(scope=wanted, started_at=_utc(started), actor=actor)
    job = _Export(engine, store, settings, scope, journal, partial)
    try:
        journal.save(partial)
        try:
            job.ensure_plan(started)
        except Refused:
            if not resumed:  # nothing was written under any number: leave nothing behind
                shutil.rmtree(partial, ignore_errors=True)
            raise
        job.load_redactions()
        writer = job.open_writer()
        total = journal.total
        try:
            done = journal.done
            rows = job.rows(done)
            while batch := list(islice(rows, chunk)):
                job.write_chunk(batch)
                done = batch[-1].position
                job.checkpoint(done)
                if progress:
                    progress(done, total)
            payload_sha, facts = job.finish(now())
        finally:
            writer.close()
            job.pool.shutdown(wait=True, cancel_futures=True)
        if as_zip:
            _zip(partial / BAG, partial / "bundle.zip", out.stem)
            source = partial / "bundle.zip"
        else:
            source = partial / BAG
        _make_private(source)
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


def _make_private(path: Path) -> None:
    """``path`` (a file, or a directory and all it holds) readable by its owner only, whatever
    the umask: a production goes to counsel by hand, never to another account of the host."""
    os.chmod(path, PRIVATE_FILE if path.is_file() else PRIVATE_DIR)
    for directory, subdirs, files in os.walk(path):
        for name in subdirs:
            os.chmod(os.path.join(directory, name), PRIVATE_DIR)
        for name in files:
            os.chmod(os.path.join(directory, name), PRIVATE_FILE)


def _zip(bag: Path, target: Path, name: str) -> None:
    """The bag as one zip whose single top folder is ``name`` (RFC 8493, section 4.4)."""
    temp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for directory, subdirs, files in os.walk(bag):
            subdirs.sort()
            for file_name in sorted(files):
                path = Path(directory) / file_name
                archive.write(path, f"{name}/{path.relative_to(bag).as_posix()}")
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
