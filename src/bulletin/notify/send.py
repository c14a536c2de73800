"""The sender: sends the outbox's due messages (see :mod:`bulletin.notify.outbox`).

A message is claimed in its own transaction and held for :data:`LEASE`; its recipients are
resolved then: the ``[notify]`` list of its kind plus every enabled account with the matching
role and an email address (approvers also get the category's list). Approval and escalation
messages go one per recipient, each with its own one-time link. Before sending:

- an approval or escalation for a notice no longer waiting is skipped;
- an approval for a community notice claimed during quiet hours waits until they end
  (emergencies and advisories never wait);
- an administrators' message whose subject was sent within ``dedup_window`` is skipped as a
  duplicate; with ``digest = true`` they wait for :func:`send_digest`.

A failure is tried again after an exponential backoff (5 s, 10 s, ... at most an hour) until the
message is :data:`GIVE_UP_AFTER` old; recipients already reached are not sent to again, and
an address the server refuses does not hold back the others. With no SMTP server configured
nothing is sent: messages wait, and any older than :data:`GIVE_UP_AFTER` when a server
appears are skipped rather than sent late.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.config.values import holds_role
from bulletin.db import session_scope
from bulletin.models import Notice
from bulletin.notify import links
from bulletin.notify.mailer import Mailer, MailError, MailServerError
from bulletin.notify.messages import NoticeFacts, build, notice_lines
from bulletin.notify.outbox import Notification
from bulletin.states import NoticeState
from bulletin.users.models import UserAccount, roles_of

log = structlog.get_logger("bulletin.notify")

LEASE = timedelta(seconds=120)
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
KEEP = timedelta(days=30)  # finished messages and used or expired links are kept this long


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 5 s, 10 s, 20 s... at most an hour."""
    wait: timedelta = FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 20)
    return min(wait, MAX_RETRY)


@dataclass(frozen=True)
class Outcome:
    """What one run did with one message."""

    id: int
    kind: str
    result: str  # sent | retry | failed | skipped | deferred
    recipients: tuple[str, ...] = ()
    error: str | None = None


def _role_addresses(session: Session, role: str) -> list[str]:
    accounts = session.exec(select(UserAccount).where(col(UserAccount.disabled).is_(False)))
    return [a.email for a in accounts if a.email and holds_role(roles_of(a), role)]


def recipients(session: Session, settings: Settings, row: Notification) -> list[str]:
    """Who ``row`` goes to (see the module's docstring), each address once."""
    notify = settings.notify
    if row.to:
        found = list(row.to)
    elif row.kind == "approval":
        notice = session.get(Notice, row.notice_id) if row.notice_id else None
        extra = notify.categories.get(notice.category, []) if notice else []
        found = [*notify.approvers, *extra, *_role_addresses(session, "approver")]
    elif row.kind == "escalation":
        found = list(notify.escalate_to)
    else:
        found = [*notify.admins, *_role_addresses(session, "admin")]
    return list(dict.fromkeys(a.strip() for a in found if a.strip()))


def quiet_until(settings: Settings, now: datetime) -> datetime | None:
    """When the quiet hours under way at ``now`` end (None: not quiet now)."""
    window = settings.notify.quiet
    if window is None:
        return None
    start, end = window
    local = now.astimezone(ZoneInfo(settings.agency.time_zone))
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(now.tzinfo)


@dataclass
class Claimed:
    row_id: int
    kind: str
    attempts: int
    created_at: datetime
    messages: list[tuple[str, EmailMessage]]


