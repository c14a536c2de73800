"""Escalation of emergencies and the administrators' daily digest (daemon jobs)."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bulletin import audit
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.identity import SYSTEM_ACTOR
from bulletin.models import Notice
from bulletin.notify import outbox
from bulletin.notify.mailer import Mailer, MailError
from bulletin.notify.messages import build
from bulletin.notify.outbox import Notification
from bulletin.notify.send import recipients
from bulletin.states import NoticeState

log = structlog.get_logger("bulletin.notify")


def escalate_due(engine: Engine, settings: Settings, clock: Clock) -> list[int]:
    """Escalate each emergency notice still waiting for approval ``escalate_after`` after it
    was drafted, once per notice (audited ``escalated``). Returns the notices escalated."""
    notify = settings.notify
    if not notify.escalate_to:
        return []
    now = clock.now()
    cutoff = now - notify.escalate_delta
    done: list[int] = []
    with session_scope(engine) as session:
        already = (
            select(Notification.notice_id)
            .where(col(Notification.kind) == "escalation")
            .where(col(Notification.notice_id).is_not(None))
        )
        waiting = session.exec(
            select(Notice)
            .where(col(Notice.state) == NoticeState.DRAFT)
            .where(col(Notice.priority) == "emergency")
            .where(col(Notice.created_at) <= cutoff)
            .where(col(Notice.id).not_in(already))
            .order_by(col(Notice.id))
        ).all()
        for notice in waiting:
            assert notice.id is not None
            outbox.escalation(session, notice, notify.escalate_after, now)
            audit.record_event(
                session,
                at=now,
                actor=SYSTEM_ACTOR,
                action="escalated",
                object_type="notice",
                object_id=notice.id,
                reason=f"not approved within {notify.escalate_after}",
            )
            done.append(notice.id)
    for notice_id in done:
        log.warning("emergency notice escalated", notice=notice_id)
    return done


def send_digest(
    engine: Engine, settings: Settings, environ: Mapping[str, str], clock: Clock
) -> int:
    """Gather the administrators' waiting messages into one (each subject once, with its
    count) and send it; how many messages it covered (0: none waiting or sending failed,
    in which case they wait for the next digest)."""
    notify = settings.notify
    if not notify.enabled:
        return 0
    now = clock.now()
    with session_scope(engine) as session:
        rows = list(
            session.exec(
                select(Notification)
                .where(col(Notification.kind) == "admin")
                .where(col(Notification.next_attempt_at).is_not(None))
                .order_by(col(Notification.id))
            )
        )
        if not rows:
            return 0
        to = recipients(session, settings, rows[0])
        ids = [r.id for r in rows]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.subject] = counts.get(row.subject, 0) + 1
    lines = [f"{n} x {subject}" if n > 1 else subject for subject, n in counts.items()]
    subject = f"Daily digest: {len(rows)} administrators' notices"
    try:
        with Mailer(notify, environ) as mailer:
            for address in to:
                mailer.send(build(notify.sender, address, subject, lines, None))
    except MailError as e:
        log.warning("notification digest retry", error=str(e))
        return 0
    with session_scope(engine) as session:
        for row in session.exec(select(Notification).where(col(Notification.id).in_(ids))):
            row.next_attempt_at = None
            row.finished_at = now
            row.outcome = "sent" if to else "skipped: nobody to tell"
            session.add(row)
    return len(rows)
