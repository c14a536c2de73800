"""Search over posts and comments, threads with versions and states, and archive status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Capture
from bulletin.archiver.search import Query
from bulletin.archiver.search import search as find
from bulletin.connectors.base import ItemKind, ItemState, RemoteItem
from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import Record
from tests.plugins.bulletin_app import Instance
from tests.plugins.capture import comments, fb_post, records, replies, run, x_post
from tests.plugins.cli import run as run_cli
from tests.plugins.sandbox import Control


def bulletin(inst: Instance, *args: str, code: int = 0) -> str:
    return run_cli(inst, *args, code=code, stdout=not code)


def search(inst: Instance, *args: str) -> list[dict[str, object]]:
    hits: list[dict[str, object]] = json.loads(
        bulletin(inst, "archive", "search", *args, "--json")
    )["hits"]
    return hits


def test_search_by_text_author_account_state_and_date(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """Words (and prefixes), author, account, platform, state and dates narrow the hits;
    text edited away and deleted comments are still found."""
    post = fb_post(sandbox, "Snow emergency: parking ban on Main Street")
    [edited] = comments(control, post, message="The plows skipped Elm Street", author="Ann Lee")
    [gone] = comments(control, post, message="Elm Street is a mess", author="Bo Diaz")
    tweet = x_post(sandbox, "Elm Street reopened")
    replies(control, tweet, text="Thanks for clearing Elm", author="carla")
    run(site, "facebook")
    run(site, "x")
    control.session.patch(
        f"{control.url}/_sandbox/fb/comments/{edited}", json={"message": "All clear now"}, timeout=5
    ).raise_for_status()
    control.session.delete(
        f"{control.url}/_sandbox/fb/comments/{gone}", timeout=5
    ).raise_for_status()
    site.clock.advance(timedelta(hours=7))
    run(site, "facebook", full=True)

    elm = search(site, "elm")
    assert {h["remote_id"] for h in elm} >= {edited, gone, tweet}
    assert {h["remote_id"] for h in search(site, "plow*")} == {edited}
    [hit] = search(site, "plows", "--state", "edited")
    assert hit["current_state"] == "visible" and hit["versions"] == 2
    [deleted] = search(site, "elm", "--state", "deleted")
    assert deleted["remote_id"] == gone
    assert {h["account"] for h in search(site, "elm", "--platform", "x")} == {"x"}
    assert [h["remote_id"] for h in search(site, "--author", "ann lee")] == [edited]
    x_reply = [h["remote_id"] for h in search(site, "--author", "carla")]
    assert x_reply == [h["remote_id"] for h in search(site, "--author", "@Carla")] != []
    assert search(site, "elm", "--account", "facebook", "--until", "2000-01-01") == []
    assert search(site, "elm street", "--kind", "post") != []
    text = bulletin(site, "archive", "search", "elm")
    assert "bulletin archive thread" in text


def test_thread_shows_post_comments_replies_versions_and_states(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """The thread lists the post, then comments with their replies under them, each with
    every version and state."""
    post = fb_post(sandbox, "Road closed: Route 2")
    [top] = comments(control, post, message="How long?")
    [reply] = comments(control, post, message="Until 4 pm", parent_id=top)
    run(site, "facebook")
    control.session.patch(
        f"{control.url}/_sandbox/fb/comments/{top}",
        json={"message": "How long? (edited)"},
        timeout=5,
    ).raise_for_status()
    site.clock.advance(timedelta(hours=7))
    run(site, "facebook")
    [r] = records(site, remote_id=reply)
    data = json.loads(bulletin(site, "archive", "thread", str(r.id), "--json").splitlines()[-1])
    order = [(i["kind"], i["remote_id"], i["depth"]) for i in data["items"]]
    assert order == [("post", post, 0), ("comment", top, 1), ("comment", reply, 2)]
    assert [v["text"] for v in data["items"][1]["versions"]] == ["How long?", "How long? (edited)"]
    text = bulletin(site, "archive", "thread", str(r.id))
    assert "v2 [visible, edited]" in text


def test_status_shows_counts_sweeps_quarantine_spend_and_alerts(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """archive status: records by account/kind/state, last sweep with its result (an expired
    token stands out), quarantined answers and the spend estimate against the budget."""
    tweet = x_post(sandbox)
    replies(control, tweet, count=3)
    run(site, "x")
    fb = fb_post(sandbox)
    comments(control, fb)
    control.fault("malformed", rf"/{fb}/comments", count=50)
    run(site, "facebook")
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    control.fault("expired_token", r"^/v[\d.]+/", count=100)
    site.clock.advance(timedelta(hours=7))
    run(site, "facebook")
    status = json.loads(bulletin(site, "archive", "status", "--json").splitlines()[-1])
    counts = {(r["account"], r["kind"], r["state"]): r["count"] for r in status["records"]}
    assert counts[("x", "comment", "visible")] == 3
    assert status["sweeps"]["facebook"]["result"] == "auth-error"
    assert status["sweeps"]["x"]["result"] == "ok"
    assert status["quarantine"]["total"] == 1
    assert status["spend"]["x"]["reads"] == 4 and status["spend"]["x"]["budget"] == 100.0
    assert status["store_backlog"] == 0
    text = bulletin(site, "archive", "status")
    assert "ALERT" in text and "quarantined answers: 1" in text


def _comment(remote_id: str, text: str, minute: int, state: ItemState = "visible") -> Capture:
    posted = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    item = RemoteItem(
        "comment", remote_id, text, "Visitor", posted, parent_id="p1", thread_id="p1", state=state
    )
    return Capture("facebook", "facebook", item)


def test_hits_are_distinct_items_even_when_each_has_many_matching_versions(
    instance: Instance,
) -> None:
    """Twenty items of five matching versions each, archived item after item: the newest
    rows belong to a few items, and search reads on until it has the twenty asked for."""
    instance.app.archiver.archive_batch(
        [_comment(f"c{i}", f"detour via Elm, edit {n}", i) for i in range(20) for n in range(5)]
    )
    hits = find(instance.app.engine, Query(text=("detour",)), limit=20)
    assert sorted(h.record.remote_id for h in hits) == sorted(f"c{i}" for i in range(20))
    assert {(h.record.version, h.versions) for h in hits} == {(5, 5)}


def test_a_rare_match_far_behind_the_newest_is_found(instance: Instance) -> None:
    """The only deleted comment and the only one posted on a given day are the oldest of
    hundreds that share the word: the walk goes past its first pages to reach them, and a
    date range holding no record answers nothing."""
    archiver = instance.app.archiver
    archiver.archive_batch([_comment(f"c{i}", f"road closed {i}", i * 60) for i in range(600)])
    archiver.archive_batch([_comment("c0", "road closed 0", 0, state="deleted")])
    engine = instance.app.engine
    [deleted] = find(engine, Query(text=("road",), state="deleted"))
    assert (deleted.record.remote_id, deleted.current_state) == ("c0", "deleted")
    day = datetime(2026, 3, 1, tzinfo=UTC)
    hits = find(engine, Query(text=("road",), since=day, until=day + timedelta(hours=2)))
    assert sorted(h.record.remote_id for h in hits) == ["c0", "c1"]
    assert find(engine, Query(account="facebook", until=day)) == []
    on_day = find(engine, Query(account="facebook", since=day, until=day + timedelta(hours=3)))
    assert [h.record.remote_id for h in on_day] == ["c2", "c1", "c0"]
    assert find(engine, Query(text=("road",), state="hidden")) == []


@pytest.mark.parametrize("walk_budget", [8_192, 8])
def test_search_by_a_rare_state_reads_only_that_states_items(
    instance: Instance, walk_budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hidden, deleted and edited items among hundreds of visible ones: a search by state, with
    or without words, finds each (every version of it searchable), through the partial index
    of that state on SQLite; an item's other filters still apply. With a small walk budget
    the words are looked up among the state's ids instead: the same answers."""
    from bulletin.archiver.search import pages

    monkeypatch.setattr(pages, "_WALK_BUDGET", walk_budget)
    archiver = instance.app.archiver
    archiver.archive_batch([_comment(f"c{i}", f"snow route {i}", i) for i in range(400)])
    archiver.archive_batch([_comment("c7", "snow route 7", 7, state="hidden")])
    archiver.archive_batch([_comment("c9", "plowed already", 9)])  # an edit: the word is gone
    archiver.archive_batch([_comment("c11", "snow route 11", 11, state="deleted")])
    engine = instance.app.engine
    assert [h.record.remote_id for h in find(engine, Query(state="hidden"))] == ["c7"]
    [edited] = find(engine, Query(text=("route",), state="edited"))
    assert (edited.record.remote_id, edited.record.version, edited.versions) == ("c9", 1, 2)
    [deleted] = find(engine, Query(text=("snow",), state="deleted", author="visitor"))
    assert deleted.record.remote_id == "c11" and deleted.current_state == "deleted"
    assert find(engine, Query(text=("snow",), state="deleted", account="x")) == []
    assert find(engine, Query(text=("plowed",), state="hidden")) == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT account, kind, remote_id FROM records "
                "WHERE state = 'hidden'"
            ).all()
        assert "ix_records_hidden" in " ".join(str(row[-1]) for row in plan)


