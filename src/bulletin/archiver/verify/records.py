"""Every index row: in the ledger, agreeing with its snapshot or certificate, kept and
held by the store as long as the row, the open holds and permanent series say."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.holds import Query, conditions
from bulletin.archiver.rebuild import Destroyed, destroyed_row
from bulletin.archiver.retention import media_digests
from bulletin.archiver.store.base import ObjectInfo, WormStore, object_key
from bulletin.archiver.store.local import FOREVER
from bulletin.archiver.verify.report import (
    Problem,
    Report,
    check_held,
    fetch_object,
    keeping,
    rehash,
    side,
)
from bulletin.archiver.verify.snapshot import (
    DISPOSED_COLUMNS,
    Earlier,
    contradictions,
    earlier_versions,
    snapshot_contradictions,
)
from bulletin.config.settings import Settings
from bulletin.errors import IntegrityError, NotFound
from bulletin.models import Hold, HoldRecord, LedgerEntry, Record

# S3 Object Lock keeps retain-until to the second, rounded up
_ROUNDING = timedelta(seconds=1)


class Certificates:
    """Every certificate of destruction the ledger names, checked in the store (present,
    unaltered, on hold) and read once; a batch's records are read again when asked for."""

    def __init__(self, session: Session, store: WormStore, report: Report) -> None:
        self._store = store
        self._of_batch: dict[int, LedgerEntry] = {}
        self._last: tuple[int, Destroyed] | None = None
        for entry in session.exec(
            select(LedgerEntry).where(col(LedgerEntry.kind) == "certificate")
        ).all():
            body = self._read(entry, report)
            if body is not None:
                self._of_batch[int(body["batch"])] = entry
        session.expunge_all()

    def _read(self, entry: LedgerEntry, report: Report | None) -> dict[str, Any] | None:
        digest = entry.object_sha256
        if not digest:
            return None
        subject = f"certificate sha256/{digest}"
        try:
            body: dict[str, Any] = json.loads(self._store.get(object_key(digest), verify=True))
            int(body["batch"])
        except IntegrityError:
            problem = Problem("object-altered", subject, "does not match its hash")
        except NotFound:
            problem = Problem("object-missing", subject, "is not in the store")
        except (ValueError, KeyError, TypeError) as e:
            problem = Problem("certificate-unreadable", subject, str(e))
        else:
            if report is not None:
                report.objects += 1
                check_held(self._store, object_key(digest), report)
            return body
        if report is not None:
            report.problems.append(problem)
        return None

    def of_batch(self, batch_id: int | None) -> Destroyed | None:
        """What the certificate of ``batch_id`` says; None when the ledger has none."""
        if batch_id is None or batch_id not in self._of_batch:
            return None
        if self._last is None or self._last[0] != batch_id:  # a batch's records are adjacent
            entry = self._of_batch[batch_id]
            found = Destroyed()
            body = self._read(entry, None)
            try:
                if body is not None:
                    found.add(entry, body)
            except (ValueError, KeyError, TypeError):
                found = Destroyed()  # unreadable: its records are named as uncertified
            self._last = (batch_id, found)
        return self._last[1]


def check_rows_exist(session: Session, report: Report) -> None:
    """Every ``record`` entry of the ledger has its index row (a deleted row hides a record
    from search and productions)."""
    missing = (
        sa.select(col(LedgerEntry.seq), col(LedgerEntry.record_id))
        .where(col(LedgerEntry.kind) == "record")
        .where(~sa.exists().where(col(Record.id) == col(LedgerEntry.record_id)))
        .order_by(col(LedgerEntry.seq))
    )
    for seq, record_id in session.execute(missing, execution_options={"yield_per": 1000}):
        report.problems.append(
            Problem(
                "row-missing",
                f"record {record_id}",
                f"ledger {seq} names it; the index has no row for it (deleted?)",
            )
        )


def _open_holds(session: Session, settings: Settings | None) -> list[tuple[int, Query]]:
    """The open holds whose queries can be run again (with ``settings``: their time zone)."""
    if settings is None:
        return []
    found = []
    for hold_id, query in session.exec(
        select(Hold.id, Hold.query).where(col(Hold.state) == "open").order_by(col(Hold.id))
    ).all():
        try:
            found.append((hold_id or 0, Query.from_json(query)))
        except (ValueError, TypeError):
            continue  # its copy in the store disagrees too: decisions.check names it
    return found


def _covered(
    session: Session,
    low: int,
    high: int,
    holds: list[tuple[int, Query]],
    settings: Settings | None,
) -> dict[int, str]:
    """Records ``low``..``high`` that an open hold covers (by membership, or by its query
    on a retained record), with the first such hold in words."""
    found: dict[int, str] = {}
    members = (
        select(HoldRecord.record_id, HoldRecord.hold_id)
        .join(Hold, col(Hold.id) == col(HoldRecord.hold_id))
        .where(col(Hold.state) == "open")
        .where(col(HoldRecord.record_id).between(low, high))
        .order_by(col(HoldRecord.hold_id))
    )
    for record_id, hold_id in session.exec(members).all():
        found.setdefault(record_id, f"open hold {hold_id} holds it")
    for hold_id, query in holds:
        assert settings is not None
        matching = (
            select(Record.id)
            .where(*conditions(query, settings.agency.time_zone))
            .where(col(Record.id).between(low, high))
            .where(col(Record.disposed_at).is_(None))
        )
        for matched in session.exec(matching).all():
            if matched is not None:
                found.setdefault(matched, f"open hold {hold_id}'s query covers it")
    return found


