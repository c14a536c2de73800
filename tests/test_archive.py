"""The archive: content-addressed snapshots, the ledger chain, and verify catching tampering."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, col, select

from bulletin.archiver import ledger
from bulletin.archiver.archive import Archiver, Capture
from bulletin.archiver.store.base import object_key
from bulletin.archiver.store.local import LocalStore
from bulletin.archiver.verify import verify
from bulletin.connectors.base import RemoteItem
from bulletin.errors import IntegrityError, RetentionViolation, StoreUnavailable
from bulletin.models import AuditEvent, LedgerEntry, Record
from tests.plugins.bulletin_app import Instance


def comment(n: int, text: str | None = None) -> Capture:
    item = RemoteItem(
        kind="comment",
        remote_id=f"c{n}",
        text=text or f"Comment number {n} 🚧 שלום",
        author=f"visitor{n}",
        posted_at=datetime(2026, 11, 1, tzinfo=UTC),
        parent_id="p1",
        thread_id="p1",
        raw=f'{{"id":"c{n}"}}'.encode(),
    )
    return Capture("feed", "feed", item)


def archive_some(instance: Instance, count: int = 5) -> list[Record]:
    return instance.app.archiver.archive([comment(i) for i in range(count)])


def test_archive_is_idempotent_and_chained(instance: Instance) -> None:
    """Archiving the same items twice stores them once; the ledger links every record."""
    first = archive_some(instance)
    again = archive_some(instance)
    assert [r.id for r in first] == [r.id for r in again]
    with Session(instance.app.engine) as session:
        entries = session.exec(select(LedgerEntry).order_by(col(LedgerEntry.seq))).all()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == ledger.GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in pairwise(entries))
    report = verify(instance.app.engine, instance.app.store)
    assert report.ok, report.problems
    assert (report.records, report.entries, report.objects) == (5, 5, 10)


def test_an_edit_is_a_new_version(instance: Instance) -> None:
    """Changed text adds version 2; version 1 stays as it was."""
    [v1] = instance.app.archiver.archive([comment(1, "first words")])
    [v2] = instance.app.archiver.archive([comment(1, "edited words")])
    assert (v1.version, v2.version) == (1, 2)
    assert v1.object_sha256 != v2.object_sha256
    assert instance.app.store.get(object_key(v1.object_sha256))


def test_versions_in_one_batch_are_indexed_in_order(instance: Instance) -> None:
    """Given two versions of one comment and another comment in one batch, when archived,
    then each ledger entry names its own record and object, and the versions link up."""
    records = instance.app.archiver.archive(
        [comment(1, "first"), comment(2), comment(1, "second"), comment(3)]
    )
    assert [(r.remote_id, r.version) for r in records] == [
        ("c1", 1),
        ("c2", 1),
        ("c1", 2),
        ("c3", 1),
    ]
    assert records[2].previous_record_id == records[0].id
    with Session(instance.app.engine) as session:
        stored = session.exec(select(Record).order_by(col(Record.id))).all()
        entries = {e.seq: e for e in session.exec(select(LedgerEntry))}
    assert [r.id for r in stored] == [r.id for r in records]
    for record in stored:
        assert record.ledger_seq is not None
        entry = entries[record.ledger_seq]
        assert (entry.record_id, entry.object_sha256) == (record.id, record.object_sha256)
    assert verify(instance.app.engine, instance.app.store).ok


def test_a_chain_of_rows_is_what_building_one_by_one_gives() -> None:
    """The bulk form of the ledger (rows for one insert) hashes and mirrors exactly as the
    entries built one at a time do."""
    configure_mappers()  # as the first test of a worker no session has configured them yet
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    links = [(1, "a" * 64), (2, None), (None, "b" * 64)]
    rows = ledger.chain(kind="record", at=at, links=links, previous=None)
    previous: LedgerEntry | None = None
    for row, (record_id, digest) in zip(rows, links, strict=True):
        previous = ledger.build(
            kind="record", at=at, record_id=record_id, object_sha256=digest, previous=previous
        )
        assert row == previous.model_dump()
        assert ledger.mirror_bytes(row) == ledger.mirror_bytes(previous)
    assert rows[0]["prev_hash"] == ledger.GENESIS


def test_a_change_archived_meanwhile_is_not_archived_again(instance: Instance) -> None:
    """Given another writer archives the same comments after a batch looked them up and
    before it takes the ledger lock, when the batch is indexed, then each comment still has
    one version and the archive verifies."""
    app = instance.app
    captures = [comment(i) for i in range(3)]
    other = Archiver(app.engine, app.store, app.settings, app.clock)

    class RacedStore(LocalStore):
        """The local store, its puts before the transaction as a remote store's are; its
        first flush lets the other writer in."""

        quick_puts = False
        raced = False

        def flush(self) -> None:
            super().flush()
            if not self.raced:
                self.raced = True
                other.archive(captures)

    store = RacedStore(app.settings.archive_path)
    try:
        records = Archiver(app.engine, store, app.settings, app.clock).archive(captures)
    finally:
        store.close()
    assert store.raced
    assert [(r.remote_id, r.version) for r in records] == [("c0", 1), ("c1", 1), ("c2", 1)]
    with Session(app.engine) as session:
        assert len(session.exec(select(Record)).all()) == 3
        assert len(session.exec(select(LedgerEntry)).all()) == 3
    assert verify(app.engine, app.store).ok


def test_a_change_archived_while_objects_are_written_is_not_archived_again(
    instance: Instance,
) -> None:
    """Given a local store (the index rows written while the objects are) and another writer
    that archives the same comments after the batch looked them up, when the batch is indexed,
    then each comment has one version, the objects are durable and the archive verifies."""
    app = instance.app
    assert app.store.quick_puts
    captures = [comment(i) for i in range(3)]
    other = Archiver(app.engine, app.store, app.settings, app.clock)

    class Raced(Archiver):
        def _store_and_index(self, *args: Any, **kwargs: Any) -> list[dict[str, Any] | None]:
            other.archive(captures)  # after this batch's look-up, before its ledger lock
            return super()._store_and_index(*args, **kwargs)

    records = Raced(app.engine, app.store, app.settings, app.clock).archive(captures)
    assert [(r.remote_id, r.version) for r in records] == [("c0", 1), ("c1", 1), ("c2", 1)]
    with Session(app.engine) as session:
        assert len(session.exec(select(Record)).all()) == 3
        assert len(session.exec(select(LedgerEntry)).all()) == 3
    assert verify(app.engine, app.store).ok


def test_objects_that_cannot_be_stored_leave_no_row(instance: Instance) -> None:
    """Given a local store whose flush fails (the disk refuses) while the batch's rows are
    being written, when the batch is archived, then the error is raised, no record, ledger
    entry or audit event is committed, and the same batch archives whole once the disk
    takes it."""
    app = instance.app

    class RefusingStore(LocalStore):
        refuse = True

        def flush(self) -> None:
            if self.refuse:
                raise StoreUnavailable("archive store: disk full (ENOSPC)")
            super().flush()

    store = RefusingStore(app.settings.archive_path)
    try:
        archiver = Archiver(app.engine, store, app.settings, app.clock)
        with pytest.raises(StoreUnavailable, match="disk full"):
            archiver.archive([comment(i) for i in range(5)])
        with Session(app.engine) as session:
            assert session.exec(select(Record)).all() == []
            assert session.exec(select(LedgerEntry)).all() == []
            assert (
                session.exec(select(AuditEvent).where(AuditEvent.action == "captured")).all() == []
            )
        store.refuse = False
        records = archiver.archive([comment(i) for i in range(5)])
    finally:
        store.close()
    assert [r.version for r in records] == [1] * 5
    assert verify(app.engine, app.store).ok


def test_retention_is_set_from_the_default_period(instance: Instance) -> None:
    """Each record's objects carry retain-until = capture time + 7 years; delete refused."""
    [record] = archive_some(instance, 1)
    assert record.series == "visitor-comments"
    assert record.retain_until is not None
    assert record.retain_until - instance.clock.now() >= timedelta(days=7 * 365)
    info = instance.app.store.head(object_key(record.object_sha256))
    assert info is not None and info.retain_until >= record.retain_until - timedelta(seconds=1)
    with pytest.raises(RetentionViolation):
        instance.app.store.delete(object_key(record.object_sha256), now=instance.clock.now())


