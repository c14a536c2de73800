"""The records of a notice in several languages: every version of each language's post keeps
its language and notice, in the index and in a rebuilt one. Against SQLite and PostgreSQL,
with the notice published to the sandbox's X and edited there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver.archive import Capture
from bulletin.archiver.rebuild import rebuild_index
from bulletin.archiver.search import parse_query, search
from bulletin.archiver.store.base import object_key
from bulletin.archiver.verify import verify
from bulletin.connectors.base import RemoteItem
from bulletin.connectors.sandbox import SandboxServer
from bulletin.db import SCHEMA_REVISION, check_schema, make_engine, migrate
from bulletin.models import Delivery, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import run
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts
from tests.test_export import export, records_of
from tests.test_languages import bilingual_instance, run_all
from tests.test_media import png
from tests.test_portal import serving

SPANISH = LanguageVariant("es", "Calle Main cerrada entre la 1 y la 2 hasta las 6 pm.")


@pytest.fixture
def bilingual_x(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """An agency writing English and Spanish, with the sandbox's X and Facebook accounts."""
    inst = bilingual_instance(tmp_path, db_url, sandbox_accounts(sandbox.url))
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps posts with the wall clock
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    Daemon(inst.app).prepare()  # accounts mirrored into the database
    yield inst
    inst.app.close()


def publish(inst: Instance, targets: tuple[str, ...] = ("x",), **draft: object) -> int:
    """A bilingual road closure, approved and published on ``targets``."""
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft(
            category="road-closure",
            text="Road closed: Main St between 1st and 2nd until 6 pm.",
            targets=targets,
            languages=(draft.pop("spanish", SPANISH),),  # type: ignore[arg-type]
            **draft,  # type: ignore[arg-type]
        ),
        "dispatcher",
        inst.app.store,
    )
    assert notice.id is not None
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id, "chief")
    assert "published" in run_all(inst)
    return notice.id


