"""The figures behind the console's status page, for admins only: deliveries per day by
state, approve-to-post latency per day, capture lag by account and path, and each account's
platform spend this month against its budget. Days are whole
days in the agency's time zone, the last :data:`DAYS` of them up to today."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.archiver.capture.lag import capture_lags
from bulletin.archiver.capture.spend import month_of, spend_this_month
from bulletin.clock import utc
from bulletin.config.site import Role
from bulletin.models import Approval, Delivery
from bulletin.states import DeliveryKind, DeliveryState

#: who may see the status page
ADMINS: tuple[Role, ...] = ("admin",)
DAYS = 14


@dataclass(frozen=True)
class DailyCounts:
    """Deliveries per day (``days``, oldest first) by state: ``counts[state][i]`` for
    ``days[i]``; only states that occur are keys."""

    days: list[date]
    counts: dict[str, list[int]]


@dataclass(frozen=True)
class DailyLatency:
    """Seconds from approval (or the due time, when later) to publication, per day of
    publication: median and 95th percentile, None on a day with no post; ``posts[i]`` counts
    the posts of ``days[i]``."""

    days: list[date]
    median: list[float | None]
    p95: list[float | None]
    posts: list[int]


@dataclass(frozen=True)
class Lag:
    """Capture lag of one account's comments by one path (``webhook`` or ``sweep``)."""

    account: str
    path: str
    comments: int
    median: float
    p95: float


@dataclass(frozen=True)
class Spend:
    """One account's estimated platform spend this UTC month (capture reads, priced as the
    capture budget counts them) against its ``monthly_budget`` (0: none), US dollars."""

    account: str
    usd: float
    budget: float


@dataclass(frozen=True)
class StatusPlots:
    deliveries: DailyCounts
    latency: DailyLatency
    lags: list[Lag]
    month: str  # the UTC month of ``spend``, YYYY-MM
    spend: list[Spend]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of non-empty ``values``."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@acts
def status_plots(app: App, actor: Actor, days: int = DAYS) -> StatusPlots:
    """The figures of the last ``days`` days (today included) in the agency's zone.

    A delivery counts on the day it was published, or else the day it was due. Latency is
    measured for published posts (not replies or deletions) from the notice's latest approval
    at or before publication, or from the due time when that is later (a scheduled post).

    :raises Refused: ``actor`` is not an admin.
    """
    require_any_role(app, actor, ADMINS)
    zone = ZoneInfo(app.settings.agency.time_zone)
    today = app.clock.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = utc(datetime.combine(first, time(), zone))
    span = [first + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(span)}
    counts: dict[str, list[int]] = {}
    waits: list[list[float]] = [[] for _ in span]
    with Session(app.checked_engine()) as session:
        when = sa.func.coalesce(col(Delivery.published_at), col(Delivery.due_at))
        rows = session.execute(
            sa.select(
                col(Delivery.notice_id),
                col(Delivery.kind),
                col(Delivery.state),
                col(Delivery.due_at),
                col(Delivery.published_at),
            ).where(when >= since)
        ).all()
        notices = {r[0] for r in rows if r[4] is not None}
        approvals: dict[int, list[datetime]] = {}
        if notices:
            for notice_id, at in session.exec(
                select(Approval.notice_id, Approval.at).where(col(Approval.notice_id).in_(notices))
            ).all():
                approvals.setdefault(notice_id, []).append(utc(at))
    for notice_id, kind, state, due_at, published_at in rows:
        moment = published_at or due_at
        assert moment is not None
        i = index.get(utc(moment).astimezone(zone).date())
        if i is None:
            continue
        counts.setdefault(str(state), [0] * days)[i] += 1
        if state != DeliveryState.PUBLISHED or kind != DeliveryKind.POST or not published_at:
            continue
        posted = utc(published_at)
        before = [a for a in approvals.get(notice_id, []) if a <= posted]
        if not before:
            continue
        start = max([*before, *([utc(due_at)] if due_at else [])])
        waits[i].append(max((posted - start).total_seconds(), 0.0))
    lags = [
        Lag(account, path, len(v), _median(v), percentile(v, 95))
        for (account, path), v in sorted(capture_lags(app.engine).items())
    ]
    now = app.clock.now()
    spend = [
        Spend(name, spend_this_month(app.engine, name, now), account.monthly_budget)
        for name, account in sorted(app.settings.accounts.items())
    ]
    return StatusPlots(
        DailyCounts(span, dict(sorted(counts.items()))),
        DailyLatency(
            span,
            [_median(w) if w else None for w in waits],
            [percentile(w, 95) if w else None for w in waits],
            [len(w) for w in waits],
        ),
        lags,
        month_of(now),
        spend,
    )