class Sender:
    """Sends due messages of ``engine`` (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        environ: Mapping[str, str],
        clock: Clock,
        stop: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.environ = environ
        self.clock = clock
        self.stop = stop or threading.Event()

    def run(self, limit: int = 100) -> list[Outcome]:
        """Send up to ``limit`` due messages; stops at the first failure to reach the server
        (the rest would fail too) or when a stop is asked for."""
        done: list[Outcome] = []
        if not self.settings.notify.enabled:
            return done
        while len(done) < limit and not self.stop.is_set():
            claimed = self.claim()
            if claimed is None:
                break
            if isinstance(claimed, Outcome):
                done.append(claimed)
                continue
            outcome = self.deliver(claimed)
            done.append(outcome)
            if outcome.result != "sent":
                break
        return done

    def claim(self) -> Claimed | Outcome | None:
        """Take the earliest due message, deciding on it (skip, defer) or composing it."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            query = select(Notification).where(col(Notification.next_attempt_at) <= now)
            if self.settings.notify.digest:
                query = query.where(col(Notification.kind) != "admin")
            row = session.exec(
                query.order_by(col(Notification.next_attempt_at), col(Notification.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            assert row.id is not None
            decided = self._decide(session, row, now)
            if decided is not None:
                return decided
            messages = self._compose(session, row, now)
            if not messages:
                return self._close(session, row, now, "skipped: nobody to tell")
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            session.add(row)
            return Claimed(row.id, row.kind, row.attempts, row.created_at, messages)

    def _decide(self, session: Session, row: Notification, now: datetime) -> Outcome | None:
        notify = self.settings.notify
        assert row.id is not None
        if now - row.created_at >= GIVE_UP_AFTER:  # waited for a server to be configured
            return self._close(session, row, now, "skipped: too old")
        if row.kind in ("approval", "escalation"):
            notice = session.get(Notice, row.notice_id) if row.notice_id else None
            if notice is None or notice.state != NoticeState.DRAFT:
                return self._close(session, row, now, "skipped: no longer waiting for approval")
            if row.kind == "approval" and notice.priority == "community":
                ends = quiet_until(self.settings, now)
                if ends is not None:
                    row.next_attempt_at = ends
                    session.add(row)
                    return Outcome(row.id, row.kind, "deferred")
        if row.kind == "admin":
            earlier = session.exec(
                select(Notification.id)
                .where(col(Notification.kind) == "admin")
                .where(col(Notification.subject) == row.subject)
                .where(col(Notification.outcome) == "sent")
                .where(col(Notification.finished_at) > now - notify.dedup_delta)
                .limit(1)
            ).first()
            if earlier is not None:
                return self._close(session, row, now, "skipped: duplicate")
        return None

    def _close(self, session: Session, row: Notification, now: datetime, why: str) -> Outcome:
        assert row.id is not None
        row.next_attempt_at = None
        row.finished_at = now
        row.outcome = why
        session.add(row)
        log.info("notification " + why, notification=row.id, kind=row.kind)
        return Outcome(row.id, row.kind, "skipped", error=why)

    def _compose(
        self, session: Session, row: Notification, now: datetime
    ) -> list[tuple[str, EmailMessage]]:
        notify = self.settings.notify
        done = set(row.facts.get("sent_to") or [])
        to = [a for a in recipients(session, self.settings, row) if a not in done]
        lines: list[str] = list(row.facts.get("lines") or [])
        key: bytes | None = None
        if row.kind in ("approval", "escalation"):
            notice = session.get(Notice, row.notice_id)
            assert notice is not None and notice.id is not None
            facts = NoticeFacts(notice.id, notice.category, notice.priority, notice.title,
                                notice.text, notice.author, str(notice.state))  # fmt: skip
            head = (
                f"Emergency notice #{notice.id} has waited {row.facts.get('waited')} "
                "without approval."
                if row.kind == "escalation"
                else f"Notice #{notice.id} waits for approval "
                f"({row.facts.get('approvals', 0)} of {row.facts.get('approvals_needed', 1)})."
            )
            lines = [head, "", *notice_lines(facts)]
            key = links.link_key(session, notify, self.environ, now)
        messages = []
        for address in to:
            link = None
            if key is not None and row.notice_id is not None:
                token = links.issue(session, key, row.notice_id, address, now,
                                    notify.link_ttl_delta)  # fmt: skip
                link = links.url(self.settings.web.link_base, row.notice_id, token)
            messages.append((address, build(notify.sender, address, row.subject, lines, link)))
        return messages

    def deliver(self, claimed: Claimed) -> Outcome:
        """Send ``claimed``'s messages and write the outcome."""
        reached: list[str] = []
        error: str | None = None
        try:
            with Mailer(self.settings.notify, self.environ) as mailer:
                for address, message in claimed.messages:
                    try:
                        mailer.send(message)
                    except MailServerError:
                        raise
                    except MailError as e:  # this address refused: try the others
                        error = str(e)
                        continue
                    reached.append(address)
        except MailError as e:
            error = str(e)
        return self._finish(claimed, reached, error)

    def _finish(self, claimed: Claimed, reached: list[str], error: str | None) -> Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            row = session.get(Notification, claimed.row_id, with_for_update=True)
            assert row is not None
            row.facts = {**row.facts, "sent_to": [*(row.facts.get("sent_to") or []), *reached]}
            if error is None:
                row.next_attempt_at = None
                row.finished_at = now
                row.outcome = result = "sent"
            elif now - row.created_at >= GIVE_UP_AFTER:
                row.next_attempt_at = None
                row.finished_at = now
                row.outcome = result = "failed"
            else:
                result = "retry"
                row.next_attempt_at = now + backoff(row.attempts)
            row.last_error = error
            session.add(row)
        level = log.info if result == "sent" else log.warning
        level("notification " + result, notification=claimed.row_id, kind=claimed.kind,
              recipients=len(reached), attempt=claimed.attempts, error=error)  # fmt: skip
        return Outcome(claimed.row_id, claimed.kind, result, tuple(reached), error)


def send_due(
    engine: Engine,
    settings: Settings,
    environ: Mapping[str, str],
    clock: Clock,
    stop: threading.Event | None = None,
) -> int:
    """The daemon's job: send what is due; how many messages were dealt with."""
    return len(Sender(engine, settings, environ, clock, stop).run())


def prune(engine: Engine, now: datetime) -> int:
    """Delete messages finished (or never sent) more than :data:`KEEP` ago and approval
    links expired that long; how many rows went. Escalations stay (they mark a notice as
    escalated)."""
    cutoff = now - KEEP
    with session_scope(engine) as session:
        gone = 0
        for row in session.exec(
            select(Notification)
            .where(col(Notification.kind) != "escalation")
            .where(col(Notification.created_at) < cutoff)
        ):
            session.delete(row)
            gone += 1
        for link in session.exec(
            select(links.ApprovalLink).where(col(links.ApprovalLink.expires_at) < cutoff)
        ):
            session.delete(link)
            gone += 1
    return gone
