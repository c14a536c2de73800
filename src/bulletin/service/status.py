"""What ``bulletin status`` shows, gathered once: live daemons, deliveries, the archive, late
notices and free disk. The metrics endpoint serves the same figures."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bulletin.app import App
from bulletin.archiver import bucket, verify_runs
from bulletin.archiver.holds import unevaluable_holds
from bulletin.archiver.requests import RequestRow, list_requests
from bulletin.archiver.timestamp.checkpoints import checkpoint_time, unstamped
from bulletin.archiver.verify_runs import RunView
from bulletin.clock import utc
from bulletin.errors import StoreUnavailable
from bulletin.models import (
    AuditEvent,
    DaemonInstance,
    Delivery,
    DeliveryAttempt,
    LedgerEntry,
    Notice,
    Record,
)
from bulletin.publisher.failures import FailedNotice, unseen_failures
from bulletin.publisher.schedule import LateNotice, late_notices
from bulletin.service.diskspace import Space, measure
from bulletin.states import DeliveryState
from bulletin.webhooks import registry as webhooks
from bulletin.webhooks.registry import WebhookView

#: the audit action of a daemon that could not serve the web console (object: the daemon)
WEB_UNAVAILABLE = "daemon.web_unavailable"


@dataclass(frozen=True)
class Status:
    """One reading of a Bulletin's state."""

    daemons: list[DaemonInstance]
    held: dict[str, int]  # in-flight deliveries by the daemon (owner) holding them
    deliveries: dict[str, int]  # by state
    notices: dict[str, int]  # by state
    failed: list[FailedNotice]  # failed deliveries nobody has acknowledged yet
    due_now: int
    oldest_due: datetime | None  # the earliest due time among those due now
    next_due: datetime | None
    records: int
    ledger_head: int
    store_backlog: int
    late: list[LateNotice]
    disks: list[Space]
    warn_free_percent: float
    requests_open: int
    requests_near: list[RequestRow]  # due within [requests] warn_days, or overdue
    archive_waiting: int = 0  # published posts whose archiving failed and is retried
    archive_error: str | None = None  # why the latest try of one of them failed
    # deliveries still retried ([daemon] stuck_after) after their first attempt
    retried: int = 0
    stuck_after: str = "30min"
    holds_unevaluable: list[str] = field(default_factory=list)  # open holds skipped, one line each
    webhooks_disabled: list[WebhookView] = field(default_factory=list)  # after failing a day
    # live daemons that could not serve the web console: (owner, why), one each
    web_unavailable: list[tuple[str, str]] = field(default_factory=list)
    verify_runs: list[RunView] = field(default_factory=list)  # the last runs, newest first
    # a failed, stopped, dead or overdue verify, one line each
    verify_problems: list[str] = field(default_factory=list)

    @property
    def requests_overdue(self) -> list[RequestRow]:
        return [r for r in self.requests_near if r.days_left < 0]

    def payload(self) -> dict[str, Any]:
        """The ``--json`` form."""
        warn = self.warn_free_percent
        return {
            "daemons": [
                {**d.model_dump(), "in_flight": self.held.get(d.owner, 0)} for d in self.daemons
            ],
            "deliveries": self.deliveries,
            "notices": self.notices,
            "failed": [
                {"id": f.notice_id, "state": f.state, "failed": f.failed} for f in self.failed
            ],
            "due_now": self.due_now,
            "next_due": self.next_due,
            "records": self.records,
            "ledger_head": self.ledger_head,
            "store_backlog": self.store_backlog,
            "archive_waiting": {"posts": self.archive_waiting, "error": self.archive_error},
            "retried_too_long": self.retried,
            "webhooks_disabled": [w.id for w in self.webhooks_disabled],
            "web_unavailable": [{"daemon": o, "error": e} for o, e in self.web_unavailable],
            "late_notices": [n.notice_id for n in self.late],
            "verify_runs": [{**asdict(r), "result": r.result} for r in self.verify_runs],
            "disk": [
                {**asdict(d), "free_percent": d.free_percent, "low": d.low(warn)}
                for d in self.disks
            ],
            "requests": {
                "open": self.requests_open,
                "near": [
                    {"id": r.request.id, "due_on": r.request.due_on, "days_left": r.days_left}
                    for r in self.requests_near
                ],
            },
        }