def _fts_is_sound(engine: sa.Engine) -> None:
    """SQLite's FTS5 index agrees with ``records`` row for row (its own integrity check)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO records_fts(records_fts, rank) VALUES ('integrity-check', 1)"
            )


def test_every_path_that_adds_records_makes_them_searchable(
    instance: Instance, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Records archived in batches (an item's versions inside one batch too), one by one,
    and rebuilt from the store into a new database are all found by their words, and the
    full-text index matches the records exactly; an edit's old words still find it."""
    from bulletin.archiver.rebuild import rebuild_index
    from bulletin.db import make_engine, migrate

    archiver = instance.app.archiver
    archiver.archive_batch([_comment(f"c{i}", f"ice on Elm {i}", i) for i in range(300)])
    archiver.archive([_comment("c1", "sanded now", 1)])
    archiver.archive_batch([_comment("c2", "flooded", 2), _comment("c2", "dry again", 2)])
    engine = instance.app.engine
    _fts_is_sound(engine)

    def found(on: sa.Engine, words: str) -> list[str]:
        return sorted(h.record.remote_id for h in find(on, Query(text=(words,)), limit=500))

    assert len(found(engine, "elm")) == 300
    assert found(engine, "sanded") == ["c1"] and found(engine, "ice 1") == ["c1"]
    assert found(engine, "flooded") == ["c2"] and found(engine, "dry") == ["c2"]
    if engine.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite:///{tmp_path_factory.mktemp('lost') / 'new.db'}")
    else:
        fresh = engine  # same schema, index emptied by --replace
    migrate(fresh)
    rebuild_index(fresh, instance.app.store, instance.clock.now(), replace=True, batch=128)
    _fts_is_sound(fresh)
    assert len(found(fresh, "elm")) == 300
    assert found(fresh, "sanded") == ["c1"] and found(fresh, "dry") == ["c2"]


