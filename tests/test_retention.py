"""Retention schedules, legal holds, records requests and disposition by approved batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver import disposition, holds, requests, retention
from bulletin.archiver.archive import Capture
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.archiver.verify import verify
from bulletin.config.archive import RetentionSettings, SeriesSettings
from bulletin.config.settings import Settings
from bulletin.connectors.base import RemoteItem
from bulletin.errors import Refused
from bulletin.models import AuditEvent, DispositionBatch, LedgerEntry, Record
from tests.plugins.bulletin_app import Instance, make_instance

SCHEDULE = """
[retention]
default_period = "7y"

[retention.series.visitor-comments]
period = "2y"
anchor = "posted"
disposition = "destroy-after-approval"
"""
POSTED = datetime(2026, 11, 1, tzinfo=UTC)
PAST_RETENTION = datetime(2029, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def inst(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database whose visitor comments are destroyed after 2 years."""
    made = make_instance(tmp_path, db_url, SCHEDULE)
    yield made
    made.app.close()


def comment(
    n: int, author: str | None = None, raw: bytes | None = None, posted: datetime = POSTED
) -> Capture:
    item = RemoteItem(
        kind="comment",
        remote_id=f"c{n}",
        text=f"Comment number {n} about the water main",
        author=author or f"visitor{n}",
        posted_at=posted,
        parent_id="p1",
        thread_id="p1",
        raw=raw if raw is not None else f'{{"id":"c{n}"}}'.encode(),
    )
    return Capture("feed", "feed", item)


def archive(inst: Instance, *numbers: int) -> list[Record]:
    return inst.app.archiver.archive([comment(n) for n in numbers])


def hold_on(
    inst: Instance, query: str, name: str = "Smith v. Town", allow_empty: bool = False
) -> int:
    placed, _ = holds.create_hold(
        inst.app.engine,
        inst.app.store,
        name=name,
        query=holds.parse_query(query),
        reason="litigation expected",
        actor="clerk1",
        now=inst.clock.now(),
        time_zone=inst.settings.agency.time_zone,
        allow_empty=allow_empty,
    )
    assert placed.id is not None
    return placed.id


def release(inst: Instance, hold_id: int) -> int:
    return holds.release_hold(
        inst.app.engine,
        inst.app.store,
        hold_id,
        reason="case settled",
        actor="clerk1",
        now=inst.clock.now(),
        settings=inst.settings,
    )


def list_batch(inst: Instance) -> DispositionBatch | None:
    return disposition.build_disposition_batch(
        inst.app.engine, inst.app.store, inst.settings, inst.clock.now(), "admin1"
    )


def batch_ids(inst: Instance, batch: DispositionBatch | None) -> set[int]:
    if batch is None:
        return set()
    assert batch.id is not None
    _, items = disposition.get_batch(inst.app.engine, batch.id)
    return {i.record_id for i in items}


def approve(inst: Instance, batch_id: int, who: str = "chief") -> disposition.ApproveResult:
    return disposition.approve_batch(
        inst.app.engine, inst.app.store, inst.settings, batch_id, actor=who, now=inst.clock.now()
    )


def fresh(inst: Instance, record_id: int | None) -> Record:
    with Session(inst.app.engine) as session:
        found = session.get(Record, record_id)
    assert found is not None
    return found


def store_hold(store: WormStore, digest: str | None) -> bool:
    info = store.head(object_key(digest or ""))
    assert info is not None
    return info.legal_hold


def test_held_record_is_never_in_a_batch(inst: Instance) -> None:
    """A record under a hold is left out of the disposition batch; its objects are held."""
    records = archive(inst, 1, 2, 3)
    hold_on(inst, "author:visitor2")
    held = fresh(inst, records[1].id)
    assert held.legal_hold
    assert store_hold(inst.app.store, held.object_sha256)
    assert store_hold(inst.app.store, held.raw_sha256)
    inst.clock.set(PAST_RETENTION)
    assert batch_ids(inst, list_batch(inst)) == {records[0].id, records[2].id}


