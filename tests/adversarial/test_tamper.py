"""Tampering by someone with the data directory: rows edited with SQL, the local store's catalog
edited or deleted, objects removed. ``bulletin archive verify`` must exit 1 and name the record
(or object) and what is wrong. The attacks are data: add one :class:`Tamper` to
:data:`DATABASE_TAMPERS` (run on every database) or :data:`STORE_TAMPERS` for each new one."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col

from bulletin.archiver import disposition, holds
from bulletin.archiver.archive import Capture
from bulletin.archiver.store.catalog import CATALOG
from bulletin.connectors.base import ItemState, RemoteItem
from bulletin.models import Record
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke
from tests.test_retention import PAST_RETENTION, POSTED, SCHEDULE


@dataclass
class Scene:
    """An archive at rest: four comments (1, 2 and 4 destroyed by an approved batch, 3 under
    an open hold) and two retained comments captured later (5 and 6), then 5 edited."""

    config: Path
    data_dir: Path
    db_url: str
    ids: dict[str, int]  # "disposed", "held", "plain", "other", "edited" -> record id
    objects: dict[str, str]  # the same names -> the sha256 of the record's snapshot

    def sql(self, statement: str, **params: object) -> None:
        """Run ``statement`` on the database, as its owner could."""
        engine = sa.create_engine(self.db_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(statement), params)
        finally:
            engine.dispose()

    def catalog(self, statement: str, *params: object) -> None:
        """Run ``statement`` on the local store's retention catalog with ``sqlite3``."""
        with sqlite3.connect(self.data_dir / "archive" / CATALOG) as conn:
            conn.execute(statement, params)

    def retain_until(self, name: str) -> datetime:
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                value = conn.execute(
                    sa.select(col(Record.retain_until)).where(col(Record.id) == self.ids[name])
                ).scalar_one()
        finally:
            engine.dispose()
        assert isinstance(value, datetime)
        return value

    def remove_objects(self, name: str) -> None:
        digest = self.objects[name]
        os.unlink(self.data_dir / "archive" / "sha256" / digest[:2] / digest)


@dataclass(frozen=True)
class Tamper:
    """One attack, and what verify must then say: a problem line naming ``subject`` (a format
    over the scene's record ids and object hashes) with ``kind``, containing ``says``."""

    name: str
    attack: Callable[[Scene], None]
    subject: str
    kind: str
    says: str


def _shorten_row(scene: Scene) -> None:
    shorter = scene.retain_until("plain") - timedelta(days=365)
    scene.sql("UPDATE records SET retain_until = :u WHERE id = :i", u=shorter, i=scene.ids["plain"])


def _forget_hold(scene: Scene) -> None:
    """Everything the database says of the hold on record 3, gone."""
    scene.sql("DELETE FROM hold_records WHERE record_id = :i", i=scene.ids["held"])
    scene.sql("UPDATE records SET legal_hold = false WHERE id = :i", i=scene.ids["held"])


def _forget_hold_everywhere(scene: Scene) -> None:
    """The hold forgotten in the index, and every object's legal hold cleared in the catalog."""
    _forget_hold(scene)
    scene.catalog("UPDATE objects SET legal_hold = 0")


def _dispose_held(scene: Scene) -> None:
    scene.sql(
        "UPDATE records SET disposed_at = :t, legal_hold = false WHERE id = :i",
        t=PAST_RETENTION,
        i=scene.ids["held"],
    )
    scene.remove_objects("held")


def _delete_catalog(scene: Scene) -> None:
    for suffix in ("", "-wal", "-shm"):
        (scene.data_dir / "archive" / f"{CATALOG}{suffix}").unlink(missing_ok=True)


