"""Audit events: every state change says who, what, which object, when and why."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bulletin.models import AuditEvent


def event(
    *,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    reason: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """An audit event, not yet added anywhere (uninstrumented: for :func:`record_events`)."""
    return AuditEvent.model_construct(
        at=at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        reason=reason,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
    )


def record_events(session: Session, events: list[AuditEvent]) -> None:
    """Insert many events at once (a capture batch)."""
    if events:
        session.execute(sa.insert(AuditEvent), [e.model_dump(exclude={"id"}) for e in events])


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
    added = AuditEvent(**draft.model_dump(exclude={"id"}))
    session.add(added)
    return added