def test_open_request_holds_its_scope_and_later_captures(inst: Instance) -> None:
    """An open records request holds what matches now and what is captured later; closing it
    makes them eligible again."""
    [first] = archive(inst, 1)
    request, count = requests.open_request(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        requester="Boston Globe",
        received=date(2026, 11, 25),
        description="comments on the water main post",
        query=holds.parse_query('thread:p1 "water main"'),
        litigation=False,
        actor="clerk1",
        now=inst.clock.now(),
    )
    assert count == 1
    assert request.due_on == date(2026, 12, 10)  # Thanksgiving skipped
    [later] = archive(inst, 2)
    assert fresh(inst, later.id).legal_hold
    inst.clock.set(PAST_RETENTION)
    assert list_batch(inst) is None
    assert request.id is not None
    _, freed = requests.close_request(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        request.id,
        reason="answered",
        actor="clerk1",
        now=inst.clock.now(),
    )
    assert freed == 2
    assert not store_hold(inst.app.store, first.object_sha256)
    assert batch_ids(inst, list_batch(inst)) == {first.id, later.id}


def test_release_makes_eligible_only_after_retention(inst: Instance) -> None:
    """Released before its retention passes, a record waits for retain-until."""
    [record] = archive(inst, 1)
    hold_id = hold_on(inst, "author:visitor1")
    inst.clock.set(datetime(2027, 6, 1, tzinfo=UTC))
    assert release(inst, hold_id) == 1
    assert not fresh(inst, record.id).legal_hold
    assert list_batch(inst) is None
    inst.clock.set(PAST_RETENTION)
    assert batch_ids(inst, list_batch(inst)) == {record.id}


def test_record_stays_held_until_every_hold_is_released(inst: Instance) -> None:
    """Two holds cover one record: releasing one keeps it (and its objects) on hold."""
    [record] = archive(inst, 1)
    first = hold_on(inst, "author:visitor1", "first")
    second = hold_on(inst, '"water main"', "second")
    assert release(inst, first) == 0
    assert fresh(inst, record.id).legal_hold
    assert store_hold(inst.app.store, record.object_sha256)
    with pytest.raises(Refused, match="already released"):
        release(inst, first)
    assert release(inst, second) == 1
    assert not store_hold(inst.app.store, record.object_sha256)


PERMANENT_COMMENTS = """
[retention]
default_period = "7y"

[retention.series.visitor-comments]
period = "permanent"
"""


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_releasing_a_hold_keeps_a_permanent_series_held(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """A record of a series configured permanent keeps its legal hold, in the database and in
    the store (catalog or S3 Object Lock), after a hold covering it is released."""
    made = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PERMANENT_COMMENTS
    )
    try:
        if backend == "s3":
            made.app._store = request.getfixturevalue("s3_store")
        [record] = archive(made, 1)
        assert record.legal_hold
        hold_id = hold_on(made, "author:visitor1")
        assert release(made, hold_id) == 0
        kept = fresh(made, record.id)
        assert kept.legal_hold
        assert store_hold(made.app.store, kept.object_sha256)
        assert store_hold(made.app.store, kept.raw_sha256)
    finally:
        if backend == "s3":
            made.app.store.close()
            made.app._store = None
        made.app.close()


def test_request_hold_is_released_only_by_closing_the_request(inst: Instance) -> None:
    """`hold release` refuses a request's own hold."""
    archive(inst, 1)
    request, _ = requests.open_request(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        requester="A. Reporter",
        received=date(2026, 11, 20),
        description="all comments",
        query=holds.parse_query("kind:comment"),
        litigation=True,
        actor="clerk1",
        now=inst.clock.now(),
    )
    assert request.hold_id is not None
    with pytest.raises(Refused, match="close the request"):
        release(inst, request.hold_id)


def test_approving_a_batch_twice_is_refused(inst: Instance) -> None:
    """The second approval of the same batch is refused and destroys nothing more."""
    archive(inst, 1, 2)
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    approve(inst, batch.id)
    with pytest.raises(Refused, match="already approved by chief"):
        approve(inst, batch.id, "deputy")