def posts(inst: Instance, notice_id: int) -> dict[str, Delivery]:
    """The notice's published posts by language."""
    with Session(inst.app.engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()
    return {d.lang: d for d in rows if d.state == "published"}


def found(engine: sa.Engine, text: str) -> list[tuple[str, int, int, str]]:
    """Each item found: the newest version that matched, its number, how many versions the
    item has and its language."""
    hits = search(engine, parse_query(text), time_zone="UTC", limit=20)
    return sorted((h.record.text, h.record.version, h.versions, h.record.lang or "") for h in hits)


def versions(engine: sa.Engine) -> list[tuple[str, int, int | None, str | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Record).where(Record.kind == "post").order_by(col(Record.id))
        ).all()
    return [(r.remote_id, r.version, r.notice_id, r.lang) for r in rows]


def test_an_edited_post_keeps_its_language_and_notice(
    bilingual_x: Instance, control: Control, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The Spanish post edited on the platform: the sweep archives the edit as version 2 of
    the post, with the language and notice of version 1 on its record and in its snapshot;
    ``lang:es`` finds both versions and no English one; a visitor's reply has no language;
    an index rebuilt from the store alone says the same, and verify finds nothing wrong."""
    inst = bilingual_x
    notice_id = publish(inst)
    spanish = posts(inst, notice_id)["es"]
    assert spanish.remote_id
    edited = "Calle Main cerrada entre la 1 y la 2 hasta las 7 pm."
    control.session.patch(
        f"{control.url}/_sandbox/x/tweets/{spanish.remote_id}", json={"text": edited}, timeout=5
    ).raise_for_status()
    control.post("x/replies", {"tweet_id": spanish.remote_id, "text": "¿Y la calle Elm?"})
    inst.clock.advance(timedelta(minutes=10))
    assert run(inst, "x").result == "ok"

    engine = inst.app.engine
    assert found(engine, "lang:es") == [(edited, 2, 2, "es")]
    assert found(engine, "lang:es 7") == [(edited, 2, 2, "es")]  # the edit's words
    assert found(engine, "lang:es 6") == [(SPANISH.text, 1, 2, "es")]  # the first's
    assert [lang for *_, lang in found(engine, "lang:en")] == ["en"]
    assert found(engine, "lang:en 7") == []
    with Session(inst.app.engine) as session:
        second = session.exec(
            select(Record).where(Record.remote_id == spanish.remote_id, Record.version == 2)
        ).one()
        [reply] = session.exec(select(Record).where(Record.kind == "comment")).all()
    assert (second.notice_id, second.lang) == (notice_id, "es")
    assert (reply.lang, reply.notice_id) == (None, None)  # a visitor declares no language
    snapshot = json.loads(inst.app.store.get(object_key(second.object_sha256)))
    assert (snapshot["notice_id"], snapshot["lang"]) == (notice_id, "es")
    assert "lang" not in snapshot["item"]["extra"]  # what the platform said stays apart
    before = versions(inst.app.engine)
    assert verify(inst.app.engine, inst.app.store).ok

    if inst.app.engine.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite:///{tmp_path_factory.mktemp('lost') / 'new.db'}")
    else:
        fresh = inst.app.engine  # same schema, index emptied by replace
    migrate(fresh)
    rebuild_index(fresh, inst.app.store, inst.clock.now(), replace=True)
    assert versions(fresh) == before
    assert found(fresh, "lang:es 7") == [(edited, 2, 2, "es")]
    assert found(fresh, "lang:es 6") == [(SPANISH.text, 1, 2, "es")]
    assert verify(fresh, inst.app.store).ok
    if fresh is not inst.app.engine:
        fresh.dispose()


def test_upgrade_carries_the_language_to_versions_archived_before(
    db_url: str, tmp_path: Path
) -> None:
    """Versions archived before their snapshots named what they carry: the upgrade gives
    each later version of a post the notice and language of its nearest earlier version that
    names them (a comment stays without), and verify agrees with the index."""
    from alembic import command

    from bulletin.db import _alembic_config

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0028")
        insert = sa.text(
            "INSERT INTO records (account, platform, kind, remote_id, version, state, text, "
            "captured_at, series, legal_hold, training, content_sha256, object_sha256, size, "
            "change, notice_id, lang) VALUES ('x', 'x', :kind, :rid, :version, 'visible', "
            "'texto', '2026-03-01 00:00:00', 'agency-posts', false, false, :digest, :digest, "
            "10, 'new', :notice, :lang)"
        )
        rows = [
            ("post", "p1", 1, 7, "es"),
            ("post", "p1", 2, None, None),
            ("post", "p1", 3, None, None),
            ("post", "p2", 1, 7, "en"),
            ("comment", "c1", 1, None, None),
            ("comment", "c1", 2, None, None),
        ]
        with engine.begin() as conn:
            for n, (kind, rid, version, notice, lang) in enumerate(rows):
                conn.execute(
                    insert,
                    {
                        "kind": kind,
                        "rid": rid,
                        "version": version,
                        "digest": f"{n:064x}",
                        "notice": notice,
                        "lang": lang,
                    },
                )
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        assert versions(engine) == [
            ("p1", 1, 7, "es"),
            ("p1", 2, 7, "es"),
            ("p1", 3, 7, "es"),
            ("p2", 1, 7, "en"),
        ]
        with Session(engine) as session:
            comments = session.exec(select(Record).where(Record.kind == "comment")).all()
        assert [(c.notice_id, c.lang) for c in comments] == [(None, None), (None, None)]
    finally:
        engine.dispose()


def test_each_language_post_archives_its_own_alt_text(
    bilingual_x: Instance, tmp_path: Path
) -> None:
    """An image described in English and in Spanish: the snapshot of each language's post
    records the description that post was published with, and a production's thread page
    shows the Spanish post's image with the Spanish description."""
    inst = bilingual_x
    image = tmp_path / "map.png"
    image.write_bytes(png("closure map"))
    english, spanish = "Map of the closed block of Main St", "Mapa de la cuadra cerrada de Main"
    notice_id = publish(
        inst,
        images=[(str(image), english)],
        spanish=LanguageVariant("es", SPANISH.text, alts=[spanish]),
    )
    with Session(inst.app.engine) as session:
        records = session.exec(select(Record).where(Record.notice_id == notice_id)).all()
    described = {}
    for record in records:
        snapshot = json.loads(inst.app.store.get(object_key(record.object_sha256)))
        described[record.lang] = [m["alt_text"] for m in snapshot["media"]]
    assert described == {"en": [english], "es": [spanish]}

    bag = tmp_path / "bag"
    export(inst, "lang:es", bag, pdf=False)
    [page] = [p for p in (bag / "data" / "threads").glob("*.html") if p.name != "index.html"]
    html = page.read_text("utf-8")
    assert f'alt="{spanish}"' in html and english not in html


def archived_post(remote_id: str, text: str, lang: str | None, minutes: int) -> Capture:
    """A post as the publisher archives it; ``lang``: of notice 7, in English and Spanish on
    the accounts feed and feed-es; None: of notice 8, in one language."""
    siblings = [{"lang": "es", "account": "feed-es", "key": "notice-7-es"}]
    if lang == "es":
        siblings = [{"lang": "en", "account": "feed", "key": "notice-7"}]
    item = RemoteItem(
        kind="post",
        remote_id=remote_id,
        text=text,
        author="Lexington PD",
        posted_at=POSTED + timedelta(minutes=minutes),
        thread_id=remote_id,
        raw=json.dumps({"id": remote_id, "text": text}).encode(),
        extra={"notice_id": 7, "lang": lang, "primary_lang": "en", "siblings": siblings}
        if lang
        else {"notice_id": 8},
    )
    account = "feed-es" if lang == "es" else "feed"
    return Capture(account, "feed", item, notice_id=7 if lang else 8)


POSTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


@pytest.fixture
def languages_archived(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """The English post of notice 7, another notice's post a minute later, then notice 7's
    Spanish post on another account."""
    inst = make_instance(tmp_path, db_url, "\n[portal]\nenabled = true\n")
    inst.app.archiver.archive(
        [
            archived_post("n7-en", "Shelter open at the high school", "en", 0),
            archived_post("n8", "Road closed on Elm", None, 1),
            archived_post("n7-es", "Refugio abierto en la escuela secundaria", "es", 2),
        ]
    )
    yield inst
    inst.app.close()


def test_a_production_groups_and_links_the_languages_of_a_notice(
    languages_archived: Instance, tmp_path: Path
) -> None:
    """The threads of a notice's posts in two languages follow each other in Bates order
    (another post posted between them comes after); each thread page says "Also published
    in" with a link to the other language's post and marks the text with its language; the
    index names each thread's language; the manifest lists the siblings' Bates numbers. A
    production of one language names the other as not in it."""
    inst = languages_archived
    bag = tmp_path / "all"
    export(inst, "platform:feed", bag, pdf=False)
    lines = records_of(bag)
    assert [(r["remote_id"], r["lang"]) for r in lines] == [
        ("n7-en", "en"),
        ("n7-es", "es"),
        ("n8", None),
    ]
    en, es, other = lines
    assert (en["siblings"], es["siblings"], other["siblings"]) == (
        [es["bates"]],
        [en["bates"]],
        [],
    )
    threads = bag / "data" / "threads"
    english = (threads / f"{en['bates']}.html").read_text("utf-8")
    spanish = (threads / f"{es['bates']}.html").read_text("utf-8")
    assert (
        'Also published in: <a href="{}.html#item.post.n7-es" hreflang="es">'
        '<span lang="es">Español</span></a> on <bdi>feed-es</bdi>.'.format(es["bates"])
    ) in english
    assert '<span lang="en">English</span></a> on <bdi>feed</bdi>.' in spanish
    assert '<div class="text" dir="auto" lang="es">Refugio abierto' in spanish
    assert '<div class="text" dir="auto" lang="en">Shelter open' in english
    assert "Also published in" not in (threads / f"{other['bates']}.html").read_text("utf-8")
    index = (threads / "index.html").read_text("utf-8")
    assert index.index('in <span lang="en">English</span>') < index.index(
        'in <span lang="es">Español</span>'
    )

    alone = tmp_path / "es"
    export(inst, "lang:es", alone, pdf=False)
    [only] = records_of(alone)
    assert (only["remote_id"], only["siblings"]) == ("n7-es", [])
    page = (alone / "data" / "threads" / f"{only['bates']}.html").read_text("utf-8")
    assert (
        'Also published in: <span lang="en">English</span> (not in this production) on '
        "<bdi>feed</bdi>."
    ) in page


def test_the_portal_thread_page_links_the_other_languages(languages_archived: Instance) -> None:
    """The public thread page of a notice's English post names its Spanish post ("Also
    published in: Español", marked lang="es") with a link to its thread; the JSON twin lists
    it; a post of a notice in one language names none."""
    inst = languages_archived
    with Session(inst.app.engine) as session:
        ids = {r.remote_id: r.id for r in session.exec(select(Record))}
    with serving(inst.app) as url, httpx.Client(timeout=30, base_url=url) as client:
        page = client.get(f"/threads/{ids['n7-en']}").text
        assert (
            f'Also published in: <a href="/threads/{ids["n7-es"]}" hreflang="es">'
            '<span lang="es">Español</span></a> on <bdi>feed-es</bdi>.'
        ) in page
        spanish = client.get(f"/threads/{ids['n7-es']}?format=json")
        assert [(s["lang"], s["record_id"]) for s in spanish.json()["siblings"]] == [
            ("en", ids["n7-en"])
        ]
        assert "Also published in" not in client.get(f"/threads/{ids['n8']}").text


def test_a_version_archived_before_snapshots_named_it_carries_the_language() -> None:
    """The snapshot of a later version archived before snapshots named what they carry (no
    notice, no language): the row a rebuild derives from it takes the notice and language of
    the version before; a post's own language and notice stay its own."""
    from bulletin.archiver.archive import Latest
    from bulletin.archiver.rebuild import snapshot_row

    item: dict[str, Any] = {"kind": "post", "remote_id": "p1", "text": "Calle cerrada", "extra": {}}
    snapshot: dict[str, Any] = {
        "account": "x",
        "platform": "x",
        "captured_at": "2026-11-20T15:00:00+00:00",
        "series": "agency-posts",
        "content_sha256": "c" * 64,
        "notice_id": None,
        "item": item,
    }
    before = Latest(1, 1, "b" * 64, "visible", "Calle abierta", 7, "es")
    row = snapshot_row(snapshot, 10, record_id=2, seq=2, object_sha256="d" * 64, before=before)
    assert (row["version"], row["notice_id"], row["lang"]) == (2, 7, "es")
    first = snapshot_row(snapshot, 10, record_id=1, seq=1, object_sha256="d" * 64)
    assert (first["notice_id"], first["lang"]) == (None, None)
    own = {**snapshot, "notice_id": 8, "item": {**item, "extra": {"lang": "pt"}}}
    row = snapshot_row(own, 10, record_id=2, seq=2, object_sha256="d" * 64, before=before)
    assert (row["notice_id"], row["lang"]) == (8, "pt")
