"""Archiving what was published: the platform's own copy of each published delivery goes
into the WORM archive once; when the store cannot take it now, the delivery stays published
and its archiving is queued in the database for a later due-scan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Archiver, Capture
from bulletin.clock import Clock
from bulletin.connectors.base import Connector, Media, RemoteItem
from bulletin.connectors.wire import recording
from bulletin.db import session_scope
from bulletin.errors import BulletinError
from bulletin.logs import get_logger
from bulletin.models import Account, Delivery, Notice
from bulletin.publisher.delivery.calls import Calls
from bulletin.publisher.delivery.posts import delivery_key, reply_target
from bulletin.publisher.delivery.together import variant_alts
from bulletin.publisher.media import load_media, media_blobs
from bulletin.states import DeliveryKind, DeliveryState

log = get_logger("bulletin.delivery")

ARCHIVE_RETRY = timedelta(seconds=15)  # archiving a published post failed: try again after


def notice_media(
    archiver: Archiver, notice: Notice, connector: Connector, alts: Sequence[str] = ()
) -> tuple[Media, ...]:
    """The notice's images as pinned in the store (drafting checked that the platform takes
    that many), described by ``alts`` (the alt texts of the post's language, one per image;
    empty: the primary's); none for a platform that takes no images. The worker publishes
    and archives a post's images through this one function, so the record of each
    language's post keeps the alt text that post was published with."""
    media = load_media(archiver.store, notice) if connector.limits().max_media else ()
    if alts and len(alts) == len(media):
        media = tuple(replace(m, alt_text=a) for m, a in zip(media, alts, strict=True))
    return media


def language_links(session: Session, notice: Notice, delivery: Delivery) -> dict[str, object]:
    """What an archived post of a notice in several languages says of its language and its
    siblings (the same occurrence's posts in the other languages, by account and delivery
    key, which the platforms keep); nothing for a notice in one language."""
    if delivery.kind != DeliveryKind.POST:
        return {}
    posts = session.exec(
        select(Delivery)
        .where(Delivery.notice_id == notice.id)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(Delivery.occurrence == delivery.occurrence)
        .where(Delivery.live())
        .order_by(col(Delivery.id))
    ).all()
    if len({d.lang for d in posts}) < 2:
        return {}
    return {
        "lang": delivery.lang or notice.lang,
        "primary_lang": notice.lang,
        "siblings": [
            {"lang": d.lang, "account": d.account, "key": delivery_key(notice, d)}
            for d in posts
            if d.id != delivery.id and d.lang != delivery.lang
        ],
    }


class ArchivesPublished:
    """The worker's archiving of what it published (a base class of
    :class:`~bulletin.publisher.delivery.worker.DeliveryWorker`, whose attributes it uses).
    Safe to repeat: each delivery is archived once."""

    engine: Engine
    clock: Clock
    archiver: Archiver
    connector_for: Callable[[str], Connector]
    calls: Calls
    lease: timedelta

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
            if (
                delivery is None
                or delivery.state != DeliveryState.PUBLISHED
                or delivery.archived_record_id
            ):
                if delivery is not None and delivery.archive_due_at is not None:
                    delivery.archive_due_at = None  # nothing (more) to archive
                    session.add(delivery)
                    session.commit()
                return
            notice = session.get(Notice, delivery.notice_id)
            account = session.get(Account, delivery.account)
            assert notice is not None and account is not None
            parent = session.get(Delivery, delivery.parent_id) if delivery.parent_id else None
            languages = language_links(session, notice, delivery)
            alts = variant_alts(session, notice, delivery.lang)
        parts = delivery.parts or []
        is_post = delivery.kind == DeliveryKind.POST
        connector_for = self.connector_for
        media = (
            notice_media(self.archiver, notice, connector_for(delivery.account), alts)
            if is_post
            else ()
        )
        ours = (
            # the delivery's id too: a rebuild from the store goes on above it (the id left
            # the database, in the API and in webhook payloads)
            {"notice_id": notice.id, "category": notice.category, "delivery_id": delivery.id}
            | ({"thread_ids": delivery.thread_ids or []} if parts else {})
            | (
                {"kind": str(delivery.kind), "occurrence": delivery.occurrence}
                if not is_post or delivery.occurrence != 1
                else {}
            )
            | languages
        )
        with recording(self.archiver.clock) as tape:  # the read-back's exchange, as WARC
            read = self.calls.read_back(connector_for, delivery, parent)
        item = read or RemoteItem(
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
            ],
            wire=tape.drain() if read is not None else (),
        )[0]
        with session_scope(self.engine) as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            row.archived_record_id = record.id
            row.archive_due_at = None
            row.archive_error = None
            session.add(row)