def test_batch_whose_record_became_held_is_refused(inst: Instance) -> None:
    """A hold placed after listing: approval is refused, the batch goes stale, nothing is
    destroyed, and the next batch leaves the held record out."""
    records = archive(inst, 1, 2)
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    hold_on(inst, "author:visitor1")
    with pytest.raises(Refused, match=f"record {records[0].id} is on legal hold"):
        approve(inst, batch.id)
    assert disposition.get_batch(inst.app.engine, batch.id)[0].state == "stale"
    assert all(inst.app.store.head(object_key(r.object_sha256)) for r in records)
    assert batch_ids(inst, list_batch(inst)) == {records[1].id}


def test_batch_changed_after_listing_is_refused(inst: Instance) -> None:
    """A batch's frozen list edited in the database no longer matches its hash: refused."""
    records = archive(inst, 1, 2)
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    with inst.app.engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM disposition_items WHERE record_id = :r"), {"r": records[1].id}
        )
    with pytest.raises(Refused, match="no longer matches the hash"):
        approve(inst, batch.id)
    assert all(fresh(inst, r.id).disposed_at is None for r in records)


def test_extended_retention_after_listing_is_refused(inst: Instance) -> None:
    """A schedule extended after listing (apply) changes the membership: refused."""
    archive(inst, 1)
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    longer = with_series(inst, "visitor-comments", "5y")
    retention.apply_schedule(inst.app.engine, inst.app.store, longer, inst.clock.now(), "admin1")
    with pytest.raises(Refused, match="retained longer now"):
        approve(inst, batch.id)


def test_destroyed_objects_are_gone_verify_passes_certificate_verifies(inst: Instance) -> None:
    """After approval the objects are gone, the rows stay marked disposed, `archive verify`
    passes, and the certificate is ledgered, held, permanent and verifies."""
    records = archive(inst, 1, 2, 3)
    hold_on(inst, "author:visitor3")
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    result = approve(inst, batch.id)
    store = inst.app.store
    for record in records[:2]:
        row = fresh(inst, record.id)
        assert row.disposed_at == PAST_RETENTION and row.disposal_batch_id == batch.id
        assert store.head(object_key(record.object_sha256)) is None
        assert store.head(object_key(record.raw_sha256 or "")) is None
    assert store.head(object_key(records[2].object_sha256)) is not None
    assert len(result.destroyed) == 4
    report = verify(inst.app.engine, store)
    assert report.ok, report.problems
    assert not report.notes
    assert disposition.verify_certificate(inst.app.engine, store, batch.id) == []
    info = store.head(result.certificate_key)
    assert info is not None and info.legal_hold
    assert info.retain_until > PAST_RETENTION + timedelta(days=365 * 99)
    certificate = json.loads(store.get(result.certificate_key))
    assert certificate["approved_by"] == "chief"
    assert [r["record_id"] for r in certificate["records"]] == [r.id for r in records[:2]]
    assert certificate["series"]["visitor-comments"]["records"] == 2
    with Session(inst.app.engine) as session:
        entry = session.get(LedgerEntry, result.batch.certificate_seq)
    assert entry is not None and entry.kind == "certificate"
    assert object_key(entry.object_sha256 or "") == result.certificate_key


def test_object_shared_with_a_retained_record_is_kept(inst: Instance) -> None:
    """Two records share a raw object; destroying one keeps the object for the other."""
    shared = b'{"page":"same raw response"}'
    first, second = inst.app.archiver.archive([comment(1, raw=shared), comment(2, raw=shared)])
    assert first.raw_sha256 == second.raw_sha256
    hold_on(inst, "author:visitor2")
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    result = approve(inst, batch.id)
    assert result.kept_shared == [object_key(first.raw_sha256 or "")]
    assert inst.app.store.head(object_key(first.raw_sha256 or "")) is not None
    assert inst.app.store.head(object_key(first.object_sha256)) is None
    assert verify(inst.app.engine, inst.app.store).ok


def test_review_series_are_never_listed(inst: Instance) -> None:
    """Posts (default disposition: review) past retention are not listed for destruction."""
    item = RemoteItem(
        kind="post", remote_id="p1", text="Road closed", author=None, posted_at=POSTED, raw=b"{}"
    )
    inst.app.archiver.archive([Capture("feed", "feed", item)])
    inst.clock.set(datetime(2040, 1, 1, tzinfo=UTC))
    assert list_batch(inst) is None


