"""The language of an archived post on its record (``records.lang``, migration 0028): filled
at archive time from what the publisher archived it with, searched with ``lang:``, kept by a
rebuild from the store, and added to an existing database by the upgrade. Against SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.app import public
from bulletin.archiver.archive import Capture
from bulletin.archiver.search import parse_query, search
from bulletin.connectors.base import RemoteItem
from bulletin.db import SCHEMA_REVISION, check_schema, make_engine, migrate
from bulletin.errors import UsageError
from bulletin.models import Record
from tests.plugins.bulletin_app import Instance, make_instance

POSTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
PORTAL = "\n[portal]\nenabled = true\n"


def post(remote_id: str, text: str, lang: str | None, minutes: int) -> Capture:
    """A post as the publisher archives it: with its language for a notice in several."""
    item = RemoteItem(
        kind="post",
        remote_id=remote_id,
        text=text,
        author="Lexington PD",
        posted_at=POSTED + timedelta(minutes=minutes),
        thread_id=remote_id,
        raw=json.dumps({"id": remote_id, "text": text}).encode(),
        extra={"lang": lang, "notice_id": 7} if lang else {"notice_id": 8},
    )
    return Capture("feed", "feed", item, notice_id=7 if lang else 8)


def seeded(tmp_path: Path, db_url: str) -> Instance:
    inst = make_instance(tmp_path, db_url, PORTAL)
    inst.app.archiver.archive(
        [
            post("n7-en", "Shelter open at the high school", "en", 0),
            post("n7-es", "Refugio abierto en la escuela secundaria", "es", 1),
            post("n8", "Road closed on Elm school zone", None, 2),
        ]
    )
    return inst


def test_lang_filters_search_to_posts_in_that_language(tmp_path: Path, db_url: str) -> None:
    """``lang:es`` finds the Spanish post alone, with words or without, in the records search
    and the portal's; the tag is read in its standard form; a post archived without a
    language has none."""
    inst = seeded(tmp_path, db_url)
    try:
        with Session(inst.app.engine) as session:
            langs = {r.remote_id: r.lang for r in session.exec(select(Record))}
        assert langs == {"n7-en": "en", "n7-es": "es", "n8": None}

        def found(text: str) -> list[str]:
            hits = search(inst.app.engine, parse_query(text), time_zone="UTC", limit=10)
            return [h.record.remote_id for h in hits]

        assert found("lang:es") == ["n7-es"]
        assert found("lang:ES escuela") == ["n7-es"]
        assert found("lang:en school") == ["n7-en"]
        assert found("lang:es school") == []
        assert found("school") == ["n8", "n7-en"]
        assert parse_query("lang:ES account:feed").describe() == "account:feed lang:es"
        with pytest.raises(UsageError, match="lang:english"):
            parse_query("lang:english")
        listing = public.search_public(inst.app, "lang:es")
        assert [(r.remote_id, r.lang) for r in listing.items] == [("n7-es", "es")]
        assert listing.query == "lang:es"
    finally:
        inst.app.close()


def test_rebuild_from_the_store_keeps_the_language(
    tmp_path: Path, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A lost database rebuilt from the store alone has every record's language again."""
    from bulletin.archiver.rebuild import rebuild_index

    inst = seeded(tmp_path, db_url)
    try:
        if inst.app.engine.dialect.name == "sqlite":
            fresh = make_engine(f"sqlite:///{tmp_path_factory.mktemp('lost') / 'new.db'}")
        else:
            fresh = inst.app.engine  # same schema, index emptied by replace
        migrate(fresh)
        rebuild_index(fresh, inst.app.store, inst.clock.now(), replace=True)
        with Session(fresh) as session:
            rows = session.exec(select(Record).order_by(col(Record.id))).all()
        assert [(r.remote_id, r.lang) for r in rows] == [
            ("n7-en", "en"),
            ("n7-es", "es"),
            ("n8", None),
        ]
    finally:
        inst.app.close()


def test_upgrade_from_0026_adds_an_empty_language_to_records(db_url: str) -> None:
    """A database at 0026 with a record upgrades: the record is unchanged, with no language;
    records archived after can carry one."""
    from alembic import command

    from bulletin.db import _alembic_config

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0026")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO records (account, platform, kind, remote_id, version, state, "
                    "text, captured_at, series, legal_hold, training, content_sha256, "
                    "object_sha256, size, change) VALUES ('feed', 'feed', 'post', 'p1', 1, "
                    "'visible', 'Road closed', '2026-03-01 00:00:00', 'notice', false, false, "
                    ":content, :object, 10, 'new')"
                ),
                {"content": "a" * 64, "object": "b" * 64},
            )
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        with engine.begin() as conn:
            row = conn.exec_driver_sql("SELECT remote_id, text, lang FROM records").one()
            assert tuple(row) == ("p1", "Road closed", None)
            conn.exec_driver_sql("UPDATE records SET lang = 'es'")
        with Session(engine) as session:
            assert [r.lang for r in session.exec(select(Record))] == ["es"]
    finally:
        engine.dispose()
