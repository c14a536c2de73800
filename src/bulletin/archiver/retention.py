"""Retention from day one: a series for every record, retain-until = anchor + period."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.config.archive import PERMANENT_SERIES as PERMANENT_SERIES
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.models import Notice, Record, RecordMedia
from bulletin.states import NoticeState

# "permanent" = a legal hold plus the longest retention a backend reliably accepts.
PERMANENT = timedelta(days=round(365.25 * 100))

BUILT_IN_SERIES = (
    "agency-posts",
    "visitor-comments",
    "emergency-notices",
    "moderation-actions",
    "ledger",
    "certificates",
)


def series_for(kind: str, priority: str | None = None) -> str:
    """The record series an archived item belongs to."""
    if kind in ("comment", "webhook"):  # a webhook event is evidence of visitors' comments
        return "visitor-comments"
    if kind == "moderation":
        return "moderation-actions"
    if priority == "emergency":
        return "emergency-notices"
    return "agency-posts"


def retain_until(
    settings: Settings, series: str, *, posted_at: datetime | None, captured_at: datetime
) -> tuple[datetime, bool]:
    """When a record of ``series`` may first be disposed of, and whether it is permanent.

    Retain-until is the anchor plus the series' period in calendar terms, counted in the
    agency's time zone (:meth:`bulletin.timeparse.Span.after`): 6 months from 1 July 10:00 is
    1 January 10:00, 7 years from 29 February is 1 March.
    """
    anchor = captured_at
    if settings.anchor_for(series) == "posted" and posted_at is not None:
        anchor = posted_at
    period = settings.retain_for(series)
    if period is None:
        return captured_at + PERMANENT, True
    return period.after(anchor, settings.agency.time_zone), False


def media_digests(session: Session, record_ids: Sequence[int]) -> dict[int, list[str]]:
    """The stored images (their sha256) each of ``record_ids`` refers to, in order."""
    out: dict[int, list[str]] = {}
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), 500):
        rows = session.exec(
            select(RecordMedia.record_id, RecordMedia.sha256)
            .where(col(RecordMedia.record_id).in_(ids[start : start + 500]))
            .where(col(RecordMedia.sha256).is_not(None))
            .order_by(col(RecordMedia.id))
        )
        for record_id, digest in rows:
            if digest:
                out.setdefault(record_id, []).append(digest)
    return out


#: notices whose pinned images may still be published (recurring ones: while more are due)
IMAGE_KEEPING_STATES = (NoticeState.DRAFT, NoticeState.APPROVED, NoticeState.PARTIALLY_PUBLISHED)


def live_notice_images(session: Session) -> Iterator[tuple[int, str, str]]:
    """``(notice id, image name, sha256)`` of every image a live notice pinned, by notice.

    A live notice may still publish its images, so they are kept and checked like a record's.
    """
    rows = session.exec(
        select(Notice.id, Notice.images)
        .where(col(Notice.images).is_not(None))
        .where(
            sa.or_(
                col(Notice.state).in_(IMAGE_KEEPING_STATES),
                col(Notice.next_occurrence_at).is_not(None),
            )
        )
        .order_by(col(Notice.id))
    )
    for notice_id, images in rows:
        for image in images or []:
            if image.get("sha256"):
                yield notice_id or 0, str(image.get("name") or ""), str(image["sha256"])


@dataclass
class SeriesChange:
    """What ``retention apply`` did (or would do) to one series."""

    extended: int = 0
    unchanged: int = 0
    kept_longer: int = 0  # the schedule gives less than these records already have
    held: int = 0  # newly permanent: legal hold placed
    objects: int = 0  # store objects whose retention or hold changed


@dataclass
class ApplyReport:
    series: dict[str, SeriesChange] = field(default_factory=dict)
    dry_run: bool = False

    def of(self, name: str) -> SeriesChange:
        return self.series.setdefault(name, SeriesChange())


def apply_schedule(
    engine: Engine,
    store: WormStore,
    settings: Settings,
    now: datetime,
    actor: str,
    *,
    dry_run: bool = False,
    batch: int = 1000,
) -> ApplyReport:
    """Re-compute every retained record's retain-until from the schedule and extend it (the
    index row and every store object: snapshot, raw and images). Never shortens: a record that
    already has more keeps it and is counted as ``kept_longer``. A series now permanent gets a
    legal hold. The store is extended before the index says so. Every extension is audited."""
    report = ApplyReport(dry_run=dry_run)
    last = 0
    while True:
        with Session(engine) as session:
            rows = session.exec(
                select(Record)
                .where(col(Record.id) > last)
                .where(col(Record.disposed_at).is_(None))
                .order_by(col(Record.id))
                .limit(batch)
            ).all()
        if not rows:
            return report
        last = rows[-1].id or last
        changed: list[tuple[Record, datetime, bool]] = []
        for record in rows:
            until, permanent = retain_until(
                settings, record.series, posted_at=record.posted_at, captured_at=record.captured_at
            )
            change = report.of(record.series)
            old = record.retain_until
            longer = old is None or until > old
            hold = permanent and not record.legal_hold
            if old is not None and until < old:
                change.kept_longer += 1
            if not longer and not hold:
                change.unchanged += 1
                continue
            change.extended += longer
            change.held += hold
            changed.append((record, until if longer else old or until, hold))
        if dry_run or not changed:
            continue
        with Session(engine) as session:
            media = media_digests(session, [r.id for r, _, _ in changed if r.id is not None])
        for record, until, hold in changed:
            own = (record.object_sha256, record.raw_sha256, *media.get(record.id or 0, []))
            for digest in filter(None, own):
                key = object_key(digest)
                info = store.head(key)
                if info is None:
                    continue
                if info.retain_until < until:
                    store.extend_retention(key, until)
                    report.of(record.series).objects += 1
                if hold and not info.legal_hold:
                    store.set_legal_hold(key, True)
        store.flush()
        with session_scope(engine) as session:
            for record, until, hold in changed:
                values: dict[str, object] = {"retain_until": until}
                if hold:
                    values["legal_hold"] = True
                session.execute(
                    sa.update(Record).where(col(Record.id) == record.id).values(**values)
                )
            audit.record_events(
                session,
                [
                    audit.event(
                        at=now,
                        actor=actor,
                        action="retention-extended",
                        object_type="record",
                        object_id=record.id or 0,
                        series=record.series,
                        retain_until_before=record.retain_until,
                        retain_until=until,
                        permanent_hold=hold,
                    )
                    for record, until, hold in changed
                ],
            )


@dataclass(frozen=True)
class SeriesCount:
    series: str
    records: int
    held: int
    past_retention: int
    disposed: int


def series_counts(engine: Engine, now: datetime) -> list[SeriesCount]:
    """Records per series: all, on legal hold, past retention (not held, not disposed),
    disposed of."""
    with Session(engine) as session:
        rows = session.execute(
            sa.select(
                col(Record.series),
                sa.func.count(),
                sa.func.sum(sa.case((col(Record.legal_hold).is_(True), 1), else_=0)),
                sa.func.sum(
                    sa.case(
                        (
                            sa.and_(
                                col(Record.legal_hold).is_(False),
                                col(Record.disposed_at).is_(None),
                                col(Record.retain_until) <= now,
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
                sa.func.sum(sa.case((col(Record.disposed_at).is_not(None), 1), else_=0)),
            )
            .group_by(col(Record.series))
            .order_by(col(Record.series))
        ).all()
    return [SeriesCount(s, int(n), int(h or 0), int(p or 0), int(d or 0)) for s, n, h, p, d in rows]


def schedule(settings: Settings, names: Sequence[str] = ()) -> list[dict[str, str]]:
    """The schedule as rows: every configured series, the built-in ones and ``names``."""
    known = [*BUILT_IN_SERIES, *settings.retention.series, *names]
    rows = []
    for name in dict.fromkeys(known):
        configured = settings.retention.series.get(name)
        period = settings.retain_for(name)
        rows.append(
            {
                "series": name,
                "period": "permanent"
                if period is None
                else (configured.period if configured else settings.retention.default_period),
                "anchor": settings.anchor_for(name),
                "disposition": settings.disposition_for(name),
                "authority": configured.authority if configured else "",
                "configured": "yes" if configured else "default",
            }
        )
    return rows