def gather(app: App, heartbeat_seconds: float) -> Status:
    """Read the state now; a daemon counts as live when its heartbeat is under three
    ``heartbeat_seconds`` old."""
    now = app.clock.now()
    fresh = now - timedelta(seconds=3 * heartbeat_seconds)
    with Session(app.engine) as session:
        daemons = list(
            session.exec(
                select(DaemonInstance)
                .where(col(DaemonInstance.stopped_at).is_(None))
                .where(col(DaemonInstance.heartbeat_at) >= fresh)
                .order_by(col(DaemonInstance.started_at))
            ).all()
        )
        held = {
            str(owner): int(n)
            for owner, n in session.exec(
                select(Delivery.lease_owner, sa.func.count())
                .where(col(Delivery.state) == DeliveryState.IN_FLIGHT)
                .group_by(col(Delivery.lease_owner))
            ).all()
        }
        by_state = {
            str(state): int(n)
            for state, n in session.exec(
                select(Delivery.state, sa.func.count()).group_by(col(Delivery.state))
            ).all()
        }
        notices = {
            str(state): int(n)
            for state, n in session.exec(
                select(Notice.state, sa.func.count()).group_by(col(Notice.state))
            ).all()
        }
        failed = unseen_failures(session, now)
        due_now, oldest_due = session.exec(
            select(sa.func.count(), sa.func.min(Delivery.due_at))
            .select_from(Delivery)
            .where(col(Delivery.state).in_((DeliveryState.PENDING, DeliveryState.UNCERTAIN)))
            .where(col(Delivery.due_at) <= now)
        ).one()
        next_due = session.exec(
            select(sa.func.min(Delivery.due_at))
            .where(col(Delivery.state) == DeliveryState.PENDING)
            .where(col(Delivery.due_at) > now)
        ).one()
        retried = session.exec(retried_too_long(now - app.settings.daemon.stuck_after_delta)).one()
        records = session.exec(select(sa.func.count()).select_from(Record)).one()
        head = session.exec(select(sa.func.max(LedgerEntry.seq))).one()
        late = late_notices(session)
        waiting = session.exec(  # archiving failed at least once (not the one in progress)
            select(Delivery.archive_error)
            .where(col(Delivery.archive_due_at).is_not(None))
            .where(col(Delivery.archive_error).is_not(None))
            .where(col(Delivery.archived_record_id).is_(None))
            .order_by(col(Delivery.archive_due_at).desc())
        ).all()
        web_unavailable = _web_unavailable(session, [d.owner for d in daemons])
    requests = list_requests(app.engine, app.settings, now)
    warn_days = app.settings.requests.warn_days
    return Status(
        daemons=daemons,
        held=held,
        deliveries=by_state,
        notices=notices,
        failed=failed,
        due_now=int(due_now),
        oldest_due=oldest_due,
        next_due=next_due,
        records=int(records),
        ledger_head=int(head or 0),
        store_backlog=app.store_backlog(),
        late=late,
        disks=measure(app.settings),
        warn_free_percent=app.settings.paths.warn_free_percent,
        requests_open=len(requests),
        requests_near=[r for r in requests if r.days_left <= warn_days],
        archive_waiting=len(waiting),
        archive_error=next((e for e in waiting if e), None),
        retried=int(retried),
        stuck_after=app.settings.daemon.stuck_after,
        holds_unevaluable=unevaluable_holds(app.engine, app.settings.agency.time_zone),
        webhooks_disabled=webhooks.disabled(app.engine),
        web_unavailable=web_unavailable,
        verify_runs=verify_runs.recent(app.engine),
        verify_problems=verify_runs.problems(app.engine, now),
    )


def retried_too_long(since: datetime) -> SelectOfScalar[int]:
    """How many deliveries still wait to be retried whose first attempt began by ``since``.

    Only the deliveries waiting with an attempt behind them are looked at, each with its own
    attempts (the index by delivery): the attempts of every delivery ever made are not
    grouped on each look (``status``, the metrics scrape), as they were."""
    tried_by_then = sa.exists().where(
        col(DeliveryAttempt.delivery_id) == col(Delivery.id),
        col(DeliveryAttempt.started_at) <= since,
    )
    return (
        select(sa.func.count())
        .select_from(Delivery)
        .where(col(Delivery.state).in_((DeliveryState.PENDING, DeliveryState.UNCERTAIN)))
        .where(col(Delivery.attempts) > 0)
        .where(tried_by_then)
    )


def _web_unavailable(session: Session, owners: list[str]) -> list[tuple[str, str]]:
    """The live daemons (of ``owners``) that recorded they could not serve the web console."""
    if not owners:
        return []
    found = session.exec(
        select(AuditEvent.object_id, AuditEvent.detail)
        .where(AuditEvent.action == WEB_UNAVAILABLE)
        .where(col(AuditEvent.object_id).in_(owners))
        .order_by(col(AuditEvent.id))
    ).all()
    return [(owner, json.loads(detail or "{}").get("error", "")) for owner, detail in found]


STUCK = timedelta(minutes=10)  # a delivery due this long and not done needs a person


