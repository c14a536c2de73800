"""Claims: a worker takes a due delivery under a lease before the platform is called.

The claim (state ``in-flight``, owner, lease, ``attempt_started_at``) and an open
:class:`~bulletin.models.DeliveryAttempt` are committed before any call, so a crash after the
call leaves a visible trace. A claim whose lease expired may be taken by another worker, which
then reconciles before trying again. Every write of an outcome goes through :meth:`owned`:
nothing is written once the claim is lost.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.clock import Clock
from bulletin.db import session_scope
from bulletin.identity import SYSTEM_ACTOR
from bulletin.logs import get_logger
from bulletin.models import Delivery, DeliveryAttempt, Notice
from bulletin.publisher import announce
from bulletin.publisher.delivery.states import RETRY_STATES, move, refresh_notice_state
from bulletin.states import DeliveryKind, DeliveryState

log = get_logger("bulletin.delivery")

EXPIRED = "the notice expired before it was published"
ABANDONED = "abandoned"  # the outcome of an attempt whose claim expired


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds; ``reconcile`` when an earlier attempt may have reached
    the platform (look for its post before trying again)."""

    delivery_id: int
    reconcile: bool
    account: str = ""


class LeaseKeeper:
    """Renews a claim's lease while the work runs: a small thread extends ``lease_expires_at``
    every third of the lease, so a slow platform call (retries, timeouts, a reconciliation
    look-up) never lets another daemon claim the delivery. It stops when the work ends, or
    when the claim is lost (the delivery is no longer in flight under this owner)."""

    def __init__(
        self, engine: Engine, clock: Clock, delivery_id: int, owner: str, lease: timedelta
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.delivery_id = delivery_id
        self.owner = owner
        self.lease = lease
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{delivery_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def renew(self) -> bool:
        """Extend the lease from now; False when this owner no longer holds the claim."""
        with self.engine.begin() as conn:
            renewed = conn.execute(
                sa.update(Delivery)
                .where(col(Delivery.id) == self.delivery_id)
                .where(col(Delivery.state) == DeliveryState.IN_FLIGHT)
                .where(col(Delivery.lease_owner) == self.owner)
                .values(lease_expires_at=self.clock.now() + self.lease)
            ).rowcount
        return bool(renewed)

    def _keep(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._done.wait(interval):
            try:
                if not self.renew():
                    return  # published, finished or claimed by another: nothing to keep
            except Exception as e:  # the database is busy or away: try again next round
                log.warning("lease not renewed", delivery=self.delivery_id, error=str(e))


class Claims:
    """The claims of one owner (a daemon): taking due deliveries, holding them, and the
    attempt rows that record each try."""

    def __init__(self, engine: Engine, clock: Clock, owner: str, lease: timedelta) -> None:
        self.engine = engine
        self.clock = clock
        self.owner = owner
        self.lease = lease

    def take(self, limit: int = 10, skip_accounts: Collection[str] = ()) -> list[Claim]:
        """Claim up to ``limit`` due deliveries (SKIP LOCKED on PostgreSQL), none of an account
        in ``skip_accounts`` (those busy in this daemon, whose deliveries go in order)."""
        now = self.clock.now()
        claims: list[Claim] = []
        with session_scope(self.engine) as session:
            self._fail_expired(session, now)
            due = sa.or_(
                sa.and_(col(Delivery.state).in_(RETRY_STATES), col(Delivery.due_at) <= now),
                sa.and_(
                    col(Delivery.state) == DeliveryState.IN_FLIGHT,
                    col(Delivery.lease_expires_at) < now,
                ),
            )
            query = (
                select(Delivery)
                .where(due)
                .order_by(col(Delivery.due_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if skip_accounts:
                query = query.where(col(Delivery.account).not_in(skip_accounts))
            for delivery in session.exec(query).all():
                assert delivery.id is not None
                reconcile = delivery.state in (DeliveryState.IN_FLIGHT, DeliveryState.UNCERTAIN)
                move(delivery, DeliveryState.IN_FLIGHT)
                delivery.lease_owner = self.owner
                delivery.lease_expires_at = now + self.lease
                delivery.attempts += 1
                if not reconcile:
                    delivery.attempt_started_at = now
                session.add(delivery)
                for stale in session.exec(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id == delivery.id)
                    .where(col(DeliveryAttempt.finished_at).is_(None))
                ):
                    stale.finished_at = now
                    stale.outcome = ABANDONED
                    stale.error = "its claim expired (the worker stopped or was too slow)"
                    session.add(stale)
                session.add(
                    DeliveryAttempt(delivery_id=delivery.id, owner=self.owner, started_at=now)
                )
                claims.append(Claim(delivery.id, reconcile, delivery.account))
        return claims

    def _fail_expired(self, session: Session, now: datetime) -> None:
        """Fail every post due to be tried whose notice expired, without claiming it:
        nothing is sent, so no attempt is counted or logged.

        Only due posts are looked at (a range of the due index, not every scheduled post):
        a post is due no later than its notice's expiry (a retry that would come after it
        fails at once instead), and one that is not due yet is failed here when it falls
        due, before any claim; the worker also refuses an expired post it holds."""
        rows = session.exec(
            select(Delivery)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.state) == DeliveryState.PENDING)
            .where(col(Delivery.due_at) <= now)
            .where(col(Delivery.kind) == DeliveryKind.POST)
            .where(col(Notice.expires_at) <= now)
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
        for row in rows:
            move(row, DeliveryState.FAILED)
            row.last_error = EXPIRED
            session.add(row)
            audit_final(session, row, now)
        session.flush()
        for notice_id in sorted({row.notice_id for row in rows}):
            refresh_notice_state(session, notice_id, now)

    def expire_foreign(self) -> int:
        """Make every other owner's claim reclaimable now (with a check on the platform first).

        Only for a daemon that knows it is alone (SQLite, under the instance lock): claims it
        finds are left by a process that died.
        """
        now = self.clock.now()
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Delivery)
                .where(col(Delivery.state) == DeliveryState.IN_FLIGHT)
                .where(col(Delivery.lease_owner) != self.owner)
            ).all()
            for row in rows:
                row.lease_expires_at = now - timedelta(seconds=1)
                session.add(row)
        return len(rows)

    def next_due(self) -> datetime | None:
        """When the earliest waiting delivery becomes due."""
        with Session(self.engine) as session:
            value: datetime | None = session.exec(
                select(sa.func.min(Delivery.due_at)).where(col(Delivery.state).in_(RETRY_STATES))
            ).one()
        return value

    def keeper(self, delivery_id: int) -> LeaseKeeper:
        """A lease keeper for one claimed delivery (use it as a context manager)."""
        return LeaseKeeper(self.engine, self.clock, delivery_id, self.owner, self.lease)

    def owned(self, session: Session, delivery: Delivery) -> Delivery | None:
        """The delivery, locked, if this worker still holds its claim.

        The notice is locked first: cancelling, retracting and the due-scan lock the notice
        and then its deliveries, so taking them in the other order here could deadlock with
        them on PostgreSQL.
        """
        session.exec(
            select(Notice.id).where(Notice.id == delivery.notice_id).with_for_update()
        ).first()
        row = session.exec(
            select(Delivery).where(Delivery.id == delivery.id).with_for_update()
        ).first()
        if row is None or row.state != DeliveryState.IN_FLIGHT or row.lease_owner != self.owner:
            log.warning("claim lost", delivery=delivery.id)
            return None
        return row

    def record_parts(self, delivery: Delivery, ids: list[str]) -> bool:
        """Commit the remote ids of a thread's parts published so far; False when the claim
        is lost."""
        with session_scope(self.engine) as session:
            row = self.owned(session, delivery)
            if row is None:
                return False
            row.thread_ids = list(ids)
            session.add(row)
        delivery.thread_ids = list(ids)
        return True

    def restart_attempt(self, delivery: Delivery) -> None:
        """Start the attempt's clock again (the earlier attempt is known not to have posted)."""
        with session_scope(self.engine) as session:
            row = self.owned(session, delivery)
            if row is not None:
                row.attempt_started_at = self.clock.now()
                session.add(row)

    def close_attempt(
        self, session: Session, delivery_id: int | None, outcome: str, error: str | None
    ) -> None:
        """End this owner's open attempt of the delivery with ``outcome`` and ``error``."""
        attempt = session.exec(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .where(DeliveryAttempt.owner == self.owner)
            .where(col(DeliveryAttempt.finished_at).is_(None))
            .order_by(col(DeliveryAttempt.id).desc())
        ).first()
        if attempt is not None:
            attempt.finished_at = self.clock.now()
            attempt.outcome = outcome
            attempt.error = error
            session.add(attempt)

    def first_try(self, delivery: Delivery) -> datetime:
        """When this delivery was first tried (each occurrence and reply counts on its own)."""
        with Session(self.engine) as session:
            first: datetime | None = session.exec(
                select(sa.func.min(DeliveryAttempt.started_at)).where(
                    DeliveryAttempt.delivery_id == delivery.id
                )
            ).one()
        return first or self.clock.now()


def audit_final(session: Session, row: Delivery, now: datetime) -> None:
    """The audit event of a delivery that reached a final state (with its reason)."""
    audit.record_event(
        session,
        at=now,
        actor=SYSTEM_ACTOR,
        action=str(row.state),
        object_type="delivery",
        object_id=row.id or 0,
        reason=row.last_error,
        notice=row.notice_id,
        account=row.account,
        kind=row.kind,
        occurrence=row.occurrence,
    )
    if row.state == DeliveryState.FAILED:
        announce.delivery_failed(session, row, now)
