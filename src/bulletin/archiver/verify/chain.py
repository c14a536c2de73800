"""The ledger as verify reads it: the chain from the first entry, its mirror in the store,
the checkpoints, and the heads the witnesses outside the store saw."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bulletin.archiver import ledger
from bulletin.archiver import witness as witnesses
from bulletin.archiver.store.base import WormStore, sha256_hex
from bulletin.archiver.verify.report import Problem, Report, check_held
from bulletin.config.archive import WitnessSettings
from bulletin.errors import NotFound, StoreUnavailable
from bulletin.models import LedgerEntry


def check_checkpoints(session: Session, store: WormStore, report: Report) -> None:
    """Every checkpoint's head must still be in the chain with the same hash."""
    for key in ledger.checkpoint_keys(store):
        check_held(store, key, report)
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
    for rows in ledger.entry_batches(session, 0, batch):
        yield from rows
        session.expunge_all()  # a long ledger is walked in constant memory


def _mirror_lines(store: WormStore, report: Report) -> Iterator[tuple[int, dict[str, object]]]:
    """Every mirrored entry, in sequence order, read segment by segment."""
    for key in store.keys(ledger.SEGMENT_PREFIX):
        found = ledger.segment_range(key)
        if found is None:
            report.problems.append(Problem("mirror-foreign", key, "not a ledger segment"))
            continue
        check_held(store, key, report)
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


def check_chain(
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
            _without_row(report, pending[0])
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
        _without_row(report, pending[0])
        pending = next(mirrored, None)
    report.head_hash = prev_hash


def _without_row(report: Report, seq: int) -> None:
    report.problems.append(
        Problem(
            "mirror-without-row",
            f"ledger {seq}",
            "the store's ledger mirror holds an entry the database lacks",
        )
    )


# -- witnesses outside the store, and checkpoints overdue -----------------------------------

#: how late a checkpoint may be before verify warns (the hourly job may run a little late)
CHECKPOINT_GRACE = timedelta(minutes=15)


def check_witnesses(
    session: Session,
    store: WormStore,
    report: Report,
    witness: WitnessSettings | None,
    now: datetime | None,
) -> None:
    """Every head a readable witness saw must still be in the chain, with its checkpoint;
    with ``now``, warn when entries older than the checkpoint interval have no checkpoint."""
    checkpoints = witnesses.checkpoint_seqs(list(ledger.checkpoint_keys(store)))
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
