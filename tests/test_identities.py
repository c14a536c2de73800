"""Identities that leave the database are never given twice: after a restore, after a lost
database rebuilt from the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from defusedxml import ElementTree
from sqlmodel import Session, col, select

from bulletin.app import App
from bulletin.connectors.base import OutgoingPost
from bulletin.db import migrate, sqlite_path
from bulletin.models import Delivery, Notice, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import delivery_key, notice_of_key
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from bulletin.service.restore import restore_sqlite, settle_in_place
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.plugins.environment import require

ATOM = "{http://www.w3.org/2005/Atom}"


def publish(inst: Instance, text: str) -> int:
    """Draft, approve and publish a notice on the feed; its id."""
    app = inst.app
    notice = create_notice(
        app.engine, inst.settings, inst.clock, NoticeDraft("traffic", text, ("feed",)), "dispatcher"
    )
    approve_notice(app.engine, inst.settings, inst.clock, notice.id or 0, "approver")
    Daemon(app).run_once(max_wait=0)
    return notice.id or 0


def feed_texts(inst: Instance) -> dict[str, str]:
    """The feed file's entries: id -> text."""
    root = ElementTree.parse(inst.settings.feed_path("feed")).getroot()
    return {
        e.findtext(f"{ATOM}id") or "": e.findtext(f"{ATOM}content") or ""
        for e in root.iter(f"{ATOM}entry")
    }


def _pg(inst: Instance) -> tuple[str, str]:
    """The libpq URL and the schema of a test's PostgreSQL database."""
    url = inst.settings.database_url
    parts = urlsplit(url.replace("+psycopg", ""))
    schema = unquote(parts.query).split("search_path=")[1]
    return parts._replace(query="").geturl(), schema


def is_sqlite(inst: Instance) -> bool:
    return inst.app.engine.dialect.name == "sqlite"


def back_up(inst: Instance, copy: Path) -> None:
    """``bulletin backup`` on SQLite; ``pg_dump`` of the schema on PostgreSQL."""
    if is_sqlite(inst):
        run(inst, "backup", "--out", str(copy))
        return
    require(shutil.which("pg_dump") is not None, "pg_dump")
    url, schema = _pg(inst)
    subprocess.run(["pg_dump", "-Fc", "-n", schema, "-f", str(copy), url], check=True)


def put_back(inst: Instance, copy: Path) -> None:
    """The documented restore: ``bulletin restore FILE`` on SQLite; ``pg_restore`` then
    ``restore --in-place`` on PostgreSQL."""
    inst.app.close()
    if is_sqlite(inst):
        restore_sqlite(inst.settings, copy, "admin1", inst.clock.now())
    else:
        url, schema = _pg(inst)
        drop_schema(inst, schema)
        subprocess.run(["pg_restore", "-d", url, str(copy)], check=True)
        settle_in_place(inst.settings, "admin1", inst.clock.now())
    inst.app = App(inst.settings, environ={}, clock=inst.clock)