def test_later_versions_of_an_emergency_post_stay_in_its_series(instance: Instance) -> None:
    """Given an emergency notice's post archived by the publisher (its priority known), when
    a sweep later archives it edited and then deleted (no priority known), then every version
    is in ``emergency-notices`` and as permanent as the first, and verify agrees."""
    post = RemoteItem(
        kind="post",
        remote_id="p9",
        text="Shelter in place",
        author="agency",
        posted_at=instance.clock.now(),
    )
    [v1] = instance.app.archiver.archive([Capture("feed", "feed", post, False, 7, "emergency")])
    edited = replace(post, text="Shelter in place: lifted")
    gone = replace(edited, state="deleted")
    v2, v3 = instance.app.archiver.archive(
        [Capture("feed", "feed", edited), Capture("feed", "feed", gone)]
    )[-2:]
    assert [v.version for v in (v1, v2, v3)] == [1, 2, 3]
    assert {v.series for v in (v1, v2, v3)} == {"emergency-notices"}
    assert v3.retain_until is not None and v1.retain_until is not None
    assert v3.retain_until >= v1.retain_until
    report = verify(instance.app.engine, instance.app.store)
    assert report.ok, report.problems
    # a post never archived with a priority stays where its kind puts it
    [other] = instance.app.archiver.archive(
        [Capture("feed", "feed", replace(post, remote_id="p10"))]
    )
    assert other.series == "agency-posts"


