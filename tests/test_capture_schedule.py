"""The sweep schedule: a pure decision from thread age, priority, last sweeps and spend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bulletin.archiver.capture.schedule import ThreadView, decide
from bulletin.config.archive import CaptureSettings

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
POLICY = CaptureSettings()


def thread(
    age: timedelta,
    priority: str = "community",
    swept_ago: timedelta | None = None,
    full_ago: timedelta | None = None,
) -> ThreadView:
    return ThreadView(
        priority=priority,
        posted_at=NOW - age,
        first_seen_at=NOW - age,
        last_swept_at=None if swept_ago is None else NOW - swept_ago,
        last_full_at=None if full_ago is None else NOW - full_ago,
    )


def test_never_swept_thread_is_swept_in_full() -> None:
    """A thread seen for the first time is listed completely at once."""
    d = decide(thread(timedelta(minutes=1)), NOW, POLICY)
    assert (d.sweep, d.mode) == (True, "full")


def test_hot_emergency_thread_every_minute() -> None:
    """An emergency notice's thread in its first hours is swept every minute, new only."""
    t = thread(timedelta(hours=1), "emergency", timedelta(seconds=61), timedelta(minutes=30))
    d = decide(t, NOW, POLICY, supports_since_id=True)
    assert (d.sweep, d.mode, d.interval) == (True, "new", timedelta(seconds=60))
    t = thread(timedelta(hours=1), "emergency", timedelta(seconds=30), timedelta(minutes=30))
    assert not decide(t, NOW, POLICY, supports_since_id=True).sweep


def test_emergency_cools_after_its_hot_hours() -> None:
    """Past the hot hours an emergency thread is swept like any young thread."""
    t = thread(timedelta(hours=8), "emergency", timedelta(seconds=90), timedelta(minutes=30))
    assert not decide(t, NOW, POLICY).sweep
    assert decide(t, NOW, POLICY).interval == timedelta(seconds=POLICY.warm_interval)


def test_cold_thread_rarely() -> None:
    """A week-old thread swept an hour ago waits; six hours later it is due."""
    old = timedelta(days=10)
    assert not decide(
        thread(old, swept_ago=timedelta(hours=1), full_ago=timedelta(hours=1)), NOW, POLICY
    ).sweep
    d = decide(thread(old, swept_ago=timedelta(hours=6), full_ago=timedelta(hours=1)), NOW, POLICY)
    assert d.sweep


def test_full_sweep_comes_round_for_edits_and_deletions() -> None:
    """Where only new comments are fetched, a full listing still comes every full_interval."""
    t = thread(timedelta(hours=2), swept_ago=timedelta(minutes=6), full_ago=timedelta(hours=7))
    d = decide(t, NOW, POLICY, supports_since_id=True)
    assert (d.sweep, d.mode) == (True, "full")


def test_without_since_id_every_sweep_is_full() -> None:
    """A platform that cannot list only new comments gets full sweeps."""
    t = thread(timedelta(hours=2), swept_ago=timedelta(minutes=6), full_ago=timedelta(minutes=6))
    d = decide(t, NOW, POLICY, supports_since_id=False)
    assert (d.sweep, d.mode) == (True, "full")


def test_budget_warns_then_slows_but_never_stops() -> None:
    """Over the warning share intervals double; over budget they grow by slow_factor."""
    t = thread(timedelta(hours=2), swept_ago=timedelta(minutes=6), full_ago=timedelta(minutes=6))
    assert decide(t, NOW, POLICY, spend_ratio=0.5).sweep
    assert not decide(t, NOW, POLICY, spend_ratio=0.9).sweep
    late = thread(
        timedelta(hours=2), swept_ago=timedelta(minutes=21), full_ago=timedelta(minutes=21)
    )
    over = decide(late, NOW, POLICY, spend_ratio=3.0)
    assert over.sweep and "slowed" in over.reason


def test_budget_never_pushes_a_sweep_past_the_lookback_window() -> None:
    """However far over budget, an X thread is swept inside seven days (less the margin)."""
    t = thread(timedelta(days=30), swept_ago=timedelta(days=6), full_ago=timedelta(days=6))
    policy = CaptureSettings(cold_interval=30 * 86400, full_interval=30 * 86400, slow_factor=10)
    assert decide(t, NOW, policy, spend_ratio=5.0, lookback_days=7, supports_since_id=True).sweep
    assert not decide(t, NOW, policy, spend_ratio=5.0, supports_since_id=True).sweep
