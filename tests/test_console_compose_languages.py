"""Composing a notice in several languages in the console: a text, wording per account and
alt text per image in each of the agency's languages; the preview shows each language's posts
per target marked with its lang, a count per language and the policy findings of each
language; the draft is the notice ``bulletin notice add --text-in`` makes. Over a real uvicorn
on a free port, against SQLite and PostgreSQL; the form checked with axe-core at 320 and 1280
pixels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bulletin.models import Delivery, Notice
from bulletin.publisher.languages import variants_of
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_languages import LANGUAGES, bilingual_instance
from tests.test_web import PEOPLE as WEB_PEOPLE
from tests.test_web import add_with_password, serving

ROAD = "Road closed: Main St between 1st and 2nd until 6 pm."
CALLE = "Calle Main cerrada entre la 1 y la 2 hasta las 6 pm."
CALLE_FEED = "Calle Main cerrada hasta las 6 pm (aviso en español)."


@pytest.fixture
def bilingual_site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """An agency writing English and Spanish (see :func:`bilingual_instance`) with dana, a
    dispatcher with a password and an OS login."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + WEB_PEOPLE)
    add_with_password(inst.app, "dana", "dispatcher")
    yield inst
    inst.app.close()


def notice_as_made(inst: Instance, notice_id: int) -> dict[str, Any]:
    """What a notice is, without what differs between two made alike (ids, times; the
    deliveries' texts carry no id)."""
    with Session(inst.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        rows = session.exec(
            select(Delivery).where(Delivery.notice_id == notice_id).order_by(col(Delivery.id))
        ).all()
        return {
            "notice": {
                k: v
                for k, v in notice.model_dump().items()
                if k not in ("id", "uid", "created_at", "updated_at")
            },
            "languages": [v.as_json() for v in variants_of(session, notice)],
            "deliveries": [(d.account, d.lang, d.kind, d.state, d.text) for d in rows],
        }


def test_a_bilingual_notice_from_the_form_is_the_one_the_command_line_makes(
    bilingual_site: Instance,
) -> None:
    """The form has a text and wording per account in Spanish beside the English; the preview
    shows each target's English and Spanish posts, each marked with its lang, a live count per
    language and the finding that the English-only word lists did not check the Spanish; the
    draft equals the notice notice add --text-in (--languages-file) makes."""
    inst = bilingual_site
    form = {
        "category": "road-closure",
        "target": ["feed", "feed-es"],
        "text": ROAD,
        "text-in:es": CALLE,
        "text-in:es:for:feed-es": CALLE_FEED,
        "at": "now",
    }
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        page = dana.get("/notices/new").text
        assert '<textarea id="text" name="text" lang="en"' in page
        assert '<textarea id="text-in-es" name="text-in:es" lang="es"' in page
        assert 'data-count="text-in-es-count"' in page
        assert 'name="text-in:es:for:feed-es" lang="es"' in page
        token = csrf_for(page, "/notices/new")
        shown = dana.post("/notices/new", data={**form, "csrf": token, "action": "preview"})
        assert shown.status_code == 200, shown.text
        html = shown.text
        assert f'<blockquote class="text" lang="en">{ROAD}</blockquote>' in html
        assert f'<blockquote class="text" lang="es">{CALLE_FEED}</blockquote>' in html
        assert f'<blockquote class="text" lang="es">{CALLE}</blockquote>' in html
        assert 'In <span lang="es">español</span> (es)</h4>' in html
        assert "the es text was not checked by it" in html
        assert f">{CALLE}</textarea>" in html  # what was typed comes back
        made = dana.post("/notices/new", data={**form, "csrf": token, "action": "draft"})
        assert made.status_code == 303, made.text
        from_form = int(made.headers["location"].rsplit("/", 1)[1])
    variants = inst.data_dir.parent / "variants.json"
    variants.write_text(
        json.dumps([{"lang": "es", "text": CALLE, "text_for": {"feed-es": CALLE_FEED}}]),
        encoding="utf-8",
    )
    added = invoke(
        inst,
        *("notice", "add", "--category", "road-closure", "--target", "feed"),
        *("--target", "feed-es", "--text", ROAD, "--languages-file", str(variants)),
        "--json",
        login="dana",
        clock=inst.clock,
    )
    assert added.exit_code == 0, added.output
    from_cli = json.loads(added.stdout)["id"]
    assert notice_as_made(inst, from_form) == notice_as_made(inst, from_cli)
    assert [v["lang"] for v in notice_as_made(inst, from_form)["languages"]] == ["en", "es"]


def test_the_compose_form_takes_a_follow_up_in_each_language(bilingual_site: Instance) -> None:
    """The form has a follow-up field per language beside the one follow-up field; a draft
    with a follow-up but none in Spanish is refused in one line naming the language, with what
    was typed shown back; with the Spanish follow-up the draft is the notice notice add
    --follow-up-in makes; "leave a language without" lets the Spanish go without."""
    inst = bilingual_site
    form = {
        "category": "road-closure",
        "target": ["feed", "feed-es"],
        "text": ROAD,
        "text-in:es": CALLE,
        "at": "now",
        "expires": "+2h",
        "follow_up": "Main St has reopened.",
    }
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        page = dana.get("/notices/new").text
        assert '<textarea id="follow-up-in-es" name="follow-up-in:es" lang="es"' in page
        assert 'name="follow_up_partial"' in page
        token = csrf_for(page, "/notices/new")
        refused = dana.post("/notices/new", data={**form, "csrf": token, "action": "draft"})
        assert refused.status_code == 400
        assert "The follow-up has no es text." in refused.text
        assert f">{CALLE}</textarea>" in refused.text
        spanish = {**form, "follow-up-in:es": "La calle Main está abierta."}
        made = dana.post("/notices/new", data={**spanish, "csrf": token, "action": "draft"})
        assert made.status_code == 303, made.text
        from_form = int(made.headers["location"].rsplit("/", 1)[1])
        partial = {**form, "follow_up_partial": "1"}
        left = dana.post("/notices/new", data={**partial, "csrf": token, "action": "draft"})
        assert left.status_code == 303, left.text
        without = int(left.headers["location"].rsplit("/", 1)[1])
    added = invoke(
        inst,
        *("notice", "add", "--category", "road-closure", "--target", "feed"),
        *("--target", "feed-es", "--text", ROAD, "--text-in", f"es={CALLE}"),
        *("--expires", "+2h", "--follow-up", "Main St has reopened."),
        *("--follow-up-in", "es=La calle Main está abierta.", "--json"),
        login="dana",
        clock=inst.clock,
    )
    assert added.exit_code == 0, added.output
    from_cli = json.loads(added.stdout)["id"]
    made_form, made_cli = notice_as_made(inst, from_form), notice_as_made(inst, from_cli)
    assert made_form == made_cli
    assert [(v["lang"], v["follow_up"]) for v in made_form["languages"]] == [
        ("en", "Main St has reopened."),
        ("es", "La calle Main está abierta."),
    ]
    assert [v["follow_up"] for v in notice_as_made(inst, without)["languages"]] == [
        "Main St has reopened.",
        None,
    ]


@pytest.mark.slow
def test_the_compose_form_in_two_languages_passes_axe(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the compose form of an agency writing
    English and Spanish, and on its preview, at 320 and 1280 pixels, without sideways
    scrolling; the count of the Spanish text is live; the screenshot for the README."""
    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + WEB_PEOPLE
    )
    try:
        add_with_password(inst.app, "dana", "dispatcher")
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "dana", "/notices/new")
                    page.select_option("#category", "road-closure")
                    page.check("#target-feed")
                    page.check("#target-feed-es")
                    page.fill("#text", ROAD)
                    page.fill("#text-in-es", CALLE)
                    assert page.text_content("#text-in-es-count") == (
                        f"{len(CALLE)} characters typed"
                    )
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    page.click("button[value=preview]")
                    page.wait_for_selector('blockquote[lang="es"]')
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    if width == 1280:
                        screenshot(page, "console-compose-languages")
                finally:
                    context.close()
    finally:
        inst.app.close()
