"""Objects in the store as such: those no row refers to, the images live notices pinned,
and (S3) whatever lies on top of an archived version."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.retention import live_notice_images
from bulletin.archiver.store.base import OBJECT_PREFIX, WormStore, digest_of_key
from bulletin.archiver.verify.report import Problem, Report, rehash
from bulletin.models import LedgerEntry, Notice, Quarantine, Record, RecordMedia


def check_orphans(session: Session, store: WormStore, report: Report) -> None:
    """Objects no row refers to: left by an interrupted capture (a note), never a failure.
    A notice's images are pinned when it is drafted, before any record refers to them."""
    referenced = sa.union(
        sa.select(Record.object_sha256.label("d")),  # type: ignore[attr-defined]
        sa.select(Record.raw_sha256.label("d")).where(Record.raw_sha256.is_not(None)),  # type: ignore[union-attr]
        sa.select(col(LedgerEntry.object_sha256).label("d")).where(
            col(LedgerEntry.kind) == "certificate"
        ),
        sa.select(col(RecordMedia.sha256).label("d")).where(col(RecordMedia.sha256).is_not(None)),
        sa.select(col(Quarantine.raw_sha256).label("d")).where(
            col(Quarantine.raw_sha256).is_not(None)
        ),
    ).subquery()
    # streamed in key order (a bounded buffer, a server-side cursor on PostgreSQL) and
    # merged with the store's keys, which come in the same order: memory stays flat
    ordered = sa.select(referenced.c.d).order_by(referenced.c.d)
    rows = iter(session.execute(ordered, execution_options={"yield_per": 1000}).scalars())
    want = next(rows, None)
    pinned = _notice_images(session)
    for key in store.keys(OBJECT_PREFIX):
        digest = digest_of_key(key)
        while want is not None and digest is not None and want < digest:
            want = next(rows, None)
        if want == digest or digest in pinned:
            continue
        report.notes.append(Problem("object-without-row", key, "no archived record refers to it"))


# -- images pinned by notices ---------------------------------------------------------------


def check_notice_media(session: Session, store: WormStore, report: Report) -> None:
    """Re-hash every image a live notice pinned at drafting: what is published is read from
    the store, so an altered image must be found before it goes out, not only once a record
    of the post refers to it."""
    for notice_id, name, digest in live_notice_images(session):
        what = f"image {name} sha256/{digest}" if name else f"image sha256/{digest}"
        rehash(store, report, f"notice {notice_id}", what, digest)


def _notice_images(session: Session) -> set[str]:
    """The sha256 of every image a notice pinned (few: notices are drafted by people)."""
    found: set[str] = set()
    for images in session.exec(select(Notice.images).where(col(Notice.images).is_not(None))):
        found.update(str(i["sha256"]) for i in images or [] if i.get("sha256"))
    return found


# -- what a reader of the backend sees: versions and delete markers on top (S3) ------------


def check_shadowed(store: WormStore, report: Report) -> None:
    """Verify reads the first version of each key; name whatever lies on top of it, which is
    what anyone reading the bucket directly gets instead."""
    for shadow in store.shadowed():
        at = f"{shadow.at:%Y-%m-%d %H:%M:%S} UTC"
        if shadow.kind == "delete-marker":
            report.problems.append(
                Problem(
                    "delete-marker",
                    shadow.key,
                    f"a delete marker (version {shadow.version_id}, {at}) hides the archived "
                    "version: a reader of the bucket finds no object",
                )
            )
        else:
            report.problems.append(
                Problem(
                    "version-on-top",
                    shadow.key,
                    f"a newer version {shadow.version_id} ({at}) lies on the archived one: a "
                    "reader of the bucket gets other bytes",
                )
            )