def test_records_indexed_before_0011_stay_searchable(tmp_path: Path) -> None:
    """A database archived under revision 0010 (row trigger) and upgraded: old and new
    records are found, and the index matches the records."""
    from alembic import command

    from bulletin.db import _alembic_config, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(_alembic_config(engine), "0010")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO records (account, platform, kind, remote_id, version, state, text, "
            "captured_at, series, legal_hold, training, content_sha256, object_sha256, size, "
            "change) VALUES ('facebook', 'facebook', 'comment', 'old', 1, 'visible', "
            "'gritting Main Street', '2026-03-01 00:00:00.000000', 'visitor-comments', 0, 0, "
            "'a', 'b', 1, 'new')"
        )
    migrate(engine)
    with engine.connect() as conn:
        triggers = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).scalars()
        assert sorted(triggers) == ["records_fts_ad", "records_fts_au"]
    assert [h.record.remote_id for h in find(engine, Query(text=("gritting",)))] == ["old"]
    _fts_is_sound(engine)


def test_records_indexed_before_prefix_indexes_are_found_by_prefix(tmp_path: Path) -> None:
    """A SQLite database archived before the FTS5 prefix indexes and upgraded: the table is
    rebuilt with them, old records are found by words and prefixes of 2 to 5 characters, a
    record indexed afterwards too, and the index matches the records."""
    from alembic import command

    from bulletin.archiver.search.conditions import index_new_records
    from bulletin.db import SCHEMA_REVISION, _alembic_config, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(_alembic_config(engine), "0029")
    insert = (
        "INSERT INTO records (account, platform, kind, remote_id, version, state, text, "
        "captured_at, series, legal_hold, training, content_sha256, object_sha256, size, "
        "change, ledger_seq) VALUES ('facebook', 'facebook', 'comment', ?, 1, 'visible', ?, "
        "'2026-03-01 00:00:00.000000', 'visitor-comments', 0, 0, 'a', 'b', 1, 'new', ?)"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(insert, ("old", "the bridge will reopen", 1))
        conn.exec_driver_sql(
            "INSERT INTO records_fts(rowid, text, author) SELECT id, text, author FROM records"
        )
    assert migrate(engine) == SCHEMA_REVISION
    with engine.begin() as conn:
        table = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'records_fts'"
        ).scalar_one()
        assert "prefix='2 3 4'" in table
        conn.exec_driver_sql(insert, ("new", "reopened at noon", 2))
        index_new_records(conn, 2, 2)
    for text, expected in (
        ("reopen", ["old"]),
        ("re*", ["new", "old"]),
        ("reo*", ["new", "old"]),
        ("reop*", ["new", "old"]),
        ("reope*", ["new", "old"]),
        ("reopened", ["new"]),
    ):
        hits = find(engine, Query(text=(text,)))
        assert [h.record.remote_id for h in hits] == expected, text
    _fts_is_sound(engine)
    engine.dispose()


