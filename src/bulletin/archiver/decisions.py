"""Legal holds, redactions, records requests and the Bates numbers issued, mirrored into the
WORM store so that a lost database keeps them.

Each is a decision taken about the archive; the database holds it, and each event of it is
also written to the store as its own object, kept permanently and on hold::

    decisions/holds/<id>-opened.json           name, query, reason, request, who, when
    decisions/holds/<id>-released.json         who, when, why
    decisions/redactions/<id>-added.json       record, span, exemption, reason, who, when
    decisions/redactions/<id>-removed.json     who, when, why
    decisions/requests/<id>-open-<days>.json   a records request as it stands: requester,
                                               scope, received, due, <days> of extension
    decisions/requests/<id>-closed.json        the request as it was closed
    decisions/bates/<id>-issued.json           a range of Bates numbers issued to a production

(ids zero-padded to twelve digits, days to four). A request is written whole at each change
(opened, extended, closed): the newest of its objects is its state, the others its history.
Each object is the canonical JSON of what the database says, so writing it again gives the
same bytes and is a no-op. An event is mirrored after the change commits; ``archive verify``
reports one that a crash or an unreachable store left unmirrored, and the daemon writes it
when it starts and every hour (:func:`mirror_all`). ``archive rebuild-index`` restores from
these objects what the database lacks (:func:`restore`), after the records they name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.canonical import canonical
from bulletin.archiver.retention import PERMANENT
from bulletin.archiver.store.base import WormStore
from bulletin.clock import utc
from bulletin.db import reading_session, reset_id_sequences
from bulletin.errors import IntegrityError, StoreUnavailable
from bulletin.logs import get_logger
from bulletin.models import BatesRange, Hold, Record, RecordsRequest, Redaction
from bulletin.timeparse import parse_iso

PREFIX = "decisions/"
HOLDS = f"{PREFIX}holds/"
REDACTIONS = f"{PREFIX}redactions/"
REQUESTS = f"{PREFIX}requests/"
BATES = f"{PREFIX}bates/"
_BATES_FIELDS = ("prefix", "first", "last", "run", "identifier", "production")

log = get_logger("bulletin.archive")


def _stamp(value: datetime | None) -> str | None:
    # ``+00:00``, not timeparse.iso_utc's ``Z``: objects already in the store are written
    # again, byte for byte, by mirror_all
    return utc(value).isoformat() if value is not None else None


def hold_events(hold: Hold) -> dict[str, dict[str, Any]]:
    """The store objects of ``hold`` by key: its opening, and its release once released."""
    assert hold.id is not None
    events = {
        f"{HOLDS}{hold.id:012d}-opened.json": {
            "hold": hold.id,
            "name": hold.name,
            "query": json.loads(hold.query),
            "reason": hold.reason,
            "request_id": hold.request_id,
            "by": hold.created_by,
            "at": _stamp(hold.created_at),
        }
    }
    if hold.state == "released":
        events[f"{HOLDS}{hold.id:012d}-released.json"] = {
            "hold": hold.id,
            "by": hold.released_by,
            "at": _stamp(hold.released_at),
            "reason": hold.release_reason,
        }
    return events


def redaction_events(redaction: Redaction) -> dict[str, dict[str, Any]]:
    """The store objects of ``redaction`` by key: its addition, and its removal if removed."""
    assert redaction.id is not None
    events = {
        f"{REDACTIONS}{redaction.id:012d}-added.json": {
            "redaction": redaction.id,
            "record_id": redaction.record_id,
            "start": redaction.start,
            "end": redaction.end,
            "exemption": redaction.exemption,
            "reason": redaction.reason,
            "by": redaction.created_by,
            "at": _stamp(redaction.created_at),
        }
    }
    if redaction.removed_at is not None:
        events[f"{REDACTIONS}{redaction.id:012d}-removed.json"] = {
            "redaction": redaction.id,
            "by": redaction.removed_by,
            "at": _stamp(redaction.removed_at),
            "reason": redaction.removal_reason,
        }
    return events


def request_key(request: RecordsRequest) -> str:
    """The store object of ``request`` as it stands now."""
    assert request.id is not None
    if request.state == "closed":
        return f"{REQUESTS}{request.id:012d}-closed.json"
    return f"{REQUESTS}{request.id:012d}-open-{request.extension_days:04d}.json"


def request_events(request: RecordsRequest) -> dict[str, dict[str, Any]]:
    """The store object of ``request`` as it stands now, by key."""
    return {
        request_key(request): {
            "request": request.id,
            "requester": request.requester,
            "description": request.description,
            "query": json.loads(request.query),
            "litigation": request.litigation,
            "received_on": request.received_on.isoformat(),
            "due_on": request.due_on.isoformat(),
            "extension_days": request.extension_days,
            "extension_reason": request.extension_reason,
            "state": request.state,
            "hold_id": request.hold_id,
            "by": request.opened_by,
            "at": _stamp(request.opened_at),
            "closed_by": request.closed_by,
            "closed_at": _stamp(request.closed_at),
            "close_reason": request.close_reason,
        }
    }


def bates_events(issued: BatesRange) -> dict[str, dict[str, Any]]:
    """The store object of a range of Bates numbers issued, by key."""
    assert issued.id is not None
    same = {name: getattr(issued, name) for name in _BATES_FIELDS}
    body = {"range": issued.id, **same, "by": issued.issued_by, "at": _stamp(issued.issued_at)}
    return {f"{BATES}{issued.id:012d}-issued.json": body}


def _write(store: WormStore, events: dict[str, dict[str, Any]], now: datetime) -> int:
    """Put each event (same bytes again: a no-op); returns how many were new."""
    written = 0
    for key, body in events.items():
        result = store.put(key, canonical(body), retain_until=now + PERMANENT, legal_hold=True)
        written += result.created
    return written


def _mirror(
    engine: Engine,
    store: WormStore,
    model: type[Hold] | type[Redaction] | type[RecordsRequest] | type[BatesRange],
    events_of: Callable[[Any], dict[str, dict[str, Any]]],
    ids: Iterable[int],
    now: datetime,
) -> int:
    """Mirror rows of ``model`` after their change committed. An unreachable store is
    logged, not raised: the change stands, verify reports the missing object, and the
    daemon writes it when it starts and every hour."""
    wanted = sorted(set(ids))
    try:
        with Session(engine) as session:
            found = (session.get(model, i) for i in wanted)
            written = sum(_write(store, events_of(row), now) for row in found if row is not None)
        store.flush()
    except StoreUnavailable as e:
        log.warning(
            "the change stands; its copy in the archive store is postponed",
            table=model.__tablename__,
            ids=wanted,
            error=str(e),
        )
        return 0
    return written


def mirror_holds(engine: Engine, store: WormStore, hold_ids: Iterable[int], now: datetime) -> int:
    """Mirror the events of ``hold_ids`` (durable on return); returns how many were new."""
    return _mirror(engine, store, Hold, hold_events, hold_ids, now)


def mirror_redactions(
    engine: Engine, store: WormStore, redaction_ids: Iterable[int], now: datetime
) -> int:
    """Mirror the events of ``redaction_ids`` (durable on return); returns how many were new."""
    return _mirror(engine, store, Redaction, redaction_events, redaction_ids, now)


def mirror_requests(
    engine: Engine, store: WormStore, request_ids: Iterable[int], now: datetime
) -> int:
    """Mirror ``request_ids`` as they stand (durable on return); returns how many were new."""
    return _mirror(engine, store, RecordsRequest, request_events, request_ids, now)


def mirror_bates(engine: Engine, store: WormStore, range_ids: Iterable[int], now: datetime) -> int:
    """Mirror the Bates ranges ``range_ids`` (durable on return); returns how many were new."""
    return _mirror(engine, store, BatesRange, bates_events, range_ids, now)


def _all_events(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every store object the database's holds, redactions and requests call for, by key."""
    events: dict[str, dict[str, Any]] = {}
    with Session(engine) as session:
        for hold in session.exec(select(Hold).order_by(col(Hold.id))):
            events |= hold_events(hold)
        for redaction in session.exec(select(Redaction).order_by(col(Redaction.id))):
            events |= redaction_events(redaction)
        for request in session.exec(select(RecordsRequest).order_by(col(RecordsRequest.id))):
            events |= request_events(request)
        for issued in session.exec(select(BatesRange).order_by(col(BatesRange.id))):
            events |= bates_events(issued)
    return events


