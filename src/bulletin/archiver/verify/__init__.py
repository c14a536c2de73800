"""``archive verify``: every object against its hash, the ledger chain from the first entry, the
mirror against the database, and objects against index rows; then the images live notices
pinned, the heads the witnesses outside the store saw, the checkpoints' time stamps, and (S3)
whatever lies on top of an archived version. Streams; memory stays flat.

Every index row is re-derived from what the store holds (as ``archive rebuild-index`` would
derive it, :func:`bulletin.archiver.rebuild.snapshot_row`) and each column a person or a
production reads is compared: text, author, times, state, thread, series. Retention and hold
are compared three ways: the row, the store's retention of each object (the local store's
catalog), and the open legal holds (whose copies in the store :func:`decisions.check`
compares) and permanent series that must keep it. A disposed row needs a certificate of
destruction in the ledger that names it; a ``record`` ledger entry needs its row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from bulletin.archiver import decisions
from bulletin.archiver.store.base import WormStore
from bulletin.archiver.verify.chain import check_chain, check_checkpoints, check_witnesses
from bulletin.archiver.verify.objects import check_notice_media, check_orphans, check_shadowed
from bulletin.archiver.verify.records import Certificates, check_records, check_rows_exist
from bulletin.archiver.verify.report import Problem, Report, check_kept_for_good
from bulletin.archiver.verify.snapshot import snapshot_contradictions
from bulletin.archiver.verify.timestamps import check_timestamps
from bulletin.config.archive import WitnessSettings
from bulletin.config.settings import Settings
from bulletin.db import reading_session

__all__ = ["Problem", "Report", "snapshot_contradictions", "verify"]


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
    overdue. With ``settings`` each checkpoint's RFC 3161 time stamp is checked against the
    ``[timestamp]`` roots and its time noted; a checkpoint still unstamped is a warning.
    """
    report = Report()
    # on SQLite one snapshot for every check and no write lock while objects are re-hashed:
    # publishing and archiving go on beside a nightly verify
    with reading_session(engine) as session:
        check_chain(session, store, report, batch, progress)
        if progress:
            progress("ledger", report.entries, True)
        certificates = Certificates(session, store, report)
        check_rows_exist(session, report)
        check_records(session, store, report, batch, progress, certificates, settings)
        if progress:
            progress("records", report.records, True)
        check_orphans(session, store, report)
        check_notice_media(session, store, report)
        check_checkpoints(session, store, report)
        check_witnesses(session, store, report, witness, now)
    if settings is not None:
        check_timestamps(store, report, settings.timestamp)
    check_kept_for_good(store, decisions.PREFIX, report)
    check_shadowed(store, report)
    for kind, key, detail in decisions.check(engine, store):
        report.problems.append(Problem(kind, key, detail))
    return report
