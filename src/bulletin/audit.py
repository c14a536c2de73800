"""Audit events: every state change says who, what, which object, when and why."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.db import insert_rows
from bulletin.jsonenc import reused
from bulletin.models import AuditEvent

_TABLE = AuditEvent.__table__  # type: ignore[attr-defined]
# json.dumps(detail, sort_keys=True, default=str), its encoder made once (the archive writes
# an event per record)
_DETAIL = json.JSONEncoder(sort_keys=True, default=str)
_DETAIL_JSON = reused(_DETAIL)


class Origin(Protocol):
    """An authenticated actor (:class:`bulletin.app.actor.Actor`): who, how, from where, and
    the admin (``by``) acting on their behalf for ``reason``, if one is."""

    @property
    def name(self) -> str: ...
    @property
    def via(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def by(self) -> str: ...
    @property
    def reason(self) -> str: ...


_ACTING: ContextVar[Origin | None] = ContextVar("bulletin_audit_acting", default=None)


@contextmanager
def acting(origin: Origin) -> Iterator[None]:
    """While inside, an event whose actor is ``origin.name`` records its ``via`` and
    ``host`` (the application layer wraps each action in this; the domain passes names)."""
    token = _ACTING.set(origin)
    try:
        yield
    finally:
        _ACTING.reset(token)


def event(
    *,
    at: datetime,
    actor: str | Origin,
    action: str,
    object_type: str,
    object_id: str | int,
    reason: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """An audit event as a row of ``audit_events``, not yet added anywhere (for
    :func:`record_events`). ``actor`` is a name, or an :class:`Origin` whose ``via`` and
    ``host`` are recorded too (as they are for a name acting under :func:`acting`).

    An origin acted for by an admin (its ``by``) is recorded as the admin's event: ``actor``
    is the admin, and ``detail`` holds ``on_behalf_of`` (the name) and ``on_behalf_reason``."""
    origin: Origin | None
    if isinstance(actor, str):
        current = _ACTING.get()
        origin = current if current is not None and current.name == actor else None
    else:
        origin = actor
    name = actor if isinstance(actor, str) else actor.name
    if origin is not None and origin.by:
        detail = {**detail, "on_behalf_of": name, "on_behalf_reason": origin.reason}
        name = origin.by
    return {
        "at": at,
        "actor": name,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "reason": reason,
        "detail": detail_json(detail) if detail else None,
        "via": origin.via if origin is not None else None,
        "host": (origin.host or None) if origin is not None else None,
    }


def events_of(
    *,
    at: datetime,
    actor: str | Origin,
    action: str,
    object_type: str,
    objects: Iterable[tuple[str | int, Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """One event per ``(object_id, detail)`` of ``objects``, all by ``actor`` at ``at``: the
    rows :func:`event` gives for each (same columns, same values), with who acted resolved
    once for the lot and each detail written by :func:`detail_json`."""
    first = event(at=at, actor=actor, action=action, object_type=object_type, object_id="")
    if first["detail"] is not None:  # on behalf of someone: each detail names them
        return [
            event(
                at=at,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=oid,
                **detail,
            )
            for oid, detail in objects
        ]
    name, via, host = first["actor"], first["via"], first["host"]
    return [
        {
            "at": at,
            "actor": name,
            "action": action,
            "object_type": object_type,
            "object_id": str(oid),
            "reason": None,
            "detail": detail_json(detail) if detail else None,
            "via": via,
            "host": host,
        }
        for oid, detail in objects
    ]


def detail_json(detail: Mapping[str, Any]) -> str:
    """``json.dumps(detail, sort_keys=True, default=str)``, its encoder made once."""
    return _DETAIL_JSON(detail)


def record_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Insert many events (rows from :func:`event`) at once, in the session's transaction."""
    if events:
        session.flush()  # what was added before goes first, as the ORM's own insert would
        insert_rows(session.connection(), _TABLE, events)


def record_event(
    session: Session,
    *,
    at: datetime,
    actor: str | Origin,
    action: str,
    object_type: str,
    object_id: str | int,
    reason: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to ``session`` (committed with the change it describes)."""
    draft = event(
        at=at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        reason=reason,
        **detail,
    )
    added = AuditEvent(**draft)
    session.add(added)
    return added


def events(
    engine: Engine,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """The newest ``limit`` events (of one object type, one object, one action when given),
    oldest first."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if action:
        query = query.where(AuditEvent.action == action)
    with Session(engine) as session:
        return list(reversed(session.exec(query).all()))


def search(
    engine: Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """The newest ``limit`` events matching every filter given (``since`` inclusive,
    ``before`` exclusive), newest first."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    if before is not None:
        query = query.where(col(AuditEvent.at) < before)
    query = query.order_by(col(AuditEvent.id).desc()).limit(limit)
    with Session(engine) as session:
        return list(session.exec(query).all())
