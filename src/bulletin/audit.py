"""Audit events: every state change says who, what, which object, when and why."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bulletin.models import AuditEvent

_TABLE = AuditEvent.__table__  # type: ignore[attr-defined]


def event(
    *,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    reason: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """An audit event as a row of ``audit_events``, not yet added anywhere (for
    :func:`record_events`)."""
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "reason": reason,
        "detail": json.dumps(detail, sort_keys=True, default=str) if detail else None,
    }


def record_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Insert many events (rows from :func:`event`) at once, in the session's transaction."""
    if events:
        session.flush()  # what was added before goes first, as the ORM's own insert would
        session.connection().execute(_TABLE.insert(), list(events))


def record_event(
    session: Session,
    *,
    at: datetime,
    actor: str,
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
