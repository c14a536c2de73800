"""The ``cap_alerts`` rows as claims: one row per alert received, written before anything is
done about it, so two importers racing for one alert cannot both act on it.

A claim is ``received`` while its alert is handled and then settled with an :class:`Outcome`.
One cut short (its importer died) is taken over once it is :data:`CLAIM_STALE`; one whose
handling failed is released, so the alert can be imported again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, tuple_

from bulletin import audit
from bulletin.cap.document import Alert, Info, Reference
from bulletin.cap.models import CapAlert
from bulletin.clock import Clock, utc
from bulletin.db import session_scope

#: a claim still ``received`` this long after it was made was cut short (the importer died)
CLAIM_STALE = timedelta(minutes=5)


@dataclass(frozen=True)
class Outcome:
    """What acting on an alert did, as its row records it."""

    outcome: str
    reason: str | None
    notice_id: int | None
    previous_notice_id: int | None


@dataclass
class Claims:
    """The ``cap_alerts`` rows of one database, claimed by ``actor``."""

    engine: Engine
    clock: Clock
    actor: str

    def existing(self, alert: Alert) -> CapAlert | None:
        """The row of ``alert`` (sender, identifier, sent), if it was received before."""
        with Session(self.engine) as session:
            return session.exec(
                select(CapAlert).where(
                    CapAlert.sender == alert.sender,
                    CapAlert.identifier == alert.identifier,
                    CapAlert.sent == alert.sent,
                )
            ).first()

    def referenced(self, refs: Sequence[Reference]) -> list[CapAlert]:
        """Rows of the referenced alerts that made or acted on a notice, oldest first."""
        keys = [(r.sender, r.identifier, r.sent) for r in refs]
        with Session(self.engine) as session:
            rows = session.exec(
                select(CapAlert)
                .where(tuple_(CapAlert.sender, CapAlert.identifier, CapAlert.sent).in_(keys))
                .where(col(CapAlert.notice_id).is_not(None))
                .order_by(col(CapAlert.id))
            ).all()
        return list(rows)

    def claim(
        self,
        alert: Alert,
        info: Info | None,
        signature: str,
        source: str,
        entry_id: str | None,
        outcome: str,
        reason: str | None,
    ) -> CapAlert | None:
        """Insert the alert's row (audited); None when another importer got there first."""
        now = self.clock.now()
        row = CapAlert(
            identifier=alert.identifier,
            sender=alert.sender,
            sent=alert.sent,
            sent_at=alert.sent_at,
            msg_type=alert.msg_type,
            status=alert.status,
            scope=alert.scope,
            references=" ".join(str(r) for r in alert.references) or None,
            event=info.event if info else None,
            severity=info.severity if info else None,
            urgency=info.urgency if info else None,
            expires_at=utc(info.expires) if info and info.expires else None,
            outcome=outcome,
            reason=reason,
            signature=signature,
            source=source,
            entry_id=entry_id,
            raw_sha256=alert.sha256,
            raw=alert.raw,
            imported_by=self.actor,
            imported_at=now,
        )
        try:
            with session_scope(self.engine) as session:
                session.add(row)
                session.flush()
                assert row.id is not None
                audit.record_event(
                    session,
                    at=now,
                    actor=self.actor,
                    action="cap-ignored" if outcome == "ignored" else "cap-received",
                    object_type="cap-alert",
                    object_id=row.id,
                    reason=reason,
                    alert=str(alert.key),
                    msg_type=alert.msg_type,
                    status=alert.status,
                    event=row.event,
                    sha256=alert.sha256,
                    signature=signature,
                    source=source,
                )
        except sa_exc.IntegrityError:
            return None
        return row

    def take_over(self, row: CapAlert, now: datetime) -> bool:
        """Whether ``row`` is a claim cut short (the importer died between recording the alert
        and acting on it) that this importer has now taken over, atomically."""
        if row.outcome != "received" or now - row.imported_at < CLAIM_STALE:
            return False
        table = CapAlert.__table__  # type: ignore[attr-defined]
        with session_scope(self.engine) as session:
            taken = session.execute(
                sa.update(table)
                .where(
                    table.c.id == row.id,
                    table.c.outcome == "received",
                    table.c.imported_at == row.imported_at,
                )
                .values(imported_at=now)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return False
            audit.record_event(
                session,
                at=now,
                actor=self.actor,
                action="cap-resumed",
                object_type="cap-alert",
                object_id=row.id or 0,
                reason="its handling was cut short",
                received_at=row.imported_at.isoformat(),
            )
        return True

    def stale(self) -> list[CapAlert]:
        """The claims cut short: still ``received`` after :data:`CLAIM_STALE`."""
        cutoff = self.clock.now() - CLAIM_STALE
        with Session(self.engine) as session:
            stuck = session.exec(
                select(CapAlert).where(
                    CapAlert.outcome == "received", col(CapAlert.imported_at) <= cutoff
                )
            ).all()
        return list(stuck)

    def release(self, row: CapAlert) -> None:
        """Forget a claim whose handling failed, so the alert can be imported again."""
        with session_scope(self.engine) as session:
            claimed = session.get(CapAlert, row.id)
            if claimed is not None and claimed.outcome == "received":
                session.delete(claimed)

    def finish(self, row: CapAlert, outcome: Outcome) -> CapAlert:
        """Settle ``row`` with ``outcome``; the row as stored."""
        with session_scope(self.engine) as session:
            return settle(session, row, outcome)


def settle(session: Session, row: CapAlert, outcome: Outcome) -> CapAlert:
    """Record ``outcome`` on ``row`` in ``session`` (with the notice it made, in one
    transaction)."""
    stored = session.get(CapAlert, row.id)
    assert stored is not None
    stored.outcome = outcome.outcome
    stored.reason = outcome.reason
    stored.notice_id = outcome.notice_id
    stored.previous_notice_id = outcome.previous_notice_id
    session.add(stored)
    return stored
