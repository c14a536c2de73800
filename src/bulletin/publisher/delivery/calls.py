"""The calls a delivery makes to its platform, and the look-ups that settle an uncertain one.

Retries inside one call are the connector's (:mod:`bulletin.connectors.retry`). Here: a
post, a thread part by part, a deletion, the read-back of a published post, and
reconciliation: an attempt that may have reached the platform is looked for there, by its
text, before anything is sent again; a post found is ours only when no other delivery
holds its id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bulletin.clock import Clock
from bulletin.connectors.base import Connector, Media, OutgoingPost, PublishResult, RemoteItem
from bulletin.connectors.retry import RECONCILE_WINDOW
from bulletin.errors import Ambiguous, BulletinError
from bulletin.logs import get_logger
from bulletin.models import Delivery, Notice
from bulletin.publisher.delivery.claims import Claim, Claims
from bulletin.publisher.delivery.posts import outgoing_post, reply_target

log = get_logger("bulletin.delivery")

# how far before a delivery's first attempt its post is looked for after a duplicate refusal
DUPLICATE_LOOK_BACK = timedelta(days=7)


class ClaimLost(Exception):
    """This worker no longer holds the claim: stop, write nothing."""


class Calls:
    """The platform calls of one worker; what is learnt mid-way (a thread's part ids, a
    restarted attempt) is written through the claim."""

    def __init__(self, claims: Claims, clock: Clock) -> None:
        self.claims = claims
        self.clock = clock

    def look_back(self, delivery: Delivery, notice: Notice) -> datetime:
        """Where a look for an earlier attempt's post starts: a day before the attempt, by
        this host's clock. The post is recognised by its text, never by its time, so a host
        clock ahead of the platform's, or stepped back after a crash, cannot hide it; the
        window only bounds how much is read."""
        started = delivery.attempt_started_at or notice.approved_at or self.clock.now()
        return started - RECONCILE_WINDOW

    def find_ours(
        self, connector: Connector, post: OutgoingPost, since: datetime, delivery: Delivery
    ) -> PublishResult | None:
        """The platform's post with ``post``'s text since ``since``, unless it is the post of
        another delivery already (the same words published before for another notice)."""
        found = connector.find_published(post, since)
        if found is None:
            return None
        with Session(self.claims.engine) as session:
            other = session.exec(
                select(Delivery.id)
                .where(Delivery.account == delivery.account)
                .where(Delivery.remote_id == found.remote_id)
                .where(Delivery.id != delivery.id)
            ).first()
        return None if other is not None else found

    def reconcile(
        self, connector: Connector, post: OutgoingPost, delivery: Delivery, notice: Notice
    ) -> PublishResult | None:
        """An earlier attempt's post, if the platform has it (raises when it cannot be
        asked); when it has not, the attempt starts again."""
        found = self.find_ours(connector, post, self.look_back(delivery, notice), delivery)
        if found is None:
            self.claims.restart_attempt(delivery)
        return found

    def after_duplicate(
        self, claim: Claim, delivery: Delivery, connector: Connector, post: OutgoingPost
    ) -> PublishResult | None:
        """After an earlier attempt of this delivery may have reached the platform, a
        duplicate refusal most likely means it did: look wider for that post. None when this
        delivery had no earlier attempt, or the post is not found."""
        if not claim.reconcile and delivery.attempts <= 1:
            return None
        since = self.claims.first_try(delivery) - DUPLICATE_LOOK_BACK
        try:
            found = self.find_ours(connector, post, since, delivery)
        except BulletinError as e:
            raise Ambiguous(f"refused as a duplicate and could not check the platform: {e}") from e
        if found is not None:
            log.warning(
                "duplicate refusal: the earlier attempt's post is live",
                delivery=delivery.id,
                remote_id=found.remote_id,
            )
        return found

    def publish_thread(
        self,
        claim: Claim,
        delivery: Delivery,
        notice: Notice,
        connector: Connector,
        media: tuple[Media, ...],
    ) -> PublishResult:
        """Post the numbered parts in order, each a reply to the one before, and return the
        first part's result. Each part's id is committed before the next is tried, so a crash
        or a retry resumes where it stopped; the first part not yet recorded is looked for on
        the platform when reconciling. Raises :class:`ClaimLost` when the claim is lost."""
        parts = list(delivery.parts or [])
        ids: list[str] = list(delivery.thread_ids or [])
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
                    found = self.reconcile(connector, post, delivery, notice)
                except BulletinError as e:  # stay uncertain: never post a part blind
                    raise Ambiguous(f"could not check the platform: {e}") from e
            result = found or connector.publish(post)
            ids.append(result.remote_id)
            head = head or (result if index == 0 else None)
            if not self.claims.record_parts(delivery, ids):
                raise ClaimLost
        return head or PublishResult(ids[0], None, None, b"")

    def delete(self, connector: Connector, parent: Delivery) -> str:
        """Delete the parent's post (every part of a thread, last first) and say what was
        deleted. Idempotent: a post already gone counts as deleted; raises
        :class:`~bulletin.errors.Refused` where the platform cannot delete."""
        ids = parent.thread_ids or [parent.remote_id or ""]
        for remote_id in reversed(ids):
            connector.delete_post(remote_id)
        return f"deleted {parent.remote_url or ids[0]}"

    def read_back(
        self,
        connector_for: Callable[[str], Connector],
        delivery: Delivery,
        parent: Delivery | None,
    ) -> RemoteItem | None:
        """The published post as the platform holds it now; None when it cannot be read."""
        try:
            connector = connector_for(delivery.account)
            return connector.fetch_post(delivery.remote_id or "", reply_target(parent))
        except BulletinError as e:
            log.warning(
                "published post not read back; archiving what was sent",
                delivery=delivery.id,
                error=str(e),
            )
            return None