def _request_of(key: str) -> str:
    """The part of a request's key that names the request (its id), whatever its state."""
    return key[: len(REQUESTS) + 12]


class _Listed:
    """The keys of a store listing (in lexical order), read forward one row's worth at a
    time."""

    def __init__(self, keys: Iterator[str]) -> None:
        self._keys = keys
        self._next = next(keys, None)

    def under(self, prefix: str) -> set[str]:
        """The keys that start with ``prefix``; the keys before it are passed over for good
        (the next call's ``prefix`` must come after this one)."""
        while self._next is not None and self._next < prefix:
            self._next = next(self._keys, None)
        found: set[str] = set()
        while self._next is not None and self._next.startswith(prefix):
            found.add(self._next)
            self._next = next(self._keys, None)
        return found


_MIRRORED: tuple[tuple[str, Any, Callable[[Any], dict[str, dict[str, Any]]]], ...] = (
    (HOLDS, Hold, hold_events),
    (REDACTIONS, Redaction, redaction_events),
    (REQUESTS, RecordsRequest, request_events),
    (BATES, BatesRange, bates_events),
)


def _missing_events(engine: Engine, store: WormStore) -> dict[str, dict[str, Any]]:
    """The store objects the database's holds, redactions, requests and Bates ranges call
    for that the store lacks, by key. The rows are read a page at a time in id order beside
    the store's listing of their folder (also in id order: ids are zero-padded), and only
    what is missing is kept: the memory follows what is left to write, not every decision
    ever taken."""
    missing: dict[str, dict[str, Any]] = {}
    with reading_session(engine) as session:
        for prefix, model, events_of in _MIRRORED:
            listed = _Listed(store.keys(prefix))
            rows = session.exec(
                select(model).order_by(col(model.id)).execution_options(yield_per=200)
            )
            for row in rows:
                on_store = listed.under(f"{prefix}{row.id:012d}-")
                events = events_of(row)
                missing |= {k: v for k, v in events.items() if k not in on_store}
    return missing


