"""Long reads never hold SQLite's write lock: a nightly ``verify`` of a large archive runs
beside the daemon's publishing and archiving, which would otherwise wait for it and fail
after their busy timeout."""

from __future__ import annotations

import sqlalchemy as sa

from bulletin.archiver.verify import verify
from bulletin.db import make_engine
from tests.plugins.bulletin_app import Instance
from tests.test_archive import archive_some, comment


def test_a_verify_under_way_lets_the_daemon_write(instance: Instance) -> None:
    """Half-way through a verify (its ledger walked, its transaction open), another
    connection writes at once and the archiver archives a batch; the verify still finds the
    archive whole, and the next one sees the new records."""
    archive_some(instance, 5)
    wrote: list[str] = []

    def meanwhile(phase: str, count: int, done: bool) -> None:
        if phase != "ledger" or not done or wrote:
            return
        writer = make_engine(str(instance.app.engine.url), busy_timeout=0.5)
        try:
            with writer.begin() as conn:  # BEGIN IMMEDIATE on SQLite: fails on a held lock
                conn.execute(sa.text("UPDATE records SET author = author WHERE id = 1"))
        finally:
            writer.dispose()
        instance.app.archiver.archive([comment(n) for n in range(5, 8)])
        wrote.append(phase)

    report = verify(instance.app.engine, instance.app.store, progress=meanwhile)
    assert wrote == ["ledger"]
    assert report.ok, [p.line() for p in report.problems]
    # SQLite's verify reads one snapshot; PostgreSQL's reads each statement's (read committed)
    assert report.records == (5 if instance.app.engine.dialect.name == "sqlite" else 8)
    after = verify(instance.app.engine, instance.app.store)
    assert after.ok and after.records == 8
