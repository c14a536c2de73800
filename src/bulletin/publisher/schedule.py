"""What the due-scan does before it claims deliveries: make the next occurrence of recurring
notices, make follow-ups of notices that expired, and set aside routine posts that are late.

All three run in every daemon on every scan (one due-scan, never a scheduler job per
notice). Each takes its notices with ``FOR UPDATE SKIP LOCKED``, so with several daemons on
PostgreSQL each notice is handled by one of them; the unique (notice, account, occurrence,
kind, revision) key makes a second attempt fail rather than double a post.

Downtime: when a daemon starts after being down, every post whose time came meanwhile is
due. An emergency post that has not expired goes out at once. A routine post more than
``[publisher] late_grace`` past its time is set ``late`` and waits for a person
(``bulletin notice late ID --publish|--cancel``). A recurring notice that missed several
occurrences gets only the most recent one (the earlier ones are skipped, and audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.config.settings import Settings
from bulletin.db import session_scope, wake_after_commit
from bulletin.errors import NotFound, Refused
from bulletin.identity import SYSTEM_ACTOR
from bulletin.logs import get_logger
from bulletin.models import Delivery, Notice, NoticeLanguage
from bulletin.notify import outbox
from bulletin.publisher import recurrence
from bulletin.publisher.delivery import refresh_notice_state
from bulletin.publisher.notices import add_posts, platform_of
from bulletin.publisher.texts import TargetText, plan, variant_for
from bulletin.states import DeliveryKind, DeliveryState, NoticeState

log = get_logger("bulletin.schedule")

LIVE = (NoticeState.APPROVED, NoticeState.PARTIALLY_PUBLISHED)
RETRACTING = (DeliveryKind.RETRACTION, DeliveryKind.DELETION)


@dataclass(frozen=True)
class LateNotice:
    """A notice with posts waiting for a decision."""

    notice_id: int
    category: str
    priority: str
    due_at: datetime | None
    accounts: list[str]
    occurrence: int
    text: str


def next_occurrence(notice: Notice, settings: Settings, after: datetime) -> datetime | None:
    """The recurring ``notice``'s first occurrence strictly after ``after`` (UTC), or None
    past its ``repeat_until`` or its expiry."""
    if not notice.recurrence or notice.publish_at is None:
        return None
    zone = ZoneInfo(settings.agency.time_zone)
    rule = recurrence.parse_rule(notice.recurrence)
    when = recurrence.occurrence_after(rule, notice.publish_at, zone, after)
    if when is None:
        return None
    if notice.repeat_until is not None and when > notice.repeat_until:
        return None
    if notice.expires_at is not None and when >= notice.expires_at:
        return None
    return when


def occurrence_text(
    session: Session,
    settings: Settings,
    notice: Notice,
    account: str,
    when: datetime,
    lang: str = "",
) -> TargetText:
    """The account's text for the occurrence at ``when`` in language ``lang`` ("": the
    primary): its variant, with the date line."""
    platform = platform_of(session, settings, account)
    text, variants = notice.text, notice.variants or {}
    if lang and lang != notice.lang:
        other = session.exec(
            select(NoticeLanguage)
            .where(NoticeLanguage.notice_id == notice.id)
            .where(NoticeLanguage.lang == lang)
        ).one()
        text, variants = other.text, other.wording or {}
    text = variant_for(account, platform, text, variants)
    if notice.recurrence and notice.date_line:
        text = recurrence.with_date_line(text, when, ZoneInfo(settings.agency.time_zone))
    return plan(settings, account, platform, text, notice.link, notice.allow_thread)


def retext(
    session: Session, settings: Settings, notice: Notice, delivery: Delivery, when: datetime
) -> None:
    """Give a post delivery the text of the occurrence at ``when``."""
    target = occurrence_text(session, settings, notice, delivery.account, when, delivery.lang)
    delivery.text = target.text
    delivery.parts = list(target.parts) or None
    session.add(delivery)


def make_occurrences(engine: Engine, settings: Settings, now: datetime) -> list[tuple[int, int]]:
    """Make the next occurrence of every recurring notice whose time came.

    Returns (notice id, occurrence number) for each one made.
    """
    made: list[tuple[int, int]] = []
    zone = ZoneInfo(settings.agency.time_zone)
    with session_scope(engine) as session:
        notices = session.exec(
            select(Notice)
            .where(col(Notice.next_occurrence_at) <= now)
            # "state || ''": the state is checked on the few rows the occurrence index finds;
            # on the state's own index SQLite read every approved notice (10,000 scheduled:
            # 3-7 ms a round)
            .where(sa.type_coerce(col(Notice.state), sa.String).concat("").in_(LIVE))
            .with_for_update(skip_locked=True)
        ).all()
        for notice in notices:
            assert notice.id is not None and notice.next_occurrence_at is not None
            when = notice.next_occurrence_at
            skipped: list[datetime] = []
            while True:  # after downtime: only the most recent missed occurrence
                later = next_occurrence(notice, settings, when)
                if later is None or later > now:
                    break
                skipped.append(when)
                when = later
            accounts = _accounts(session, notice.id)
            number = notice.occurrences + 1
            for earlier in session.exec(
                select(Delivery)
                .where(Delivery.notice_id == notice.id)
                .where(Delivery.kind == DeliveryKind.POST)
                .where(Delivery.state == DeliveryState.LATE)
            ):
                earlier.state = DeliveryState.CANCELLED
                earlier.last_error = f"superseded by occurrence {number}"
                session.add(earlier)
            posts = []
            for account, lang in accounts:
                target = occurrence_text(session, settings, notice, account, when, lang)
                posts.append(
                    Delivery(
                        notice_id=notice.id,
                        account=account,
                        occurrence=number,
                        due_at=when,
                        text=target.text,
                        parts=list(target.parts) or None,
                        lang=lang or notice.lang,
                    )
                )
            add_posts(session, settings, notice, posts)
            notice.occurrences = number
            notice.next_occurrence_at = next_occurrence(notice, settings, when)
            session.add(notice)
            audit.record_event(
                session,
                at=now,
                actor=SYSTEM_ACTOR,
                action="occurrence-made",
                object_type="notice",
                object_id=notice.id,
                occurrence=number,
                due_at=when.isoformat(),
                local=recurrence.date_line(when, zone),
                skipped=[s.isoformat() for s in skipped] or None,
                next=notice.next_occurrence_at.isoformat() if notice.next_occurrence_at else None,
            )
            made.append((notice.id, number))
            if skipped:
                log.warning(
                    "skipped occurrences missed while no daemon ran",
                    notice=notice.id,
                    count=len(skipped),
                )
    return made


def _accounts(session: Session, notice_id: int) -> list[tuple[str, str]]:
    """(account, language) of each post of the first occurrence (none of a language an edit
    dropped)."""
    rows = session.exec(
        select(Delivery.account, Delivery.lang)
        .where(Delivery.notice_id == notice_id)
        .where(Delivery.kind == DeliveryKind.POST)
        .where(Delivery.occurrence == 1)
        .where(Delivery.live())
        .order_by(col(Delivery.id))
    ).all()
    return [(account, lang) for account, lang in rows]


def make_follow_ups(engine: Engine, now: datetime) -> list[int]:
    """At expiry, queue each follow-up: one reply per (account, language), to the latest
    published post in that language there (a recurring notice's last occurrence), with that
    language's follow-up text (a language without one, left out when drafted, gets none). Waits
    while a post of the notice is in flight or uncertain, so that no published post misses
    its follow-up.

    Returns the ids of the notices followed up.
    """
    done: list[int] = []
    with session_scope(engine) as session:
        notices = session.exec(
            select(Notice)
            .where(col(Notice.follow_up).is_not(None))
            .where(col(Notice.followed_up_at).is_(None))
            .where(col(Notice.expires_at) <= now)
            .with_for_update(skip_locked=True)
        ).all()
        for notice in notices:
            assert notice.id is not None
            deliveries = session.exec(
                select(Delivery).where(Delivery.notice_id == notice.id).order_by(col(Delivery.id))
            ).all()
            posts = [d for d in deliveries if d.kind == DeliveryKind.POST]
            if any(d.state in (DeliveryState.IN_FLIGHT, DeliveryState.UNCERTAIN) for d in posts):
                continue
            retracted = {d.parent_id for d in deliveries if d.kind in RETRACTING}
            texts = {notice.lang: notice.follow_up}
            for row in session.exec(
                select(NoticeLanguage).where(NoticeLanguage.notice_id == notice.id)
            ):
                texts[row.lang] = row.follow_up
            latest: dict[tuple[str, str], Delivery] = {}
            for d in posts:
                if d.state != DeliveryState.PUBLISHED or d.id in retracted:
                    continue
                key = (d.account, d.lang)
                if key not in latest or d.occurrence > latest[key].occurrence:
                    latest[key] = d
            left = sorted(key for key in latest if not texts.get(key[1] or notice.lang))
            for key in left:  # a language without a follow-up (left out when drafted)
                del latest[key]
            for parent in latest.values():
                session.add(
                    Delivery(
                        notice_id=notice.id,
                        account=parent.account,
                        occurrence=parent.occurrence,
                        kind=DeliveryKind.FOLLOW_UP,
                        parent_id=parent.id,
                        lang=parent.lang,
                        due_at=now,
                        text=texts[parent.lang or notice.lang],
                    )
                )
            notice.followed_up_at = now
            session.add(notice)
            audit.record_event(
                session,
                at=now,
                actor=SYSTEM_ACTOR,
                action="follow-up-queued",
                object_type="notice",
                object_id=notice.id,
                accounts=sorted(
                    account if lang in ("", notice.lang) else f"{account}[{lang}]"
                    for account, lang in latest
                )
                or None,
                left=[f"{account}[{lang}]" for account, lang in left] or None,
            )
            done.append(notice.id)
    return done


def mark_late(engine: Engine, settings: Settings, now: datetime) -> list[int]:
    """Set aside routine posts more than ``late_grace`` past their time and never tried:
    they wait for a person. Emergency posts and expired notices are left to the worker
    (the first go out at once, the second fail as expired).

    Returns the ids of the notices with posts newly set aside.
    """
    threshold = now - settings.publisher.late_grace_delta
    marked: set[int] = set()
    with session_scope(engine) as session:
        rows = session.exec(
            select(Delivery, Notice)
            .join(Notice, col(Notice.id) == col(Delivery.notice_id))
            .where(col(Delivery.state) == DeliveryState.PENDING)
            .where(col(Delivery.due_at) < threshold)
            .where(col(Delivery.kind) == DeliveryKind.POST)
            .where(col(Delivery.attempts) == 0)
            .where(col(Notice.priority) != "emergency")
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
        for delivery, notice in rows:
            if notice.expires_at is not None and notice.expires_at <= now:
                continue
            assert delivery.due_at is not None
            minutes = int((now - delivery.due_at).total_seconds() // 60)
            delivery.state = DeliveryState.LATE
            delivery.last_error = (
                f"{minutes} minutes past its time when a daemon saw it: waiting for a decision "
                "(publish or cancel it)"
            )
            session.add(delivery)
            audit.record_event(
                session,
                at=now,
                actor=SYSTEM_ACTOR,
                action="late",
                object_type="delivery",
                object_id=delivery.id or 0,
                notice=notice.id,
                account=delivery.account,
                occurrence=delivery.occurrence,
                due_at=delivery.due_at.isoformat(),
            )
            if notice.id not in marked:
                outbox.admin(
                    session,
                    f"Notice #{notice.id} is late and waits for a decision",
                    [delivery.last_error, "Publish or cancel it (notice late)."],
                    now,
                    notice.id,
                )
            marked.add(notice.id or 0)
    return sorted(marked)


def late_notices(session: Session) -> list[LateNotice]:
    """Every notice with posts waiting for a decision, oldest first."""
    rows = session.exec(
        select(Delivery, Notice)
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(col(Delivery.state) == DeliveryState.LATE)
        .order_by(col(Delivery.due_at), col(Delivery.id))
    ).all()
    found: dict[int, LateNotice] = {}
    for delivery, notice in rows:
        nid = notice.id or 0
        if nid not in found:
            found[nid] = LateNotice(
                nid,
                notice.category,
                notice.priority,
                delivery.due_at,
                [],
                delivery.occurrence,
                notice.text,
            )
        found[nid].accounts.append(delivery.account)
    return list(found.values())


def decide_late(
    engine: Engine,
    settings: Settings,
    now: datetime,
    notice_id: int,
    publish: bool,
    actor: str,
    reason: str | None = None,
) -> list[str]:
    """Publish now, or cancel, the notice's late posts. Returns the accounts concerned.

    :raises NotFound: no such notice.
    :raises Refused: nothing of it is late, or it expired (it can only be cancelled).
    """
    with session_scope(engine) as session:
        notice = session.exec(
            select(Notice).where(Notice.id == notice_id).with_for_update()
        ).first()
        if notice is None:
            raise NotFound(f"no notice {notice_id}")
        late = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.state == DeliveryState.LATE)
            .with_for_update()
        ).all()
        if not late:
            raise Refused(f"notice {notice_id} has nothing waiting for a decision")
        if publish and notice.expires_at is not None and notice.expires_at <= now:
            raise Refused(f"notice {notice_id} expired; it can only be cancelled")
        for delivery in late:
            if publish:
                delivery.state = DeliveryState.PENDING
                delivery.due_at = now
                delivery.last_error = f"late; {actor} decided to publish it"
            else:
                delivery.state = DeliveryState.CANCELLED
                delivery.last_error = f"late; cancelled by {actor}" + (
                    f": {reason}" if reason else ""
                )
            session.add(delivery)
        session.flush()
        if publish:
            wake_after_commit(session)
        else:
            refresh_notice_state(session, notice_id, now)
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action="late-published" if publish else "late-cancelled",
            object_type="notice",
            object_id=notice_id,
            reason=reason,
            accounts=[d.account for d in late],
            lateness_minutes=[
                int((now - d.due_at).total_seconds() // 60) for d in late if d.due_at
            ],
        )
        accounts = [d.account for d in late]
    return accounts


def late_summary(notices: list[LateNotice], time_zone: str) -> list[str]:
    """One line per late notice, for the log, ``notice late`` and ``status``."""
    from bulletin.timeparse import local_text

    return [
        f"notice {n.notice_id} ({n.category}) was due {local_text(n.due_at, time_zone)}"
        f" for {', '.join(n.accounts)}"
        + (f" (occurrence {n.occurrence})" if n.occurrence != 1 else "")
        for n in notices
    ]