def mirror_all(engine: Engine, store: WormStore, now: datetime) -> int:
    """Mirror every hold, redaction, request and Bates range not in the store yet; returns
    how many."""
    missing = _missing_events(engine, store)
    written = _write(store, missing, now)
    if written:
        store.flush()
    return written


def check(engine: Engine, store: WormStore) -> list[tuple[str, str, str]]:
    """Compare the database's holds, redactions and requests with their store objects;
    returns ``(kind, key, detail)`` for each object the store lacks, holds altered or
    otherwise than the database says, or holds alone (a request's earlier states are its
    history, not a discrepancy)."""
    on_store = set(store.keys(PREFIX))
    found: list[tuple[str, str, str]] = []
    events = _all_events(engine)
    for key, body in sorted(events.items()):
        if key not in on_store:
            found.append(("decision-unmirrored", key, "in the database, not in the store"))
            continue
        try:
            stored = store.get(key)
        except IntegrityError:
            found.append(("object-altered", key, "does not match its sha256"))
            continue
        if stored != canonical(body):
            found.append(("decision-contradicted", key, "the store says otherwise"))
    requests = {_request_of(k) for k in events if k.startswith(REQUESTS)}
    found += [
        ("decision-missing-from-index", key, "in the store, not in the database")
        for key in sorted(on_store - events.keys())
        if not (key.startswith(REQUESTS) and _request_of(key) in requests)
    ]
    return found


@dataclass
class Restored:
    """What :func:`restore` put back."""

    holds: int = 0
    redactions: int = 0
    requests: int = 0
    bates_ranges: int = 0
    problems: list[str] = field(default_factory=list)


