"""``archive verify``: every object against its hash, the ledger chain from the first entry, the
mirror against the database, and objects against index rows; then the images live notices
pinned, the heads the witnesses outside the store saw, and (S3) whatever lies on top of an
archived version. Streams; memory stays flat."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver import decisions, ledger
from bulletin.archiver import witness as witnesses
from bulletin.archiver.retention import live_notice_images, media_digests
from bulletin.archiver.store.base import (
    OBJECT_PREFIX,
    WormStore,
    digest_of_key,
    object_key,
    sha256_hex,
)
from bulletin.config.settings import WitnessSettings
from bulletin.errors import IntegrityError, NotFound, StoreUnavailable
from bulletin.models import LedgerEntry, Notice, Quarantine, Record, RecordMedia


@dataclass(frozen=True)
class Problem:
    """One discrepancy, named by what it concerns."""

    kind: str  # object-altered | object-missing | chain-broken | mirror-* | row-* | ...
    subject: str  # "record 12", "ledger 40", "object sha256/…"
    detail: str

    def line(self) -> str:
        return f"{self.subject}: {self.kind}: {self.detail}"


@dataclass
class Report:
    records: int = 0
    entries: int = 0
    objects: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # not failures, but look
    head_hash: str = ledger.GENESIS

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    engine: Engine,
    store: WormStore,
    progress: Callable[[str, int, bool], None] | None = None,
    batch: int = 1000,
    *,
    witness: WitnessSettings | None = None,
    now: datetime | None = None,
) -> Report:
    """Check the whole archive; never raises for what it finds, only reports it.

    ``progress(phase, done, finished)`` is called every ``batch`` items of the two long
    phases, ``"ledger"`` (entries walked) and ``"records"`` (records whose objects were
    re-hashed), and once more when each phase ends. ``witness``: the chain is compared with
    the witnesses it can read back; ``now``: warn of checkpoints missing or overdue.
    """
    report = Report()
    with Session(engine) as session:
        _check_chain(session, store, report, batch, progress)
        if progress:
            progress("ledger", report.entries, True)
        _check_records(session, store, report, batch, progress)
        if progress:
            progress("records", report.records, True)
        _check_orphans(session, store, report)
        _check_notice_media(session, store, report)
        _check_checkpoints(session, store, report)
        _check_certificates(session, store, report)
        _check_witnesses(session, store, report, witness, now)
    _check_shadowed(store, report)
    for kind, key, detail in decisions.check(engine, store):
        report.problems.append(Problem(kind, key, detail))
    return report


def _check_certificates(session: Session, store: WormStore, report: Report) -> None:
    """Every certificate of destruction the ledger names is in the store, unaltered."""
    for digest in session.exec(
        select(LedgerEntry.object_sha256).where(col(LedgerEntry.kind) == "certificate")
    ).all():
        if not digest:
            continue
        try:
            store.get(object_key(digest), verify=True)
            report.objects += 1
        except IntegrityError:
            report.problems.append(
                Problem("object-altered", f"certificate sha256/{digest}", "does not match its hash")
            )
        except NotFound:
            report.problems.append(
                Problem("object-missing", f"certificate sha256/{digest}", "is not in the store")
            )


def _check_checkpoints(session: Session, store: WormStore, report: Report) -> None:
    """Every checkpoint's head must still be in the chain with the same hash."""
    for key in store.keys(ledger.CHECKPOINT_PREFIX):
        try:
            point = json.loads(store.get(key, verify=False))
            seq, expected = int(point["head_seq"]), str(point["head_hash"])
        except (ValueError, KeyError, TypeError, NotFound, StoreUnavailable) as e:
            report.problems.append(Problem("checkpoint-unreadable", key, str(e)))
            continue
        entry = session.get(LedgerEntry, seq)
        if entry is None:
            report.problems.append(
                Problem("checkpoint-contradicted", key, f"ledger {seq} is gone (truncated?)")
            )
        elif entry.entry_hash != expected:
            report.problems.append(
                Problem("checkpoint-contradicted", key, f"ledger {seq} has another hash now")
            )


