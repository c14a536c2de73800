"""A chunk of records into the bag: each record checked against its ledger entry, its files
copied (:mod:`.natives`, on worker threads), then, in Bates order, its lines in the load files
(DAT and CSV), the records manifest (JSON lines and CSV), the redaction log, and its place in
its thread's page (:mod:`.threads`).

A public production gives no hash of a record whose text is withheld (a hash would let anyone
confirm a guess at the withheld text) and writes its text redacted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from concurrent.futures import wait
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session

from bulletin.archiver import redaction as redact
from bulletin.archiver.export import layout, loadfile, pages, pdf, threads, warcs
from bulletin.archiver.export.job import (
    CSV,
    DAT,
    RECORDS_CSV,
    RECORDS_JSONL,
    REDACTION_LOG,
    Job,
)
from bulletin.archiver.export.natives import Files, copy_slice
from bulletin.archiver.export.scope import PlanRow
from bulletin.archiver.siblings import language_name, siblings
from bulletin.errors import IntegrityError
from bulletin.models import LedgerEntry, Record
from bulletin.timeparse import iso_utc

COPY_SLICE = 50  # records per task given to a copying thread
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


# one encoder for every line of the records manifest: what ``json.dumps(line,
# ensure_ascii=False, sort_keys=True)`` gives, without building an encoder per line
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


class ChunkLines:
    """The lines a chunk of records adds to the load files and the records manifest, in
    Bates order, written to the bag in one piece per file at the end of the chunk (the same
    bytes as line by line: the CSV rows go through one writer, the RFC 4180 one of
    :func:`.loadfile.csv_line`)."""

    def __init__(self) -> None:
        self.dat: list[str] = []
        self.csv: list[Sequence[str]] = []
        self.jsonl: list[str] = []
        self.records_csv: list[Sequence[str]] = []

    def write(self, job: Job) -> None:
        """Append what was collected to the bag's files and start afresh."""
        writer = job.writer
        if self.dat:
            writer.append(DAT, "".join(self.dat).encode("utf-8"))
        if self.csv:
            writer.append(CSV, _csv_rows(self.csv).encode("utf-8"))
        if self.jsonl:
            writer.append(RECORDS_JSONL, ("\n".join(self.jsonl) + "\n").encode("utf-8"))
        if self.records_csv:
            writer.append(RECORDS_CSV, _csv_rows(self.records_csv).encode("utf-8"))
        self.dat, self.csv, self.jsonl, self.records_csv = [], [], [], []


