"""Legal holds: a query over the archive whose matching records are kept while the hold is open.

A hold covers every record that matches its query when it is placed, and every record captured
later that matches while it is open: :meth:`~bulletin.archiver.archive.Archiver.archive_batch`
calls :func:`hold_new_records` after each indexed batch, and :func:`refresh_holds` re-applies
every open hold before a disposition batch is listed or approved and before a hold is released,
so a record missed by a crash between indexing and the hook is caught there. An open hold
whose query cannot be evaluated (stored before queries were bounded) is skipped by capture and
release, logged and reported by ``status --check``; while it is open nothing is listed or
destroyed by disposition.

A record is on legal hold (``Record.legal_hold``) while any open hold covers it or its series is
permanent. The store's hold on an object follows the records that refer to it: placed before
the database says so (an extra hold is safe), released after (a leftover hold is safe, and is
reconciled by :func:`sync_object_holds`). Every change is an audit event, and the hold's
opening and release are mirrored into the store (:mod:`bulletin.archiver.decisions`).

The query is the one language of :mod:`bulletin.archiver.search` (``Query``, ``parse_query``
and ``conditions`` are re-exported here): a hold holds exactly what ``archive search`` shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver import decisions
from bulletin.archiver.retention import media_digests
from bulletin.archiver.search import Query as Query
from bulletin.archiver.search import check_query
from bulletin.archiver.search import conditions as conditions
from bulletin.archiver.search import parse_query as parse_query
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.events import iso, record_event
from bulletin.identity import SYSTEM_ACTOR
from bulletin.logs import get_logger
from bulletin.models import Hold, HoldRecord, Record, RecordMedia, RecordsRequest

log = get_logger("bulletin.archive")

# What evaluating a stored query can raise when the query is beyond what the database or the
# calendar can do (a hold placed before queries were bounded, or restored from the store).
UNEVALUABLE = (sa.exc.DBAPIError, OverflowError, ValueError, TypeError, UsageError)


def count_matching(engine: Engine, query: Query, time_zone: str) -> int:
    """How many archived (not disposed) records ``query`` matches now."""
    with Session(engine) as session:
        return int(
            session.execute(
                sa.select(sa.func.count())
                .select_from(Record)
                .where(*conditions(query, time_zone))
                .where(col(Record.disposed_at).is_(None))
            ).scalar_one()
        )


def refuse_empty(
    engine: Engine, query: Query, time_zone: str, what: str, *, allow_empty: bool = False
) -> None:
    """Evaluate ``query`` once, as a hold or request on it would.

    :raises UsageError: the query is past the bounds of queries, or the database cannot
        evaluate it (nothing is recorded then).
    :raises Refused: ``query`` matches no archived record (a typo, or an id the query
        language does not know, would otherwise hold nothing, silently), unless
        ``allow_empty``."""
    check_query(query)
    try:
        count = count_matching(engine, query, time_zone)
    except UNEVALUABLE as e:
        raise UsageError(f"the database cannot evaluate the query: {_first_line(e)}") from None
    if count == 0 and not allow_empty:
        raise Refused(
            f"the query {query.describe()} matches no archived record, so the {what} would "
            "hold nothing now",
            remedy="allow-empty",
        )


# -- placing ---------------------------------------------------------------------------------


def create_hold(
    engine: Engine,
    store: WormStore,
    *,
    name: str,
    query: Query,
    reason: str,
    actor: str,
    now: datetime,
    time_zone: str,
    request_id: int | None = None,
    allow_empty: bool = False,
) -> tuple[Hold, int]:
    """Open a hold and place it on every matching record; returns it and how many it covers.

    The query is evaluated first (nothing is recorded when it cannot be). The hold is then
    committed open, so a record captured meanwhile is caught by the capture hook; the records
    already archived are attached, and the opening is mirrored into the store even when
    attaching fails (the capture hook and :func:`refresh_holds` attach them later).

    :raises UsageError: no name or reason, or a query that cannot be evaluated.
    :raises Refused: the query matches no archived record and ``allow_empty`` is false.
    """
    if not name.strip():
        raise UsageError("a hold needs a name", remedy="name")
    if not reason.strip():
        raise UsageError("a hold needs a reason", remedy="reason")
    refuse_empty(engine, query, time_zone, "hold", allow_empty=allow_empty)
    with session_scope(engine) as session:
        hold = Hold(
            name=name,
            query=query.to_json(),
            reason=reason,
            request_id=request_id,
            created_by=actor,
            created_at=now,
        )
        session.add(hold)
        session.flush()
        assert hold.id is not None
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="hold-created",
            object_type="hold",
            object_id=hold.id,
            reason=reason,
            name=name,
            query=query.describe(),
            request_id=request_id,
        )
        payload = {"hold": hold.id, "request": request_id, "by": actor, "at": iso(now)}
        record_event(session, "hold.placed", payload, at=now)
    assert hold.id is not None
    try:
        attached = apply_hold(engine, store, hold.id, now=now, actor=actor, time_zone=time_zone)
    finally:
        decisions.mirror_holds(engine, store, [hold.id], now)
    return hold, attached


def apply_hold(
    engine: Engine,
    store: WormStore,
    hold_id: int,
    *,
    now: datetime,
    actor: str,
    time_zone: str,
    record_ids: Sequence[int] | None = None,
) -> int:
    """Attach every matching record (of ``record_ids``, if given) not yet in an open hold.

    :raises UsageError: the hold's query is past the bounds of queries (:func:`check_query`).
    """
    with Session(engine) as session:
        hold = session.get(Hold, hold_id)
        if hold is None or hold.state != "open":
            return 0
        query = Query.from_json(hold.query)
        check_query(query)  # a hold stored before queries were bounded is not evaluated
        # each candidate is looked up among the hold's members by the membership's key: a
        # NOT IN listed every member the hold has had (on SQLite, again for each chunk of a
        # capture), and a hold only grows
        member = sa.exists().where(
            col(HoldRecord.hold_id) == hold_id, col(HoldRecord.record_id) == col(Record.id)
        )
        stmt = (
            select(Record)
            .where(*conditions(query, time_zone))
            .where(col(Record.disposed_at).is_(None))
            .where(~member)
        )
        found: list[Record] = []
        if record_ids is None:
            found = list(session.exec(stmt).all())
        else:
            ids = sorted(set(record_ids))
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                found.extend(session.exec(stmt.where(col(Record.id).in_(chunk))).all())
    if found:
        _attach(engine, store, hold_id, found, now=now, actor=actor)
    return len(found)


def _attach(
    engine: Engine,
    store: WormStore,
    hold_id: int,
    records: list[Record],
    *,
    now: datetime,
    actor: str,
) -> None:
    # the store first: a crash after this leaves an extra hold, never a missing one
    media = _media_of(engine, records)
    for record in records:
        if not record.legal_hold:
            for key in _keys(record, media):
                store.set_legal_hold(key, True)
    store.flush()
    ids = [r.id for r in records if r.id is not None]
    with session_scope(engine) as session:
        _insert_ignore(
            session,
            HoldRecord,
            [{"hold_id": hold_id, "record_id": i, "added_at": now} for i in ids],
        )
        for start in range(0, len(ids), 500):
            session.execute(
                sa.update(Record)
                .where(col(Record.id).in_(ids[start : start + 500]))
                .values(legal_hold=True)
            )
        audit.record_events(
            session,
            [
                audit.event(
                    at=now,
                    actor=actor,
                    action="held",
                    object_type="record",
                    object_id=r.id or 0,
                    hold_id=hold_id,
                    store_hold_placed=not r.legal_hold,
                    objects=_keys(r, media),
                )
                for r in records
            ],
        )


def _insert_ignore(session: Session, table: type[HoldRecord], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)


def _keys(record: Record, media: Mapping[int, list[str]]) -> list[str]:
    """The store keys of ``record``: snapshot, raw answer and images (``media``, by record)."""
    own = (record.object_sha256, record.raw_sha256, *media.get(record.id or 0, []))
    return [object_key(d) for d in own if d]


def _media_of(engine: Engine, records: Sequence[Record]) -> dict[int, list[str]]:
    with Session(engine) as session:
        return media_digests(session, [r.id for r in records if r.id is not None])


def open_hold_ids(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [
            i
            for i in session.exec(select(Hold.id).where(col(Hold.state) == "open")).all()
            if i is not None
        ]


def hold_new_records(
    engine: Engine, store: WormStore, record_ids: Sequence[int], now: datetime, time_zone: str
) -> int:
    """The capture hook: put just-archived records under every open hold they match (a hold
    that cannot be evaluated is skipped and logged, never stopping the capture)."""
    if not record_ids:
        return 0
    return _apply_open(engine, store, now, time_zone, record_ids)


def refresh_holds(
    engine: Engine, store: WormStore, now: datetime, time_zone: str, *, strict: bool = False
) -> int:
    """Re-apply every open hold to the whole archive; returns how many records were added.
    A hold that cannot be evaluated is skipped and logged, or, when ``strict`` (before records
    are destroyed), stops everything.

    :raises Refused: ``strict`` and an open hold cannot be evaluated.
    """
    return _apply_open(engine, store, now, time_zone, None, strict=strict)


def _apply_open(
    engine: Engine,
    store: WormStore,
    now: datetime,
    time_zone: str,
    record_ids: Sequence[int] | None,
    *,
    strict: bool = False,
) -> int:
    added = 0
    for hold_id in open_hold_ids(engine):
        try:
            added += apply_hold(
                engine,
                store,
                hold_id,
                now=now,
                actor=SYSTEM_ACTOR,
                time_zone=time_zone,
                record_ids=record_ids,
            )
        except UNEVALUABLE as e:
            if strict:  # what it should keep is unknown: destroy nothing
                raise Refused(
                    f"hold {hold_id} cannot be evaluated ({_first_line(e)}), so nothing can be "
                    "listed or destroyed while it is open; release it and place a narrower one"
                ) from None
            log.warning("hold cannot be evaluated; skipped", hold=hold_id, error=_first_line(e))
    return added


def unevaluable_holds(engine: Engine, time_zone: str) -> list[str]:
    """One line for each open hold whose query cannot be evaluated (``status --check``): past
    the bounds of queries, unreadable, or refused by the database."""
    with Session(engine) as session:
        rows = session.exec(select(Hold).where(col(Hold.state) == "open")).all()
    out = []
    for hold in rows:
        try:
            query = Query.from_json(hold.query)
            check_query(query)
            with Session(engine) as session:
                session.execute(
                    sa.select(col(Record.id)).where(*conditions(query, time_zone)).limit(1)
                )
        except UNEVALUABLE as e:
            out.append(
                f"hold {hold.id} ({hold.name}) cannot be evaluated and holds no new records: "
                f"{_first_line(e)}; release it and place a narrower one"
            )
    return out


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200]


# -- releasing -------------------------------------------------------------------------------


def release_hold(
    engine: Engine,
    store: WormStore,
    hold_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
    settings: Settings,
    by_request: bool = False,
) -> int:
    """Release a hold; returns how many records left legal hold (those no other open hold or
    request covers, in series that are not permanent). A record of a permanent series (the
    built-in ones or one configured ``period = "permanent"``) keeps its legal hold, in the
    database and in the store.

    :raises NotFound: no such hold.
    :raises Refused: already released, or owned by a records request (close the request); a
        hold whose request is gone (a database rebuilt from the store) can be released.
    :raises UsageError: no reason given.
    """
    if not reason.strip():
        raise UsageError("releasing a hold needs a reason", remedy="reason")
    refresh_holds(engine, store, now, settings.agency.time_zone)
    with session_scope(engine) as session:
        hold = session.get(Hold, hold_id)
        if hold is None:
            raise NotFound(f"no hold {hold_id}")
        if hold.state != "open":
            raise Refused(
                f"hold {hold_id} was already released by {hold.released_by} "
                f"on {hold.released_at:%Y-%m-%d}"
            )
        owner = hold.request_id
        owned = owner is not None and session.get(RecordsRequest, owner) is not None
        if owned and not by_request:
            raise Refused(
                f"hold {hold_id} belongs to records request {hold.request_id}; "
                "close the request instead"
            )
        hold.state = "released"
        hold.released_by = actor
        hold.released_at = now
        hold.release_reason = reason
        session.add(hold)
        session.flush()
        members = [
            r
            for r in session.exec(
                select(Record)
                .join(HoldRecord, col(HoldRecord.record_id) == col(Record.id))
                .where(col(HoldRecord.hold_id) == hold_id)
            ).all()
        ]
        still = _covered(session, [r.id for r in members if r.id is not None])
        freed = [
            r
            for r in members
            if r.id not in still and not settings.is_permanent(r.series) and r.legal_hold
        ]
        ids = [r.id for r in freed]
        for start in range(0, len(ids), 500):
            session.execute(
                sa.update(Record)
                .where(col(Record.id).in_(ids[start : start + 500]))
                .values(legal_hold=False)
            )
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="hold-released",
            object_type="hold",
            object_id=hold_id,
            reason=reason,
            records=len(members),
            left_hold=len(freed),
        )
        audit.record_events(
            session,
            [
                audit.event(
                    at=now,
                    actor=actor,
                    action="hold-lifted",
                    object_type="record",
                    object_id=r.id or 0,
                    reason=reason,
                    hold_id=hold_id,
                )
                for r in freed
            ],
        )
    media = _media_of(engine, freed)
    keys = sorted({k for r in freed for k in _keys(r, media)})
    changed = sync_object_holds(engine, store, keys)
    if changed:
        with session_scope(engine) as session:
            audit.record_event(
                session,
                at=now,
                actor=actor,
                action="store-hold-released",
                object_type="hold",
                object_id=hold_id,
                objects=changed,
            )
    decisions.mirror_holds(engine, store, [hold_id], now)
    return len(freed)


def _covered(session: Session, record_ids: Iterable[int]) -> set[int]:
    """Those of ``record_ids`` that some open hold covers."""
    ids = sorted(set(record_ids))
    out: set[int] = set()
    for start in range(0, len(ids), 500):
        rows = session.exec(
            select(HoldRecord.record_id)
            .join(Hold, col(Hold.id) == col(HoldRecord.hold_id))
            .where(col(Hold.state) == "open")
            .where(col(HoldRecord.record_id).in_(ids[start : start + 500]))
        ).all()
        out.update(rows)
    return out


def sync_object_holds(
    engine: Engine, store: WormStore, keys: Sequence[str], exclude: Iterable[int] = ()
) -> list[str]:
    """Make the store's hold on each of ``keys`` match the records referring to it: held while
    any record (other than ``exclude``) that refers to it is on legal hold. Returns the keys
    whose hold was released."""
    excluded = set(exclude)
    released = []
    with Session(engine) as session:
        for key in keys:
            digest = key.removeprefix("sha256/")
            holders = session.exec(
                select(Record.id)
                .where(
                    sa.or_(
                        col(Record.object_sha256) == digest,
                        col(Record.raw_sha256) == digest,
                        col(Record.id).in_(
                            select(RecordMedia.record_id).where(col(RecordMedia.sha256) == digest)
                        ),
                    )
                )
                .where(col(Record.legal_hold).is_(True))
                .where(col(Record.disposed_at).is_(None))
            ).all()
            wanted = any(h not in excluded for h in holders)
            info = store.head(key)
            if info is None or info.legal_hold == wanted:
                continue
            store.set_legal_hold(key, wanted)
            if not wanted:
                released.append(key)
    store.flush()
    return released


def members(engine: Engine, hold_id: int) -> list[Record]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Record)
                .join(HoldRecord, col(HoldRecord.record_id) == col(Record.id))
                .where(col(HoldRecord.hold_id) == hold_id)
                .order_by(col(Record.id))
            ).all()
        )


def get_hold(engine: Engine, hold_id: int) -> Hold:
    with Session(engine) as session:
        hold = session.get(Hold, hold_id)
    if hold is None:
        raise NotFound(f"no hold {hold_id}")
    return hold


def list_holds(engine: Engine, include_released: bool = False) -> list[tuple[Hold, int]]:
    """Holds with their record counts, newest first."""
    with Session(engine) as session:
        stmt = (
            select(Hold, sa.func.count(col(HoldRecord.record_id)))
            .join(HoldRecord, col(HoldRecord.hold_id) == col(Hold.id), isouter=True)
            .group_by(col(Hold.id))
            .order_by(col(Hold.id).desc())
        )
        if not include_released:
            stmt = stmt.where(col(Hold.state) == "open")
        return [(h, int(n)) for h, n in session.exec(stmt).all()]