def test_flipped_byte_in_an_object_is_named(instance: Instance) -> None:
    """A byte changed in a stored snapshot on disk: verify names the record."""
    records = archive_some(instance)
    store = instance.app.store
    assert isinstance(store, LocalStore)
    path = store.path_of(object_key(records[2].object_sha256))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(instance.app.engine, store)
    assert not report.ok
    assert [(p.kind, p.subject) for p in report.problems] == [
        ("object-altered", f"record {records[2].id}")
    ]


def test_removed_object_is_named(instance: Instance) -> None:
    """An object deleted behind Bulletin's back: verify says which record lost it."""
    records = archive_some(instance)
    store = instance.app.store
    assert isinstance(store, LocalStore)
    store.path_of(object_key(records[1].raw_sha256 or "")).unlink()
    report = verify(instance.app.engine, store)
    assert [(p.kind, p.subject) for p in report.problems] == [
        ("object-missing", f"record {records[1].id}")
    ]


def test_altered_ledger_row_breaks_the_chain(instance: Instance) -> None:
    """Editing a ledger row in the database is caught: its hash no longer matches and the
    mirror in the store disagrees."""
    archive_some(instance)
    with instance.app.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger SET object_sha256 = :x WHERE seq = 3"), {"x": "0" * 64})
    kinds = {(p.kind, p.subject) for p in verify(instance.app.engine, instance.app.store).problems}
    assert ("entry-altered", "ledger 3") in kinds
    assert ("mirror-differs", "ledger 3") in kinds


def test_removed_ledger_row_is_named(instance: Instance) -> None:
    """Deleting a ledger row leaves a gap that verify reports, with the orphaned mirror."""
    archive_some(instance)
    with instance.app.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger WHERE seq = 2"))
    kinds = {(p.kind, p.subject) for p in verify(instance.app.engine, instance.app.store).problems}
    assert ("entry-missing", "ledger 2") in kinds
    assert ("chain-broken", "ledger 3") in kinds
    assert ("mirror-without-row", "ledger 2") in kinds