DATABASE_TAMPERS = [
    Tamper(
        "text rewritten in the index",
        lambda s: s.sql(
            "UPDATE records SET text = 'I did it, officer' WHERE id = :i", i=s.ids["plain"]
        ),
        "record {plain}",
        "row-contradicts-snapshot",
        "text: the index says 'I did it, officer', its snapshot says 'Comment number 5",
    ),
    Tamper(
        "author rewritten in the index",
        lambda s: s.sql("UPDATE records SET author = 'mayor' WHERE id = :i", i=s.ids["plain"]),
        "record {plain}",
        "row-contradicts-snapshot",
        "author: the index says 'mayor', its snapshot says 'visitor5'",
    ),
    Tamper(
        "posted time moved in the index",
        lambda s: s.sql(
            "UPDATE records SET posted_at = :t WHERE id = :i", t=POSTED, i=s.ids["plain"]
        ),
        "record {plain}",
        "row-contradicts-snapshot",
        "posted_at: the index says 2026-11-01",
    ),
    Tamper(
        "a deleted comment shown as visible",
        lambda s: s.sql("UPDATE records SET state = 'visible' WHERE id = :i", i=s.ids["other"]),
        "record {other}",
        "row-contradicts-snapshot",
        "state: the index says 'visible', its snapshot says 'deleted'",
    ),
    Tamper(
        "comment moved to another thread",
        lambda s: s.sql("UPDATE records SET thread_id = 'p9' WHERE id = :i", i=s.ids["plain"]),
        "record {plain}",
        "row-contradicts-snapshot",
        "thread_id: the index says 'p9', its snapshot says 'p1'",
    ),
    Tamper(
        "series changed in the index",
        lambda s: s.sql(
            "UPDATE records SET series = 'agency-posts' WHERE id = :i", i=s.ids["plain"]
        ),
        "record {plain}",
        "row-contradicts-snapshot",
        "series: the index says 'agency-posts', its snapshot says 'visitor-comments'",
    ),
    Tamper(
        "an edit passed off as a new comment",
        lambda s: s.sql("UPDATE records SET change = 'new' WHERE id = :i", i=s.ids["edited"]),
        "record {edited}",
        "row-contradicts-snapshot",
        "change: the index says 'new', its snapshot says 'edited'",
    ),
    Tamper(
        "an edit cut from the version it follows",
        lambda s: s.sql(
            "UPDATE records SET previous_record_id = NULL WHERE id = :i", i=s.ids["edited"]
        ),
        "record {edited}",
        "row-contradicts-snapshot",
        "version: the index says 2, its snapshot says 1",
    ),
    Tamper(
        "record row deleted",
        lambda s: s.sql("DELETE FROM records WHERE id = :i", i=s.ids["plain"]),
        "record {plain}",
        "row-missing",
        "the index has no row for it",
    ),
    Tamper(
        "held record marked disposed and its objects deleted",
        _dispose_held,
        "record {held}",
        "disposed-without-certificate",
        "no certificate of destruction in the ledger names it",
    ),
    Tamper(
        "disposed record moved to another batch",
        lambda s: s.sql(
            "UPDATE records SET disposal_batch_id = 99 WHERE id = :i", i=s.ids["disposed"]
        ),
        "record {disposed}",
        "disposed-without-certificate",
        "in batch 99",
    ),
    Tamper(
        "retain-until shortened in the index",
        _shorten_row,
        "record {plain}",
        "retention-disagrees",
        "sha256/{plain_object}: the store's catalog says retain until 2035-11-01",
    ),
    Tamper(
        "legal hold cleared in the index",
        lambda s: s.sql("UPDATE records SET legal_hold = false WHERE id = :i", i=s.ids["held"]),
        "record {held}",
        "hold-disagrees",
        "the index says not on legal hold, but open hold 1 holds it",
    ),
    Tamper(
        "hold membership and flag deleted in the index",
        _forget_hold,
        "record {held}",
        "hold-disagrees",
        "the index says not on legal hold, but open hold 1's query covers it",
    ),
]

STORE_TAMPERS = [
    Tamper(
        "retain-until shortened in the catalog",
        lambda s: s.catalog(
            "UPDATE objects SET retain_until = '2027-01-01T00:00:00.000000Z' WHERE key = ?",
            "sha256/" + s.objects["plain"],
        ),
        "record {plain}",
        "retention-disagrees",
        "the index says retain until 2035-11-01 00:00:00 UTC; sha256/{plain_object}: "
        "the store's catalog says retain until 2027-01-01 00:00:00 UTC, not held",
    ),
    Tamper(
        "legal hold cleared in the catalog",
        lambda s: s.catalog(
            "UPDATE objects SET legal_hold = 0 WHERE key = ?", "sha256/" + s.objects["held"]
        ),
        "record {held}",
        "hold-disagrees",
        "it must be on legal hold; sha256/{held_object}: the store's catalog says",
    ),
    Tamper(
        "hold forgotten in the index and cleared in the catalog",
        _forget_hold_everywhere,
        "record {held}",
        "hold-disagrees",
        "it must be on legal hold; sha256/{held_object}",
    ),
    Tamper(
        "catalog deleted",
        _delete_catalog,
        "record {plain}",
        "retention-disagrees",
        "sha256/{plain_object}: the store's catalog has no row for it",
    ),
    Tamper(
        "ledger segment's hold cleared in the catalog",
        lambda s: s.catalog("UPDATE objects SET legal_hold = 0 WHERE key LIKE 'ledger/%'"),
        "ledger/000000000001-000000000004.jsonl",
        "hold-disagrees",
        "kept permanently on legal hold, but the store's catalog says",
    ),
]


