"""The sender: posts the outbox's due deliveries, one claim at a time.

A delivery is claimed in its own transaction (``SKIP LOCKED`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite): its attempt is counted and it is put out of reach for
:data:`LEASE`, so two senders never post one delivery at once; an outcome is written only by
the sender whose claim is still current. Each POST is capped (:data:`TIMEOUT`, no redirects,
the answer read to 1 KiB). A failure is tried again after an exponential backoff
(:func:`backoff`) until the event is :data:`GIVE_UP_AFTER` old, then the delivery fails; a
webhook that has failed without a success for :data:`DISABLE_AFTER` is disabled. Nothing
here sleeps: a stop between two posts ends the run.

Retry times come from the app's clock; the ``webhook-timestamp`` header is the wall clock's
(``wall``), since receivers compare it with theirs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import requests
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.clock import Clock, SystemClock
from bulletin.db import session_scope
from bulletin.events import Webhook, WebhookDelivery, WebhookEvent
from bulletin.fetch import read_capped
from bulletin.identity import SYSTEM_ACTOR
from bulletin.logs import get_logger
from bulletin.webhooks.body import Hidden, headers, render, shown_url

log = get_logger("bulletin.webhooks")

LEASE = timedelta(seconds=60)
TIMEOUT = (5.0, 5.0)  # connect, read (seconds)
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
ANSWER_BYTES = 1024
BUDGET = 30.0  # seconds one run may spend posting
HISTORY = 20  # attempts kept in a delivery's history

Result = Literal["delivered", "retry", "failed", "lost"]


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 5 s, 10 s, 20 s... at most an hour."""
    wait: timedelta = FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 20)
    return min(wait, MAX_RETRY)


@dataclass(frozen=True)
class Claim:
    """One delivery in hand: everything needed to post it without the database. Its URL and
    secret stay out of its repr (and so out of a traceback's locals)."""

    delivery_id: int
    attempts: int
    webhook_id: int
    url: str = field(repr=False)
    secret: Hidden = field(repr=False)
    fmt: str
    event: WebhookEvent


@dataclass(frozen=True)
class Sent:
    """What one attempt did: ``status`` is the HTTP status (None without an answer)."""

    delivery_id: int
    webhook_id: int
    result: Result
    status: int | None
    error: str | None