def drop_schema(inst: Instance, schema: str, create: bool = False) -> None:
    admin = sa.create_engine(_pg(inst)[0].replace("postgresql:", "postgresql+psycopg:"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        if create:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()


def lose_database(inst: Instance) -> None:
    """The database is gone; an empty one is made in its place."""
    inst.app.close()
    database = sqlite_path(inst.settings.database_url)
    if database is not None:
        for path in database.parent.glob(database.name + "*"):
            path.unlink()
    else:
        drop_schema(inst, _pg(inst)[1], create=True)
    inst.app = App(inst.settings, environ={}, clock=inst.clock)
    migrate(inst.app.engine)


def assert_every_notice_on_the_feed_once(inst: Instance, texts: dict[int, str]) -> None:
    """Each notice is on the feed under its own entry (those the database still knows, under
    the entry their delivery names), and the archive holds each entry once, never edited
    into another notice."""
    entries = feed_texts(inst)
    assert sorted(entries.values()) == sorted(texts.values())
    with Session(inst.app.engine) as session:
        deliveries = session.exec(select(Delivery)).all()
        records = session.exec(select(Record)).all()
    for delivery in deliveries:
        assert delivery.state == "published", delivery
        assert entries[delivery.remote_id or ""] == texts[delivery.notice_id]
    assert [(r.remote_id, r.version, r.change) for r in records if r.version != 1] == []


def test_after_a_restore_new_notices_never_take_a_number_used_since_the_backup(
    instance: Instance, tmp_path: Path
) -> None:
    """Back up, publish a notice, put the backup back, publish another: the new one gets a
    number above the one published since the backup, both are on the feed, and no archived
    post gains a version."""
    inst = instance
    texts = {publish(inst, "Main St closed for a parade."): "Main St closed for a parade."}
    copy = tmp_path / "nightly.db"
    back_up(inst, copy)
    since = publish(inst, "Elm St closed until noon.")
    texts[since] = "Elm St closed until noon."
    put_back(inst, copy)
    new = publish(inst, "Oak St open again.")
    texts[new] = "Oak St open again."
    assert new > since
    Daemon(inst.app).run_once(max_wait=0)  # a capture sweep of the feed too
    assert_every_notice_on_the_feed_once(inst, texts)
    assert "OK: 3 records" in run(inst, "archive", "verify")


def test_after_a_lost_database_is_rebuilt_new_notices_go_on_above_the_old(
    instance: Instance,
) -> None:
    """The database is lost and the index rebuilt from the store: a new notice's number goes
    on above every archived one, and above a feed entry the archive never got (published,
    then the database was lost before its snapshot)."""
    inst = instance
    texts = {publish(inst, f"Notice {n}."): f"Notice {n}." for n in range(3)}
    with Session(inst.app.engine) as session:
        unarchived = session.exec(select(Notice).order_by(col(Notice.id).desc())).first()
        assert unarchived is not None
    last_id = unarchived.id or 0
    # a fourth notice reached the feed, but the database went before its snapshot did
    fake = Notice(
        id=last_id + 5,
        uid="0a1b2c3d",
        category="traffic",
        priority="advisory",
        text="Notice 3.",
        author="dispatcher",
    )
    key = delivery_key(fake, Delivery(notice_id=fake.id or 0, account="feed"))
    inst.app.connector("feed").publish(OutgoingPost(key=key, text="Notice 3."))
    texts[fake.id or 0] = "Notice 3."
    lose_database(inst)
    out = run(inst, "archive", "rebuild-index")
    assert "rebuilt 3 records" in out
    new = publish(inst, "Notice 4.")
    texts[new] = "Notice 4."
    assert new > last_id + 5
    Daemon(inst.app).run_once(max_wait=0)
    assert_every_notice_on_the_feed_once(inst, texts)


def test_delivery_keys_carry_the_notice_s_token_and_old_keys_stay_readable() -> None:
    """A notice made before tokens keeps its key (``notice-7``); a new one adds its token; the
    number is read back from both."""
    old = Notice(
        id=7,
        uid=None,
        category="general",
        priority="community",
        text="Notice.",
        author="dispatcher",
    )
    new = Notice(
        id=7, category="general", priority="community", text="Notice.", author="dispatcher"
    )
    follow = Delivery(notice_id=7, account="feed", kind="follow-up", occurrence=2)
    assert delivery_key(old, follow) == "notice-7-occurrence-2-follow-up"
    assert new.uid and delivery_key(new, follow) == f"notice-7.{new.uid}-occurrence-2-follow-up"
    assert (
        Notice(category="general", priority="community", text="Notice.", author="dispatcher").uid
        != new.uid
    )
    assert [notice_of_key(k) for k in ("notice-7", f"notice-12.{new.uid}-correction-2")] == [
        7,
        12,
    ]
    assert notice_of_key("urn:other") is None


def delivery_ids(inst: Instance) -> list[int]:
    with Session(inst.app.engine) as session:
        return sorted(d or 0 for d in session.exec(select(Delivery.id)))


def test_after_a_restore_a_new_delivery_never_takes_an_id_used_since_the_backup(
    instance: Instance, tmp_path: Path
) -> None:
    """Back up, publish a notice (its delivery's id goes out in the API and the
    ``notice.published`` payload), put the backup back, publish another: the new delivery's
    id is above every one handed out before."""
    inst = instance
    publish(inst, "Main St closed for a parade.")
    copy = tmp_path / "nightly.db"
    back_up(inst, copy)
    publish(inst, "Elm St closed until noon.")
    seen = delivery_ids(inst)
    put_back(inst, copy)
    assert max(delivery_ids(inst)) < max(seen)  # the backup's
    new = publish(inst, "Oak St open again.")
    with Session(inst.app.engine) as session:
        added = session.exec(select(Delivery.id).where(col(Delivery.notice_id) == new)).all()
    assert added and min(d or 0 for d in added) > max(seen)


def test_after_a_lost_database_is_rebuilt_new_deliveries_go_on_above_the_archived(
    instance: Instance,
) -> None:
    """The database is lost and the index rebuilt from the store: a new delivery's id goes
    on above every archived post's (each snapshot names its delivery)."""
    inst = instance
    for n in range(3):
        publish(inst, f"Notice {n}.")
    seen = delivery_ids(inst)
    lose_database(inst)
    run(inst, "archive", "rebuild-index")
    assert delivery_ids(inst) == []
    publish(inst, "Notice 3.")
    (new,) = delivery_ids(inst)
    assert new > max(seen)


def test_after_a_sqlite_restore_ids_go_on_above_the_database_put_aside(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """What the store never saw is known from the database put aside: a notice drafted (its
    delivery pending) and a webhook added after the backup; once the backup is back, a new
    notice, its delivery and a new webhook all take ids above theirs."""
    from bulletin.app import Actor
    from bulletin.app.webhooks import add_webhook

    inst = sqlite_instance
    publish(inst, "Main St closed for a parade.")
    copy = tmp_path / "nightly.db"
    back_up(inst, copy)
    draft = NoticeDraft("traffic", "Elm St closed until noon.", ("feed",))
    drafted = create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher")
    hook = add_webhook(inst.app, Actor("root"), "https://example.org/h", ["hold.placed"])
    seen = delivery_ids(inst)
    put_back(inst, copy)
    new = create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher")
    assert (new.id or 0) > (drafted.id or 0)
    with Session(inst.app.engine) as session:
        added = session.exec(select(Delivery.id).where(col(Delivery.notice_id) == new.id)).all()
    assert added and min(d or 0 for d in added) > max(seen)
    again = add_webhook(inst.app, Actor("root"), "https://example.org/h", ["hold.placed"])
    assert again.webhook.id > hook.webhook.id


def test_a_damaged_database_put_aside_gives_no_floor_and_no_error(tmp_path: Path) -> None:
    """``ids_handed_out`` of a file that is not a database, or of none: nothing."""
    from bulletin.service.restore import ids_handed_out

    junk = tmp_path / "bulletin.db"
    junk.write_bytes(b"not a database" * 100)
    assert ids_handed_out(junk) == {}
    assert ids_handed_out(tmp_path / "missing.db") == {}