@pytest.mark.postgres
def test_records_archived_before_0024_are_found_by_words_and_author_on_postgresql(
    pg_schema_url: str,
) -> None:
    """A PostgreSQL database archived under revision 0018 (expression index) and upgraded:
    the stored vector is filled for the old rows, the new indexes replace the old one, and a
    record inserted afterwards is found too."""
    from alembic import command

    from bulletin.db import _alembic_config, make_engine, migrate

    engine = make_engine(pg_schema_url)
    command.upgrade(_alembic_config(engine), "0018")
    insert = (
        "INSERT INTO records (account, platform, kind, remote_id, version, state, author, "
        "text, captured_at, series, legal_hold, training, content_sha256, object_sha256, "
        "size, change) VALUES ('facebook', 'facebook', 'comment', :rid, 1, 'visible', "
        "'Dana Lee', :text, '2026-03-01 00:00:00', 'visitor-comments', false, false, 'a', "
        "'b', 1, 'new')"
    )
    with engine.begin() as conn:
        conn.execute(sa.text(insert), {"rid": "old", "text": "gritting Main Street"})
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(insert), {"rid": "new", "text": "gritting Elm Street"})
        indexes = conn.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'records' "
                "AND schemaname = current_schema()"
            )
        ).all()
        names = {name for (name,) in indexes}
        assert {"ix_records_search", "ix_records_author"} <= names
        assert "ix_records_fts" not in names
    assert [h.record.remote_id for h in find(engine, Query(text=("main",)))] == ["old"]
    found = find(engine, Query(text=("gritting",), author="dana lee"))
    assert [h.record.remote_id for h in found] == ["new", "old"]
    engine.dispose()


