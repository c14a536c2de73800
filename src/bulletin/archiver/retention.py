"""Retention from day one: a series for every record, retain-until = anchor + period."""

from __future__ import annotations

from datetime import datetime, timedelta

from bulletin.config.settings import Settings

# "permanent" = a legal hold plus the longest retention a backend reliably accepts.
PERMANENT = timedelta(days=round(365.25 * 100))
PERMANENT_SERIES = {"ledger", "certificates"}


def series_for(kind: str, priority: str | None = None) -> str:
    """The record series an archived item belongs to."""
    if kind == "comment":
        return "visitor-comments"
    if kind == "moderation":
        return "moderation-actions"
    if priority == "emergency":
        return "emergency-notices"
    return "agency-posts"


def retain_until(
    settings: Settings, series: str, *, posted_at: datetime | None, captured_at: datetime
) -> tuple[datetime, bool]:
    """When a record of ``series`` may first be disposed of, and whether it is permanent."""
    configured = settings.retention.series.get(series)
    anchor = captured_at
    if configured and configured.anchor == "posted" and posted_at is not None:
        anchor = posted_at
    if series in PERMANENT_SERIES:
        return captured_at + PERMANENT, True
    period = settings.retain_for(series)
    if period is None:
        return captured_at + PERMANENT, True
    return anchor + period, False