def with_series(inst: Instance, series: str, period: str) -> Settings:
    changed = dict(inst.settings.retention.series)
    changed[series] = SeriesSettings(
        period=period, anchor="posted", disposition="destroy-after-approval"
    )
    schedule = RetentionSettings(default_period="7y", series=changed)
    return inst.settings.model_copy(update={"retention": schedule})


def test_retention_apply_extends_and_never_shortens(inst: Instance) -> None:
    """A longer period extends the row and both store objects; a shorter one changes nothing
    and is reported."""
    [record] = archive(inst, 1)
    before = fresh(inst, record.id).retain_until
    assert before is not None
    longer = with_series(inst, "visitor-comments", "5y")
    report = retention.apply_schedule(
        inst.app.engine,
        inst.app.store,
        longer,
        inst.clock.now(),
        "admin1",
    )
    assert report.series["visitor-comments"].extended == 1
    after = fresh(inst, record.id).retain_until
    assert after is not None and after >= before + timedelta(days=3 * 365)
    for digest in (record.object_sha256, record.raw_sha256):
        info = inst.app.store.head(object_key(digest or ""))
        assert info is not None and info.retain_until >= after
    shorter = with_series(inst, "visitor-comments", "1y")
    report = retention.apply_schedule(
        inst.app.engine,
        inst.app.store,
        shorter,
        inst.clock.now(),
        "admin1",
    )
    change = report.series["visitor-comments"]
    assert (change.extended, change.kept_longer, change.unchanged) == (0, 1, 1)
    assert fresh(inst, record.id).retain_until == after


def test_every_action_is_audited(inst: Instance) -> None:
    """Holds, releases, requests, extension, apply, listing, refusal and approval each leave
    an audit event with who did it."""
    archive(inst, 1, 2)
    hold_id = hold_on(inst, "author:visitor1")
    release(inst, hold_id)
    engine, store, settings = inst.app.engine, inst.app.store, inst.settings
    request, _ = requests.open_request(
        engine,
        store,
        settings,
        requester="R",
        received=date(2026, 11, 25),
        description="d",
        query=holds.parse_query("author:visitor2"),
        litigation=False,
        actor="clerk1",
        now=inst.clock.now(),
    )
    assert request.id is not None
    extended = requests.extend_request(
        engine,
        store,
        settings,
        request.id,
        days=5,
        reason="volume",
        actor="clerk1",
        now=inst.clock.now(),
    )
    assert extended.due_on == date(2026, 12, 17)
    requests.close_request(
        engine, store, settings, request.id, reason="done", actor="clerk1", now=inst.clock.now()
    )
    longer = with_series(inst, "visitor-comments", "3y")
    retention.apply_schedule(engine, store, longer, inst.clock.now(), "admin1")
    inst.clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    approve(inst, batch.id)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    seen = {(e.action, e.actor) for e in events}
    for expected in [
        ("hold-created", "clerk1"),
        ("held", "clerk1"),
        ("hold-released", "clerk1"),
        ("hold-lifted", "clerk1"),
        ("store-hold-released", "clerk1"),
        ("request-opened", "clerk1"),
        ("request-extended", "clerk1"),
        ("request-closed", "clerk1"),
        ("retention-extended", "admin1"),
        ("disposition-listed", "admin1"),
        ("disposition-approved", "chief"),
        ("disposed", "chief"),
        ("objects-destroyed", "bulletin"),
    ]:
        assert expected in seen, expected


def test_schedule_show_counts_per_series(inst: Instance) -> None:
    """`retention show` data: the configured series with its counts."""
    archive(inst, 1, 2)
    hold_on(inst, "author:visitor1")
    inst.clock.set(PAST_RETENTION)
    counts = {c.series: c for c in retention.series_counts(inst.app.engine, inst.clock.now())}
    assert counts["visitor-comments"].records == 2
    assert counts["visitor-comments"].held == 1
    assert counts["visitor-comments"].past_retention == 1
    rows = {r["series"]: r for r in retention.schedule(inst.settings)}
    assert rows["visitor-comments"]["period"] == "2y"
    assert rows["ledger"]["period"] == "permanent"


