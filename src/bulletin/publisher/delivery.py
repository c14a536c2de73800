"""Delivery: claim what is due, publish it exactly once, archive what was published.

Exactly once rests on three rules:

1. The claim (state ``in-flight``, owner, lease, ``attempt_started_at``) is committed *before*
   the platform is called, so a crash after the call leaves a visible trace of the attempt.
2. A delivery found ``in-flight`` with an expired lease, or ``uncertain`` after an ambiguous
   failure, is reconciled first: the connector looks for the post on the platform, and only
   when it is not there is the post tried again.
3. Every outcome is written only while this worker still owns the claim.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver.archive import Archiver, Capture
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.connectors.base import Connector, Media, OutgoingPost, PublishResult, RemoteItem
from bulletin.connectors.registry import build_connector, connector_class
from bulletin.connectors.retry import RECONCILE_WINDOW
from bulletin.db import session_scope
from bulletin.errors import (
    Ambiguous,
    AuthError,
    BulletinError,
    Duplicate,
    RateLimited,
    Refused,
    Rejected,
    StoreUnavailable,
)
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import Account, Approval, Delivery, DeliveryAttempt, Notice
from bulletin.publisher import policy
from bulletin.publisher.media import load_media, media_blobs
from bulletin.publisher.texts import plan

log = structlog.get_logger("bulletin.delivery")

RETRY_STATES = ("pending", "uncertain")
# how far before a delivery's first attempt its post is looked for after a duplicate refusal
DUPLICATE_LOOK_BACK = timedelta(days=7)
FINAL_DELIVERY_STATES = {"published", "failed", "cancelled", "deleted"}
LIVE_NOTICE_STATES = ("approved", "partially-published")
EXPIRED = "the notice expired before it was published"
ARCHIVE_RETRY = timedelta(seconds=15)  # archiving a published post failed: try again after


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    reconcile: bool  # a previous attempt may have reached the platform
    account: str = ""


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    state: str
    detail: str = ""
    deferred_until: datetime | None = None


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
                .where(col(Delivery.state) == "in-flight")
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


class DeliveryWorker:
    """Claims due deliveries and carries them out; several threads may share one (each
    uses its own connectors)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        archiver: Archiver,
        connector_for: Callable[[str], Connector],
        owner: str,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.archiver = archiver
        self.connector_for = connector_for
        self.owner = owner
        self.lease = timedelta(seconds=settings.daemon.lease_seconds)
        self.routine_give_up = settings.daemon.routine_give_up_delta

    # -- claiming ---------------------------------------------------------------------

    def claim(self, limit: int = 10, skip_accounts: Collection[str] = ()) -> list[Claim]:
        """Claim up to ``limit`` due deliveries (SKIP LOCKED on PostgreSQL), none of an account
        in ``skip_accounts`` (those busy in this daemon, whose deliveries go in order)."""
        now = self.clock.now()
        claims: list[Claim] = []
        with session_scope(self.engine) as session:
            self._fail_expired(session, now)
            due = sa.or_(
                sa.and_(col(Delivery.state).in_(RETRY_STATES), col(Delivery.due_at) <= now),
                sa.and_(col(Delivery.state) == "in-flight", col(Delivery.lease_expires_at) < now),
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
                reconcile = delivery.state in ("in-flight", "uncertain")
                delivery.state = "in-flight"
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
                    stale.outcome = "abandoned"
                    stale.error = "its claim expired (the worker stopped or was too slow)"
                    session.add(stale)
                session.add(
                    DeliveryAttempt(delivery_id=delivery.id, owner=self.owner, started_at=now)
                )
                claims.append(Claim(delivery.id, reconcile, delivery.account))
        return claims

    def _fail_expired(self, session: Session, now: datetime) -> None:
        """Fail every post waiting to be tried whose notice expired, without claiming it:
        nothing is sent, so no attempt is counted or logged."""
        rows = session.exec(
            select(Delivery)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.state) == "pending")
            .where(col(Delivery.kind) == "post")
            .where(col(Notice.expires_at) <= now)
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
        for row in rows:
            row.state = "failed"
            row.last_error = EXPIRED
            session.add(row)
            self._audit_final(session, row, now)
        session.flush()
        for notice_id in sorted({row.notice_id for row in rows}):
            refresh_notice_state(session, notice_id, now)

    def expire_foreign_leases(self) -> int:
        """Make every other owner's claim reclaimable now (with a check on the platform first).

        Only for a daemon that knows it is alone (SQLite, under the instance lock): claims it
        finds are left by a process that died.
        """
        now = self.clock.now()
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(Delivery)
                .where(col(Delivery.state) == "in-flight")
                .where(col(Delivery.lease_owner) != self.owner)
            ).all()
            for row in rows:
                row.lease_expires_at = now - timedelta(seconds=1)
                session.add(row)
        return len(rows)

    def next_due(self) -> datetime | None:
        """When the earliest waiting delivery becomes due (for ``--once`` reporting)."""
        with Session(self.engine) as session:
            value: datetime | None = session.exec(
                select(sa.func.min(Delivery.due_at)).where(Delivery.state.in_(RETRY_STATES))  # type: ignore[attr-defined]
            ).one()
        return value

    # -- carrying out ------------------------------------------------------------------

    def run(self, claim: Claim) -> Outcome:
        """Carry out one claimed delivery; never raises for platform or input trouble.

        A delivery whose earlier attempt may have reached the platform is looked for there
        first, and stays ``uncertain`` until the platform can be asked: it is never tried
        again blind.

        A post goes out only while its notice is approved and before its expiry; follow-ups,
        corrections and retractions reply to their parent's published post; a deletion
        deletes it (or, where the platform cannot delete, posts the retraction as a reply).

        The claim's lease is renewed while this runs (see :class:`LeaseKeeper`).
        """
        keeper = LeaseKeeper(self.engine, self.clock, claim.delivery_id, self.owner, self.lease)
        with keeper:
            return self._carry_out(claim)

    def _carry_out(self, claim: Claim) -> Outcome:
        with Session(self.engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, claim.delivery_id)
            assert delivery is not None
            notice = session.get(Notice, delivery.notice_id)
            assert notice is not None
            parent = session.get(Delivery, delivery.parent_id) if delivery.parent_id else None
            blocked = self._policy_blocks(session, notice, delivery)
        now = self.clock.now()
        is_post = delivery.kind == "post"
        if is_post and notice.state not in LIVE_NOTICE_STATES and not claim.reconcile:
            return self._finish(delivery, "cancelled", f"notice is {notice.state}")
        if not is_post and (parent is None or parent.state != "published"):
            return self._finish(delivery, "failed", "the post it refers to is not published")
        try:
            connector = self.connector_for(delivery.account)
            media = self._media(notice, connector) if is_post else ()
        except StoreUnavailable as e:  # the pinned images cannot be read now: later
            return self._defer(delivery, notice, None, str(e))
        except BulletinError as e:
            return self._finish(delivery, "failed", str(e))
        if delivery.kind == "deletion":
            assert parent is not None
            return self._attempt(
                delivery, notice, lambda: self._delete(delivery, notice, parent, connector)
            )
        post = outgoing_post(notice, delivery, media=media, reply_to=reply_target(parent))
        if claim.reconcile and not delivery.parts:  # threads reconcile part by part
            since = self._look_back(delivery, notice)
            try:
                found = self._find_ours(connector, post, since, delivery)
            except Exception as e:
                reason = str(e) if isinstance(e, BulletinError) else type(e).__name__
                return self._defer(
                    delivery,
                    notice,
                    None,
                    f"outcome unknown, platform not reachable: {reason}",
                    state="uncertain",
                )
            if found is not None:
                log.info("reconciled", delivery=delivery.id, remote_id=found.remote_id)
                return self._published(delivery, notice, connector, found, reconciled=True)
            if is_post and notice.state not in LIVE_NOTICE_STATES:
                return self._finish(delivery, "cancelled", f"notice is {notice.state}")
            self._restart_attempt(delivery)
        if is_post and notice.expires_at is not None and now >= notice.expires_at:
            return self._finish(delivery, "failed", EXPIRED)

        def publish() -> Outcome:
            if delivery.parts:
                return self._publish_thread(claim, delivery, notice, connector, media, blocked)
            if blocked:
                return self._finish(delivery, "failed", blocked)
            try:
                result = connector.publish(post)
            except Duplicate:
                found = self._after_duplicate(claim, delivery, notice, connector, post)
                if found is None:
                    raise
                return self._published(delivery, notice, connector, found, reconciled=True)
            return self._published(delivery, notice, connector, result, reconciled=False)

        return self._attempt(delivery, notice, publish)

    def _media(self, notice: Notice, connector: Connector) -> tuple[Media, ...]:
        """The notice's images as pinned in the store (drafting checked that the platform
        takes that many)."""
        return load_media(self.archiver.store, notice) if connector.limits().max_media else ()

    def _attempt(self, delivery: Delivery, notice: Notice, call: Callable[[], Outcome]) -> Outcome:
        """Run one platform call and turn what it raises into the delivery's next state."""
        now = self.clock.now()
        try:
            return call()
        except RateLimited as e:
            return self._defer(delivery, notice, e.retry_after, f"rate limited: {e}")
        except Ambiguous as e:
            return self._defer(
                delivery,
                notice,
                now + timedelta(seconds=2),
                f"outcome unknown: {e}",
                state="uncertain",
            )
        except (Rejected, AuthError) as e:
            return self._finish(delivery, "failed", str(e))
        except BulletinError as e:  # the connector promises nothing reached the platform
            return self._defer(delivery, notice, None, str(e))
        except Exception as e:  # a bug or library error: it may have been sent, so check first
            log.exception("delivery error", delivery=delivery.id)
            return self._defer(
                delivery, notice, None, f"unexpected error: {type(e).__name__}", state="uncertain"
            )

    def _delete(
        self, delivery: Delivery, notice: Notice, parent: Delivery, connector: Connector
    ) -> Outcome:
        """Delete the parent's post (every part of a thread, last first); where the platform
        cannot delete, post the retraction as a reply instead. Deleting is idempotent: a post
        already gone counts as deleted."""
        ids = json.loads(parent.thread_ids) if parent.thread_ids else [parent.remote_id or ""]
        try:
            for remote_id in reversed(ids):
                connector.delete_post(remote_id)
        except Refused as e:
            log.info("cannot delete, replying instead", delivery=delivery.id, reason=str(e))
            post = outgoing_post(notice, delivery, reply_to=reply_target(parent))
            found = self._find_ours(connector, post, self._look_back(delivery, notice), delivery)
            result = found or connector.publish(post)
            return self._published(
                delivery, notice, connector, result, reconciled=found is not None, note=str(e)
            )
        return self._finish(delivery, "deleted", f"deleted {parent.remote_url or ids[0]}")

    def _policy_blocks(self, session: Session, notice: Notice, delivery: Delivery) -> str:
        """Why the content policy stops this delivery now ("" when it does not): the rules
        run again right before publishing, with the overrides its approvers gave."""
        account = session.get(Account, delivery.account)
        platform = (
            account.platform if account else self.settings.accounts[delivery.account].platform
        )
        target = plan(
            self.settings,
            delivery.account,
            platform,
            delivery.text or notice.text,
            notice.link,
            notice.allow_thread,
        )
        images = json.loads(notice.images) if notice.images else []
        findings = policy.check(
            self.settings, policy.Subject(notice.category, [target], notice.link, images)
        )
        approvals = session.exec(select(Approval).where(Approval.notice_id == notice.id)).all()
        overridden = {rule for a in approvals for rule in policy.parse_overrides(a.overrides)}
        blocked = policy.blocking(findings, overridden)
        if not blocked:
            return ""
        return "content policy: " + "; ".join(f.line() for f in blocked)

    def _publish_thread(
        self,
        claim: Claim,
        delivery: Delivery,
        notice: Notice,
        connector: Connector,
        media: tuple[Media, ...],
        blocked: str,
    ) -> Outcome:
        """Post the numbered parts in order, each a reply to the one before. Each part's id is
        committed before the next is tried, so a crash or a retry resumes where it stopped;
        the first part not yet recorded is looked for on the platform when reconciling."""
        parts: list[str] = json.loads(delivery.parts or "[]")
        ids: list[str] = json.loads(delivery.thread_ids or "[]")
        if not ids and blocked:
            return self._finish(delivery, "failed", blocked)
        head: PublishResult | None = None
        resume_at = len(ids)
        for index in range(resume_at, len(parts)):
            post = outgoing_post(
                notice,
                delivery,
                part=index,
                reply_to=ids[-1] if ids else None,
                media=media if index == 0 else (),
            )
            found = None
            if claim.reconcile and index == resume_at:
                try:
                    found = self._find_ours(
                        connector, post, self._look_back(delivery, notice), delivery
                    )
                except BulletinError as e:  # stay uncertain: never post a part blind
                    raise Ambiguous(f"could not check the platform: {e}") from e
                if found is None:
                    self._restart_attempt(delivery)
            result = found or connector.publish(post)
            ids.append(result.remote_id)
            head = head or (result if index == 0 else None)
            if not self._record_parts(delivery, ids):
                return Outcome(delivery.id or 0, "lost", "claim expired before the outcome")
        if head is None:
            head = PublishResult(ids[0], None, None, b"")
        return self._published(delivery, notice, connector, head, reconciled=claim.reconcile)

    def _look_back(self, delivery: Delivery, notice: Notice) -> datetime:
        """Where a look for an earlier attempt's post starts: a day before the attempt, by
        this host's clock. The post is recognised by its text, never by its time, so a host
        clock ahead of the platform's, or stepped back after a crash, cannot hide it; the
        window only bounds how much is read."""
        started = delivery.attempt_started_at or notice.approved_at or self.clock.now()
        return started - RECONCILE_WINDOW

    def _find_ours(
        self, connector: Connector, post: OutgoingPost, since: datetime, delivery: Delivery
    ) -> PublishResult | None:
        """The platform's post with ``post``'s text since ``since``, unless it is the post of
        another delivery already (the same words published before for another notice)."""
        found = connector.find_published(post, since)
        if found is None:
            return None
        with Session(self.engine) as session:
            other = session.exec(
                select(Delivery.id)
                .where(Delivery.account == delivery.account)
                .where(Delivery.remote_id == found.remote_id)
                .where(Delivery.id != delivery.id)
            ).first()
        return None if other is not None else found

    def _after_duplicate(
        self,
        claim: Claim,
        delivery: Delivery,
        notice: Notice,
        connector: Connector,
        post: OutgoingPost,
    ) -> PublishResult | None:
        """After an earlier attempt of this delivery may have reached the platform, a
        duplicate refusal most likely means it did: look wider for that post. None when this
        delivery had no earlier attempt, or the post is not found."""
        if not claim.reconcile and delivery.attempts <= 1:
            return None
        since = self._first_try(delivery) - DUPLICATE_LOOK_BACK
        try:
            found = self._find_ours(connector, post, since, delivery)
        except BulletinError as e:
            raise Ambiguous(f"refused as a duplicate and could not check the platform: {e}") from e
        if found is not None:
            log.warning(
                "duplicate refusal: the earlier attempt's post is live",
                delivery=delivery.id,
                remote_id=found.remote_id,
            )
        return found

    def _record_parts(self, delivery: Delivery, ids: list[str]) -> bool:
        with session_scope(self.engine) as session:
            row = self._owned(session, delivery)
            if row is None:
                return False
            row.thread_ids = json.dumps(ids)
            session.add(row)
        delivery.thread_ids = json.dumps(ids)
        return True

    def _restart_attempt(self, delivery: Delivery) -> None:
        with session_scope(self.engine) as session:
            row = self._owned(session, delivery)
            if row is not None:
                row.attempt_started_at = self.clock.now()
                session.add(row)

    def _owned(self, session: Session, delivery: Delivery) -> Delivery | None:
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
        if row is None or row.state != "in-flight" or row.lease_owner != self.owner:
            log.warning("claim lost", delivery=delivery.id)
            return None
        return row

    def _published(
        self,
        delivery: Delivery,
        notice: Notice,
        connector: Connector,
        result: PublishResult,
        reconciled: bool,
        note: str | None = None,
    ) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            row = self._owned(session, delivery)
            if row is None:
                return Outcome(delivery.id or 0, "lost", "claim expired before the outcome")
            row.state = "published"
            row.remote_id = result.remote_id
            row.remote_url = result.url
            row.published_at = result.posted_at or now
            row.raw_response = result.raw
            row.lease_owner = None
            row.lease_expires_at = None
            row.last_error = note
            # archived just below; should this worker stop first, a later due-scan does it
            row.archive_due_at = now + self.lease
            session.add(row)
            self._close_attempt(session, row.id, "published", note)
            audit.record_event(
                session,
                at=now,
                actor=SYSTEM_ACTOR,
                action="published",
                object_type="delivery",
                object_id=row.id or 0,
                notice=notice.id,
                account=row.account,
                kind=row.kind,
                occurrence=row.occurrence,
                remote_id=result.remote_id,
                reconciled=reconciled,
                daemon=self.owner,
            )
            refresh_notice_state(session, notice.id or 0, now)
        log.info(
            "published",
            notice=notice.id,
            account=delivery.account,
            kind=delivery.kind,
            occurrence=delivery.occurrence,
            remote_id=result.remote_id,
            url=result.url,
        )
        self.archive_or_queue(delivery.id or 0)
        return Outcome(delivery.id or 0, "published", result.url or result.remote_id)

    def archive_or_queue(self, delivery_id: int) -> bool:
        """Archive a published delivery's snapshot now; True when done. When that fails (the
        store unavailable for a moment), the delivery stays published and its archiving is
        queued in the database (``archive_due_at``, with the reason) for a later due-scan."""
        try:
            self.archive_published(delivery_id)
            return True
        except Exception as e:
            if isinstance(e, BulletinError):
                reason = str(e)
            else:
                reason = f"unexpected error: {type(e).__name__}"
                log.exception("archiving failed", delivery=delivery_id)
        retry = self.clock.now() + ARCHIVE_RETRY
        with session_scope(self.engine) as session:
            row = session.get(Delivery, delivery_id)
            if row is not None and row.archived_record_id is None:
                row.archive_due_at = retry
                row.archive_error = reason
                session.add(row)
        log.warning(
            "published; archiving postponed", delivery=delivery_id, error=reason, retry=str(retry)
        )
        return False

    def archive_due(self, limit: int = 20) -> int:
        """Archive the published deliveries whose archiving is due (an earlier try failed, or
        the worker that published stopped first); each is taken by one daemon for a lease
        before it is tried. Returns how many were archived."""
        now = self.clock.now()
        with Session(self.engine) as session:
            due = session.exec(
                select(Delivery.id)
                .where(col(Delivery.archive_due_at) <= now)
                .order_by(col(Delivery.archive_due_at))
                .limit(limit)
            ).all()
        done = 0
        for delivery_id in due:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    sa.update(Delivery)
                    .where(col(Delivery.id) == delivery_id)
                    .where(col(Delivery.archive_due_at) <= now)
                    .values(archive_due_at=now + self.lease)
                ).rowcount
            if taken and delivery_id is not None and self.archive_or_queue(delivery_id):
                done += 1
        return done

    def archive_published(self, delivery_id: int) -> None:
        """Archive the snapshot of a published delivery, once (safe to repeat after a crash).

        The snapshot is the platform's own representation, read back by id and normalised as
        a capture sweep normalises it, so the first sweep finds no false edit; only when it
        cannot be read is what was sent archived instead.
        """
        with Session(self.engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.state != "published" or delivery.archived_record_id:
                if delivery is not None and delivery.archive_due_at is not None:
                    delivery.archive_due_at = None  # nothing (more) to archive
                    session.add(delivery)
                    session.commit()
                return
            notice = session.get(Notice, delivery.notice_id)
            account = session.get(Account, delivery.account)
            assert notice is not None and account is not None
            parent = session.get(Delivery, delivery.parent_id) if delivery.parent_id else None
        parts = json.loads(delivery.parts) if delivery.parts else []
        media = (
            self._media(notice, self.connector_for(delivery.account))
            if delivery.kind == "post"
            else ()
        )
        ours = (
            {"notice_id": notice.id, "category": notice.category}
            | ({"thread_ids": json.loads(delivery.thread_ids or "[]")} if parts else {})
            | (
                {"kind": delivery.kind, "occurrence": delivery.occurrence}
                if delivery.kind != "post" or delivery.occurrence != 1
                else {}
            )
        )
        item = self._read_back(delivery, parent) or RemoteItem(
            kind="post",
            remote_id=delivery.remote_id or "",
            text=parts[0] if parts else (delivery.text or notice.text),
            author=delivery.account,
            posted_at=delivery.published_at,
            url=delivery.remote_url,
            parent_id=reply_target(parent),
            thread_id=parent.remote_id if parent else delivery.remote_id,
            raw=delivery.raw_response or b"",
        )
        item = replace(item, extra=item.extra | ours)
        record = self.archiver.archive(
            [
                Capture(
                    delivery.account,
                    account.platform,
                    item,
                    account.training,
                    notice.id,
                    notice.priority,
                    media_blobs(media, notice),
                )
            ]
        )[0]
        with session_scope(self.engine) as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            row.archived_record_id = record.id
            row.archive_due_at = None
            row.archive_error = None
            session.add(row)

    def _read_back(self, delivery: Delivery, parent: Delivery | None) -> RemoteItem | None:
        """The published post as the platform holds it now; None when it cannot be read."""
        try:
            return self.connector_for(delivery.account).fetch_post(
                delivery.remote_id or "", reply_target(parent)
            )
        except BulletinError as e:
            log.warning(
                "published post not read back; archiving what was sent",
                delivery=delivery.id,
                error=str(e),
            )
            return None

    def _defer(
        self,
        delivery: Delivery,
        notice: Notice,
        until: datetime | None,
        reason: str,
        state: str = "pending",
    ) -> Outcome:
        """Try again later (``pending``) or check again later (``uncertain``), unless the
        notice's time is up: then fail with the reason."""
        now = self.clock.now()
        if until is None:
            backoff = min(300.0, 2.0 ** min(delivery.attempts, 8)) * (0.5 + random.random())
            until = now + timedelta(seconds=backoff)
        give_up = notice.expires_at if delivery.kind == "post" else None
        if notice.priority != "emergency":
            routine_end = self._first_try(delivery) + self.routine_give_up
            give_up = min(give_up, routine_end) if give_up else routine_end
        if give_up is not None and until >= give_up:
            return self._finish(delivery, "failed", f"gave up: {reason}")
        return self._finish(delivery, state, reason, due=until)

    def _first_try(self, delivery: Delivery) -> datetime:
        """When this delivery was first tried (each occurrence and reply counts on its own)."""
        with Session(self.engine) as session:
            first: datetime | None = session.exec(
                select(sa.func.min(DeliveryAttempt.started_at)).where(
                    DeliveryAttempt.delivery_id == delivery.id
                )
            ).one()
        return first or self.clock.now()

    def _close_attempt(
        self, session: Session, delivery_id: int | None, outcome: str, error: str | None
    ) -> None:
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

    def _audit_final(self, session: Session, row: Delivery, now: datetime) -> None:
        """The audit event of a delivery that reached a final state (with its reason)."""
        audit.record_event(
            session,
            at=now,
            actor=SYSTEM_ACTOR,
            action=row.state,
            object_type="delivery",
            object_id=row.id or 0,
            reason=row.last_error,
            notice=row.notice_id,
            account=row.account,
            kind=row.kind,
            occurrence=row.occurrence,
        )

    def _finish(
        self, delivery: Delivery, state: str, reason: str, due: datetime | None = None
    ) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            row = self._owned(session, delivery)
            if row is None:
                return Outcome(delivery.id or 0, "lost", "claim expired before the outcome")
            row.state = state
            row.last_error = reason
            row.lease_owner = None
            row.lease_expires_at = None
            if due is not None:
                row.due_at = due
            session.add(row)
            self._close_attempt(session, row.id, state, reason)
            if state in FINAL_DELIVERY_STATES:
                self._audit_final(session, row, now)
                refresh_notice_state(session, row.notice_id, now)
        level = log.warning if state in ("failed", "uncertain") else log.info
        level(
            state,
            delivery=delivery.id,
            account=delivery.account,
            reason=reason,
            due=due.isoformat() if due else None,
        )
        deferred = due if state in ("pending", "uncertain") else None
        return Outcome(delivery.id or 0, state, reason, deferred)


def outgoing_post(
    notice: Notice,
    delivery: Delivery,
    part: int | None = None,
    reply_to: str | None = None,
    media: tuple[Media, ...] = (),
) -> OutgoingPost:
    """What to send for ``delivery``: its own text (the variant for its account), or one
    numbered part of its thread (the link goes with the first part only)."""
    text = delivery.text or notice.text
    key = delivery_key(notice, delivery)
    link = notice.link if delivery.kind == "post" else None
    if part is not None:
        text = json.loads(delivery.parts or "[]")[part]
        if part:
            key = f"{key}-part-{part + 1}"
            link = None
    return OutgoingPost(
        key=key,
        text=text,
        title=notice.title,
        category=notice.category,
        link=link,
        reply_to=reply_to,
        media=media,
    )


def delivery_key(notice: Notice, delivery: Delivery) -> str:
    """Stable across attempts, distinct per occurrence and per reply: ``notice-7.3f9a02bc``,
    ``notice-7.3f9a02bc-occurrence-3``, ``notice-7.3f9a02bc-follow-up``,
    ``notice-7.3f9a02bc-correction-2``... The notice's random token makes a key unique even
    where its number was used before (a notice made before tokens has none: ``notice-7``)."""
    key = f"notice-{notice.id}" + (f".{notice.uid}" if notice.uid else "")
    if delivery.occurrence != 1:
        key += f"-occurrence-{delivery.occurrence}"
    if delivery.kind != "post":
        key += f"-{delivery.kind}"
    if delivery.revision:
        key += f"-{delivery.revision}"
    return key


_KEY_NOTICE = re.compile(r"notice-([0-9]+)(?![0-9])")


def notice_of_key(key: str) -> int | None:
    """The notice number in a delivery key, if it is one."""
    found = _KEY_NOTICE.match(key)
    return int(found.group(1)) if found else None


def highest_notice_on_platforms(
    settings: Settings, environ: Mapping[str, str]
) -> tuple[int, list[str]]:
    """The highest notice number in the delivery keys the configured accounts' platforms hold
    (see :meth:`Connector.published_keys`), and a line for each platform that could not be
    read. Ids are continued above it after a restore or a rebuild."""
    highest, problems = 0, []
    for name, account in sorted(settings.accounts.items()):
        try:
            if not connector_class(account.platform).keeps_keys:
                continue
            connector = build_connector(name, settings, environ)
            try:
                keys = connector.published_keys()
            finally:
                connector.close()
            highest = max([highest, *(n for n in map(notice_of_key, keys) if n is not None)])
        except BulletinError as e:
            problems.append(f"account {name}: its delivery keys could not be read: {e}")
    return highest, problems


def reply_target(parent: Delivery | None) -> str | None:
    """The remote id a reply to ``parent`` answers: the last part of a thread, else its post."""
    if parent is None:
        return None
    if parent.thread_ids:
        ids: list[str] = json.loads(parent.thread_ids)
        if ids:
            return ids[-1]
    return parent.remote_id


def refresh_notice_state(session: Session, notice_id: int, now: datetime) -> None:
    """Set the notice's state from its posts once all of them are final (a recurring notice:
    once no occurrence is left to come). Replies and deletions do not change it, nor does
    anything change a retracted notice."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.next_occurrence_at is not None or notice.state == "retracted":
        return
    states = [
        d.state
        for d in session.exec(
            select(Delivery).where(Delivery.notice_id == notice_id).where(Delivery.kind == "post")
        )
    ]
    if not states or any(s not in FINAL_DELIVERY_STATES for s in states):
        return
    published = states.count("published")
    if published == len(states):
        new = "published"
    elif published:
        new = "partially-published"
    elif all(s == "cancelled" for s in states):
        new = "cancelled"
    else:
        new = "failed"
    if new != notice.state:
        notice.state = new
        session.add(notice)
        audit.record_event(
            session,
            at=now,
            actor=SYSTEM_ACTOR,
            action=f"notice-{new}",
            object_type="notice",
            object_id=notice_id,
        )