def test_missing_mirror_is_reported_then_repaired(instance: Instance) -> None:
    """A crash between commit and mirror leaves entries unmirrored; start-up repairs them."""
    archive_some(instance, 3)
    archive_some(instance, 5)  # the second batch adds entries 4 and 5 as one segment
    store = instance.app.store
    assert isinstance(store, LocalStore)
    path = store.path_of(ledger.segment_key(4, 5))
    path.unlink()
    meta = path.with_name(path.name + ".meta.json")
    meta.unlink(missing_ok=True)
    kinds = {(p.kind, p.subject) for p in verify(instance.app.engine, store).problems}
    assert kinds == {("mirror-missing", "ledger 4"), ("mirror-missing", "ledger 5")}
    with Session(instance.app.engine) as session:
        assert ledger.repair_mirror(session, store) == 2
    assert verify(instance.app.engine, store).ok


def test_rebuild_index_from_the_store_alone(
    instance: Instance, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A lost database: a fresh one rebuilt from the store holds the same records and ledger,
    and verifies."""
    from bulletin.archiver.rebuild import rebuild_index
    from bulletin.db import make_engine, migrate

    archive_some(instance, 4)
    instance.app.archiver.archive([comment(1, "edited words")])  # a second version
    with Session(instance.app.engine) as session:
        before = [r.model_dump() for r in session.exec(select(Record).order_by(col(Record.id)))]
    if instance.app.engine.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite:///{tmp_path_factory.mktemp('lost') / 'new.db'}")
    else:
        fresh = instance.app.engine  # same schema, index emptied by --replace
    migrate(fresh)
    report = rebuild_index(fresh, instance.app.store, instance.clock.now(), replace=True)
    assert (report.entries, report.records, report.problems) == (5, 5, [])
    with Session(fresh) as session:
        after = [r.model_dump() for r in session.exec(select(Record).order_by(col(Record.id)))]
    assert after == before
    assert verify(fresh, instance.app.store).ok


def test_rebuild_refuses_to_overwrite_an_index(instance: Instance) -> None:
    """Without --replace, an existing index is left alone."""
    from bulletin.archiver.rebuild import rebuild_index
    from bulletin.errors import Refused

    archive_some(instance, 2)
    with pytest.raises(Refused, match="already holds") as refused:
        rebuild_index(instance.app.engine, instance.app.store, instance.clock.now())
    assert refused.value.remedy == "replace"


def test_reordered_entries_are_named(instance: Instance) -> None:
    """Swapping two ledger entries' places in the database breaks both links."""
    archive_some(instance)
    with instance.app.engine.begin() as conn:
        rows = {
            r.seq: r
            for r in conn.execute(sa.text("SELECT seq, record_id, object_sha256 FROM ledger"))
        }
        for seq, other in ((2, 3), (3, 2)):
            conn.execute(
                sa.text("UPDATE ledger SET record_id = :r, object_sha256 = :o WHERE seq = :s"),
                {"r": rows[other].record_id, "o": rows[other].object_sha256, "s": seq},
            )
    kinds = {(p.kind, p.subject) for p in verify(instance.app.engine, instance.app.store).problems}
    assert {("entry-altered", "ledger 2"), ("entry-altered", "ledger 3")} <= kinds
    assert {("mirror-differs", "ledger 2"), ("mirror-differs", "ledger 3")} <= kinds


def test_entry_inserted_out_of_order_is_named(instance: Instance) -> None:
    """An entry forged onto the head of the database's chain links correctly but the store
    never saw it: verify names it. A forged fork (a second entry after the same one) is named
    too: it breaks the chain where it stands."""
    archive_some(instance, 3)
    with Session(instance.app.engine) as session:
        first, third = session.get(LedgerEntry, 1), session.get(LedgerEntry, 3)
        assert first is not None and third is not None
        forged = ledger.build(
            kind="record",
            at=instance.clock.now(),
            record_id=2,
            object_sha256=third.object_sha256,
            previous=third,
        )
        fork = ledger.build(
            kind="record",
            at=instance.clock.now(),
            record_id=2,
            object_sha256=third.object_sha256,
            previous=first,
        )
    with instance.app.engine.begin() as conn:
        conn.execute(sa.insert(LedgerEntry), [forged.model_dump()])
    kinds = {(p.kind, p.subject) for p in verify(instance.app.engine, instance.app.store).problems}
    assert kinds == {("mirror-missing", "ledger 4")}
    with instance.app.engine.begin() as conn:
        conn.execute(sa.insert(LedgerEntry), [{**fork.model_dump(), "seq": 5}])
    kinds = {(p.kind, p.subject) for p in verify(instance.app.engine, instance.app.store).problems}
    assert ("chain-broken", "ledger 5") in kinds
    assert ("mirror-missing", "ledger 5") in kinds


def test_checkpoint_catches_a_rewritten_history(instance: Instance) -> None:
    """After a checkpoint, rewriting the chain consistently in the database (every hash
    recomputed) is still caught: the checkpoint's head no longer matches."""
    archive_some(instance, 3)
    with Session(instance.app.engine) as session:
        assert ledger.write_checkpoint(session, instance.app.store, instance.clock.now())
    assert verify(instance.app.engine, instance.app.store).ok
    with Session(instance.app.engine) as session:
        entries = session.exec(select(LedgerEntry).order_by(col(LedgerEntry.seq))).all()
        rewritten, previous = [], None
        for e in entries:
            previous = ledger.build(
                kind=e.kind,
                at=e.recorded_at + timedelta(seconds=1),
                record_id=e.record_id,
                object_sha256=e.object_sha256,
                previous=previous,
            )
            rewritten.append(previous.model_dump())
    with instance.app.engine.begin() as conn:
        conn.execute(sa.delete(LedgerEntry))
        conn.execute(sa.insert(LedgerEntry), rewritten)
    kinds = {p.kind for p in verify(instance.app.engine, instance.app.store).problems}
    assert "checkpoint-contradicted" in kinds


@pytest.mark.s3
def test_archive_verify_and_rebuild_on_s3_object_lock(
    sqlite_instance: Instance, s3_store: object
) -> None:
    """The same archive flow on S3 Object Lock (SeaweedFS): records, ledger segments and
    checkpoints land in the bucket, verify passes, the index rebuilds from the bucket alone,
    and a delete through Bulletin is refused."""
    from bulletin.archiver.rebuild import rebuild_index
    from bulletin.archiver.store.s3 import S3Store

    assert isinstance(s3_store, S3Store)
    inst = sqlite_instance
    inst.app._store = s3_store
    records = archive_some(inst, 4)
    with Session(inst.app.engine) as session:
        assert ledger.write_checkpoint(session, s3_store, inst.clock.now())
    report = verify(inst.app.engine, s3_store)
    assert report.ok, report.problems
    assert (report.records, report.objects) == (4, 8)
    rebuilt = rebuild_index(inst.app.engine, s3_store, inst.clock.now(), replace=True)
    assert (rebuilt.records, rebuilt.problems) == (4, [])
    with pytest.raises(RetentionViolation):
        s3_store.delete(object_key(records[0].object_sha256), now=inst.clock.now())


def test_ledger_lines_are_the_entries_canonical_json() -> None:
    """chain canonicalises each entry once: the mirror lines it gives are mirror_bytes of
    its rows, and each hash is compute_hash of its row."""
    at = datetime(2026, 12, 6, 12, 30, 15, 123456, tzinfo=UTC)
    lines: list[bytes] = []
    rows = ledger.chain(
        kind="record",
        at=at,
        links=[(1, "a" * 64), (None, None), (7, "b" * 64)],
        previous=None,
        lines=lines,
    )
    assert lines == [ledger.mirror_bytes(r) for r in rows]
    assert [r["entry_hash"] for r in rows] == [ledger.compute_hash(r) for r in rows]


def test_rows_inserted_by_the_driver_read_back_as_sqlalchemy_wrote_them(
    instance: Instance,
) -> None:
    """insert_rows (one executemany of the driver) stores the same values as SQLAlchemy's own
    insert: aware times, booleans, nulls, text."""
    from bulletin.db import insert_rows
    from bulletin.models import AuditEvent

    table = AuditEvent.__table__  # type: ignore[attr-defined]
    at = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    rows = [
        {
            "at": at + timedelta(seconds=i % 2),
            "actor": "clerk",
            "action": "captured",
            "object_type": "record",
            "object_id": str(i),
            "reason": None if i else "why",
            "detail": '{"n": 1}',
            "via": None,
            "host": "h",
        }
        for i in range(5)
    ]
    with instance.app.engine.begin() as conn:
        insert_rows(conn, table, rows[:3])
        conn.execute(table.insert(), rows[3:])
    with Session(instance.app.engine) as session:
        found = session.exec(select(AuditEvent).where(col(AuditEvent.actor) == "clerk")).all()
    got = sorted((e.object_id, e.at, e.reason, e.detail, e.host) for e in found)
    assert got == [
        (str(i), at + timedelta(seconds=i % 2), None if i else "why", '{"n": 1}', "h")
        for i in range(5)
    ]


def test_records_inserted_by_the_driver_read_back_as_sqlalchemy_wrote_them(
    instance: Instance,
) -> None:
    """Records rows through insert_rows, whose processed values (states, flags, times,
    nulls) are remembered per column within a call, read back as the same rows through
    SQLAlchemy's own insert: every column, row by row."""
    from bulletin.db import insert_rows

    table = Record.__table__  # type: ignore[attr-defined]
    at = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    states = ["visible", "hidden", "deleted", "visible"]

    def row(i: int, account: str) -> dict[str, Any]:
        return {
            "account": account,
            "platform": "feed",
            "kind": "comment",
            "remote_id": f"r{i}",
            "parent_id": None if i % 3 else "p1",
            "thread_id": "p1",
            "version": 1,
            "previous_record_id": None,
            "change": "new",
            "state": states[i % 4],
            "author": None if i == 2 else f"a{i % 2}",
            "text": f"text {i} 🚧",
            "url": None,
            "posted_at": None if i % 2 else at - timedelta(days=i % 3),
            "captured_at": at,
            "series": "visitor-comments",
            "retain_until": at + timedelta(days=365 * (1 + i % 2)),
            "legal_hold": i % 3 == 0,
            "training": i % 2 == 1,
            "content_sha256": f"{i:064x}",
            "object_sha256": f"{i + 100:064x}",
            "raw_sha256": None if i % 4 == 3 else f"{i + 200:064x}",
            "size": 700 + i,
            "notice_id": None if i % 2 else i,
            "ledger_seq": None,
            "lang": "es" if i == 5 else None,
        }

    with instance.app.engine.begin() as conn:
        insert_rows(conn, table, [row(i, "driver") for i in range(12)])
        conn.execute(table.insert(), [row(i, "orm") for i in range(12)])
    with Session(instance.app.engine) as session:
        found = session.exec(select(Record).order_by(col(Record.remote_id))).all()
    skip = {"id", "account"}

    def values(account: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.model_dump().items() if k not in skip}
            for r in found
            if r.account == account
        ]

    assert values("driver") == values("orm")
    assert len(values("driver")) == 12
    assert {r["state"] for r in values("driver")} == {"visible", "hidden", "deleted"}


