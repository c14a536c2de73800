"""The delivery worker: carries out one claimed delivery and decides what each outcome means
for it (published, tried again later, checked again later, failed, cancelled).

It never raises for platform or input trouble: every error a call raises becomes the
delivery's next state (see :meth:`DeliveryWorker._attempt`), written only while the claim
is held, with the connector's error code kept on the attempt.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.archiver.archive import Archiver
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.connectors.base import Connector, PublishResult
from bulletin.db import session_scope
from bulletin.errors import (
    Ambiguous,
    AuthError,
    BulletinError,
    ConnectorError,
    Duplicate,
    RateLimited,
    Refused,
    Rejected,
    StoreUnavailable,
)
from bulletin.identity import SYSTEM_ACTOR
from bulletin.logs import get_logger
from bulletin.models import Account, Approval, Delivery, Notice
from bulletin.publisher import policy
from bulletin.publisher.delivery.archiving import ArchivesPublished, notice_media
from bulletin.publisher.delivery.calls import Calls, ClaimLost
from bulletin.publisher.delivery.claims import EXPIRED, Claim, Claims, audit_final
from bulletin.publisher.delivery.posts import outgoing_post, reply_target
from bulletin.publisher.delivery.states import (
    FINAL_STATES,
    LIVE_NOTICE_STATES,
    move,
    refresh_notice_state,
)
from bulletin.publisher.delivery.together import hold_for, stop_siblings, variant_alts
from bulletin.publisher.texts import plan
from bulletin.states import DeliveryKind, DeliveryState

log = get_logger("bulletin.delivery")

LOST = "lost"  # an outcome's state when the claim expired before the outcome was written
_LOST_DETAIL = "claim expired before the outcome"


@dataclass(frozen=True)
class Outcome:
    """How one run ended: a :class:`DeliveryState` or ``lost``, why, and when it is due
    again (for ``pending`` and ``uncertain``)."""

    delivery_id: int
    state: str
    detail: str = ""
    deferred_until: datetime | None = None


class DeliveryWorker(ArchivesPublished):
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
        self.claims = Claims(engine, clock, owner, self.lease)
        self.calls = Calls(self.claims, clock)
        # where a published post's capture goes once its outcome is written; None: captured
        # here, before :meth:`run` returns (the daemon's dispatcher hands it to its own
        # threads, so the account's next delivery does not wait for it)
        self.archive_later: Callable[[int], None] | None = None

    # -- claims (see claims.py; archiving: archiving.py) ---------------------------------

    def claim(self, limit: int = 10, skip_accounts: Collection[str] = ()) -> list[Claim]:
        """Claim up to ``limit`` due deliveries, none of an account in ``skip_accounts``."""
        return self.claims.take(limit, skip_accounts)

    def expire_foreign_leases(self) -> int:
        """Make every other owner's claim reclaimable now (only for a daemon alone)."""
        return self.claims.expire_foreign()

    def next_due(self) -> datetime | None:
        """When the earliest waiting delivery becomes due (for ``--once`` reporting)."""
        return self.claims.next_due()

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
        with self.claims.keeper(claim.delivery_id):
            return self._carry_out(claim)

    def _carry_out(self, claim: Claim) -> Outcome:
        with Session(self.engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, claim.delivery_id)
            assert delivery is not None
            notice = session.get(Notice, delivery.notice_id)
            assert notice is not None
            parent = session.get(Delivery, delivery.parent_id) if delivery.parent_id else None
            blocked = self._policy_blocks(session, notice, delivery)
            hold = hold_for(session, notice, delivery, self.clock.now())
            alts = variant_alts(session, notice, delivery.lang)
        now = self.clock.now()
        is_post = delivery.kind == DeliveryKind.POST
        if is_post and notice.state not in LIVE_NOTICE_STATES and not claim.reconcile:
            return self._finish(delivery, DeliveryState.CANCELLED, f"notice is {notice.state}")
        if is_post and not claim.reconcile and hold.wait:
            return self._finish(delivery, DeliveryState.PENDING, hold.wait, due=hold.until)
        if is_post and not claim.reconcile and hold.fail:
            return self._finish(delivery, DeliveryState.FAILED, hold.fail)
        if is_post and hold.standalone:
            parent = None  # its primary post is not out: a post of its own
        if not is_post and (parent is None or parent.state != DeliveryState.PUBLISHED):
            return self._finish(
                delivery, DeliveryState.FAILED, "the post it refers to is not published"
            )
        try:
            connector = self.connector_for(delivery.account)
            # the images described in the post's language
            media = notice_media(self.archiver, notice, connector, alts) if is_post else ()
        except StoreUnavailable as e:  # the pinned images cannot be read now: later
            return self._defer(delivery, notice, None, str(e))
        except BulletinError as e:
            return self._finish(delivery, DeliveryState.FAILED, str(e))
        if delivery.kind == DeliveryKind.DELETION:
            assert parent is not None
            return self._attempt(
                delivery, notice, lambda: self._delete(delivery, notice, parent, connector)
            )
        post = outgoing_post(notice, delivery, media=media, reply_to=reply_target(parent))
        if claim.reconcile and not delivery.parts:  # threads reconcile part by part
            since = self.calls.look_back(delivery, notice)
            try:
                found = self.calls.find_ours(connector, post, since, delivery)
            except Exception as e:
                reason = str(e) if isinstance(e, BulletinError) else type(e).__name__
                return self._defer(
                    delivery,
                    notice,
                    None,
                    f"outcome unknown, platform not reachable: {reason}",
                    state=DeliveryState.UNCERTAIN,
                    code=_code(e),
                )
            if found is not None:
                log.info("reconciled", delivery=delivery.id, remote_id=found.remote_id)
                return self._published(delivery, notice, found, reconciled=True)
            if is_post and notice.state not in LIVE_NOTICE_STATES:
                return self._finish(delivery, DeliveryState.CANCELLED, f"notice is {notice.state}")
            self.claims.restart_attempt(delivery)
        if is_post and notice.expires_at is not None and now >= notice.expires_at:
            return self._finish(delivery, DeliveryState.FAILED, EXPIRED)

        def publish() -> Outcome:
            if delivery.parts:
                if blocked and not delivery.thread_ids:
                    return self._finish(delivery, DeliveryState.FAILED, blocked)
                try:
                    head = self.calls.publish_thread(claim, delivery, notice, connector, media)
                except ClaimLost:
                    return Outcome(delivery.id or 0, LOST, _LOST_DETAIL)
                return self._published(delivery, notice, head, reconciled=claim.reconcile)
            if blocked:
                return self._finish(delivery, DeliveryState.FAILED, blocked)
            try:
                result = connector.publish(post)
            except Duplicate:
                found = self.calls.after_duplicate(claim, delivery, connector, post)
                if found is None:
                    raise
                return self._published(delivery, notice, found, reconciled=True)
            return self._published(delivery, notice, result, reconciled=False)

        return self._attempt(delivery, notice, publish)

    def _attempt(self, delivery: Delivery, notice: Notice, call: Callable[[], Outcome]) -> Outcome:
        """Run one platform call and turn what it raises into the delivery's next state."""
        now = self.clock.now()
        try:
            return call()
        except RateLimited as e:
            return self._defer(delivery, notice, e.retry_after, f"rate limited: {e}", code=_code(e))
        except Ambiguous as e:
            return self._defer(
                delivery,
                notice,
                now + timedelta(seconds=2),
                f"outcome unknown: {e}",
                state=DeliveryState.UNCERTAIN,
                code=_code(e),
            )
        except (Rejected, AuthError) as e:
            return self._finish(delivery, DeliveryState.FAILED, str(e), code=_code(e))
        except BulletinError as e:  # the connector promises nothing reached the platform
            return self._defer(delivery, notice, None, str(e), code=_code(e))
        except Exception as e:  # a bug or library error: it may have been sent, so check first
            log.exception("delivery error", delivery=delivery.id)
            return self._defer(
                delivery,
                notice,
                None,
                f"unexpected error: {type(e).__name__}",
                state=DeliveryState.UNCERTAIN,
            )

    def _delete(
        self, delivery: Delivery, notice: Notice, parent: Delivery, connector: Connector
    ) -> Outcome:
        """Delete the parent's post; where the platform cannot delete, post the retraction
        as a reply instead (unless an earlier attempt did)."""
        try:
            done = self.calls.delete(connector, parent)
        except Refused as e:
            log.info("cannot delete, replying instead", delivery=delivery.id, reason=str(e))
            post = outgoing_post(notice, delivery, reply_to=reply_target(parent))
            since = self.calls.look_back(delivery, notice)
            found = self.calls.find_ours(connector, post, since, delivery)
            result = found or connector.publish(post)
            return self._published(
                delivery, notice, result, reconciled=found is not None, note=str(e)
            )
        return self._finish(delivery, DeliveryState.DELETED, done)

    def _policy_blocks(self, session: Session, notice: Notice, delivery: Delivery) -> str:
        """Why the content policy stops this delivery now ("" when it does not): the rules
        run again right before publishing, with the overrides its approvers gave. A post of
        a notice whose languages are published together is stopped by a finding in any of
        its occurrence's posts (every variant); with ``publish_partial``, by its own only."""
        together = [delivery]
        if delivery.kind == DeliveryKind.POST and not notice.publish_partial:
            together = list(
                session.exec(
                    select(Delivery)
                    .where(Delivery.notice_id == notice.id)
                    .where(Delivery.kind == DeliveryKind.POST)
                    .where(Delivery.occurrence == delivery.occurrence)
                    .where(Delivery.live())
                ).all()
            ) or [delivery]
        targets = []
        for one in together:
            account = session.get(Account, one.account)
            platform = account.platform if account else self.settings.accounts[one.account].platform
            target = plan(
                self.settings,
                one.account,
                platform,
                one.text or notice.text,
                notice.link,
                notice.allow_thread,
            )
            targets.append(replace(target, lang="" if one.lang in ("", notice.lang) else one.lang))
        images = notice.images or []
        findings = policy.check(
            self.settings,
            policy.Subject(notice.category, targets, notice.link, images, notice.lang),
        )
        approvals = session.exec(
            select(Approval)
            .where(Approval.notice_id == notice.id)
            .where(Approval.revision == notice.revision)
        ).all()
        overridden = {rule for a in approvals for rule in a.overrides or []}
        blocked = policy.blocking(findings, overridden)
        if not blocked:
            return ""
        return "content policy: " + "; ".join(f.line() for f in blocked)

    # -- writing the outcome (only while the claim is held) --------------------------------

    def _published(
        self,
        delivery: Delivery,
        notice: Notice,
        result: PublishResult,
        reconciled: bool,
        note: str | None = None,
    ) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            row = self.claims.owned(session, delivery)
            if row is None:
                return Outcome(delivery.id or 0, LOST, _LOST_DETAIL)
            move(row, DeliveryState.PUBLISHED)
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
            self.claims.close_attempt(session, row.id, DeliveryState.PUBLISHED, note)
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
        if self.archive_later is not None:
            self.archive_later(delivery.id or 0)
        else:
            self.archive_or_queue(delivery.id or 0)
        return Outcome(delivery.id or 0, DeliveryState.PUBLISHED, result.url or result.remote_id)

    def _defer(
        self,
        delivery: Delivery,
        notice: Notice,
        until: datetime | None,
        reason: str,
        state: DeliveryState = DeliveryState.PENDING,
        code: str | None = None,
    ) -> Outcome:
        """Try again later (``pending``) or check again later (``uncertain``), unless the
        notice's time is up: then fail with the reason."""
        now = self.clock.now()
        if until is None:
            backoff = min(300.0, 2.0 ** min(delivery.attempts, 8)) * (0.5 + random.random())
            until = now + timedelta(seconds=backoff)
        give_up = notice.expires_at if delivery.kind == DeliveryKind.POST else None
        if notice.priority != "emergency":
            routine_end = self.claims.first_try(delivery) + self.routine_give_up
            give_up = min(give_up, routine_end) if give_up else routine_end
        if give_up is not None and until >= give_up:
            return self._finish(delivery, DeliveryState.FAILED, f"gave up: {reason}", code=code)
        return self._finish(delivery, state, reason, due=until, code=code)

    def _finish(
        self,
        delivery: Delivery,
        state: DeliveryState,
        reason: str,
        due: datetime | None = None,
        code: str | None = None,
    ) -> Outcome:
        """Write the outcome ``state`` with its reason (and the connector's error ``code`` on
        the attempt); ``due`` is when a deferred delivery is tried again."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            row = self.claims.owned(session, delivery)
            if row is None:
                return Outcome(delivery.id or 0, LOST, _LOST_DETAIL)
            move(row, state)
            row.last_error = reason
            row.lease_owner = None
            row.lease_expires_at = None
            if due is not None:
                row.due_at = due
            session.add(row)
            error = f"[{code}] {reason}" if code else reason
            self.claims.close_attempt(session, row.id, state, error)
            if state in FINAL_STATES:
                audit_final(session, row, now)
                if state == DeliveryState.FAILED:
                    notice = session.get(Notice, row.notice_id)
                    assert notice is not None
                    for sibling in stop_siblings(session, notice, row):
                        audit_final(session, sibling, now)
                refresh_notice_state(session, row.notice_id, now)
        retrying = state in (DeliveryState.PENDING, DeliveryState.UNCERTAIN)
        level = (
            log.warning if state in (DeliveryState.FAILED, DeliveryState.UNCERTAIN) else log.info
        )
        level(
            str(state),
            delivery=delivery.id,
            account=delivery.account,
            reason=reason,
            code=code,
            due=due.isoformat() if due else None,
        )
        return Outcome(delivery.id or 0, state, reason, due if retrying else None)


def _code(error: BaseException) -> str | None:
    """The connector's code for ``error`` (None for other errors)."""
    return error.code if isinstance(error, ConnectorError) else None
