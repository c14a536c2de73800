"""When to sweep a thread: a pure decision from its age, priority, last sweeps and the spend.

Hot threads (an emergency notice in its first hours) are swept every minute or so, young
ones every few minutes, old ones rarely. A spend over the warning share of the budget
doubles the intervals, over the budget multiplies them by ``slow_factor``: capture slows, it
never stops, and every thread is still swept inside the platform's look-back window (X's
recent search covers seven days; a reply older than that is only seen if captured in time).

A sweep is ``new`` (only what is newer than the thread's cursor, where the platform allows)
or ``full`` (the whole thread again, to see edits, hidden comments and deletions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

from bulletin.config.archive import CaptureSettings
from bulletin.models import CaptureThread

Mode = Literal["new", "full"]


class ThreadRow(Protocol):
    """What a sweep reads of a thread (:data:`THREAD_COLUMNS`; a
    :class:`~bulletin.models.CaptureThread` has them too)."""

    @property
    def thread_id(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def posted_at(self) -> datetime | None: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def last_swept_at(self) -> datetime | None: ...
    @property
    def last_full_at(self) -> datetime | None: ...
    @property
    def since_id(self) -> str | None: ...
    @property
    def page_cursor(self) -> str | None: ...
    @property
    def page_mode(self) -> str | None: ...
    @property
    def page_newest(self) -> str | None: ...


#: the columns of :class:`ThreadRow`, for a select that reads no more than a sweep needs
THREAD_COLUMNS = tuple(
    getattr(CaptureThread, name)
    for name in (
        "thread_id",
        "priority",
        "posted_at",
        "first_seen_at",
        "last_swept_at",
        "last_full_at",
        "since_id",
        "page_cursor",
        "page_mode",
        "page_newest",
    )
)
T = TypeVar("T", bound=ThreadRow)


@dataclass(frozen=True)
class ThreadView:
    """What the decision needs to know about one thread."""

    priority: str  # emergency | advisory | community
    posted_at: datetime | None
    first_seen_at: datetime
    last_swept_at: datetime | None
    last_full_at: datetime | None


@dataclass(frozen=True)
class Decision:
    sweep: bool
    mode: Mode
    interval: timedelta  # the interval that applied
    reason: str


def spend_factor(spend_ratio: float, policy: CaptureSettings) -> float:
    """How much slower to sweep at this share of the monthly budget (0 = no budget)."""
    if spend_ratio >= 1.0:
        return policy.slow_factor
    if spend_ratio >= policy.warn_at:
        return min(2.0, policy.slow_factor)
    return 1.0


def base_interval(thread: ThreadView, now: datetime, policy: CaptureSettings) -> timedelta:
    """The interval for a thread of this age and priority, before any slowing."""
    age = now - (thread.posted_at or thread.first_seen_at)
    if thread.priority == "emergency" and age < timedelta(hours=policy.hot_hours):
        return timedelta(seconds=policy.hot_interval)
    if age < timedelta(days=1):
        return timedelta(seconds=policy.warm_interval)
    if age < timedelta(days=3):
        return timedelta(seconds=policy.cool_interval)
    return timedelta(seconds=policy.cold_interval)


def decide(
    thread: ThreadView,
    now: datetime,
    policy: CaptureSettings,
    *,
    spend_ratio: float = 0.0,
    lookback_days: int | None = None,
    supports_since_id: bool = False,
) -> Decision:
    """Sweep this thread now or not, and how.

    :param spend_ratio: this month's estimated spend over the monthly budget (0 = none).
    :param lookback_days: how far back the platform lets us read (None = no limit).
    :param supports_since_id: the platform can list only what is new; otherwise every
        sweep is a full one.
    """
    factor = spend_factor(spend_ratio, policy)
    interval = base_interval(thread, now, policy) * factor
    full_every = max(interval, timedelta(seconds=policy.full_interval) * factor)
    if lookback_days is not None:
        # Never let a budget push a sweep past the look-back window.
        ceiling = timedelta(days=lookback_days) - timedelta(hours=policy.lookback_margin_hours)
        ceiling = max(ceiling, timedelta(seconds=policy.hot_interval))
        interval = min(interval, ceiling)
        full_every = min(full_every, ceiling)
    slowed = f" (slowed x{factor:g}: spend at {spend_ratio:.0%} of budget)" if factor > 1 else ""
    if thread.last_swept_at is None:
        return Decision(True, "full", interval, "never swept")
    full_due = thread.last_full_at is None or now - thread.last_full_at >= full_every
    due = now - thread.last_swept_at >= interval
    if full_due:
        return Decision(True, "full", full_every, "full sweep due" + slowed)
    if due:
        mode: Mode = "new" if supports_since_id else "full"
        return Decision(True, mode, interval, f"due every {_human(interval)}" + slowed)
    return Decision(False, "new", interval, f"next in {_human(interval)}" + slowed)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


def due_threads(
    threads: Iterable[T],
    now: datetime,
    policy: CaptureSettings,
    *,
    full: bool = False,
    spend_ratio: float = 0.0,
    lookback_days: int | None = None,
    supports_since_id: bool = False,
) -> tuple[list[tuple[T, Mode]], int]:
    """The threads to sweep now, each with its mode, and how many are left for later.

    ``threads`` is read once, in one pass: only the due ones are kept. An interrupted
    listing resumes at once in its own mode; with ``full`` every thread gets a full sweep.
    Emergency threads come first, then the longest unswept.
    """
    due: list[tuple[T, Mode]] = []
    later = 0
    for thread in threads:
        if thread.page_cursor is not None:  # an interrupted listing: resume it now
            due.append((thread, "full" if thread.page_mode == "full" else "new"))
            continue
        decision = decide(
            ThreadView(
                thread.priority,
                thread.posted_at,
                thread.first_seen_at,
                thread.last_swept_at,
                thread.last_full_at,
            ),
            now,
            policy,
            spend_ratio=spend_ratio,
            lookback_days=lookback_days,
            supports_since_id=supports_since_id,
        )
        if full:
            due.append((thread, "full"))
        elif decision.sweep:
            due.append((thread, decision.mode))
        else:
            later += 1
    _never = now - timedelta(days=36500)
    due.sort(key=lambda d: (d[0].priority != "emergency", d[0].last_swept_at or _never))
    return due, later
