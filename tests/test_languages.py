"""Language access: a notice in several languages, a post per (variant, account), exactly
once, published together."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bulletin.app import App
from bulletin.archiver.store.base import object_key
from bulletin.clock import ManualClock
from bulletin.config import load_settings
from bulletin.db import migrate, sqlite_path
from bulletin.errors import ConfigError, Refused, UsageError
from bulletin.models import Delivery, Notice, Record
from bulletin.publisher.amend import correct_notice, retract_notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker
from bulletin.publisher.delivery.states import move
from bulletin.publisher.languages import LanguageVariant, variants_of
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.publisher.updates import update_notice
from bulletin.states import DeliveryState
from tests.plugins.bulletin_app import BASE_CONFIG, START, Instance
from tests.plugins.database import put_migrated_sqlite

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
THREADING = "{http://purl.org/syndication/thread/1.0}"

LANGUAGES = """
[accounts.feed-es]
platform = "feed"
title = "Lexington Police: avisos"
languages = ["es"]

[accounts.feed-apart]
platform = "feed"
title = "Lexington Police: notices, each language apart"
language_posts = "separate"
"""


def bilingual_instance(tmp_path: Path, db_url: str, extra: str = LANGUAGES) -> Instance:
    """An instance whose agency writes English and Spanish, with a feed posting both (the
    Spanish as a reply), a Spanish-only feed and a feed posting both apart."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "bulletin.toml"
    text = BASE_CONFIG.format(data_dir=data_dir, db_url=db_url) + extra
    config.write_text(text.replace("[agency]\n", '[agency]\nlanguages = ["en", "es"]\n', 1))
    settings = load_settings(config, environ={})
    database = sqlite_path(db_url)
    if database is not None:
        put_migrated_sqlite(database)
    app = App(settings, environ={}, clock=ManualClock(START))
    migrate(app.engine)
    clock = app.clock
    assert isinstance(clock, ManualClock)
    return Instance(config, data_dir, settings, app, clock)


@pytest.fixture
def bilingual(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = bilingual_instance(tmp_path, db_url)
    yield inst
    inst.app.close()


SPANISH = LanguageVariant("es", "Calle Main cerrada entre la 1 y la 2 hasta las 6 pm.")


def draft(targets: tuple[str, ...] = ("feed", "feed-es", "feed-apart")) -> NoticeDraft:
    return NoticeDraft(
        category="road-closure",
        text="Road closed: Main St between 1st and 2nd until 6 pm.",
        targets=targets,
        languages=(SPANISH,),
    )


def make(inst: Instance, targets: tuple[str, ...] = ("feed", "feed-es", "feed-apart")) -> int:
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft(targets), "dispatcher")
    assert notice.id is not None
    return notice.id


def deliveries(inst: Instance, notice_id: int) -> list[Delivery]:
    with Session(inst.app.engine) as session:
        return list(
            session.exec(
                select(Delivery).where(Delivery.notice_id == notice_id).order_by(col(Delivery.id))
            ).all()
        )


def worker(inst: Instance, owner: str = "a") -> DeliveryWorker:
    app = inst.app
    return DeliveryWorker(app.engine, app.settings, app.clock, app.archiver, app.connector, owner)


def run_all(inst: Instance, rounds: int = 4) -> list[str]:
    """Claim and run what is due, a few rounds a couple of seconds apart."""
    states = []
    w = worker(inst)
    for _ in range(rounds):
        for claim in w.claim():
            states.append(w.run(claim).state)
        inst.clock.advance(timedelta(seconds=2))
    return states


def entries(inst: Instance, account: str) -> list[SafeET.Element]:
    path = inst.settings.feed_path(account)
    if not path.exists():
        return []
    return list(SafeET.parse(path).getroot().findall(f"{ATOM}entry"))