def _entries(session: Session, batch: int) -> Iterator[LedgerEntry]:
    last = 0
    while True:
        rows = session.exec(
            select(LedgerEntry)
            .where(col(LedgerEntry.seq) > last)
            .order_by(col(LedgerEntry.seq))
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def _mirror_lines(store: WormStore, report: Report) -> Iterator[tuple[int, dict[str, object]]]:
    """Every mirrored entry, in sequence order, read segment by segment."""
    for key in store.keys(ledger.SEGMENT_PREFIX):
        found = ledger.segment_range(key)
        if found is None:
            report.problems.append(Problem("mirror-foreign", key, "not a ledger segment"))
            continue
        try:
            data = store.get(key, verify=False)
            lines = [json.loads(line) for line in data.splitlines() if line.strip()]
        except (ValueError, NotFound, StoreUnavailable) as e:
            report.problems.append(Problem("mirror-unreadable", key, str(e)))
            continue
        seqs = [line.get("seq") for line in lines]
        if seqs != list(range(found[0], found[1] + 1)):
            report.problems.append(
                Problem("mirror-differs", key, "its entries do not match its name")
            )
        for line in lines:
            seq = line.get("seq")
            if isinstance(seq, int):
                yield seq, line


def _check_chain(
    session: Session,
    store: WormStore,
    report: Report,
    batch: int,
    progress: Callable[[str, int, bool], None] | None,
) -> None:
    expected_seq, prev_hash = 1, ledger.GENESIS
    mirrored = _mirror_lines(store, report)
    pending = next(mirrored, None)
    for entry in _entries(session, batch):
        report.entries += 1
        subject = f"ledger {entry.seq}"
        if entry.seq != expected_seq:
            report.problems.append(
                Problem(
                    "entry-missing",
                    f"ledger {expected_seq}",
                    f"the chain jumps from {expected_seq - 1} to {entry.seq}",
                )
            )
        if entry.prev_hash != prev_hash:
            report.problems.append(
                Problem("chain-broken", subject, "does not link to the entry before it")
            )
        if ledger.compute_hash(entry) != entry.entry_hash:
            report.problems.append(
                Problem("entry-altered", subject, "its content does not match its hash")
            )
        while pending is not None and pending[0] < entry.seq:
            report.problems.append(
                Problem(
                    "mirror-without-row",
                    f"ledger {pending[0]}",
                    "the store's ledger mirror holds an entry the database lacks",
                )
            )
            pending = next(mirrored, None)
        if pending is not None and pending[0] == entry.seq:
            if pending[1] != json.loads(ledger.mirror_bytes(entry)):
                report.problems.append(
                    Problem("mirror-differs", subject, "the database and the store disagree")
                )
            pending = next(mirrored, None)
        else:
            report.problems.append(
                Problem("mirror-missing", subject, "the store has no copy of this entry")
            )
        expected_seq, prev_hash = entry.seq + 1, entry.entry_hash
        if progress and report.entries % batch == 0:
            progress("ledger", report.entries, False)
    while pending is not None:
        report.problems.append(
            Problem(
                "mirror-without-row",
                f"ledger {pending[0]}",
                "the store's ledger mirror holds an entry the database lacks",
            )
        )
        pending = next(mirrored, None)
    report.head_hash = prev_hash


def _check_records(
    session: Session,
    store: WormStore,
    report: Report,
    batch: int,
    progress: Callable[[str, int, bool], None] | None,
) -> None:
    last = 0
    while True:
        rows = session.exec(
            select(Record).where(Record.id > last).order_by(Record.id).limit(batch)  # type: ignore[arg-type,operator]
        ).all()
        if not rows:
            return
        seqs = {r.ledger_seq for r in rows if r.ledger_seq is not None}
        entries = {
            e.seq: e
            for e in session.exec(
                select(LedgerEntry).where(LedgerEntry.seq.in_(seqs))  # type: ignore[attr-defined]
            )
        }
        media = media_digests(session, [r.id for r in rows if r.id is not None])
        for record in rows:
            report.records += 1
            images = media.get(record.id or 0, [])
            _check_record(record, entries.get(record.ledger_seq or -1), store, report, images)
        assert rows[-1].id is not None
        last = rows[-1].id
        session.expunge_all()
        if progress:
            progress("records", report.records, False)


def _check_record(
    record: Record,
    entry: LedgerEntry | None,
    store: WormStore,
    report: Report,
    images: Sequence[str] = (),
) -> None:
    subject = f"record {record.id}"
    if entry is None or entry.record_id != record.id:
        report.problems.append(Problem("not-in-ledger", subject, "no ledger entry names it"))
    elif entry.object_sha256 != record.object_sha256:
        report.problems.append(
            Problem("row-altered", subject, "its object hash differs from the ledger's")
        )
    if record.disposed_at is not None:
        return  # destroyed by an approved disposition batch: its objects are meant to be gone
    for digest in filter(None, (record.object_sha256, record.raw_sha256)):
        _rehash(store, report, subject, f"sha256/{digest}", digest)
    for digest in images:
        _rehash(store, report, subject, f"image sha256/{digest}", digest)


def _rehash(store: WormStore, report: Report, subject: str, what: str, digest: str) -> None:
    """Read ``digest`` back and re-hash it; name ``what`` when it is altered or missing."""
    try:
        store.get(object_key(digest), verify=True)
        report.objects += 1
    except IntegrityError:
        report.problems.append(
            Problem("object-altered", subject, f"{what} does not match its hash")
        )
    except NotFound:
        report.problems.append(Problem("object-missing", subject, f"{what} is not in the store"))


def _check_orphans(session: Session, store: WormStore, report: Report) -> None:
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


def _check_notice_media(session: Session, store: WormStore, report: Report) -> None:
    """Re-hash every image a live notice pinned at drafting: what is published is read from
    the store, so an altered image must be found before it goes out, not only once a record
    of the post refers to it."""
    for notice_id, name, digest in live_notice_images(session):
        what = f"image {name} sha256/{digest}" if name else f"image sha256/{digest}"
        _rehash(store, report, f"notice {notice_id}", what, digest)


def _notice_images(session: Session) -> set[str]:
    """The sha256 of every image a notice pinned (few: notices are drafted by people)."""
    found: set[str] = set()
    for images in session.exec(select(Notice.images).where(col(Notice.images).is_not(None))):
        found.update(str(i["sha256"]) for i in json.loads(images or "[]") if i.get("sha256"))
    return found


# -- witnesses outside the store, and checkpoints overdue -----------------------------------

#: how late a checkpoint may be before verify warns (the hourly job may run a little late)
CHECKPOINT_GRACE = timedelta(minutes=15)


def _check_witnesses(
    session: Session,
    store: WormStore,
    report: Report,
    witness: WitnessSettings | None,
    now: datetime | None,
) -> None:
    """Every head a readable witness saw must still be in the chain, with its checkpoint;
    with ``now``, warn when entries older than the checkpoint interval have no checkpoint."""
    checkpoints = witnesses.checkpoint_seqs(list(store.keys(ledger.CHECKPOINT_PREFIX)))
    if witness is not None:
        _compare_witnessed(session, store, report, witness, checkpoints)
    if now is not None:
        _checkpoints_overdue(session, report, checkpoints, now)


def _compare_witnessed(
    session: Session,
    store: WormStore,
    report: Report,
    witness: WitnessSettings,
    checkpoints: dict[int, list[str]],
) -> None:
    found = witnesses.read_back(witness)
    for source, detail in found.errors:
        report.problems.append(Problem("witness-unreadable", source, detail))
    for source in found.absent:
        report.warnings.append(
            Problem("witness-absent", source, "holds nothing yet (no checkpoint was witnessed?)")
        )
    digests: dict[str, str | None] = {}
    for source, point in found.points:
        subject = f"ledger {point.seq}"
        entry = session.get(LedgerEntry, point.seq)
        if entry is None:
            report.problems.append(
                Problem(
                    "ledger-truncated",
                    subject,
                    f"witnessed as the head at {point.at} by {source}, but gone from the ledger",
                )
            )
        elif entry.entry_hash != point.head:
            report.problems.append(
                Problem(
                    "witness-contradicted",
                    subject,
                    f"has another hash than {source} witnessed at {point.at}",
                )
            )
        keys = checkpoints.get(point.seq, [])
        for key in keys:
            if key not in digests:
                try:
                    digests[key] = sha256_hex(store.get(key, verify=False))
                except (NotFound, StoreUnavailable):
                    digests[key] = None
        if not keys:
            report.problems.append(
                Problem(
                    "checkpoint-missing",
                    f"checkpoint of ledger {point.seq}",
                    f"witnessed at {point.at} by {source}, but not in the store",
                )
            )
        elif point.hash not in {digests[k] for k in keys}:
            report.problems.append(
                Problem(
                    "checkpoint-differs",
                    f"checkpoint of ledger {point.seq}",
                    f"the store's copy is not the one {source} witnessed at {point.at}",
                )
            )


def _checkpoints_overdue(
    session: Session, report: Report, checkpoints: dict[int, list[str]], now: datetime
) -> None:
    covered = max(checkpoints, default=0)
    first = session.exec(
        select(LedgerEntry)
        .where(col(LedgerEntry.seq) > covered)
        .order_by(col(LedgerEntry.seq))
        .limit(1)
    ).first()
    if first is None or first.recorded_at > now - ledger.CHECKPOINT_INTERVAL - CHECKPOINT_GRACE:
        return
    if not checkpoints:
        report.warnings.append(
            Problem(
                "checkpoints-missing",
                "checkpoints",
                f"the store holds none, though the ledger has entries since "
                f"{first.recorded_at:%Y-%m-%d %H:%M} UTC (is the daemon running? were they "
                "deleted?)",
            )
        )
        return
    report.warnings.append(
        Problem(
            "checkpoint-overdue",
            f"ledger {first.seq}",
            f"recorded at {first.recorded_at:%Y-%m-%d %H:%M} UTC, more than the checkpoint "
            f"interval ({ledger.CHECKPOINT_INTERVAL.total_seconds() / 60:.0f} minutes) ago, and "
            "no checkpoint covers it (the newest "
            f"covers ledger {covered}; was a newer checkpoint deleted?)",
        )
    )


# -- what a reader of the backend sees: versions and delete markers on top (S3) ------------


def _check_shadowed(store: WormStore, report: Report) -> None:
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