def test_a_batchs_audit_events_are_what_one_event_each_gives(instance: Instance) -> None:
    """The events of an archived batch, written for the lot at once, hold what
    ``audit.event`` gives for each record: actor, action, object and the detail's JSON."""
    from bulletin import audit

    records = archive_some(instance, 4)
    with Session(instance.app.engine) as session:
        events = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.action) == "captured")
            .order_by(col(AuditEvent.id))
        ).all()
    got = [(e.actor, e.object_type, e.object_id, e.detail, e.via, e.host) for e in events]
    want = []
    for r in records:
        one = audit.event(
            at=r.captured_at,
            actor="bulletin",
            action="captured",
            object_type="record",
            object_id=r.id or 0,
            series=r.series,
            sha256=r.object_sha256,
            remote_id=r.remote_id,
            version=r.version,
            change=r.change,
        )
        want.append((one["actor"], one["object_type"], one["object_id"], one["detail"], None, None))
    assert got == want


def test_the_latest_versions_are_found_by_the_unique_index(sqlite_instance: Instance) -> None:
    """Given records of two kinds in one account (a post and a comment with the same remote
    id among them), when a batch looks up the items' latest versions, then SQLite searches
    the unique index on (account, kind, remote id) for each id, never walks every version of
    the account, and each kind keeps its own versions."""
    app = sqlite_instance.app
    post = Capture("feed", "feed", replace(comment(1).item, kind="post", remote_id="x1"))
    archive = app.archiver.archive
    archive([comment(i) for i in range(30)] + [post, comment(0, "edited")])
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if "max(records.version)" in statement:
            statements.append((statement, params))

    sa.event.listen(app.engine, "before_cursor_execute", seen)
    try:
        again = archive([replace(post, item=replace(post.item, text="post edited")), comment(5)])
    finally:
        sa.event.remove(app.engine, "before_cursor_execute", seen)
    assert [(r.kind, r.remote_id, r.version) for r in again] == [
        ("post", "x1", 2),
        ("comment", "c5", 1),
    ]
    assert statements
    with app.engine.connect() as conn:
        for statement, params in statements:
            plan = [
                row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            ]
            searches = [step for step in plan if "records" in step or "INDEX" in step]
            assert searches, plan
            assert all("kind=? AND remote_id=?" in step for step in searches), plan