def problems(state: Status, sweeps: dict[str, Any], now: datetime) -> list[str]:
    """What needs a person now, one line each (``bulletin status --check``): no live daemon,
    deliveries due for over ten minutes, deliveries still retried ``[daemon] stuck_after``
    after their first attempt, each notice with failed deliveries nobody has acknowledged,
    late notices, overdue records requests, an open hold that cannot be evaluated, a spool
    backlog, an account whose last sweep failed, a file system low on space or inodes, a
    webhook disabled after failing, a daemon that could not serve the web console, an archive
    verify that found problems, stopped, never finished or is overdue."""
    out = []
    if not state.daemons:
        out.append("no daemon is running")
    if state.oldest_due is not None and now - utc(state.oldest_due) > STUCK:
        out.append(f"{state.due_now} deliveries due and not sent, the oldest for over 10 minutes")
    if state.retried:
        out.append(
            f"{state.retried} deliveries still retried over {state.stuck_after} after their "
            "first attempt (see `bulletin notice show`)"
        )
    out += [f.line() for f in state.failed]
    if state.late:
        out.append(f"{len(state.late)} late notices wait for a decision")
    if state.requests_overdue:
        out.append(f"{len(state.requests_overdue)} records requests are overdue")
    if state.archive_waiting:
        out.append(f"{state.archive_waiting} published posts wait to be archived (retried)")
    out += state.holds_unevaluable
    if state.store_backlog:
        out.append(f"{state.store_backlog} objects wait in the spool for the archive store")
    for name, sweep in sorted(sweeps.items()):
        if sweep is not None and sweep["result"] in ("auth-error", "failed"):
            out.append(f"account {name}: last capture sweep {sweep['result']}")
    out += [
        f"webhook {w.id} ({w.url}) disabled after failing since "
        f"{w.failing_since.isoformat() if w.failing_since else '?'} "
        f"(`bulletin webhook log {w.id}`; `bulletin webhook enable {w.id}` once it answers)"
        for w in state.webhooks_disabled
    ]
    out += [
        f"daemon {owner}: web console not served: {why}" for owner, why in state.web_unavailable
    ]
    out += state.verify_problems
    out += [
        f"low disk: {', '.join(d.roles)} ({d.path})"
        for d in state.disks
        if d.low(state.warn_free_percent)
    ]
    return out


def bucket_problems(app: App) -> list[str]:
    """Changes to the S3 bucket's Object Lock configuration or lifecycle rules, read now (see
    :mod:`bulletin.archiver.bucket`); empty for the local store."""
    try:
        return bucket.check(app.store, app.settings.archive.s3.mode)
    except StoreUnavailable as e:
        return [f"the S3 bucket's Object Lock settings cannot be read: {e}"]


#: a checkpoint unstamped for longer than this needs a person (the backlog job runs every
#: five minutes, so this is several tries of every authority)
UNSTAMPED_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class StampBacklog:
    """The ledger checkpoints still without an RFC 3161 time stamp, read from the store."""

    waiting: int
    oldest: datetime | None

    def line(self) -> str:
        since = f", the oldest taken {self.oldest:%Y-%m-%d %H:%M} UTC" if self.oldest else ""
        return (
            f"{self.waiting} ledger checkpoints wait for a time stamp{since} (no [timestamp] "
            "authority has answered since; the daemon tries again every 5 minutes)"
        )


def stamp_backlog(app: App) -> StampBacklog | None:
    """The checkpoints waiting for a time stamp; None when ``[timestamp]`` names no
    authority.

    :raises StoreUnavailable: the store cannot be listed.
    """
    if not app.settings.timestamp.enabled:
        return None
    waiting = unstamped(app.store)
    times = [t for t in map(checkpoint_time, waiting) if t is not None]
    return StampBacklog(len(waiting), min(times, default=None))


def timestamp_backlog(app: App) -> int | str | None:
    """For ``status``: how many checkpoints wait for a time stamp, or why that cannot be
    read; None when ``[timestamp]`` names no authority."""
    try:
        backlog = stamp_backlog(app)
    except StoreUnavailable as e:
        return f"cannot be read from the store: {e}"
    return None if backlog is None else backlog.waiting


def timestamp_problems(app: App, now: datetime) -> list[str]:
    """A line when a checkpoint has waited over :data:`UNSTAMPED_AFTER` for a time stamp."""
    try:
        backlog = stamp_backlog(app)
    except StoreUnavailable as e:
        return [f"the checkpoints' time stamps cannot be read from the store: {e}"]
    if backlog is None or backlog.oldest is None or now - backlog.oldest <= UNSTAMPED_AFTER:
        return []
    return [backlog.line()]
