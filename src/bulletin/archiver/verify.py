"""``archive verify``: every object against its hash, the ledger chain from the first entry, the
mirror against the database, and objects against index rows; then the images live notices
pinned, the heads the witnesses outside the store saw, and (S3) whatever lies on top of an
archived version. Streams; memory stays flat.

Every index row is re-derived from what the store holds (as ``archive rebuild-index`` would
derive it, :func:`bulletin.archiver.rebuild.snapshot_row`) and each column a person or a
production reads is compared: text, author, times, state, thread, series. Retention and hold
are compared three ways: the row, the store's retention of each object (the local store's
catalog), and the open legal holds (whose copies in the store :func:`decisions.check`
compares) and permanent series that must keep it. A disposed row needs a certificate of
destruction in the ledger that names it; a ``record`` ledger entry needs its row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver import decisions, ledger
from bulletin.archiver import witness as witnesses
from bulletin.archiver.archive import Latest
from bulletin.archiver.holds import Query, conditions
from bulletin.archiver.rebuild import Destroyed, destroyed_row, snapshot_row
from bulletin.archiver.retention import live_notice_images, media_digests
from bulletin.archiver.store.base import (
    OBJECT_PREFIX,
    ObjectInfo,
    WormStore,
    digest_of_key,
    object_key,
    sha256_hex,
)
from bulletin.archiver.store.local import FOREVER
from bulletin.config.archive import WitnessSettings
from bulletin.config.settings import Settings
from bulletin.errors import IntegrityError, NotFound, StoreUnavailable
from bulletin.models import (
    Hold,
    HoldRecord,
    LedgerEntry,
    Notice,
    Quarantine,
    Record,
    RecordMedia,
)

# what a person or a production reads of a retained record, as its snapshot gives it
LIVE_COLUMNS = (
    "account",
    "platform",
    "kind",
    "remote_id",
    "parent_id",
    "thread_id",
    "state",
    "author",
    "text",
    "url",
    "posted_at",
    "captured_at",
    "series",
    "training",
    "content_sha256",
    "raw_sha256",
    "notice_id",
    "size",
)
# what a destroyed record's certificate says of it
DISPOSED_COLUMNS = (
    "account",
    "platform",
    "kind",
    "remote_id",
    "version",
    "series",
    "posted_at",
    "captured_at",
    "retain_until",
    "content_sha256",
    "object_sha256",
    "raw_sha256",
    "disposed_at",
    "disposal_batch_id",
)
# S3 Object Lock keeps retain-until to the second, rounded up
_ROUNDING = timedelta(seconds=1)


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
    settings: Settings | None = None,
    *,
    witness: WitnessSettings | None = None,
    now: datetime | None = None,
) -> Report:
    """Check the whole archive; never raises for what it finds, only reports it.

    ``progress(phase, done, finished)`` is called every ``batch`` items of the two long
    phases, ``"ledger"`` (entries walked) and ``"records"`` (records whose objects were
    re-hashed), and once more when each phase ends. With ``settings`` each open hold's query
    is run again (in the agency's time zone) and permanent series are known, so a record
    they cover must be on hold even when its membership row is gone. ``witness``: the chain
    is compared with the witnesses it can read back; ``now``: warn of checkpoints missing or
    overdue.
    """
    report = Report()
    with Session(engine) as session:
        _check_chain(session, store, report, batch, progress)
        if progress:
            progress("ledger", report.entries, True)
        certificates = _Certificates(session, store, report)
        _check_rows_exist(session, report)
        _check_records(session, store, report, batch, progress, certificates, settings)
        if progress:
            progress("records", report.records, True)
        _check_orphans(session, store, report)
        _check_notice_media(session, store, report)
        _check_checkpoints(session, store, report)
        _check_witnesses(session, store, report, witness, now)
    _check_kept_for_good(store, decisions.PREFIX, report)
    _check_shadowed(store, report)
    for kind, key, detail in decisions.check(engine, store):
        report.problems.append(Problem(kind, key, detail))
    return report


def _side(store: WormStore) -> str:
    """What holds an object's retention, in words."""
    return "the store's catalog" if store.kind == "local" else "the store"


def _keeping(info: ObjectInfo) -> str:
    if info.retain_until == FOREVER:
        return "has no row for it (read as kept indefinitely, not held)"
    held = "on legal hold" if info.legal_hold else "not held"
    return f"says retain until {info.retain_until:%Y-%m-%d %H:%M:%S} UTC, {held}"


def _check_held(store: WormStore, key: str, report: Report) -> None:
    """``key`` is kept permanently (ledger, checkpoint, decision, certificate): on hold."""
    info = store.head(key)
    if info is not None and not info.legal_hold:
        report.problems.append(
            Problem(
                "hold-disagrees",
                key,
                f"kept permanently on legal hold, but {_side(store)} {_keeping(info)}",
            )
        )


def _check_kept_for_good(store: WormStore, prefix: str, report: Report) -> None:
    for key in store.keys(prefix):
        _check_held(store, key, report)


class _Certificates:
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
                _check_held(self._store, object_key(digest), report)
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


def _check_checkpoints(session: Session, store: WormStore, report: Report) -> None:
    """Every checkpoint's head must still be in the chain with the same hash."""
    for key in store.keys(ledger.CHECKPOINT_PREFIX):
        _check_held(store, key, report)
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
        _check_held(store, key, report)
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


def _check_rows_exist(session: Session, report: Report) -> None:
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


def _check_records(
    session: Session,
    store: WormStore,
    report: Report,
    batch: int,
    progress: Callable[[str, int, bool], None] | None,
    certificates: _Certificates,
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
        earlier = _earlier_versions(session, rows)
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
                    _rehash(store, report, f"record {record.id}", f"image sha256/{digest}", digest)
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


def _shown(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S.%f} UTC"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _contradictions(
    record: Record, expected: dict[str, Any], columns: tuple[str, ...], source: str
) -> list[str]:
    """Each of ``columns`` on which ``record`` and ``expected`` differ, in words."""
    return [
        f"{name}: the index says {_shown(getattr(record, name))}, "
        f"{source} says {_shown(expected[name])}"
        for name in columns
        if getattr(record, name) != expected[name]
    ]


@dataclass(frozen=True)
class Earlier:
    """The version a row says it follows, as the index has it."""

    item: tuple[str, str, str]  # account, kind, remote id
    latest: Latest
    disposed: bool


def _earlier_versions(session: Session, rows: Sequence[Record]) -> dict[int, Earlier]:
    """The rows that ``rows`` say they follow, by id (one query)."""
    ids = sorted({r.previous_record_id for r in rows if r.previous_record_id is not None})
    table = Record.__table__  # type: ignore[attr-defined]
    wanted = ("id", "version", "content_sha256", "state", "text")
    item = ("account", "kind", "remote_id")
    found: dict[int, Earlier] = {}
    for start in range(0, len(ids), 500):
        chosen = sa.select(*(table.c[n] for n in (*wanted, *item, "disposed_at")))
        for row in session.execute(chosen.where(table.c.id.in_(ids[start : start + 500]))):
            values = row._mapping
            found[values["id"]] = Earlier(
                (values["account"], values["kind"], values["remote_id"]),
                Latest(*(values[n] for n in wanted)),
                values["disposed_at"] is not None,
            )
    return found


def snapshot_contradictions(
    record: Record, data: bytes, earlier: dict[int, Earlier] | None = None
) -> list[str]:
    """Where the index row ``record`` disagrees with its snapshot object's bytes ``data`` on
    what a person or a production reads (empty: it agrees). With ``earlier`` (the rows that
    rows follow, by id) its version, the version it follows and its change are checked too.

    :raises ValueError: ``data`` is not a readable snapshot.
    """
    before = None
    columns: tuple[str, ...] = LIVE_COLUMNS
    problems: list[str] = []
    if earlier is not None:
        found = earlier.get(record.previous_record_id or 0)
        if record.previous_record_id is None or found is not None:  # else: row-missing
            columns += ("version", "previous_record_id")
        if found is not None:
            before = found.latest
            if found.item != (record.account, record.kind, record.remote_id):
                problems.append(
                    f"previous_record_id: the index says {record.previous_record_id}, "
                    "a version of another item"
                )
            if not found.disposed:  # a destroyed version's state and text went with it
                columns += ("change",)
        elif record.previous_record_id is None:
            columns += ("change",)
    try:
        snapshot = json.loads(data)
        expected = snapshot_row(
            snapshot,
            len(data),
            record_id=record.id,
            seq=record.ledger_seq,
            object_sha256=record.object_sha256,
            before=before,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a readable snapshot ({e!r})") from e
    return _contradictions(record, expected, columns, "its snapshot") + problems


def _fetch(store: WormStore, subject: str, digest: str, report: Report) -> bytes | None:
    try:
        data = store.get(object_key(digest), verify=True)
    except IntegrityError:
        report.problems.append(
            Problem("object-altered", subject, f"sha256/{digest} does not match its hash")
        )
        return None
    except NotFound:
        report.problems.append(
            Problem("object-missing", subject, f"sha256/{digest} is not in the store")
        )
        return None
    report.objects += 1
    return data


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
    data = _fetch(store, subject, record.object_sha256, report)
    if data is not None:
        try:
            found = snapshot_contradictions(record, data, earlier)
        except ValueError as e:
            report.problems.append(Problem("snapshot-unreadable", subject, str(e)))
        else:
            report.problems += [Problem("row-contradicts-snapshot", subject, f) for f in found]
    if record.raw_sha256:
        _fetch(store, subject, record.raw_sha256, report)
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
        detail = f"{index_says}; {key}: {_side(store)} {_keeping(info)}"
        where.append(Problem(kind, f"record {record.id}", detail))


def _check_disposed(
    record: Record,
    entry: LedgerEntry | None,
    certificates: _Certificates,
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
            for f in _contradictions(record, expected, DISPOSED_COLUMNS, "its certificate")
        ]
    if covered is not None:
        report.problems.append(Problem("disposed-while-held", subject, f"destroyed, yet {covered}"))


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