def check_records(
    session: Session,
    store: WormStore,
    report: Report,
    batch: int,
    progress: Callable[[str, int, bool], None] | None,
    certificates: Certificates,
    settings: Settings | None,
) -> None:
    holds = _open_holds(session, settings)
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
        low, high = rows[0].id, rows[-1].id
        assert low is not None and high is not None
        covered = _covered(session, low, high, holds, settings)
        earlier = earlier_versions(session, rows)
        media = media_digests(session, [r.id for r in rows if r.id is not None])
        infos = store.heads(
            [
                object_key(digest)
                for r in rows
                if r.disposed_at is None and r.disposal_batch_id is None
                for digest in (r.object_sha256, r.raw_sha256)
                if digest
            ]
        )
        for record in rows:
            report.records += 1
            entry = entries.get(record.ledger_seq or -1)
            _check_record(record, entry, report)
            if record.disposed_at is not None or record.disposal_batch_id is not None:
                _check_disposed(record, entry, certificates, covered.get(record.id or 0), report)
            else:
                why = covered.get(record.id or 0)
                _check_retained(record, store, infos, earlier, report, why, settings)
                for digest in media.get(record.id or 0, []):
                    rehash(store, report, f"record {record.id}", f"image sha256/{digest}", digest)
        last = high
        session.expunge_all()
        if progress:
            progress("records", report.records, False)


def _check_record(record: Record, entry: LedgerEntry | None, report: Report) -> None:
    """The row is the one its ledger entry names, with the same object."""
    subject = f"record {record.id}"
    if entry is None or entry.record_id != record.id:
        report.problems.append(Problem("not-in-ledger", subject, "no ledger entry names it"))
    elif entry.object_sha256 != record.object_sha256:
        report.problems.append(
            Problem("row-altered", subject, "its object hash differs from the ledger's")
        )


def _check_retained(
    record: Record,
    store: WormStore,
    infos: dict[str, ObjectInfo | None],
    earlier: dict[int, Earlier],
    report: Report,
    covered: str | None,
    settings: Settings | None,
) -> None:
    """A retained record: its row against its snapshot, its retention and hold against the
    store's and against the holds that must keep it."""
    subject = f"record {record.id}"
    data = fetch_object(store, subject, record.object_sha256, report)
    if data is not None:
        try:
            found = snapshot_contradictions(record, data, earlier)
        except ValueError as e:
            report.problems.append(Problem("snapshot-unreadable", subject, str(e)))
        else:
            report.problems += [Problem("row-contradicts-snapshot", subject, f) for f in found]
    if record.raw_sha256:
        fetch_object(store, subject, record.raw_sha256, report)
    why = covered
    if why is None and settings is not None and settings.is_permanent(record.series):
        why = f"its series {record.series} is kept permanently"
    if why is not None and not record.legal_hold:
        report.problems.append(
            Problem("hold-disagrees", subject, f"the index says not on legal hold, but {why}")
        )
    must_hold = record.legal_hold or why is not None
    for digest, own in ((record.object_sha256, True), (record.raw_sha256, False)):
        if digest:
            key = object_key(digest)
            _check_keeping(record, key, infos.get(key), store, own, must_hold, report)


def _check_keeping(
    record: Record,
    key: str,
    info: ObjectInfo | None,
    store: WormStore,
    own: bool,
    must_hold: bool,
    report: Report,
) -> None:
    """The store keeps ``key`` as long as the row says (exactly, for the record's ``own``
    snapshot; at least, for an object other records may share) and holds it when it must."""
    if info is None:
        return  # named above as missing
    until = record.retain_until
    found: list[tuple[list[Problem], str, str]] = []  # where, kind, what the index says
    if until is None:
        found.append((report.problems, "retention-disagrees", "the index gives no retain-until"))
    elif info.retain_until < until or (own and info.retain_until >= until + _ROUNDING):
        found.append(
            (
                report.problems,
                "retention-disagrees",
                f"the index says retain until {until:%Y-%m-%d %H:%M:%S} UTC",
            )
        )
    if must_hold and not info.legal_hold:
        found.append((report.problems, "hold-disagrees", "it must be on legal hold"))
    elif own and info.legal_hold and not must_hold and info.retain_until != FOREVER:
        found.append((report.notes, "hold-left-over", "not on legal hold in the index"))
    for where, kind, index_says in found:  # rare: worded only when found
        detail = f"{index_says}; {key}: {side(store)} {keeping(info)}"
        where.append(Problem(kind, f"record {record.id}", detail))


def _check_disposed(
    record: Record,
    entry: LedgerEntry | None,
    certificates: Certificates,
    covered: str | None,
    report: Report,
) -> None:
    """A disposed record: a ledgered certificate of destruction names it, and says what the
    row says; its objects are meant to be gone."""
    subject = f"record {record.id}"
    destroyed = certificates.of_batch(record.disposal_batch_id)
    if destroyed is None or record.id not in destroyed.records:
        batch = record.disposal_batch_id
        report.problems.append(
            Problem(
                "disposed-without-certificate",
                subject,
                "the index says it was destroyed"
                + (f" in batch {batch}" if batch is not None else "")
                + ", but no certificate of destruction in the ledger names it",
            )
        )
        return
    if entry is not None and entry.record_id == record.id:
        expected = destroyed_row(entry, {}, destroyed)
        report.problems += [
            Problem("row-contradicts-certificate", subject, f)
            for f in contradictions(record, expected, DISPOSED_COLUMNS, "its certificate")
        ]
    if covered is not None:
        report.problems.append(Problem("disposed-while-held", subject, f"destroyed, yet {covered}"))
