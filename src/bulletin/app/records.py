"""The public record, as a records clerk reads it: list, show, search, threads, status; and as
an administrator keeps it: sweep now, verify, rebuild the index from the store.

Reading needs no role; neither do sweeping, verifying and rebuilding, which only ever add to
the record or report on it (as the daemon does on its own).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.archiver.search import Hit, Query, ThreadItem, parse_query, search, thread_of
from bulletin.archiver.store.base import object_key
from bulletin.errors import NotFound
from bulletin.models import LedgerEntry, Record

if TYPE_CHECKING:  # sweeping, verifying and rebuilding import their modules when they run
    from bulletin.archiver.capture.sweep import SweepResult
    from bulletin.archiver.rebuild import RebuildReport
    from bulletin.archiver.verify import Report

Kind = Literal["post", "comment", "moderation"]
# verify's progress, told each phase's total: (phase, done, total, finished)
Progress = Callable[[str, int, int, bool], None]


@dataclass(frozen=True)
class Shown:
    """One record, its ledger entry's hash, its stored snapshot (checked against its hash) and
    where the index row contradicts that snapshot."""

    record: Record
    entry_hash: str | None
    snapshot: bytes
    contradictions: list[str]

    @property
    def data(self) -> Any:
        """The snapshot, parsed."""
        return json.loads(self.snapshot)


@dataclass(frozen=True)
class Found:
    """A search: the query as understood, and its hits (newest version that matched)."""

    query: Query
    hits: list[Hit]


@dataclass(frozen=True)
class Thread:
    """The thread holding a record: its post first, then comments and replies in order."""

    record: Record
    items: list[ThreadItem]


def get_record(engine: Engine, record_id: int) -> Record:
    """Archived record ``record_id``, detached.

    :raises NotFound: no such record.
    """
    with Session(engine, expire_on_commit=False) as session:
        record = session.get(Record, record_id)
        if record is None:
            raise NotFound(f"no archived record {record_id}")
        session.expunge(record)
    return record


@acts
def list_records(
    app: App,
    actor: Actor,
    *,
    account: str | None = None,
    kind: Kind | None = None,
    limit: int,
    before: int | None = None,
) -> list[Record]:
    """Archived records, newest first; with ``before``, those with a lower id only (the
    page after the one that ended there)."""
    query = select(Record).order_by(col(Record.id).desc()).limit(limit)
    if before is not None:
        query = query.where(col(Record.id) < before)
    if account:
        query = query.where(Record.account == account)
    if kind:
        query = query.where(Record.kind == kind)
    with Session(app.checked_engine()) as session:
        return list(session.exec(query).all())


@acts
def show_record(app: App, actor: Actor, record_id: int) -> Shown:
    """One record with its snapshot, read from the store and checked against its hash.

    :raises NotFound: no such record.
    :raises IntegrityError: the stored snapshot does not match its hash.
    """
    engine = app.checked_engine()
    record = get_record(engine, record_id)
    with Session(engine) as session:
        entry = session.get(LedgerEntry, record.ledger_seq) if record.ledger_seq else None
        entry_hash = entry.entry_hash if entry else None
    from bulletin.archiver.verify import snapshot_contradictions

    snapshot = app.store.get(object_key(record.object_sha256), verify=True)
    try:
        differs = snapshot_contradictions(record, snapshot)
    except ValueError as e:
        differs = [str(e)]
    return Shown(record, entry_hash, snapshot, differs)


@acts
def search_records(
    app: App,
    actor: Actor,
    text: str = "",
    *,
    terms: dict[str, str | None] | None = None,
    limit: int = 20,
) -> Found:
    """Every version of posts and comments matching ``text`` in the query language, with
    ``terms`` (``author``, ``account``, ``platform``, ``kind``, ``from``, ``to``, ``state``)
    added as ``name:value``; an empty query matches everything.

    :raises UsageError: the query does not parse or is out of bounds.
    """
    typed = [text]
    typed += [f"{key}:{shlex.quote(value)}" for key, value in (terms or {}).items() if value]
    query = parse_query(" ".join(typed), empty_ok=True)
    tz = app.settings.agency.time_zone
    return Found(query, search(app.checked_engine(), query, time_zone=tz, limit=limit))


@acts
def show_thread(app: App, actor: Actor, record_id: int) -> Thread:
    """The thread holding record ``record_id``, every item with every version.

    :raises NotFound: no such record.
    """
    record, items = thread_of(app.checked_engine(), record_id)
    return Thread(record, items)


@acts
def status(app: App, actor: Actor) -> dict[str, Any]:
    """Records by account, kind and state; last sweeps; quarantine; spend; store backlog (see
    :func:`bulletin.archiver.status.archive_status`)."""
    from bulletin.archiver.status import archive_status

    return archive_status(app.checked_engine(), app.store, app.settings, app.clock.now())


@acts
def sweep_now(app: App, actor: Actor, account: str, *, full: bool = False) -> SweepResult:
    """Capture ``account``'s posts and comments now, as the daemon's sweep does.

    :raises NotFound: no such account configured.
    """
    app.checked_engine()
    if account not in app.settings.accounts:
        raise NotFound(f"no account {account!r} in {app.settings.source}")
    from bulletin.archiver.capture.sweep import sweep

    return sweep(app.archiver, app.connector(account), account, app.clock, full=full)


@acts
def verify_archive(app: App, actor: Actor, progress: Progress | None = None) -> Report:
    """Check every stored object against its hash and the ledger chain, recorded as a run
    (a problem tells the administrators); never raises for what it finds. ``progress``
    hears how far each phase (``ledger``, ``records``) has got."""
    engine = app.checked_engine()
    told = None
    if progress is not None:
        totals = _totals(engine)
        report_to = progress

        def told(phase: str, done: int, finished: bool) -> None:
            report_to(phase, done, totals[phase], finished)

    from bulletin.archiver.verify_runs import recorded_verify

    return recorded_verify(
        engine,
        app.store,
        trigger="command",
        now=app.clock.now,
        settings=app.settings,
        progress=told,
    )


def _totals(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            "ledger": conn.execute(sa.select(sa.func.max(col(LedgerEntry.seq)))).scalar() or 0,
            "records": conn.execute(sa.select(sa.func.count()).select_from(Record)).scalar() or 0,
        }


@acts
def rebuild(app: App, actor: Actor, *, replace: bool = False) -> RebuildReport:
    """Rebuild the archive index from the WORM store and its ledger alone; notice ids go on
    above the highest the platforms hold. Platforms that could not be read are problems.

    :raises Refused: the index is not empty and not ``replace`` (remedy ``replace``).
    :raises IntegrityError: the store's ledger does not chain.
    """
    from bulletin.publisher.delivery import highest_notice_on_platforms

    engine = app.checked_engine()
    on_platforms, unread = highest_notice_on_platforms(app.settings, app.environ)
    from bulletin.archiver.rebuild import rebuild_index

    report = rebuild_index(
        engine,
        app.store,
        app.clock.now(),
        replace=replace,
        time_zone=app.settings.agency.time_zone,
        notice_floor=on_platforms,
    )
    report.problems += unread
    return report
