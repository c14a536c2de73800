"""A record's WARC in the bag: ``data/warc/<block>/<BATES>.warc.gz``.

The file is the ``warcinfo`` record and the request, response and metadata records of the
exchange that carried the record, copied byte for byte from the stored WARC object (gzip per
record, so every record's digests still hold; see :func:`bulletin.archiver.warc.exchange_of`).

A public production leaves out an exchange whose answer carries a record with text withheld
(any record with a redaction in force whose platform id appears in the answer): the answer
holds that text. A record captured before WARC was kept has no file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlmodel import col

from bulletin.archiver import warc
from bulletin.archiver.export import layout
from bulletin.archiver.export.job import Job
from bulletin.models import Record, RecordMedia, Redaction

_lock = threading.Lock()
CACHED_OBJECTS = 8  # WARC objects kept split by record during an export, at most
CACHED_BYTES = 16 << 20  # and at most this many bytes of them (the newest is always kept)


class _Split:
    """One WARC object split by record, once: the first caller splits, the others wait."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.by_record: dict[int, bytes] = {}
        self.size = 0
        self.error: BaseException | None = None


def _split(job: Job, digest: str, read: Callable[[], bytes]) -> dict[int, bytes]:
    with _lock:
        cache: OrderedDict[str, _Split] | None = getattr(job, "_warc_cache", None)
        if cache is None:
            cache = OrderedDict()
            job._warc_cache = cache  # type: ignore[attr-defined]
        entry = cache.get(digest)
        mine = entry is None
        if entry is None:
            entry = cache[digest] = _Split()
        else:
            cache.move_to_end(digest)
    if mine:
        try:
            entry.by_record = warc.by_record(read())
            entry.size = sum(map(len, entry.by_record.values()))
            with _lock:  # bounded by count and by bytes: flat memory whatever the export
                held = sum(e.size for e in cache.values())
                while len(cache) > 1 and (len(cache) > CACHED_OBJECTS or held > CACHED_BYTES):
                    _, old = cache.popitem(last=False)
                    held -= old.size
        except BaseException as e:  # the waiting threads raise it too; tried again next time
            entry.error = e
            with _lock:
                if cache.get(digest) is entry:
                    del cache[digest]
            raise
        finally:
            entry.done.set()
    else:
        entry.done.wait()
        if entry.error is not None:
            raise entry.error
    return entry.by_record


def warc_path(prefix: str, number: int) -> str:
    return f"warc/{layout.block(number)}/{layout.bates(prefix, number)}.warc.gz"


def digests(job: Job, record_ids: Sequence[int]) -> dict[int, list[str]]:
    """The WARC objects each of ``record_ids`` refers to, oldest first."""
    out: dict[int, list[str]] = {}
    ids = sorted(set(record_ids))
    with job.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                sa.select(col(RecordMedia.record_id), col(RecordMedia.sha256))
                .where(col(RecordMedia.record_id).in_(ids[start : start + 500]))
                .where(col(RecordMedia.mime_type) == warc.MIME_TYPE)
                .order_by(col(RecordMedia.id))
            ).all()
            for record_id, digest in rows:
                if digest:
                    out.setdefault(record_id, []).append(digest)
    return out


def withheld_ids(job: Job) -> frozenset[bytes]:
    """Platform ids of every record with a redaction in force (public productions only),
    read once per run."""
    cached: frozenset[bytes] | None = getattr(job, "_warc_withheld", None)
    if cached is not None:
        return cached
    with _lock:
        cached = getattr(job, "_warc_withheld", None)
        if cached is None:
            found: set[bytes] = set()
            if not job.counsel:
                with job.engine.connect() as conn:
                    rows = conn.execute(
                        sa.select(col(Record.remote_id))
                        .join(Redaction, col(Redaction.record_id) == col(Record.id))
                        .where(col(Redaction.removed_at).is_(None))
                        .distinct()
                    )
                    found = {str(r).encode() for (r,) in rows}
            cached = frozenset(found)
            job._warc_withheld = cached  # type: ignore[attr-defined]
    return cached


def exchange_for(job: Job, record: Record, digest: str, read: Callable[[], bytes]) -> bytes | None:
    """The part of WARC object ``digest`` (``read()`` reads it) to produce for ``record``, or
    None. Records captured together share an object: the last few objects are kept split by
    record, so each is read and split once however many records refer to it (the first
    thread to want an object splits it; the others wait for it rather than split it too)."""
    split = _split(job, digest, read)
    part = split.get(record.id or -1)
    if part is None:
        return None
    blocked = withheld_ids(job)
    if blocked:
        plains = [plain for _raw, plain in warc.members(part)]
        if any(rid in plain for plain in plains for rid in blocked):
            return None
    return part