def test_manual_sweep_says_which_threads_the_schedule_left_for_later(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """``archive sweep`` follows the capture schedule, and says so: a thread swept a moment
    ago is not listed again, the output counts it and names ``--full``, which captures it."""
    tweet = x_post(sandbox)
    run(site, "x")
    [reply] = replies(control, tweet, text="Is Elm Street open?", author="dana")
    out = json.loads(bulletin(site, "archive", "sweep", "x", "--json").splitlines()[-1])
    assert (out["threads"], out["not_due"], out["archived"]) == (0, 1, 0)
    text = bulletin(site, "archive", "sweep", "x")
    assert "1 thread(s) not due yet" in text and "--full" in text
    assert "not due" not in bulletin(site, "archive", "sweep", "x", "--full")
    assert [h["remote_id"] for h in search(site, "--author", "dana")] == [reply]


def _item(
    kind: ItemKind,
    remote_id: str,
    text: str,
    author: str,
    thread: str,
    state: ItemState = "visible",
) -> Capture:
    posted = datetime(2026, 3, 1, 15, tzinfo=UTC) + timedelta(minutes=len(remote_id))
    parent = None if kind == "post" else thread
    item = RemoteItem(
        kind, remote_id, text, author, posted, parent_id=parent, thread_id=thread, state=state
    )
    return Capture("facebook", "facebook", item)


@pytest.fixture
def two_threads(instance: Instance) -> Instance:
    """Two threads on one account: a water-main post with comments, a snow post with a
    deleted comment; one author's name appears in no text."""
    instance.app.archiver.archive_batch(
        [
            _item("post", "p1", "Water main break on Elm Street", "Agency", "p1"),
            _item("comment", "c1", "Is the water main fixed?", "visitor1", "p1"),
            _item("comment", "c2", "Mainly dry on our side", "smith", "p1"),
            _item("post", "p2", "Snow emergency: parking ban", "Agency", "p2"),
            _item("comment", "c3", "Road salt please", "visitor3", "p2"),
            _item("comment", "c4", "Elm is flooded too", "visitor4", "p2", state="deleted"),
        ]
    )
    return instance


def _held_items(inst: Instance, query: str) -> set[tuple[str, str]]:
    created = json.loads(
        bulletin(inst, "hold", "create", "--name", "n", "--reason", "r", "--query", query, "--json")
    )
    shown = json.loads(bulletin(inst, "hold", "show", str(created["id"]), "--json"))
    with Session(inst.app.engine) as session:
        held = session.exec(select(Record).where(col(Record.id).in_(shown["record_ids"]))).all()
    return {(r.kind, r.remote_id) for r in held}


def test_a_hold_holds_exactly_what_the_same_search_shows(two_threads: Instance) -> None:
    """For each query, `hold create --query Q` holds the items `archive search Q` lists:
    words match as search matches them (whole words, in the text or the author's name)."""
    queries = {
        "main": {("post", "p1"), ("comment", "c1")},
        "smith": {("comment", "c2")},
        "state:deleted": {("comment", "c4")},
        "author:visitor1": {("comment", "c1")},
        "kind:post water": {("post", "p1")},
        "account:facebook from:2026-03-01 to:2026-03-01 elm": {("post", "p1"), ("comment", "c4")},
    }
    for query, expected in queries.items():
        hits = search(two_threads, query, "--limit", "100")
        assert {(h["kind"], h["remote_id"]) for h in hits} == expected, query
        assert _held_items(two_threads, query) == expected, query


def test_thread_takes_the_record_number_every_hint_prints(two_threads: Instance) -> None:
    """`thread:N` with the N of `archive thread N` (as a search hit prints it) holds that
    whole thread; a platform thread id still works."""
    text = bulletin(two_threads, "archive", "search", "fixed")
    number = text.split("bulletin archive thread ")[1].split("]")[0]
    whole = {("post", "p1"), ("comment", "c1"), ("comment", "c2")}
    assert {(h["kind"], h["remote_id"]) for h in search(two_threads, f"thread:{number}")} == whole
    assert _held_items(two_threads, f"thread:{number}") == whole
    assert _held_items(two_threads, "thread:p2") == {
        ("post", "p2"),
        ("comment", "c3"),
        ("comment", "c4"),
    }


def test_a_query_that_matches_nothing_is_refused_unless_allowed(two_threads: Instance) -> None:
    """A hold or request whose query matches no record says so and is refused; with
    --allow-empty it is placed (for records captured later)."""
    for args in (
        ["hold", "create", "--name", "n", "--reason", "r"],
        ["request", "open", "--requester", "A", "--received", "2026-03-02", "--description", "d"],
    ):
        refused = bulletin(two_threads, *args, "--query", "thread:999", code=1)
        assert "matches no archived record" in refused
        placed = json.loads(
            bulletin(two_threads, *args, "--query", "thread:999", "--allow-empty", "--json")
        )
        assert placed["records"] == 0


_VOCABULARY = ("road", "closed", "detour", "snow", "plow", "parking", "ban", "main", "elm")


def _same_records(engine: sa.Engine, count: int) -> None:
    """``count`` records, the same on every database (same ids, in the same order): two
    accounts, posts and comments, authors in mixed case (some as ``@name``), a few undated
    records, and second versions: edited, deleted and hidden ones."""
    import random

    rng = random.Random(5)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for n in range(count):
        account = "x" if n % 7 == 0 else "facebook"
        name = f"Visitor {n % 40}"
        author = f"@{name.replace(' ', '').lower()}" if account == "x" else name
        text = " ".join(rng.choice(_VOCABULARY) for _ in range(rng.randint(3, 9)))
        if n % 97 == 0:
            text += " zanzibar"
        posted = None if n % 50 == 3 else start + timedelta(minutes=10 * n)
        base = {
            "account": account,
            "platform": account,
            "kind": "post" if n % 25 == 0 else "comment",
            "remote_id": f"i{n}",
            "thread_id": f"t{n // 25}",
            "author": author,
            "captured_at": start + timedelta(minutes=10 * n + 1),
            "posted_at": posted,
            "series": "visitor-comments",
            "content_sha256": f"{n:064x}",
            "object_sha256": f"{n:064x}",
        }
        rows.append({**base, "version": 1, "state": "visible", "text": text, "change": "new"})
        if n % 9 == 0:
            state, change, changed = "visible", "edited", f"{text} plow"
            if n % 27 == 0:
                state, change, changed = "deleted", "deleted", text
            elif n % 45 == 0:
                state, change, changed = "hidden", "hidden", text
            rows.append({**base, "version": 2, "state": state, "text": changed, "change": change})
    with engine.begin() as conn:
        conn.execute(sa.insert(Record), rows)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "INSERT INTO records_fts(rowid, text, author) SELECT id, text, author FROM records"
            )
        else:
            conn.exec_driver_sql("ANALYZE records")