def _events(
    store: WormStore, prefix: str, problems: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each readable decision object under ``prefix``; the others are named in ``problems``."""
    for key in store.keys(prefix):
        try:
            yield key, json.loads(store.get(key))
        except (IntegrityError, ValueError) as e:
            problems.append(f"{key}: unreadable ({e}); not restored")


def _query_text(body: dict[str, Any]) -> str:
    """The query column as :meth:`bulletin.archiver.holds.Query.to_json` writes it."""
    return json.dumps(body["query"], sort_keys=True, ensure_ascii=False)


def restore(session: Session, store: WormStore) -> Restored:
    """Add the holds, redactions, records requests and Bates ranges that the store's decision
    objects name and the database lacks (a lost database), with their ids; the records must be back
    already. A hold's records are attached again by
    :func:`bulletin.archiver.holds.refresh_holds`."""
    done = Restored()
    known_holds = set(session.exec(select(Hold.id)).all())
    for key, body in _events(store, HOLDS, done.problems):
        hold_id = int(body["hold"])
        if key.endswith("-opened.json") and hold_id not in known_holds:
            session.add(
                Hold(
                    id=hold_id,
                    name=body["name"],
                    query=_query_text(body),
                    reason=body["reason"],
                    request_id=body["request_id"],
                    created_by=body["by"],
                    created_at=parse_iso(body["at"]),
                )
            )
            session.flush()
            done.holds += 1
        elif key.endswith("-released.json"):
            hold = session.get(Hold, hold_id)
            if hold is not None and hold.state == "open" and hold_id not in known_holds:
                hold.state, hold.released_by = "released", body["by"]
                hold.released_at = parse_iso(body["at"]) if body["at"] else None
                hold.release_reason = body["reason"]
                session.add(hold)
    known = set(session.exec(select(Redaction.id)).all())
    for key, body in _events(store, REDACTIONS, done.problems):
        redaction_id = int(body["redaction"])
        if redaction_id in known:
            continue
        if key.endswith("-added.json"):
            if session.get(Record, body["record_id"]) is None:
                done.problems.append(
                    f"redaction {redaction_id}: record {body['record_id']} is gone"
                )
                continue
            session.add(
                Redaction(
                    id=redaction_id,
                    record_id=body["record_id"],
                    start=body["start"],
                    end=body["end"],
                    exemption=body["exemption"],
                    reason=body["reason"],
                    created_by=body["by"],
                    created_at=parse_iso(body["at"]),
                )
            )
            session.flush()
            done.redactions += 1
        elif key.endswith("-removed.json"):
            redaction = session.get(Redaction, redaction_id)
            if redaction is not None:
                redaction.removed_by = body["by"]
                redaction.removed_at = parse_iso(body["at"]) if body["at"] else None
                redaction.removal_reason = body["reason"]
                session.add(redaction)
    _restore_requests(session, store, done)
    _restore_bates(session, store, done)
    reset_id_sequences(session, ("holds", "redactions", "records_requests", "bates_ranges"))
    return done


def _restore_bates(session: Session, store: WormStore, done: Restored) -> None:
    """Add each range of Bates numbers issued that the database lacks."""
    known = set(session.exec(select(BatesRange.id)).all())
    for _, body in _events(store, BATES, done.problems):
        if int(body["range"]) in known:
            continue
        same = {name: body[name] for name in _BATES_FIELDS}
        issued_at = parse_iso(body["at"])
        session.add(
            BatesRange(id=int(body["range"]), issued_by=body["by"], issued_at=issued_at, **same)
        )
        done.bates_ranges += 1
    session.flush()


def _restore_requests(session: Session, store: WormStore, done: Restored) -> None:
    """Add each records request the database lacks, as its newest object says it stands."""
    known = set(session.exec(select(RecordsRequest.id)).all())
    newest: dict[int, tuple[tuple[bool, int], dict[str, Any]]] = {}
    for key, body in _events(store, REQUESTS, done.problems):
        rank = (key.endswith("-closed.json"), int(body["extension_days"]))
        request_id = int(body["request"])
        if request_id not in known and (request_id not in newest or rank > newest[request_id][0]):
            newest[request_id] = (rank, body)
    for request_id, (_, body) in sorted(newest.items()):
        session.add(
            RecordsRequest(
                id=request_id,
                requester=body["requester"],
                description=body["description"],
                query=_query_text(body),
                litigation=body["litigation"],
                received_on=date.fromisoformat(body["received_on"]),
                due_on=date.fromisoformat(body["due_on"]),
                extension_days=body["extension_days"],
                extension_reason=body["extension_reason"],
                state=body["state"],
                hold_id=body["hold_id"],
                opened_by=body["by"],
                opened_at=parse_iso(body["at"]),
                closed_by=body["closed_by"],
                closed_at=parse_iso(body["closed_at"]) if body["closed_at"] else None,
                close_reason=body["close_reason"],
            )
        )
        done.requests += 1
    session.flush()
