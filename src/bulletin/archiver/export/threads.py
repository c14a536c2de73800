"""The readable thread pages of a production and their index, streamed record by record.

A thread's records are consecutive in Bates order: its first record opens its page
(``threads/<first Bates>.html``) and its entry in ``threads/index.html``, its last closes the
page. A page left open by an interruption is continued by appending (see :mod:`.journal`).
The HTML comes from :mod:`.render`; a production made without renderings has none of it.
A closed page is rendered to PDF/A too when the production asks for it (:mod:`.pdf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bulletin.archiver import redaction as redact
from bulletin.archiver.export import layout, pages, pdf, render
from bulletin.archiver.export.job import INDEX, Job
from bulletin.archiver.export.scope import PlanRow
from bulletin.models import Record


def write_index_head(job: Job) -> None:
    """The top of the index of threads, up to the opening of its list."""
    job.writer.append(
        INDEX,
        render.index_head(
            job.settings.agency.name,
            job.scope.identifier,
            zone=job.settings.agency.time_zone,
            records=job.journal.total,
            counsel=job.counsel,
        ).encode(),
    )


def write_index_foot(job: Job) -> None:
    """The end of the index of threads."""
    job.writer.append(INDEX, render.INDEX_FOOT.encode())


def write_record(
    job: Job,
    row: PlanRow,
    record: Record,
    bates: str,
    posted: str,
    captured: str,
    native: str,
    spans: list[redact.Span],
    media: list[dict[str, Any]],
    also: Sequence[pages.Also] = (),
) -> None:
    """The record on its thread's page (opening the page and its index entry for the
    thread's first record, closing the page after its last); ``also``: the same notice's
    posts in the other languages (see :func:`.records.languages`)."""
    writer = job.writer
    rel = layout.thread_path(job.prefix, job.start + row.family_first - 1)
    first, last = job.bates(row.family_first), job.bates(row.family_last)
    zone = job.settings.agency.time_zone
    if row.position == row.family_first:
        writer.open_append(rel, True)
        head = render.thread_head(
            record,
            first,
            last,
            zone=zone,
            agency=job.settings.agency.name,
            production=job.scope.identifier,
            counsel=job.counsel,
        )
        writer.append(rel, head.encode("utf-8"))
        writer.append(
            INDEX,
            render.index_item(
                rel, first, last, record, row.family_last - row.family_first + 1, zone=zone
            ).encode("utf-8"),
        )
    counsel = job.counsel
    cut = redact.pieces(record.text, spans, withhold=not counsel) if spans else None
    place = pages.Place(
        index=row.position - row.item_first + 1,
        count=row.item_last - row.item_first + 1,
        previous=job.bates(row.position - 1) if row.position > row.item_first else None,
        next=job.bates(row.position + 1) if row.position < row.item_last else None,
    )
    item = pages.item(
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
        also=also,
    )
    writer.append(rel, render.thread_item(item).encode("utf-8"))
    if row.position == row.family_last:
        writer.append(rel, render.PAGE_FOOT.encode())
        writer.close_append(rel)
        if job.pdf:
            pdf.write_thread(job, rel, first, last)
