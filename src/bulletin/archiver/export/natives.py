"""A record's files in the bag: its snapshot and the platform's raw response (the natives),
the images its snapshot names, the WARC of the exchange that carried it, and its text, each
read from the store and checked against its sha256 on the way.

Worker threads of the job's pool run :func:`copy_slice`; the files are written but not yet
listed in the manifest, which the writing thread does in Bates order (see :mod:`.records`).
A public production leaves out the natives of a record with text withheld (they hold it) and
writes the redacted text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bulletin.archiver import redaction as redact
from bulletin.archiver.export import layout, warcs
from bulletin.archiver.export.bagwriter import BagWriter
from bulletin.archiver.export.job import Job
from bulletin.archiver.export.scope import PlanRow
from bulletin.archiver.siblings import Named, named
from bulletin.archiver.store.base import object_key
from bulletin.errors import IntegrityError, NotFound
from bulletin.models import LedgerEntry, Record


@dataclass
class Files:
    """The files one record's natives and text went to, with their hashes, in order."""

    native: str
    raw: str = ""
    text: str = ""
    media: list[dict[str, Any]] = field(default_factory=list)
    warc: str = ""
    warc_sha256: str = ""
    listed: list[tuple[str, str, int]] = field(default_factory=list)
    named: Named | None = None  # the language and siblings the snapshot names

    def add(self, writer: BagWriter, rel: str, data: bytes, digest: str | None = None) -> None:
        """Write ``rel``; ``digest``: the sha256 the store just checked ``data`` against
        (not computed again)."""
        if digest is None:
            digest = writer.write_unlisted(rel, data)
        else:
            writer.write_verified(rel, data, digest)
        self.listed.append((rel, digest, len(data)))


def copy_slice(
    job: Job,
    part: list[tuple[PlanRow, Record, LedgerEntry]],
    found: Mapping[int, Sequence[str]],
) -> list[Files]:
    """:func:`copy_files` of each record of ``part``, in order; ``found``: the WARC objects
    of each record (:func:`.warcs.digests`)."""
    return [
        copy_files(job, record, row.position, found.get(record.id or -1, ()))
        for row, record, _ in part
    ]


def copy_files(job: Job, record: Record, position: int, warc_objects: Sequence[str] = ()) -> Files:
    """Read a record's objects from the store and write its natives and text."""
    writer = job.writer
    number = job.start + position - 1
    files = Files(native=layout.native_path(job.prefix, number))
    snapshot = _object(job, record, record.object_sha256, "snapshot", position)
    withhold = job.withholds(record)
    text = record.text
    if withhold:
        # the natives hold the withheld text: they go to the counsel production only
        files.native = ""
        text = redact.redacted_text(record.text, job.spans(record))
    else:
        files.add(writer, files.native, snapshot, record.object_sha256)
        if record.raw_sha256:
            raw = _object(job, record, record.raw_sha256, "raw response", position)
            files.raw = layout.raw_path(job.prefix, number, raw)
            files.add(writer, files.raw, raw, record.raw_sha256)
        _warc(job, record, warc_objects, number, position, files)
    files.media = _media(job, record, snapshot, number, position, files)
    if record.lang and b'"siblings"' in snapshot:  # a post of a notice in several languages
        files.named = named(json.loads(snapshot))
    files.text = layout.text_path(job.prefix, number)
    files.add(writer, files.text, text.encode("utf-8"))
    return files


def _warc(
    job: Job,
    record: Record,
    objects: Sequence[str],
    number: int,
    position: int,
    files: Files,
) -> None:
    """The exchange that carried the record, from its WARC object (see :mod:`.warcs`)."""
    for digest in objects:
        part = warcs.exchange_for(
            job, record, digest, partial(_object, job, record, digest, "WARC", position)
        )
        if part is not None:
            files.warc = warcs.warc_path(job.prefix, number)
            files.add(job.writer, files.warc, part)
            files.warc_sha256 = files.listed[-1][1]
            return


def _object(job: Job, record: Record, digest: str, what: str, position: int) -> bytes:
    """The object ``digest`` of ``record``, checked.

    :raises IntegrityError: it is missing or does not match its sha256 (the export stops).
    """
    key = object_key(digest)
    try:
        return job.store.read_object(key)
    except IntegrityError:
        raise IntegrityError(
            f"record {record.id} ({job.bates(position)}): its {what} {key} in the archive "
            "does not match its sha256; export stopped (run `bulletin archive verify`)"
        ) from None
    except NotFound:
        raise IntegrityError(
            f"record {record.id} ({job.bates(position)}): its {what} {key} is missing "
            "from the archive; export stopped (run `bulletin archive verify`)"
        ) from None


def _media(
    job: Job, record: Record, snapshot: bytes, number: int, position: int, files: Files
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
        data = _object(job, record, str(digest), f"image {index}", position)
        rel = layout.media_path(job.prefix, number, index, item.get("mime_type"))
        files.add(job.writer, rel, data, str(digest))
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