class Sender:
    """Posts due deliveries of ``engine`` (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        stop: threading.Event | None = None,
        wall: Clock | None = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.stop = stop or threading.Event()
        self.wall = wall or SystemClock()
        self.timeout = timeout

    def run(self, limit: int = 100, budget: float = BUDGET) -> list[Sent]:
        """Post up to ``limit`` due deliveries, one after another, until none is due, a stop
        is asked for or ``budget`` seconds have passed. A webhook that fails is left alone
        for the rest of the run (its other deliveries would fail too)."""
        done: list[Sent] = []
        if not self.any_due():
            return done  # a read: no write transaction while there is nothing to send
        failing: set[int] = set()
        ends = time.monotonic() + budget
        with requests.Session() as http:
            while len(done) < limit and not self.stop.is_set() and time.monotonic() < ends:
                claim = self.claim(skip=failing)
                if claim is None:
                    break
                sent = self.post(http, claim)
                if sent.result != "delivered":
                    failing.add(sent.webhook_id)
                done.append(sent)
        return done

    def any_due(self) -> bool:
        """Whether a delivery of an enabled webhook is due now."""
        with Session(self.engine) as session:
            found = session.exec(
                select(WebhookDelivery.id)
                .join(Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id))
                .where(col(WebhookDelivery.next_attempt_at) <= self.clock.now())
                .where(col(Webhook.enabled).is_(True))
                .limit(1)
            ).first()
        return found is not None

    def send_one(self, delivery_id: int) -> Sent | None:
        """Post delivery ``delivery_id`` now, even to a disabled webhook (``webhook test``);
        None when it is finished or another sender holds it."""
        claim = self.claim(delivery_id)
        if claim is None:
            return None
        with requests.Session() as http:
            return self.post(http, claim)

    def claim(self, delivery_id: int | None = None, skip: Collection[int] = ()) -> Claim | None:
        """Take the earliest due delivery of an enabled webhook not in ``skip`` (or
        ``delivery_id``, due or not), counting its attempt and holding it for :data:`LEASE`."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            query = (
                select(WebhookDelivery)
                .join(Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id))
                .where(col(WebhookDelivery.next_attempt_at).is_not(None))
            )
            if delivery_id is None:
                query = query.where(
                    col(WebhookDelivery.next_attempt_at) <= now, col(Webhook.enabled).is_(True)
                ).order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
                if skip:
                    query = query.where(col(WebhookDelivery.webhook_id).not_in(skip))
            else:
                query = query.where(col(WebhookDelivery.id) == delivery_id)
            row = session.exec(
                query.limit(1).with_for_update(skip_locked=True, of=WebhookDelivery)
            ).first()
            if row is None:
                return None
            hook = session.get(Webhook, row.webhook_id)
            event = session.get(WebhookEvent, row.event_id)
            assert hook is not None and event is not None and row.id is not None
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            row.last_attempt_at = now
            session.add(row)
            session.expunge(event)
            return Claim(row.id, row.attempts, row.webhook_id, hook.url, Hidden(hook.secret),
                         hook.format, event)  # fmt: skip

    def post(self, http: requests.Session, claim: Claim) -> Sent:
        """Post ``claim`` once and write the outcome."""
        body = render(claim.event, claim.fmt)
        sign = headers(claim.secret, claim.event.uid, self.wall.now(), body)
        status: int | None = None
        error: str | None = None
        try:
            with http.post(
                claim.url,
                data=body,
                headers=sign,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as answer:
                status = answer.status_code
                if not 200 <= status < 300:
                    said = read_capped(answer, ANSWER_BYTES)[:200].decode("utf-8", "replace")
                    error = f"HTTP {status}" + (f": {' '.join(said.split())}" if said else "")
        except requests.RequestException as e:
            error = _reason(e)
        sent = self._finish(claim, status, error)
        level = log.info if sent.result == "delivered" else log.warning
        level(
            f"webhook {sent.result}",
            webhook=claim.webhook_id,
            url=shown_url(claim.url),
            delivery=claim.delivery_id,
            event_type=claim.event.type,
            attempt=claim.attempts,
            status=status,
            error=error,
        )
        return sent

    def _finish(self, claim: Claim, status: int | None, error: str | None) -> Sent:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            row = session.exec(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.id) == claim.delivery_id)
                .with_for_update()
            ).one()
            hook = session.get(Webhook, claim.webhook_id)
            assert hook is not None
            if row.attempts != claim.attempts or row.next_attempt_at is None:
                return Sent(claim.delivery_id, claim.webhook_id, "lost", status, error)
            row.last_status = status
            row.last_error = error
            attempt = {"at": now.isoformat(), "status": status, "error": error}
            row.history = [*(row.history or []), attempt][-HISTORY:]
            result: Result
            if error is None:
                result = "delivered"
                row.delivered_at = now
                row.next_attempt_at = None
                hook.failing_since = None
            else:
                hook.failing_since = hook.failing_since or now
                if now - claim.event.created_at >= GIVE_UP_AFTER:
                    result = "failed"
                    row.failed_at = now
                    row.next_attempt_at = None
                else:
                    result = "retry"
                    row.next_attempt_at = now + backoff(row.attempts)
                if hook.enabled and now - hook.failing_since >= DISABLE_AFTER:
                    _disable(session, hook, now)
            session.add(row)
            session.add(hook)
        return Sent(claim.delivery_id, claim.webhook_id, result, status, error)


def _disable(session: Session, hook: Webhook, now: datetime) -> None:
    hook.enabled = False
    hook.disabled_at = now
    assert hook.id is not None and hook.failing_since is not None
    audit.record_event(
        session,
        at=now,
        actor=SYSTEM_ACTOR,
        action="webhook-disabled",
        object_type="webhook",
        object_id=hook.id,
        reason=f"failing since {hook.failing_since.isoformat()}",
    )
    log.error("webhook disabled", webhook=hook.id, url=shown_url(hook.url))


def _reason(error: requests.RequestException) -> str:
    """Why a POST got no answer, without the URL (which may hold a credential)."""
    if isinstance(error, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(error, requests.Timeout):
        return "read timeout"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    return type(error).__name__


def send_due(engine: Engine, clock: Clock, stop: threading.Event | None = None) -> int:
    """The daemon's job: post what is due; how many attempts were made."""
    return len(Sender(engine, clock, stop=stop).run())
