"""One run of an export: what every step of it shares (see :mod:`.exporter`).

A :class:`Job` holds the run's inputs (database, store, settings, scope), its journal and
work directory, the bag being written, the Bates numbering and the redactions frozen when it
was planned. The steps are functions over a job, one module each: :mod:`.plan` (what goes
in), :mod:`.natives` (objects copied from the store), :mod:`.records` (load files and
manifests), :mod:`.threads` (the thread pages) and :mod:`.finish` (custody, bag completion).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import Engine

from bulletin.archiver import redaction as redact
from bulletin.archiver.export import layout
from bulletin.archiver.export.bagwriter import BagWriter
from bulletin.archiver.export.journal import Journal
from bulletin.archiver.export.scope import Scope
from bulletin.archiver.store.base import WormStore
from bulletin.config.settings import Settings
from bulletin.models import Record

Production = Literal["public", "counsel"]

# files of the bag written by appending, record after record (paths under data/)
DAT = "loadfile/production.dat"
CSV = "loadfile/production.csv"
RECORDS_JSONL = "manifest/records.jsonl"
RECORDS_CSV = "manifest/records.csv"
REDACTION_LOG = "redactions/redaction-log.csv"
INDEX = "threads/index.html"
PDFS = "manifest/pdfs.csv"  # each thread's PDF with its sha256 (with PDFs only)
# beside the bag in the work directory
PART = "payload-manifest.part"
REDACTIONS = "redactions.jsonl"  # the redactions in force when the export began
# threads copying objects from the store: the copies are small reads and writes whose every
# system call hands the interpreter's lock back and forth, so more threads than cores cost
# more than they overlap (on 2 cores, 2 export 100,000 records 7-9 % faster than 4)
COPY_THREADS = min(4, max(2, os.cpu_count() or 2))


@dataclass(frozen=True)
class Withheld:
    """A redaction as it stood when the export began (frozen by :func:`.plan.ensure_plan`)."""

    id: int
    record_id: int
    start: int
    end: int
    exemption: str
    reason: str
    created_by: str
    created_at: str  # UTC, ISO 8601


class Job:
    """The state of one run of an export; see the module doc."""

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
        self._writer: BagWriter | None = None
        self.pool = ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="export")
        self.production: Production = journal.scope.get("production", "public")
        self.renderings: bool = journal.scope.get("renderings", True)
        self.wacz: bool = journal.scope.get("wacz", False)
        # thread pages also as PDF/A (:mod:`.pdf`); a journal from before PDFs has none
        self.pdf: bool = self.renderings and journal.scope.get("pdf", False)
        self.redactions: dict[int, list[Withheld]] = {}
        self._places: dict[tuple[str, str], tuple[int, int]] | None = None

    def places(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Where each post of a notice in several languages stands in this production:
        (account, remote id) -> the positions of its first version and of its thread's
        first record. Read once (the plan and one query), for linking the languages."""
        if self._places is None:
            from bulletin.archiver.export.plan import language_posts

            self._places = language_posts(self)
        return self._places

    @property
    def writer(self) -> BagWriter:
        """The bag being written (once opened by the exporter)."""
        assert self._writer is not None
        return self._writer

    @writer.setter
    def writer(self, writer: BagWriter) -> None:
        self._writer = writer

    @property
    def counsel(self) -> bool:
        """Whether this is the counsel production."""
        return self.production == "counsel"

    @property
    def start(self) -> int:
        """The first Bates number, once issued (see :func:`.plan.issue_numbers`)."""
        return self.journal.bates_first or 1

    def bates(self, position: int) -> str:
        """The Bates number of the record at ``position`` (from 1) in the production."""
        return layout.bates(self.prefix, self.start + position - 1)

    def spans(self, record: Record) -> list[redact.Span]:
        """What this production withholds of ``record`` (labels as configured)."""
        return [
            redact.Span(r.start, r.end, redact.label_of(self.settings, r.exemption))
            for r in self.redactions.get(record.id or -1, ())
        ]

    def withholds(self, record: Record) -> bool:
        """Whether this is a public production and ``record`` has text withheld."""
        return self.production == "public" and (record.id or -1) in self.redactions
