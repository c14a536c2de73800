"""Common Alerting Protocol alerts into notices: import one source (a file, a URL, a feed of
them), poll the configured feeds once, list what came in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bulletin.app import outbox
from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.cap.feed import import_source, poll_feeds
from bulletin.cap.importer import ImportResult
from bulletin.cap.models import CapAlert
from bulletin.identity import require_role


@dataclass(frozen=True)
class Imported:
    """Each alert's outcome; ``woke`` whether a daemon heard of the notices made due."""

    results: list[ImportResult]
    woke: bool


@acts
def import_alerts(app: App, actor: Actor, source: str, targets: tuple[str, ...] = ()) -> Imported:
    """Import the CAP alert (or Atom feed of alerts) at ``source`` as ``actor`` (a
    dispatcher), to ``targets`` (default: ``[cap] targets``).

    :raises Refused: ``actor`` is not a dispatcher.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    with outbox.collect() as wakes:
        results = import_source(
            app.checked_engine(), app.settings, app.clock, source, actor.name, targets
        )
    return Imported(results, bool(wakes.sent))


def poll(app: App) -> Imported:
    """Import what is new in every configured feed once, as ``[cap] actor``."""
    with outbox.collect() as wakes:
        results = poll_feeds(app.checked_engine(), app.settings, app.clock)
    return Imported(results, bool(wakes.sent))


def list_alerts(app: App, limit: int = 50) -> list[CapAlert]:
    """Alerts received, newest first."""
    with Session(app.checked_engine()) as session:
        query = select(CapAlert).order_by(col(CapAlert.id).desc()).limit(limit)
        return list(session.exec(query).all())