def test_a_bilingual_notice_has_a_post_per_variant_and_account(bilingual: Instance) -> None:
    """Each account gets a delivery per language it posts; the primary is the notice's own
    text, the Spanish variant its own row."""
    notice_id = make(bilingual)
    rows = [(d.account, d.lang, d.parent_id is not None) for d in deliveries(bilingual, notice_id)]
    assert sorted(rows) == [
        ("feed", "en", False),
        ("feed", "es", True),  # a reply to the English post on the same account
        ("feed-apart", "en", False),
        ("feed-apart", "es", False),
        ("feed-es", "es", False),
    ]
    with Session(bilingual.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None and notice.lang == "en"
        assert [(v.lang, v.text) for v in variants_of(session, notice)] == [
            ("en", notice.text),
            ("es", SPANISH.text),
        ]


def test_each_variant_is_published_once_per_account(bilingual: Instance) -> None:
    """Approved, every (variant, account) is published exactly once: the Spanish waits for
    the English, replies to it where the account threads, and carries xml:lang; running again
    posts nothing more."""
    notice_id = make(bilingual)
    approve_notice(bilingual.app.engine, bilingual.settings, bilingual.clock, notice_id, "chief")
    assert run_all(bilingual).count("published") == 5
    assert run_all(bilingual) == []
    assert {d.state for d in deliveries(bilingual, notice_id)} == {"published"}
    feed = entries(bilingual, "feed")
    assert [e.get(XML_LANG) for e in feed] == ["es", "en"]  # newest first
    reply = feed[0].find(f"{THREADING}in-reply-to")
    assert reply is not None and reply.get("ref") == feed[1].findtext(f"{ATOM}id")
    assert [e.get(XML_LANG) for e in entries(bilingual, "feed-es")] == ["es"]
    apart = entries(bilingual, "feed-apart")
    assert sorted(e.get(XML_LANG) or "" for e in apart) == ["en", "es"]
    assert all(e.find(f"{THREADING}in-reply-to") is None for e in apart)
    with Session(bilingual.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None and notice.state == "published"
        records = session.exec(select(Record).where(Record.notice_id == notice_id)).all()
    assert len(records) == 5  # each variant on each account archived as its own post
    store = bilingual.app.store
    links = [json.loads(store.get(object_key(r.object_sha256)))["item"]["extra"] for r in records]
    assert sorted(x["lang"] for x in links) == ["en", "en", "es", "es", "es"]
    assert sorted(r.lang or "" for r in records) == ["en", "en", "es", "es", "es"]  # searchable
    spanish = next(x for x in links if x["lang"] == "es")
    assert spanish["notice_id"] == notice_id and spanish["primary_lang"] == "en"
    assert {s["lang"] for s in spanish["siblings"]} == {"en"}
    assert all(s["key"].startswith(f"notice-{notice_id}.") for s in spanish["siblings"])


def test_exactly_once_per_variant_and_account_is_a_unique_key(bilingual: Instance) -> None:
    """A second delivery of the same (variant, account) cannot be stored."""
    notice_id = make(bilingual, ("feed",))
    with Session(bilingual.app.engine) as session:
        session.add(Delivery(notice_id=notice_id, account="feed", lang="es"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_failed_primary_holds_back_the_others(bilingual: Instance) -> None:
    """Published together: when the English post fails for good, the Spanish posts are not
    sent (they fail, saying why); with publish-partial they go, as posts of their own."""
    for partial in (False, True):
        notice_id = make(bilingual, ("feed", "feed-es"))
        approve_notice(
            bilingual.app.engine, bilingual.settings, bilingual.clock, notice_id, "chief"
        )
        with Session(bilingual.app.engine) as session:
            notice = session.get(Notice, notice_id)
            assert notice is not None
            notice.publish_partial = partial
            session.add(notice)
            for d in session.exec(select(Delivery).where(Delivery.notice_id == notice_id)):
                if d.lang == "en":
                    move(d, DeliveryState.FAILED)
                    d.last_error = "rejected by the platform"
                    session.add(d)
            session.commit()
        run_all(bilingual)
        spanish = [d for d in deliveries(bilingual, notice_id) if d.lang == "es"]
        if partial:
            assert {d.state for d in spanish} == {"published"}
        else:
            assert {d.state for d in spanish} == {"failed"}
            assert all("published together" in (d.last_error or "") for d in spanish)


def test_a_variant_must_be_an_agency_language(bilingual: Instance) -> None:
    """A variant in a language the agency does not use, or given twice, is refused."""
    for variants, problem in (
        ((LanguageVariant("fr", "Route fermée"),), "not one of the agency's languages"),
        ((SPANISH, SPANISH), "given twice"),
        ((LanguageVariant("es", "  "),), "es text is empty"),
        ((LanguageVariant("not a tag!", "x"),), "not a BCP 47"),
    ):
        bad = NoticeDraft(
            category="road-closure", text="Road closed", targets=("feed",), languages=variants
        )
        with pytest.raises(UsageError, match=problem):
            create_notice(bilingual.app.engine, bilingual.settings, bilingual.clock, bad, "d")


def test_language_settings_are_checked(tmp_path: Path) -> None:
    """[agency] languages are BCP 47 tags (standardised); an account posts only agency
    languages."""
    db = f"sqlite:///{tmp_path / 'x.db'}"
    config = tmp_path / "bulletin.toml"
    base = BASE_CONFIG.format(data_dir=tmp_path, db_url=db)
    config.write_text(base.replace("[agency]\n", '[agency]\nlanguages = ["EN", "zh-hans"]\n'))
    assert load_settings(config, environ={}).agency.languages == ["en", "zh-Hans"]
    config.write_text(base.replace("[agency]\n", '[agency]\nlanguages = ["english"]\n'))
    with pytest.raises(ConfigError, match="BCP 47"):
        load_settings(config, environ={})
    config.write_text(base + 'languages = ["es"]\n')
    with pytest.raises(ConfigError, match="not among the agency's languages"):
        load_settings(config, environ={})


def test_upgrade_from_0024_gives_old_notices_the_agency_language(
    tmp_path: Path, db_url: str
) -> None:
    """A database at 0024 with a notice and its delivery upgrades: the notice is written in
    the agency's first language, its delivery carries it, nothing else changes; a second
    language of the same post can then be added."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0024")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO accounts (name, platform, base_url, training, enabled) "
                "VALUES ('feed', 'feed', '', false, true)"
            )
            conn.exec_driver_sql(
                "INSERT INTO notices (id, category, priority, title, text, state, author, "
                "created_at, approvals_needed, allow_thread, date_line, occurrences, revision) "
                "VALUES (7, 'road-closure', 'advisory', '', 'Road closed', 'published', 'dan', "
                "'2026-03-01 00:00:00', 1, false, true, 1, 1)"
            )
            conn.exec_driver_sql(
                "INSERT INTO deliveries (notice_id, account, occurrence, kind, revision, state, "
                "attempts, text) VALUES (7, 'feed', 1, 'post', 0, 'published', 1, 'Road closed')"
            )
        assert migrate(engine, "es") == SCHEMA_REVISION
        check_schema(engine)
        with engine.begin() as conn:
            notice = conn.exec_driver_sql(
                "SELECT text, state, lang, publish_partial FROM notices"
            ).one()
            assert tuple(notice) == ("Road closed", "published", "es", False)
            delivery = conn.exec_driver_sql("SELECT account, state, text, lang FROM deliveries")
            assert [tuple(r) for r in delivery] == [("feed", "published", "Road closed", "es")]
            conn.exec_driver_sql(
                "INSERT INTO deliveries (notice_id, account, occurrence, kind, revision, state, "
                "attempts, lang) VALUES (7, 'feed', 1, 'post', 0, 'pending', 0, 'en')"
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO deliveries (notice_id, account, occurrence, kind, revision, state, "
                "attempts, lang) VALUES (7, 'feed', 1, 'post', 0, 'pending', 0, 'en')"
            )
    finally:
        engine.dispose()


def review_of(inst: Instance, notice_id: int) -> list[str]:
    from bulletin.publisher.approval import review_notice

    with Session(inst.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return [f.line() for f in review_notice(session, inst.settings, notice).findings]


def test_word_rules_check_each_language_or_say_they_cannot(tmp_path: Path, db_url: str) -> None:
    """The shipped word lists are English: a Spanish variant gets a warning saying it was not
    checked by them (approval goes on); a configured translation checks it, and a blocked
    variant blocks the approval of the whole notice."""
    inst = bilingual_instance(tmp_path / "shipped", db_url)
    try:
        notice_id = make(inst, ("feed",))
        lines = review_of(inst, notice_id)
        assert any(
            line.startswith("profanity (warn)") and "es text was not checked" in line
            for line in lines
        )
        assert any(line.startswith("guilt-or-prosecution (warn)") for line in lines)
        approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    finally:
        inst.app.close()
    translated = (
        LANGUAGES
        + """
[[policy.rules]]
id = "profanity"
kind = "words"
language = "en"
message = "profanity in an official post"
words = ["damn"]
translations = { es = { words = ["mierda"] } }
"""
    )
    inst = bilingual_instance(tmp_path / "translated", db_url, translated)
    try:
        rude = NoticeDraft(
            category="road-closure",
            text="Road closed on Main St.",
            targets=("feed",),
            languages=(LanguageVariant("es", "Calle Main cerrada, qué mierda."),),
        )
        notice = create_notice(inst.app.engine, inst.settings, inst.clock, rude, "dispatcher")
        assert notice.id is not None
        lines = review_of(inst, notice.id)
        assert any(line.startswith("profanity (block)") and "mierda" in line for line in lines)
        assert not any("not checked" in line and "profanity" in line for line in lines)
        with pytest.raises(Refused, match="profanity"):
            approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id, "chief")
    finally:
        inst.app.close()


PEOPLE = """
[users.dan]
roles = ["dispatcher"]
os_user = "dan"

[users.abe]
roles = ["approver"]
os_user = "abe"
"""


def test_the_command_line_drafts_shows_and_approves_a_bilingual_notice(tmp_path: Path) -> None:
    """notice add --text-in es=... (or --languages-file) drafts every language; notice show
    lists them; approve --publish-partial records the set and the choice."""
    import json

    from tests.plugins.cli import invoke

    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + PEOPLE
    )
    try:
        add = invoke(
            inst,
            *("notice", "add", "--category", "road-closure", "--target", "feed"),
            *("--text", "Road closed on Main St.", "--text-in", "es=Calle Main cerrada."),
            "--json",
            login="dan",
            clock=inst.clock,
        )
        assert add.exit_code == 0, add.output
        notice_id = json.loads(add.stdout)["id"]
        shown = invoke(inst, "notice", "show", str(notice_id), login="dan", clock=inst.clock)
        assert "languages en, es (primary en)" in shown.stdout
        assert "text [es]  Calle Main cerrada." in shown.stdout
        assert "feed[es]" in shown.stdout
        data = json.loads(
            invoke(inst, "notice", "show", str(notice_id), "--json", login="dan").stdout
        )
        assert [v["lang"] for v in data["languages"]] == ["en", "es"]
        done = invoke(
            inst,
            *("notice", "approve", str(notice_id), "--publish-partial"),
            login="abe",
            clock=inst.clock,
        )
        assert done.exit_code == 0, done.output
        with Session(inst.app.engine) as session:
            from bulletin.models import Approval

            notice = session.get(Notice, notice_id)
            assert notice is not None and notice.publish_partial
            approval = session.exec(select(Approval)).one()
            assert approval.languages == ["en", "es"] and approval.revision == 1
        variants = tmp_path / "variants.json"
        variants.write_text(json.dumps([{"lang": "es", "text": "Calle cerrada."}]))
        from_file = invoke(
            inst,
            *("notice", "add", "--category", "road-closure", "--target", "feed-es"),
            *("--text", "Road closed.", "--languages-file", str(variants)),
            login="dan",
            clock=inst.clock,
        )
        assert from_file.exit_code == 0, from_file.output
        bad = invoke(
            inst,
            *("notice", "add", "--category", "road-closure", "--target", "feed"),
            *("--text", "Road closed.", "--text-in", "fr=Route fermée."),
            login="dan",
            clock=inst.clock,
        )
        assert bad.exit_code != 0 and "not one of the agency's languages" in bad.output
    finally:
        inst.app.close()


def test_a_bilingual_missing_person_notice_from_a_template(tmp_path: Path) -> None:
    """A template with a Spanish text and the same typed variables: filling them once fills
    both languages, the date and time written as Spanish writes them; the template's approval
    covers the notice and both languages are published."""
    import json

    from tests.plugins.cli import invoke

    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + PEOPLE
    )
    try:
        added = invoke(
            inst,
            *("template", "add", "missing", "--category", "missing-person"),
            "--text",
            "MISSING: {name}, {age}, last seen {place} on {day} at {at}. Call {phone}.",
            "--text-in",
            "es=DESAPARECIDO: {name}, {age} años, visto por última vez en {place} el {day} "
            "a las {at}. Llame al {phone}.",
            *("--var", "name:str", "--var", "age:int", "--var", "place:str"),
            *("--var", "day:date", "--var", "at:time", "--var", "phone:phone"),
            login="dan",
            clock=inst.clock,
        )
        assert added.exit_code == 0, added.output
        approved = invoke(inst, "template", "approve", "missing", login="abe", clock=inst.clock)
        assert approved.exit_code == 0, approved.output
        made = invoke(
            inst,
            *("notice", "add", "--template", "missing", "--target", "feed"),
            *("--var", "name=Ana Ruiz", "--var", "age=9", "--var", "place=Lexington Green"),
            *("--var", "day=2026-11-26", "--var", "at=18:30", "--var", "phone=781-862-1212"),
            "--json",
            login="dan",
            clock=inst.clock,
        )
        assert made.exit_code == 0, made.output
        notice_id = json.loads(made.stdout)["id"]
        with Session(inst.app.engine) as session:
            notice = session.get(Notice, notice_id)
            assert notice is not None and notice.state == "approved"
            english, spanish = variants_of(session, notice)
        assert english.text == (
            "MISSING: Ana Ruiz, 9, last seen Lexington Green on Thu Nov 26 at 6:30 PM. "
            "Call 781-862-1212."
        )
        assert spanish.lang == "es"
        assert "Ana Ruiz, 9 años" in spanish.text and "jue, 26 nov" in spanish.text
        assert "a las 18:30" in spanish.text
        assert run_all(inst).count("published") == 2
        missing_var = invoke(
            inst,
            *("template", "add", "bad", "--category", "missing-person"),
            *("--text", "MISSING: {name}", "--text-in", "es=DESAPARECIDO", "--var", "name:str"),
            login="dan",
        )
        assert missing_var.exit_code != 0 and "leaves out {name}" in missing_var.output
    finally:
        inst.app.close()


def bilingual_alert(tmp_path: Path, name: str) -> Path:
    """A copy of the CAP test alert ``name`` with a second ``<info>`` block in Spanish."""
    import re

    source = (Path(__file__).parent / "data" / "cap" / name).read_text(encoding="utf-8")
    block = re.search(r"<info>.*?</info>", source, re.DOTALL)
    assert block is not None
    spanish = (
        block.group(0)
        .replace("<language>en-US</language>", "<language>es-US</language>")
        .replace("<headline>Tornado Warning", "<headline>Aviso de tornado")
        .replace("TAKE COVER NOW!", "¡REFÚGIESE AHORA!")
    )
    path = tmp_path / f"es-{name}"
    path.write_text(source.replace(block.group(0), block.group(0) + spanish), encoding="utf-8")
    return path


def test_a_cap_alert_in_two_languages_is_one_notice_and_its_update_updates_both(
    tmp_path: Path, db_url: str
) -> None:
    """An alert with an English and a Spanish <info> becomes one notice with both variants;
    its Update makes the next notice, again with both."""
    from bulletin.cap.feed import import_source

    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + '\n[cap]\ntargets = ["feed"]\n')
    try:
        results = []
        for name in ("nws_tornado_warning.xml", "nws_tornado_update.xml"):
            path = bilingual_alert(tmp_path, name)
            (result,) = import_source(inst.app.engine, inst.settings, inst.clock, str(path), "d")
            results.append(result)
        first, update = results
        assert update.previous_notice_id == first.notice_id
        with Session(inst.app.engine) as session:
            for made in (first, update):
                notice = session.get(Notice, made.notice_id)
                assert notice is not None
                english, spanish = variants_of(session, notice)
                assert "TAKE COVER NOW" in english.text and "REFÚGIESE" not in english.text
                assert spanish.lang == "es" and "¡REFÚGIESE AHORA!" in spanish.text
                # the alert's own labels in each language, never English in the Spanish
                en = "\n".join([english.text, *english.wording.values()])
                es = "\n".join([spanish.text, *spanish.wording.values()])
                assert "Area: " in en and "Issued by NWS" in en
                assert "Zona: " in es
                assert "Area: " not in es and "Issued by" not in es
        langs = sorted(d.lang for d in deliveries(inst, update.notice_id or 0))
        assert langs == ["en", "es"]
    finally:
        inst.app.close()


def test_a_cap_alert_names_its_area_and_sender_in_its_own_language(tmp_path: Path) -> None:
    """The whole text of an alert's Spanish <info> says "Zona:" and "Emitido por", its
    English one "Area:" and "Issued by"; a language with no words of its own, English."""
    from bulletin.cap.document import parse_alert
    from bulletin.cap.mapping import full_text

    alert = parse_alert(bilingual_alert(tmp_path, "nws_tornado_warning.xml").read_bytes())
    english, spanish = alert.infos
    assert "\nArea: " in full_text(english) and "\nIssued by NWS" in full_text(english)
    assert "\nZona: " in full_text(spanish) and "\nEmitido por NWS" in full_text(spanish)
    assert "Area:" not in full_text(spanish) and "Issued by" not in full_text(spanish)
    klingon = full_text(replace(spanish, language="tlh"))
    assert "\nArea: " in klingon and "\nIssued by NWS" in klingon


@pytest.mark.slow
def test_the_notice_and_approval_pages_show_every_language(tmp_path: Path, browser: Any) -> None:
    """The notice page and the approval queue show each language side by side, and each
    language's follow-up, each marked with its lang; axe-core finds no violation at 320 and
    1280 pixels and nothing scrolls sideways."""
    from bulletin.app import Actor, notices
    from tests.plugins.browser import axe_violations, describe
    from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in
    from tests.test_web import PEOPLE as WEB_PEOPLE
    from tests.test_web import add_with_password, serving

    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + WEB_PEOPLE
    )
    try:
        add_with_password(inst.app, "ann", "dispatcher", "approver")
        add_with_password(inst.app, "dana", "dispatcher")
        abierta = "La calle Main está abierta."
        followed = replace(
            draft(("feed", "feed-es")),
            languages=(replace(SPANISH, follow_up=abierta),),
            expires_at=inst.clock.now() + timedelta(hours=6),
            follow_up="Main St has reopened.",
        )
        made = notices.draft(inst.app, Actor("dana", "session"), followed)
        notice_id = made.notice.id
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "ann", "/approvals")
                    for path in (f"/notices/{notice_id}", "/approvals"):
                        page.goto(f"{url}{path}")
                        html = page.content()
                        assert f'<blockquote class="text" lang="es">{SPANISH.text}' in html
                        assert '<span lang="es">español</span>' in html
                        assert f'<blockquote class="text" lang="es">{abierta}' in html
                        assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                        assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                finally:
                    context.close()
    finally:
        inst.app.close()


def test_editing_the_primary_text_keeps_the_other_languages(bilingual: Instance) -> None:
    """An edit of a bilingual draft's (primary) text changes the primary's posts only."""
    from bulletin.publisher.revisions import edit

    notice_id = make(bilingual, ("feed",))
    edit(
        bilingual.app.engine,
        bilingual.settings,
        bilingual.clock.now(),
        notice_id,
        "dispatcher",
        "Road closed: Main St until 7 pm.",
    )
    texts = {d.lang: d.text for d in deliveries(bilingual, notice_id)}
    assert texts == {"en": "Road closed: Main St until 7 pm.", "es": SPANISH.text}


def test_an_update_and_a_correction_reply_to_every_language_once(bilingual: Instance) -> None:
    """Once a bilingual notice is out, an update and then a correction each reply to every
    published post, in that post's language and with that language's text (two on an
    account that posts both; the correction opens with the word in its language), and each
    reply is published once."""
    notice_id = make(bilingual)
    engine, settings, clock = bilingual.app.engine, bilingual.settings, bilingual.clock
    approve_notice(engine, settings, clock, notice_id, "chief")
    assert run_all(bilingual).count("published") == 5
    update_notice(
        engine,
        settings,
        clock.now(),
        notice_id,
        "Main St has reopened.",
        "chief",
        {"es": "La calle Main está abierta."},
    )
    correct_notice(
        engine,
        settings,
        clock.now(),
        notice_id,
        "Until 7 pm, not 6.",
        "wrong hour",
        "chief",
        {"es": "Hasta las 7 pm, no las 6."},
    )
    replies = [d for d in deliveries(bilingual, notice_id) if d.kind in ("update", "correction")]
    assert {(d.kind, d.lang, d.text) for d in replies} == {
        ("update", "en", "Main St has reopened."),
        ("update", "es", "La calle Main está abierta."),
        ("correction", "en", "Correction: Until 7 pm, not 6."),
        ("correction", "es", "Corrección: Hasta las 7 pm, no las 6."),
    }
    by_kind = {
        kind: sorted((d.account, d.lang) for d in replies if d.kind == kind)
        for kind in ("update", "correction")
    }
    published = sorted(
        (d.account, d.lang) for d in deliveries(bilingual, notice_id) if d.kind == "post"
    )
    assert by_kind == {"update": published, "correction": published}
    assert run_all(bilingual).count("published") == 10
    assert run_all(bilingual) == []


def test_update_and_correct_name_each_reply_with_its_language(tmp_path: Path) -> None:
    """notice update and notice correct say which language each queued reply is in, as
    notice show names posts: feed[es] beside feed; notice retract --text-in answers each
    post in its language."""
    from tests.plugins.cli import invoke

    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + PEOPLE
    )
    try:
        notice_id = make(inst, ("feed", "feed-es"))
        approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "abe")
        assert run_all(inst).count("published") == 3
        updated = invoke(
            inst,
            *("notice", "update", str(notice_id), "--text", "Main St has reopened."),
            *("--text-in", "es=La calle Main está abierta."),
            login="abe",
            clock=inst.clock,
        )
        assert updated.exit_code == 0, updated.output
        assert f"notice {notice_id}: update queued for feed, feed[es], feed-es[es]" in (
            updated.stdout
        )
        corrected = invoke(
            inst,
            *("notice", "correct", str(notice_id), "--text", "Until 7 pm, not 6."),
            *("--text-in", "es=Hasta las 7 pm.", "--reason", "wrong hour"),
            login="abe",
            clock=inst.clock,
        )
        assert corrected.exit_code == 0, corrected.output
        assert "correction queued for feed, feed[es], feed-es[es]" in corrected.stdout
        retracted = invoke(
            inst,
            *("notice", "retract", str(notice_id), "--reason", "issued in error"),
            *("--text", "Withdrawn.", "--text-in", "es=Retirado."),
            login="abe",
            clock=inst.clock,
        )
        assert retracted.exit_code == 0, retracted.output
        replies = {
            (d.account, d.lang, d.text)
            for d in deliveries(inst, notice_id)
            if d.kind == "retraction"
        }
        assert replies == {
            ("feed", "en", "Withdrawn."),
            ("feed", "es", "Retirado."),
            ("feed-es", "es", "Retirado."),
        }
    finally:
        inst.app.close()


def test_a_reply_needs_each_language_unless_told_to_leave_one_out(bilingual: Instance) -> None:
    """An update or correction of a bilingual notice without its Spanish text is refused
    with one line naming the language; a text in a language the notice is not in is
    refused; chosen explicitly, the Spanish posts are left without the reply (and the
    answer says which)."""
    notice_id = make(bilingual, ("feed", "feed-es"))
    engine, settings, clock = bilingual.app.engine, bilingual.settings, bilingual.clock
    approve_notice(engine, settings, clock, notice_id, "chief")
    assert run_all(bilingual).count("published") == 3
    with pytest.raises(UsageError) as refused:
        update_notice(engine, settings, clock.now(), notice_id, "Reopened.", "chief")
    assert "the update has no es text" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(UsageError, match="has no es text"):
        correct_notice(engine, settings, clock.now(), notice_id, "7 pm.", "hour", "chief")
    with pytest.raises(UsageError, match="fr is not one of the agency"):
        update_notice(
            engine, settings, clock.now(), notice_id, "Reopened.", "chief", {"fr": "Ouverte."}
        )
    done = update_notice(
        engine, settings, clock.now(), notice_id, "Reopened.", "chief", partial=True
    )
    assert done.labels == ["feed"] and done.left == ["feed[es]", "feed-es[es]"]
    assert done.lines("update")[1] == (
        "  left without it (no text in their language): feed[es], feed-es[es]"
    )
    replies = [d for d in deliveries(bilingual, notice_id) if d.kind == "update"]
    assert [(d.account, d.lang, d.text) for d in replies] == [("feed", "en", "Reopened.")]


def test_a_retraction_answers_each_post_in_its_own_language(bilingual: Instance) -> None:
    """Given a bilingual notice out on two accounts, when it is retracted with no text, then
    each post gets the standard withdrawal in its own language; with a text and a Spanish
    text, each post gets its language's text, published once."""
    engine, settings, clock = bilingual.app.engine, bilingual.settings, bilingual.clock
    for text, others, expected in (
        (None, {}, {"en": "This notice has been withdrawn.", "es": "Este aviso ha sido retirado."}),
        (
            "Cancelled: the road stays open.",
            {"es": "Cancelado: la calle sigue abierta."},
            {"en": "Cancelled: the road stays open.", "es": "Cancelado: la calle sigue abierta."},
        ),
    ):
        notice_id = make(bilingual, ("feed", "feed-es"))
        approve_notice(engine, settings, clock, notice_id, "chief")
        assert run_all(bilingual).count("published") == 3
        retract_notice(
            engine,
            settings,
            clock.now(),
            notice_id,
            "issued in error",
            "chief",
            text=text,
            texts=others,
        )
        replies = [d for d in deliveries(bilingual, notice_id) if d.kind == "retraction"]
        posts = [d for d in deliveries(bilingual, notice_id) if d.kind == "post"]
        assert sorted((d.account, d.lang, d.text) for d in replies) == sorted(
            (d.account, d.lang, expected[d.lang or "en"]) for d in posts
        )
        assert run_all(bilingual).count("published") == 3
        assert run_all(bilingual) == []


def test_a_retraction_in_a_language_the_notice_lacks_is_refused(bilingual: Instance) -> None:
    """A retraction text in a language the notice is not in, or in its primary language as
    well as the text, or empty, is refused with one line, and nothing is retracted; an
    English-only text leaves the Spanish posts the standard Spanish sentence."""
    engine, settings, clock = bilingual.app.engine, bilingual.settings, bilingual.clock
    notice_id = make(bilingual, ("feed", "feed-es"))
    approve_notice(engine, settings, clock, notice_id, "chief")
    assert run_all(bilingual).count("published") == 3
    for others, message in (
        ({"fr": "Retiré."}, "fr is not one of the agency"),
        ({"en": "Withdrawn again."}, "the retraction in en is given twice"),
        ({"es": "  "}, "the retraction in es is empty"),
    ):
        with pytest.raises(UsageError, match=message) as refused:
            retract_notice(
                engine,
                settings,
                clock.now(),
                notice_id,
                "error",
                "chief",
                text="Withdrawn.",
                texts=others,
            )
        assert "\n" not in str(refused.value)
    with Session(engine) as session:
        assert session.get(Notice, notice_id).state != "retracted"  # type: ignore[union-attr]
    retract_notice(engine, settings, clock.now(), notice_id, "error", "chief", text="Withdrawn.")
    replies = {
        (d.account, d.lang, d.text)
        for d in deliveries(bilingual, notice_id)
        if d.kind == "retraction"
    }
    assert ("feed", "en", "Withdrawn.") in replies
    assert ("feed-es", "es", "Este aviso ha sido retirado.") in replies


def test_a_cap_update_says_update_in_each_language(tmp_path: Path, db_url: str) -> None:
    """A CAP Update of a published bilingual alert drafts the next notice with "UPDATE:" in
    English and "ACTUALIZACIÓN:" in Spanish, each variant with its own block's text."""
    from bulletin.cap.feed import import_source

    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + '\n[cap]\ntargets = ["feed"]\n')
    try:
        engine = inst.app.engine
        path = bilingual_alert(tmp_path, "nws_tornado_warning.xml")
        (first,) = import_source(engine, inst.settings, inst.clock, str(path), "d")
        with Session(engine) as session:
            notice = session.get(Notice, first.notice_id)
            assert notice is not None
            state = notice.state
        if state == "draft":
            approve_notice(engine, inst.settings, inst.clock, first.notice_id or 0, "chief")
        assert "published" in run_all(inst)
        path = bilingual_alert(tmp_path, "nws_tornado_update.xml")
        (update,) = import_source(engine, inst.settings, inst.clock, str(path), "d")
        assert update.previous_notice_id == first.notice_id
        with Session(engine) as session:
            notice = session.get(Notice, update.notice_id)
            assert notice is not None
            english, spanish = variants_of(session, notice)
        assert english.text.startswith("UPDATE: ") and "REFÚGIESE" not in english.text
        assert spanish.text.startswith("ACTUALIZACIÓN: Aviso de tornado")
        assert "UPDATE" not in spanish.text
    finally:
        inst.app.close()


def test_the_update_and_correct_forms_take_each_language(tmp_path: Path, db_url: str) -> None:
    """On a bilingual notice's page the update and correction forms have a field per
    language (marked with its lang); a Spanish field left empty is refused naming es (the
    texts kept), and with both the replies go out in each post's language."""
    from bulletin.app import Actor, notices
    from tests.test_console import csrf_for, signed_in
    from tests.test_console_actions import done_of
    from tests.test_web import PEOPLE as WEB_PEOPLE
    from tests.test_web import add_with_password, error_of, serving

    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + WEB_PEOPLE)
    try:
        add_with_password(inst.app, "abe", "approver")
        add_with_password(inst.app, "dana", "dispatcher")
        made = notices.draft(inst.app, Actor("dana", "session"), draft(("feed", "feed-es")))
        notice_id = made.notice.id or 0
        notices.approve(inst.app, Actor("abe", "session"), notice_id)
        assert run_all(inst).count("published") == 3
        update, correct = f"/notices/{notice_id}/update", f"/notices/{notice_id}/correct"
        with serving(inst.app) as url, signed_in(url, "abe") as abe:
            page = abe.get(f"/notices/{notice_id}").text
            assert '<textarea id="update-text-es" name="text-es" lang="es"' in page
            assert '<textarea id="correct-text-es" name="text-es" lang="es"' in page
            token = csrf_for(page, update)
            missing = abe.post(update, data={"csrf": token, "text": "Reopened.", "text-es": ""})
            assert missing.status_code == 400, missing.text
            assert "The update has no es text" in error_of(missing.text)
            assert "Reopened." in missing.text
            done = abe.post(
                update, data={"csrf": token, "text": "Reopened.", "text-es": "Abierta."}
            )
            assert done.status_code == 200, done.text
            assert "Queued for feed, feed[es], feed-es[es]" in done_of(done.text)
            token = csrf_for(done.text, correct)
            partial = abe.post(
                correct,
                data={"csrf": token, "text": "7 pm.", "reason": "hour", "partial": "1"},
            )
            assert partial.status_code == 200, partial.text
            said = done_of(partial.text)
            assert "Queued for feed." in said and "feed-es[es]" in said
        replies = [d for d in deliveries(inst, notice_id) if d.kind in ("update", "correction")]
        assert sorted((d.kind, d.account, d.lang, d.text or "") for d in replies) == [
            ("correction", "feed", "en", "Correction: 7 pm."),
            ("update", "feed", "en", "Reopened."),
            ("update", "feed", "es", "Abierta."),
            ("update", "feed-es", "es", "Abierta."),
        ]
    finally:
        inst.app.close()


@pytest.mark.slow
def test_the_reply_forms_of_a_bilingual_notice_pass_axe(tmp_path: Path, browser: Any) -> None:
    """A published bilingual notice's page, with its update and correction fields per
    language, has no axe-core violation at 320 and 1280 pixels and nothing scrolls sideways."""
    from bulletin.app import Actor, notices
    from tests.plugins.browser import axe_violations, describe
    from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in
    from tests.test_web import PEOPLE as WEB_PEOPLE
    from tests.test_web import add_with_password, serving

    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + WEB_PEOPLE
    )
    try:
        add_with_password(inst.app, "abe", "approver")
        add_with_password(inst.app, "dana", "dispatcher")
        made = notices.draft(inst.app, Actor("dana", "session"), draft(("feed", "feed-es")))
        notice_id = made.notice.id or 0
        notices.approve(inst.app, Actor("abe", "session"), notice_id)
        assert run_all(inst).count("published") == 3
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "abe", f"/notices/{notice_id}")
                    assert page.locator('textarea#update-text-es[lang="es"]').count() == 1
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                finally:
                    context.close()
    finally:
        inst.app.close()