def _csv_rows(rows: Sequence[Sequence[str]]) -> str:
    """The CSV lines of ``rows``, as :func:`.loadfile.csv_line` writes each."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _iso(when: datetime | None) -> str:
    """:func:`~bulletin.timeparse.iso_utc` of ``when`` ("" for None), in fewer steps for
    the aware UTC values the index returns."""
    if when is None:
        return ""
    if when.tzinfo is UTC:  # as the index returns them: "+00:00" written "Z"
        return when.isoformat()[:-6] + "Z"
    return iso_utc(when)


def write_headers(job: Job) -> None:
    """The header lines of the load files, the records CSV and the redaction log."""
    writer = job.writer
    header = list(loadfile.FIELDS)
    writer.append(DAT, (loadfile.BOM + loadfile.dat_line(header)).encode())
    writer.append(CSV, (loadfile.BOM + loadfile.csv_line(header)).encode())
    writer.append(RECORDS_CSV, loadfile.csv_line(list(RECORD_COLUMNS)).encode())
    writer.append(
        REDACTION_LOG,
        (loadfile.BOM + loadfile.csv_line(list(REDACTION_LOG_COLUMNS))).encode(),
    )


def write_chunk(job: Job, rows: list[PlanRow]) -> None:
    """The records of ``rows`` (consecutive in Bates order) into the bag.

    :raises IntegrityError: a record left the index, its ledger entry does not name it and
        its object, or an object fails its hash (the export stops, resumable).
    """
    ids = [r.record_id for r in rows]
    table = Record.__table__  # type: ignore[attr-defined]
    with job.engine.connect() as conn:
        # plain rows, read by attribute like the models: building model objects would cost
        # more than the rest of the export's own work per record
        records: dict[int, Record] = {
            row.id: cast(Record, row)
            for row in conn.execute(sa.select(table).where(table.c.id.in_(ids))).all()
        }
        seqs = [r.ledger_seq for r in records.values() if r.ledger_seq is not None]
        ledger_table = LedgerEntry.__table__  # type: ignore[attr-defined]
        entries: dict[int, LedgerEntry] = {
            row.seq: cast(LedgerEntry, row)
            for row in conn.execute(
                sa.select(ledger_table).where(ledger_table.c.seq.in_(seqs))
            ).all()
        }
    work: list[tuple[PlanRow, Record, LedgerEntry]] = []
    for row in rows:
        record = records.get(row.record_id)
        if record is None:
            raise IntegrityError(
                f"record {row.record_id} ({job.bates(row.position)}) left the index while "
                "it was being exported; export stopped"
            )
        entry = entries.get(record.ledger_seq or -1)
        if (
            entry is None
            or entry.record_id != record.id
            or entry.object_sha256 != record.object_sha256
        ):
            raise IntegrityError(
                f"record {record.id} ({job.bates(row.position)}): ledger entry "
                f"{record.ledger_seq} does not name it and its object; export stopped "
                "(run `bulletin archive verify`)"
            )
        work.append((row, record, entry))
    writer = job.writer
    # Reading objects and creating files is mostly waiting on the kernel: worker threads
    # do it while this thread writes the load files and pages, in Bates order.
    slices = [work[i : i + COPY_SLICE] for i in range(0, len(work), COPY_SLICE)]
    found = warcs.digests(job, [record.id for _, record, _ in work if record.id is not None])
    copies = [job.pool.submit(copy_slice, job, part, found) for part in slices]
    lines = ChunkLines()
    try:
        for part, copy in zip(slices, copies, strict=True):
            for (row, record, entry), files in zip(part, copy.result(), strict=True):
                writer.list_many(files.listed)
                write_record(job, row, record, entry, files, lines)
        lines.write(job)
    finally:
        for copy in copies:
            copy.cancel()
        wait(copies)


def write_record(
    job: Job,
    row: PlanRow,
    record: Record,
    entry: LedgerEntry,
    files: Files,
    lines: ChunkLines | None = None,
) -> None:
    """The record's lines in the load files and manifests (collected in ``lines`` when
    given, for its :meth:`ChunkLines.write`; else appended at once), and its place in its
    thread."""
    out = ChunkLines() if lines is None else lines
    bates = job.bates(row.position)
    family = [job.bates(row.family_first), job.bates(row.family_last)]
    native, raw_rel, text_rel, media = files.native, files.raw, files.text, files.media
    posted = _iso(record.posted_at)
    captured = _iso(record.captured_at)
    redacted = bool(job.redactions)  # nothing to withhold in most productions
    spans = job.spans(record) if redacted else []
    withhold = redacted and job.withholds(record)
    # a hash of a withheld native would let anyone confirm a guess at the withheld text
    object_sha = None if withhold else record.object_sha256
    raw_sha = None if withhold else record.raw_sha256
    entry_hash = None if withhold else entry.entry_hash
    text = redact.redacted_text(record.text, spans) if withhold else record.text
    labels = sorted({span.label for span in spans})
    also, sibling_bates = languages(job, record, files)
    fields = [
        bates,
        bates,
        family[0],
        family[1],
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
    out.dat.append(loadfile.dat_line(fields))
    out.csv.append(fields)
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
        "family": family,
        "native": native or None,
        "raw": raw_rel or None,
        "text": text_rel,
        "media": media,
        "warc": files.warc or None,
        "warc_sha256": files.warc_sha256 or None,
        "redacted": bool(spans),
        "exemptions": labels,
        "natives_withheld": withhold,
        # a post of a notice in several languages: its language, and the first versions of
        # the same notice's posts in the other languages that are in this production
        "lang": record.lang,
        "siblings": sibling_bates,
        # the PDF of the record's thread, listed with its sha256 in manifest/pdfs.csv
        "pdf": pdf.pdf_path(layout.thread_path(job.prefix, job.start + row.family_first - 1))
        if job.pdf
        else None,
    }
    if spans and job.counsel:
        line["redactions"] = [
            {"characters": f"{r.start}:{r.end}", "exemption": r.exemption, "label": s.label}
            for r, s in zip(job.redactions[record.id or -1], spans, strict=True)
        ]
    out.jsonl.append(_JSON.encode(line))
    out.records_csv.append(["" if line[c] is None else str(line[c]) for c in RECORD_COLUMNS])
    if lines is None:
        out.write(job)
    if job.renderings:
        threads.write_record(job, row, record, bates, posted, captured, native, spans, media, also)
    job.counts[f"{record.kind}/{record.state}"] += 1
    if spans:
        _log(job, record, bates, spans)


def languages(job: Job, record: Record, files: Files) -> tuple[list[pages.Also], list[str]]:
    """The same notice's posts in the other languages (those the record's snapshot names,
    else every one archived; see :mod:`bulletin.archiver.siblings`), each linked to its
    place in the thread pages when it is in this production; and the Bates numbers of their
    first versions here. Nothing for anything but a post of a notice in several languages."""
    if record.kind != "post" or not record.lang or record.notice_id is None:
        return [], []
    with Session(job.engine) as session:
        found = siblings(session, record, files.named)
    places = job.places()
    own = places.get((record.account, record.remote_id))
    also, numbers = [], []
    for sibling in found:
        place = places.get((sibling.account, sibling.remote_id or ""))
        href = None
        if place is not None and sibling.remote_id is not None:
            position, family = place
            numbers.append(job.bates(position))
            target = pages.anchor("post", sibling.remote_id)
            same_page = own is not None and own[1] == family
            href = f"#{target}" if same_page else f"{job.bates(family)}.html#{target}"
        name = language_name(sibling.lang)
        also.append(pages.Also(sibling.lang, name, sibling.account, href))
    return also, numbers


def _log(job: Job, record: Record, bates: str, spans: list[redact.Span]) -> None:
    """The record's lines in the redaction log (never the withheld text)."""
    for item, span in zip(job.redactions[record.id or -1], spans, strict=True):
        job.writer.append(
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
    job.counts["~redacted_records"] += 1
    job.counts["~redactions"] += len(spans)