@pytest.mark.s3
def test_hold_and_disposition_on_s3_object_lock(tmp_path: Path, s3_store: WormStore) -> None:
    """On S3 Object Lock: a held object survives its retention, the rest is destroyed after
    approval, the certificate is locked, and verify passes."""
    made = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", SCHEDULE)
    try:
        made.app._store = s3_store
        made.clock.set(datetime(2024, 1, 1, tzinfo=UTC))  # retention already over in reality
        early = datetime(2023, 1, 1, tzinfo=UTC)
        made.app.archiver.archive([comment(n, posted=early) for n in (1, 2)])
        with Session(made.app.engine) as session:
            records = session.exec(select(Record).order_by(col(Record.id))).all()
        hold_id = hold_on(made, "author:visitor1")
        made.clock.set(datetime.now(UTC))
        batch = list_batch(made)
        assert batch_ids(made, batch) == {records[1].id}
        assert batch is not None and batch.id is not None
        approve(made, batch.id)
        assert s3_store.head(object_key(records[1].object_sha256)) is None
        assert s3_store.head(object_key(records[0].object_sha256)) is not None
        release(made, hold_id)
        second = list_batch(made)
        assert second is not None and second.id is not None
        result = approve(made, second.id)
        assert s3_store.head(object_key(records[0].object_sha256)) is None
        info = s3_store.head(result.certificate_key)
        assert info is not None and info.legal_hold
        report = verify(made.app.engine, s3_store)
        assert report.ok, report.problems
        assert disposition.verify_certificate(made.app.engine, s3_store, second.id) == []
    finally:
        made.app._store = None
        made.app.close()


def test_daemon_job_lists_a_batch_and_schedules_it_nightly(inst: Instance) -> None:
    """The daemon's disposition job lists what is due; it is scheduled at disposition_at."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from bulletin.service.daemon import Daemon

    records = archive(inst, 1)
    inst.clock.set(PAST_RETENTION)
    daemon = Daemon(inst.app)
    batch_id = daemon.maintenance.disposition()
    assert batch_id is not None
    assert batch_ids(inst, disposition.get_batch(inst.app.engine, batch_id)[0]) == {records[0].id}
    assert daemon.maintenance.disposition() is None  # already listed: nothing new
    daemon._scheduler = BackgroundScheduler()
    daemon._schedule_jobs()
    job = daemon._scheduler.get_job("disposition")
    assert job is not None and "hour='4', minute='0'" in str(job.trigger)


def test_rebuilt_index_keeps_destroyed_records_marked_and_their_batch(
    inst: Instance, tmp_path: Path
) -> None:
    """A lost database rebuilt from the store: destroyed records come back from the
    certificate, marked disposed in their batch (not reported missing); verify passes."""
    from bulletin.archiver.rebuild import rebuild_index
    from bulletin.models import HoldRecord

    records = archive(inst, 1, 2, 3)
    hold_on(inst, "author:visitor3")
    inst.clock.set(PAST_RETENTION)
    batch = list_batch(inst)
    assert batch is not None and batch.id is not None
    approve(inst, batch.id)
    archive(inst, 4)
    engine = inst.app.engine  # rebuilt in place: what names records by id is kept
    report = rebuild_index(engine, inst.app.store, inst.clock.now(), replace=True)
    assert report.problems == []
    with Session(engine) as session:
        rows = {r.id: r for r in session.exec(select(Record))}
        rebuilt_batch = session.get(DispositionBatch, batch.id)
        members = session.exec(select(HoldRecord.record_id)).all()
    assert members == [records[2].id]
    assert len(rows) == 4
    for record in records[:2]:
        row = rows[record.id]
        assert row.disposed_at == PAST_RETENTION and row.disposal_batch_id == batch.id
        assert (row.remote_id, row.object_sha256, row.series) == (
            record.remote_id,
            record.object_sha256,
            record.series,
        )
    assert rows[records[2].id].disposed_at is None and rows[records[2].id].legal_hold
    assert rebuilt_batch is not None and rebuilt_batch.state == "approved"
    assert rebuilt_batch.approved_by == "chief" and rebuilt_batch.record_count == 2
    result = verify(engine, inst.app.store)
    assert result.ok, result.problems
    assert disposition.verify_certificate(engine, inst.app.store, batch.id) == []