def test_each_language_post_gets_one_follow_up_at_expiry(bilingual: Instance) -> None:
    """At expiry, every published post gets the follow-up as a reply, in its language and
    with that language's text: an account posting both languages gets two (one to each
    post); a second daemon, and a daemon started again afterwards, add none."""
    from bulletin.service.daemon import Daemon

    engine, settings, clock = bilingual.app.engine, bilingual.settings, bilingual.clock
    base = draft(("feed", "feed-es", "feed-apart"))
    notice = create_notice(
        engine,
        settings,
        clock,
        NoticeDraft(
            category=base.category,
            text=base.text,
            targets=base.targets,
            languages=[replace(SPANISH, follow_up="La calle Main está abierta.")],
            expires_at=clock.now() + timedelta(hours=2),
            follow_up="Main St has reopened.",
        ),
        "dispatcher",
    )
    assert notice.id is not None
    approve_notice(engine, settings, clock, notice.id, "chief")
    first = Daemon(bilingual.app)
    first.prepare()
    daemons = [first]
    if sqlite_path(settings.database_url) is None:  # several daemons need PostgreSQL
        daemons.append(Daemon(App(settings, environ={}, clock=clock)))
        daemons[1].prepare()
    try:
        states = []
        for _ in range(4):
            states += [o.state for o in first.dispatch_due()]
            clock.advance(timedelta(seconds=2))
        assert states.count("published") == 5
        clock.advance(timedelta(hours=2))
        states = []
        for _ in range(4):
            for daemon in daemons:
                states += [o.state for o in daemon.dispatch_due()]
            clock.advance(timedelta(seconds=2))
        assert states == ["published"] * 5
    finally:
        for daemon in daemons:
            daemon.instance.release_lock()
        for daemon in daemons[1:]:
            daemon.app.close()
    restarted = Daemon(App(settings, environ={}, clock=clock))
    try:
        restarted.prepare()
        assert restarted.dispatch_due() == []
    finally:
        restarted.instance.release_lock()
        restarted.app.close()
    rows = deliveries(bilingual, notice.id)
    posts = {d.id: d for d in rows if d.kind == "post"}
    follows = [d for d in rows if d.kind == "follow-up"]
    assert sorted((d.account, d.lang) for d in follows) == sorted(
        (d.account, d.lang) for d in posts.values()
    )
    texts = {"en": "Main St has reopened.", "es": "La calle Main está abierta."}
    for d in follows:
        parent = posts[d.parent_id or 0]
        assert (parent.account, parent.lang, d.state) == (d.account, d.lang, "published")
        assert d.text == texts[d.lang]  # each in its post's language, with its own text


