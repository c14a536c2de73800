"""What goes into a production, frozen when it starts: the plan, its Bates numbers and the
redactions in force.

``plan.tsv`` lists the records in Bates order (see :mod:`.journal`); ``redactions.jsonl``
keeps the redactions as they stood, so that a resumed export withholds exactly what the first
run did. A public production is refused before anything is numbered when another version of
a redacted item would show the withheld text.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from bulletin.archiver import redaction as redact
from bulletin.archiver.export import bates
from bulletin.archiver.export.job import REDACTIONS, Job, Withheld
from bulletin.archiver.export.journal import PLAN
from bulletin.archiver.export.scope import PlanRow, count_disposed, head, plan
from bulletin.errors import Refused, UsageError
from bulletin.models import Record
from bulletin.timeparse import iso_utc


def ensure_plan(job: Job, now: datetime) -> None:
    """Write the plan and freeze the redactions, once; then issue the Bates numbers.

    :raises Refused: a public production would show withheld text (nothing is left behind),
        or the numbers overlap numbers issued before.
    :raises UsageError: the numbers would not fit (nothing is left behind).
    """
    if job.journal.planned:
        issue_numbers(job, now)  # an export planned before numbers were registered
        return
    seq, digest = head(job.engine)
    tz = job.settings.agency.time_zone
    temp = job.partial / (PLAN + ".tmp")
    total = 0
    with open(temp, "w", encoding="ascii") as handle:
        for row in plan(job.engine, job.scope.query, tz, seq):
            handle.write(
                f"{row.record_id}\t{row.family_first}\t{row.family_last}\t"
                f"{row.item_first}\t{row.item_last}\n"
            )
            total += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, job.partial / PLAN)
    _refuse_unredacted_copies(job)
    _freeze_redactions(job)
    job.journal.total = total
    job.journal.head_seq, job.journal.head_hash = seq, digest
    job.journal.disposed = count_disposed(job.engine, job.scope.query, tz, seq)
    try:
        issue_numbers(job, now)
    except UsageError:  # the numbers would not fit: nothing was issued, nothing is left
        shutil.rmtree(job.partial, ignore_errors=True)
        raise
    job.journal.planned = True
    job.journal.save(job.partial)


def issue_numbers(job: Job, now: datetime) -> None:
    """Take this production's Bates range from the register, once (a resumed export keeps
    it); saved in the journal before any number is written.

    :raises Refused: the range asked for overlaps one issued before.
    """
    if job.journal.bates_first is not None:
        return
    job.journal.bates_first = bates.reserve(
        job.engine,
        job.store,
        prefix=job.prefix,
        start=job.journal.scope.get("bates_start"),
        count=job.journal.total,
        run=job.journal.run,
        identifier=job.scope.identifier,
        production=job.production,
        actor=job.journal.actor,
        now=now,
    )
    job.journal.save(job.partial)


def _refuse_unredacted_copies(job: Job) -> None:
    """A public production may not hold, in another version of a redacted item, the very
    text the redaction withholds (a version captured after the redaction was made)."""
    if job.production != "public":
        return
    with job.engine.connect() as conn:
        copies = redact.unredacted_copies(conn, redact.active(conn))
    if not copies:
        return
    candidates = {c.record_id: c for c in copies}
    found = []
    with open(job.partial / PLAN, encoding="ascii") as handle:
        for line in handle:
            copy = candidates.get(int(line.split("\t", 1)[0]))
            if copy is not None:
                found.append(copy)
    if not found:
        return
    shutil.rmtree(job.partial, ignore_errors=True)
    listed = ", ".join(
        f"record {c.record_id} (version {c.version}; redaction {c.redaction_id})" for c in found[:5]
    )
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    raise Refused(
        f"text withheld by a redaction stands unredacted in another version of the same "
        f"item in this production: {listed}{more}; withhold it there too by propagating the "
        "redaction, or make the counsel production",
        remedy="propagate-or-counsel",
    )


def _freeze_redactions(job: Job) -> None:
    """The redactions in force now, kept beside the plan so that a resumed export
    withholds exactly what the first run did."""
    temp = job.partial / (REDACTIONS + ".tmp")
    with job.engine.connect() as conn, open(temp, "w", encoding="utf-8") as handle:
        for item in redact.active(conn):
            frozen = Withheld(
                id=item.id or 0,
                record_id=item.record_id,
                start=item.start,
                end=item.end,
                exemption=item.exemption,
                reason=item.reason,
                created_by=item.created_by,
                created_at=iso_utc(item.created_at),
            )
            handle.write(json.dumps(asdict(frozen), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, job.partial / REDACTIONS)


def load_redactions(job: Job) -> None:
    """The redactions frozen by :func:`ensure_plan`, into ``job.redactions`` by record."""
    job.redactions = {}
    with open(job.partial / REDACTIONS, encoding="utf-8") as handle:
        for line in handle:
            item = Withheld(**json.loads(line))
            job.redactions.setdefault(item.record_id, []).append(item)


def rows(job: Job, after: int) -> Iterator[PlanRow]:
    """The plan's records after the first ``after``, in Bates order."""
    with open(job.partial / PLAN, encoding="ascii") as handle:
        for position, line in enumerate(handle, start=1):
            if position <= after:
                continue
            record_id, first, last, *item = line.split("\t")
            # a plan written before item ranges were recorded: one version per item
            item_first, item_last = map(int, item) if item else (position, position)
            yield PlanRow(int(record_id), position, int(first), int(last), item_first, item_last)


def language_posts(job: Job) -> dict[tuple[str, str], tuple[int, int]]:
    """(account, remote id) -> (position of its first version, of its thread's first
    record) for each post of a notice in several languages in the plan."""
    table = Record.__table__  # type: ignore[attr-defined]
    with job.engine.connect() as conn:
        posts = {
            rid: (account, remote_id)
            for rid, account, remote_id in conn.execute(
                sa.select(table.c.id, table.c.account, table.c.remote_id).where(
                    table.c.kind == "post",
                    table.c.lang.is_not(None),
                    table.c.notice_id.is_not(None),
                )
            )
        }
    out: dict[tuple[str, str], tuple[int, int]] = {}
    if not posts:
        return out
    for row in rows(job, 0):
        item = posts.get(row.record_id)
        if item is not None and item not in out:
            out[item] = (row.position, row.family_first)
    return out
