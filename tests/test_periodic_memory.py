"""The daemon's periodic jobs read what their run needs, not the archive's history: their
memory stays flat however long the agency has kept Bulletin."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session

from bulletin.archiver import decisions
from bulletin.models import Redaction
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance
from tests.test_export import post
from tests.test_redaction import record_of

DECISIONS = 3000


def test_the_hourly_copy_of_decisions_holds_only_what_the_store_lacks(
    instance: Instance,
) -> None:
    """3,000 redactions taken over the years, all in the store, and one whose copy a crash
    left out: the hourly job reads them a page at a time beside the store's listing and
    keeps only the one missing, peaking under 3.5 MB (2.1-2.3, of which the local store's
    listing of the folder takes 1.5-2.0; every redaction as a row and its objects, as they
    were kept before, took 6.9-7.0 MB). It writes that one, and then nothing."""
    app = instance.app
    app.archiver.archive([post("p1", "Road closed on Main Street, call 555-0100")])
    record = record_of(instance, "p1")
    now = instance.clock.now()
    with app.engine.begin() as conn:
        conn.execute(
            sa.insert(Redaction),
            [
                {
                    "record_id": record.id,
                    "start": 32,
                    "end": 40,
                    "exemption": "26c",
                    "reason": f"a resident's phone number, as asked in letter {n}",
                    "created_by": "clerk1",
                    "created_at": now - timedelta(days=900) + timedelta(hours=n),
                }
                for n in range(DECISIONS)
            ],
        )
    assert decisions.mirror_all(app.engine, app.store, now) == DECISIONS
    with Session(app.engine) as session:  # its copy was never written (a crash)
        session.add(
            Redaction(
                record_id=record.id or 0,
                start=0,
                end=4,
                exemption="26c",
                reason="the newest",
                created_by="clerk1",
                created_at=now,
            )
        )
        session.commit()
    maintenance = Daemon(app).maintenance
    tracemalloc.start()
    try:
        missing = decisions._missing_events(app.engine, app.store)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [body["reason"] for body in missing.values()] == ["the newest"]
    assert peak < 3.5 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for {DECISIONS} redactions"
    assert maintenance.mirror_decisions() == 1
    assert maintenance.mirror_decisions() == 0
    assert len(list(app.store.keys(decisions.REDACTIONS))) == DECISIONS + 1