def test_upgrade_from_0030_keeps_the_follow_up_for_the_primary(tmp_path: Path, db_url: str) -> None:
    """A database at 0030 with a bilingual notice that has a follow-up upgrades: the notice
    keeps its single follow-up text for its primary language, its Spanish variant has none."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0030")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO notices (id, category, priority, title, text, state, author, "
                "created_at, approvals_needed, allow_thread, date_line, occurrences, revision, "
                "lang, publish_partial, follow_up, expires_at) VALUES (7, 'road-closure', "
                "'advisory', '', 'Road closed', 'published', 'dan', '2026-03-01 00:00:00', 1, "
                "false, true, 1, 1, 'en', false, 'Reopened.', '2026-03-01 06:00:00')"
            )
            conn.exec_driver_sql(
                "INSERT INTO notice_languages (notice_id, lang, position, text) "
                "VALUES (7, 'es', 1, 'Calle cerrada')"
            )
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        with engine.begin() as conn:
            notice = conn.exec_driver_sql("SELECT lang, follow_up FROM notices").one()
            assert tuple(notice) == ("en", "Reopened.")
            spanish = conn.exec_driver_sql(
                "SELECT lang, text, follow_up FROM notice_languages"
            ).one()
            assert tuple(spanish) == ("es", "Calle cerrada", None)
    finally:
        engine.dispose()


def follow_up_draft(
    inst: Instance, spanish: str | None, partial: bool = False, follow_up: str | None = "Over."
) -> NoticeDraft:
    base = draft(("feed", "feed-es"))
    return NoticeDraft(
        category=base.category,
        text=base.text,
        targets=base.targets,
        languages=[replace(SPANISH, follow_up=spanish)],
        expires_at=inst.clock.now() + timedelta(hours=2),
        follow_up=follow_up,
        follow_up_partial=partial,
    )


def test_a_follow_up_needs_each_language_unless_told_to_leave_one_out(
    bilingual: Instance,
) -> None:
    """A bilingual notice with a follow-up but none in Spanish is refused in one line naming
    the language; a Spanish follow-up without an English one is refused; chosen explicitly,
    the Spanish posts are left without a follow-up at expiry and the English one gets it."""
    engine, settings, clock = bilingual.app.engine, bilingual.settings, bilingual.clock
    with pytest.raises(UsageError) as refused:
        create_notice(engine, settings, clock, follow_up_draft(bilingual, None), "dispatcher")
    assert str(refused.value) == "the follow-up has no es text"
    with pytest.raises(UsageError, match="needs a follow-up in the primary language"):
        create_notice(
            engine, settings, clock, follow_up_draft(bilingual, "Fin.", follow_up=None), "dan"
        )
    with pytest.raises(UsageError, match="the es follow-up is empty"):
        create_notice(engine, settings, clock, follow_up_draft(bilingual, "  "), "dispatcher")
    notice = create_notice(
        engine, settings, clock, follow_up_draft(bilingual, None, partial=True), "dispatcher"
    )
    assert notice.id is not None
    approve_notice(engine, settings, clock, notice.id, "chief")
    assert run_all(bilingual).count("published") == 3
    clock.advance(timedelta(hours=2))
    from bulletin.publisher.schedule import make_follow_ups

    assert make_follow_ups(engine, clock.now()) == [notice.id]
    assert run_all(bilingual) == ["published"]
    follows = [d for d in deliveries(bilingual, notice.id) if d.kind == "follow-up"]
    assert [(d.account, d.lang, d.text) for d in follows] == [("feed", "en", "Over.")]


def test_the_command_line_takes_a_follow_up_in_each_language(tmp_path: Path) -> None:
    """notice add --follow-up-in es=... (or "follow_up" in --languages-file) gives the
    Spanish follow-up, which notice show lists; without it the draft is refused in one line
    naming the language and the flags; --follow-up-partial lets it go without."""
    from tests.plugins.cli import invoke

    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + PEOPLE
    )
    base = ("notice", "add", "--category", "road-closure", "--target", "feed")
    text = ("--text", "Road closed on Main St.", "--expires", "+2h")
    try:
        add = invoke(
            inst,
            *base,
            *text,
            *("--text-in", "es=Calle Main cerrada.", "--follow-up", "Main St has reopened."),
            *("--follow-up-in", "es=La calle Main está abierta.", "--json"),
            login="dan",
            clock=inst.clock,
        )
        assert add.exit_code == 0, add.output
        notice_id = json.loads(add.stdout)["id"]
        shown = invoke(inst, "notice", "show", str(notice_id), login="dan", clock=inst.clock)
        assert "follow-up at expiry: Main St has reopened." in shown.stdout
        assert "follow-up at expiry [es]: La calle Main está abierta." in shown.stdout
        missing = invoke(
            inst,
            *base,
            *text,
            *("--text-in", "es=Calle Main cerrada.", "--follow-up", "Reopened."),
            login="dan",
            clock=inst.clock,
        )
        assert missing.exit_code != 0
        [line] = missing.stderr.strip().splitlines()
        assert line.startswith("bulletin: error: the follow-up has no es text (--follow-up-in")
        partial = invoke(
            inst,
            *base,
            *text,
            *("--text-in", "es=Calle Main cerrada.", "--follow-up", "Reopened."),
            "--follow-up-partial",
            login="dan",
            clock=inst.clock,
        )
        assert partial.exit_code == 0, partial.output
        variants = tmp_path / "variants.json"
        variants.write_text(
            json.dumps([{"lang": "es", "text": "Calle cerrada.", "follow_up": "Abierta."}])
        )
        from_file = invoke(
            inst,
            *base,
            *text,
            *("--follow-up", "Reopened.", "--languages-file", str(variants), "--json"),
            login="dan",
            clock=inst.clock,
        )
        assert from_file.exit_code == 0, from_file.output
        data = json.loads(
            invoke(inst, "notice", "show", str(json.loads(from_file.stdout)["id"]), "--json").stdout
        )
        assert [(v["lang"], v["follow_up"]) for v in data["languages"]] == [
            ("en", "Reopened."),
            ("es", "Abierta."),
        ]
        alone = invoke(
            inst,
            *base,
            *text,
            *("--follow-up", "Reopened.", "--follow-up-in", "es=Abierta."),
            login="dan",
            clock=inst.clock,
        )
        assert alone.exit_code != 0
        assert "a follow-up in es: the notice has no es text" in alone.stderr
        template = invoke(
            inst,
            *("template", "add", "closure", "--category", "road-closure"),
            *("--text", "{street} closed.", "--text-in", "es={street} cerrada."),
            *("--var", "street:str"),
            login="dan",
            clock=inst.clock,
        )
        assert template.exit_code == 0, template.output
        approved = invoke(inst, "template", "approve", "closure", login="abe", clock=inst.clock)
        assert approved.exit_code == 0, approved.output
        filled = invoke(
            inst,
            *("notice", "add", "--template", "closure", "--var", "street=Main St"),
            *("--target", "feed", "--expires", "+2h", "--follow-up", "Main St reopened."),
            *("--follow-up-in", "es=Main St abierta.", "--json"),
            login="dan",
            clock=inst.clock,
        )
        assert filled.exit_code == 0, filled.output
        with Session(inst.app.engine) as session:
            notice = session.get(Notice, json.loads(filled.stdout)["id"])
            assert notice is not None
            assert [(v.lang, v.text, v.follow_up) for v in variants_of(session, notice)] == [
                ("en", "Main St closed.", "Main St reopened."),
                ("es", "Main St cerrada.", "Main St abierta."),
            ]
    finally:
        inst.app.close()