@pytest.mark.postgres
@pytest.mark.parametrize("caps", ["as configured", "no rare state", "a few rows"])
def test_sqlite_and_postgresql_find_the_same_items_in_the_same_order(
    tmp_path: Path, pg_schema_url: str, caps: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same records in SQLite and PostgreSQL: every query shape (words, prefixes,
    authors, states, dates, filters and their mixes) lists the same items, newest first, with
    the same record (version), current state and number of versions on both. With lower
    caps the searches take their other paths (no state counts as rare; then no date range
    narrows either): the same answers again."""
    from bulletin.archiver.search import pages
    from bulletin.archiver.search.query import parse_query
    from bulletin.db import make_engine, migrate

    if caps != "as configured":
        monkeypatch.setattr(pages, "_STATE_ITEMS", 2)
    if caps == "a few rows":
        monkeypatch.setattr(pages, "_SPAN_CAP", 5)
    engines = [make_engine(f"sqlite:///{tmp_path / 'same.db'}"), make_engine(pg_schema_url)]
    for engine in engines:
        migrate(engine)
        _same_records(engine, 1500)
    queries = [
        "snow",
        "zanzibar",
        "snow plow",
        "park*",
        "ma* elm",
        "author:visitor7",
        'author:"Visitor 12" snow',
        "author:@visitor7",
        "author:nobody",
        "state:deleted",
        "state:deleted snow",
        "state:hidden",
        "state:hidden snow",
        "state:edited plow",
        "state:visible zanzibar",
        "account:x",
        "account:x elm",
        "kind:post",
        "kind:post zanzibar",
        "from:2026-03-03 to:2026-03-03",
        "from:2026-03-03 to:2026-03-04 snow",
        'account:facebook from:2026-03-05 to:2026-03-05 author:"visitor 3"',
        "from:2026-03-02 road state:deleted",
        "to:2026-03-02 zanzibar",
        "from:2026-03-09",
        "thread:t7",
        "thread:t7 road",
        "series:visitor-comments author:visitor21 snow",
        "platform:facebook state:edited",
    ]
    for text in queries:
        query = parse_query(text)
        for limit in (20, 1000):
            answers = [
                [
                    (h.record.id, h.record.remote_id, h.current_state, h.versions)
                    for h in find(engine, query, time_zone="UTC", limit=limit)
                ]
                for engine in engines
            ]
            assert answers[0] == answers[1], (text, limit)
            assert answers[0] or text == "author:nobody", text
    for engine in engines:
        engine.dispose()