def test_a_torn_object_left_by_a_crash_is_made_whole_by_the_retry(
    sqlite_instance: Instance,
) -> None:
    """An interrupted batch left an object's file cut short under its own name; archiving the
    batch again writes it whole, and verify finds nothing wrong."""
    store = sqlite_instance.app.store
    assert isinstance(store, LocalStore)
    capture = comment(1)
    raw = capture.item.raw
    path = store.path_of(object_key(hashlib.sha256(raw).hexdigest()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw[:5])
    [record] = sqlite_instance.app.archiver.archive([capture])
    assert path.read_bytes() == raw
    report = verify(sqlite_instance.app.engine, store)
    assert report.ok, report.problems
    assert record.raw_sha256 == hashlib.sha256(raw).hexdigest()


def test_archiving_over_an_altered_object_is_refused(instance: Instance) -> None:
    """An archived object changed on disk is not quietly rewritten by a later capture of the
    same bytes: the capture fails and verify still names the record."""
    [first] = archive_some(instance, 1)
    store = instance.app.store
    assert isinstance(store, LocalStore)
    path = store.path_of(object_key(first.raw_sha256 or ""))
    path.chmod(0o644)
    path.write_bytes(b"altered")
    same_raw = Capture("feed", "feed", replace(comment(0).item, remote_id="c-other"))
    with pytest.raises(IntegrityError, match="altered"):
        instance.app.archiver.archive([same_raw])
    assert path.read_bytes() == b"altered"
    report = verify(instance.app.engine, store)
    assert ("object-altered", f"record {first.id}") in {
        (p.kind, p.subject) for p in report.problems
    }