def comment(
    n: int,
    posted: datetime = POSTED,
    state: ItemState = "visible",
    text: str = "about the water main",
) -> Capture:
    item = RemoteItem(
        kind="comment",
        remote_id=f"c{n}",
        text=f"Comment number {n} {text}",
        author=f"visitor{n}",
        posted_at=posted,
        parent_id="p1",
        thread_id="p1",
        state=state,
        raw=f'{{"id":"c{n}"}}'.encode(),
    )
    return Capture("feed", "feed", item)


def build(tmp_path: Path, db_url: str) -> Scene:
    """The scene, built through Bulletin's own functions, then closed (the data at rest)."""
    inst: Instance = make_instance(tmp_path, db_url, SCHEDULE)
    app = inst.app
    try:
        first = app.archiver.archive([comment(n) for n in (1, 2, 3, 4)])
        holds.create_hold(
            app.engine,
            app.store,
            name="Smith v. Town",
            query=holds.parse_query("author:visitor3"),
            reason="litigation expected",
            actor="clerk1",
            now=inst.clock.now(),
            time_zone=inst.settings.agency.time_zone,
        )
        inst.clock.set(PAST_RETENTION)
        batch = disposition.build_disposition_batch(
            app.engine, app.store, inst.settings, inst.clock.now(), "admin1"
        )
        assert batch is not None and batch.id is not None
        disposition.approve_batch(
            app.engine, app.store, inst.settings, batch.id, actor="chief", now=inst.clock.now()
        )
        later = datetime(2033, 11, 1, tzinfo=UTC)
        inst.clock.set(later)
        last = app.archiver.archive([comment(5, later), comment(6, later, "deleted")])
        inst.clock.advance(timedelta(hours=1))
        [edited] = app.archiver.archive([comment(5, later, text="(edited)")])
    finally:
        app.close()
    named = {
        "disposed": first[0],
        "held": first[2],
        "plain": last[0],
        "other": last[1],
        "edited": edited,
    }
    return Scene(
        inst.config,
        inst.data_dir,
        db_url,
        {k: r.id or 0 for k, r in named.items()},
        {k: r.object_sha256 for k, r in named.items()},
    )


@pytest.fixture
def scene(tmp_path: Path, db_url: str) -> Scene:
    """The scene on each database."""
    return build(tmp_path, db_url)


@pytest.fixture
def sqlite_scene(tmp_path: Path) -> Scene:
    """The scene on SQLite (for attacks on the store alone)."""
    return build(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")


def run(scene: Scene, *argv: str) -> tuple[int, str]:
    result = invoke(scene.config, *argv)
    return result.exit_code, result.stdout + result.stderr


def _names(scene: Scene) -> dict[str, object]:
    return {**scene.ids, **{f"{k}_object": v for k, v in scene.objects.items()}}


def _assert_named(scene: Scene, tamper: Tamper) -> None:
    code, out = run(scene, "archive", "verify")
    assert code == 1, out
    names = _names(scene)
    wanted = f"problem: {tamper.subject.format(**names)}: {tamper.kind}: "
    lines = [line for line in out.splitlines() if line.startswith(wanted)]
    assert lines, out
    assert any(tamper.says.format(**names) in line for line in lines), out
    assert "Traceback" not in out


def test_the_untouched_scene_verifies(scene: Scene) -> None:
    """Without tampering, verify passes: destroyed, held and retained records all agree."""
    code, out = run(scene, "archive", "verify")
    assert code == 0, out
    assert "note:" not in out, out


@pytest.mark.parametrize("tamper", DATABASE_TAMPERS, ids=[t.name for t in DATABASE_TAMPERS])
def test_database_tampering_is_named(scene: Scene, tamper: Tamper) -> None:
    """Verify exits 1 naming the record and what its row says against the store."""
    tamper.attack(scene)
    _assert_named(scene, tamper)


@pytest.mark.parametrize("tamper", STORE_TAMPERS, ids=[t.name for t in STORE_TAMPERS])
def test_store_tampering_is_named(sqlite_scene: Scene, tamper: Tamper) -> None:
    """Verify exits 1 naming the record or object and which side says what."""
    tamper.attack(sqlite_scene)
    _assert_named(sqlite_scene, tamper)


def test_show_does_not_vouch_for_a_rewritten_row(sqlite_scene: Scene) -> None:
    """`archive show` of a row whose text was rewritten says it disagrees, not "(verified)"."""
    record = sqlite_scene.ids["plain"]
    sqlite_scene.sql("UPDATE records SET text = 'I did it, officer' WHERE id = :i", i=record)
    code, out = run(sqlite_scene, "archive", "show", str(record))
    assert code == 0, out
    assert "(verified)" not in out, out
    assert "DISAGREES" in out
    assert "text: the index says 'I did it, officer', its snapshot says 'Comment number 5" in out
