"""Editing a draft in several languages on the console: the edit form has the primary text
and, per other language, its text, wording per account and follow-up; saving makes the
revision ``notice edit --languages-file`` (and the API) make; an error of the edit is shown
next to the field it names, tied to it with aria-describedby, with what was typed kept and
nothing saved; the role and the form token are checked. Over a real uvicorn on a free port,
against SQLite and PostgreSQL; the form checked with axe-core at 320 and 1280 pixels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bulletin.app import Actor, App, notices
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.notices import NoticeDraft
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_console_compose_languages import CALLE, ROAD, notice_as_made
from tests.test_languages import LANGUAGES, bilingual_instance
from tests.test_web import PEOPLE as WEB_PEOPLE
from tests.test_web import add_with_password, serving

DANA = Actor("dana", "session", "127.0.0.1")
REOPENED = "Main St has reopened."
ABIERTA = "La calle Main está abierta."
ROAD_ELM = ROAD + " Detour by Elm St."
CALLE_ELM = CALLE + " Desvío por la calle Elm."
ABIERTA_ELM = "La calle Main está abierta; la calle Elm también."
#: an X account posting the Spanish only (its 280 weighted characters are the limit met here)
X_SPANISH = """
[accounts.x-es]
platform = "x"
languages = ["es"]
consumer_key_env = "X_KEY"
consumer_secret_env = "X_SECRET"
access_token_env = "X_TOKEN"
access_token_secret_env = "X_TOKEN_SECRET"
"""


@pytest.fixture
def bilingual_site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """An agency writing English and Spanish with an X account posting the Spanish; dana a
    dispatcher, abe an approver, both with a password."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + X_SPANISH + WEB_PEOPLE)
    add_with_password(inst.app, "dana", "dispatcher")
    add_with_password(inst.app, "abe", "approver")
    yield inst
    inst.app.close()


def bilingual_draft(app: App, targets: tuple[str, ...] = ("feed", "feed-es")) -> int:
    """dana's road closure in English and Spanish to ``targets``, expiring in six hours with
    a follow-up in each language."""
    made = notices.draft(
        app,
        DANA,
        NoticeDraft(
            category="road-closure",
            text=ROAD,
            targets=targets,
            expires_at=app.clock.now() + timedelta(hours=6),
            follow_up=REOPENED,
            languages=[LanguageVariant("es", CALLE, follow_up=ABIERTA)],
        ),
    )
    assert made.notice.id is not None
    return made.notice.id


def field_of(page: str, field_id: str) -> str:
    """The form control with id ``field_id`` on ``page``, its opening tag."""
    found = re.search(rf'<(?:textarea|input) id="{re.escape(field_id)}"[^>]*>', page)
    assert found, page
    return found.group(0)


def test_the_edit_form_saves_each_language_as_the_command_line_does(
    bilingual_site: Instance,
) -> None:
    """The form shows the English and the Spanish text and the Spanish follow-up, each
    marked with its lang; saving a new text in both languages and a new Spanish follow-up
    makes revision 2 with those texts, shown back on the notice's page, its JSON and the
    form; it is the notice notice edit --languages-file makes of a like draft."""
    inst = bilingual_site
    by_form, by_cli = bilingual_draft(inst.app), bilingual_draft(inst.app)
    edit = f"/notices/{by_form}/edit"
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        assert 'name="text" lang="en"' in form and f">{ROAD}</textarea>" in form
        assert 'name="text-in:es" lang="es"' in field_of(form, "text-in-es")
        assert f">{CALLE}</textarea>" in form and f">{ABIERTA}</textarea>" in form
        assert 'name="follow-up-in:es" lang="es"' in field_of(form, "follow-up-in-es")
        saved = dana.post(
            edit,
            data={
                "csrf": csrf_for(form, edit),
                "text": ROAD_ELM,
                "text-in:es": CALLE_ELM,
                "follow-up-in:es": ABIERTA_ELM,
            },
        )
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == f"/notices/{by_form}"
        shown = dana.get(f"/notices/{by_form}.json").json()
        page = dana.get(f"/notices/{by_form}").text
        again = dana.get(edit).text
    assert (shown["text"], shown["revision"]) == (ROAD_ELM, 2)
    assert [(v["lang"], v["text"], v["follow_up"]) for v in shown["languages"]] == [
        ("en", ROAD_ELM, REOPENED),
        ("es", CALLE_ELM, ABIERTA_ELM),
    ]
    assert f'<blockquote class="text" lang="es">{CALLE_ELM}</blockquote>' in page
    assert f">{CALLE_ELM}</textarea>" in again and f">{ABIERTA_ELM}</textarea>" in again
    assert "Save revision 3" in again
    variants = inst.data_dir.parent / "elm.json"
    variants.write_text(
        json.dumps([{"lang": "es", "text": CALLE_ELM, "follow_up": ABIERTA_ELM}]),
        encoding="utf-8",
    )
    done = invoke(
        inst,
        *("notice", "edit", str(by_cli), "--text", ROAD_ELM, "--languages-file", str(variants)),
        login="dana",
        clock=inst.clock,
    )
    assert done.exit_code == 0, done.output
    assert notice_as_made(inst, by_form) == notice_as_made(inst, by_cli)


def test_a_refused_language_is_shown_next_to_its_field_and_nothing_changes(
    bilingual_site: Instance,
) -> None:
    """A Spanish text left empty (or not sent: a language is dropped only by ticking its
    box), a Spanish follow-up left empty and a Spanish text too long for the X account are
    each refused (400) with the one line the API and the command line give, next to the
    field it concerns and tied to it (aria-describedby, aria-invalid); what was typed comes
    back and the draft stays revision 1."""
    inst = bilingual_site
    notice_id = bilingual_draft(inst.app, ("feed", "feed-es", "x-es"))
    edit = f"/notices/{notice_id}/edit"
    long_es = CALLE + " Desvío por la calle Elm." * 12
    cases: list[tuple[dict[str, str | None], str, str]] = [
        ({"text-in:es": "  "}, "text-in-es", "The es text is empty."),
        ({"text-in:es": None, "follow-up-in:es": None}, "text-in-es", "The es text is empty."),
        ({"follow-up-in:es": ""}, "follow-up-in-es", "The follow-up has no es text"),
        (
            {"text-in:es": long_es},
            "text-in-es",
            f"The text for x-es is {len(long_es)} weighted characters; x allows 280",
        ),
    ]
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        token = csrf_for(dana.get(edit).text, edit)
        for change, field_id, said in cases:
            sent = {"text": ROAD_ELM, "text-in:es": CALLE, "follow-up-in:es": ABIERTA, **change}
            typed = {k: v for k, v in sent.items() if v is not None}  # None: not sent
            refused = dana.post(edit, data={"csrf": token, **typed})
            assert refused.status_code == 400, refused.text
            page = refused.text
            shown = re.search(
                rf'<span class="error field-error" id="{field_id}-error">([^<]*)</span>\n?'
                + re.escape(field_of(page, field_id)),
                page,
            )
            assert shown and shown.group(1).startswith(said), page
            control = field_of(page, field_id)
            assert f"{field_id}-error" in control.split('aria-describedby="')[1].split('"')[0]
            assert 'aria-invalid="true"' in control
            assert f'<a href="#{field_id}">{shown.group(1)}</a>' in page  # the summary above
            assert f">{ROAD_ELM}</textarea>" in page  # what was typed comes back
            assert 'aria-invalid="true"' not in field_of(page, "text")
        detail = dana.get(f"/notices/{notice_id}.json").json()
    assert (detail["text"], detail["revision"]) == (ROAD, 1)
    assert [(v["text"], v["follow_up"]) for v in detail["languages"]] == [
        (ROAD, REOPENED),
        (CALLE, ABIERTA),
    ]
    assert [e["action"] for e in detail["audit"]] == ["drafted"]


def test_the_edit_form_keeps_the_role_and_the_form_token(bilingual_site: Instance) -> None:
    """An approver's edit is refused by the application layer (403, the role named); a form
    without its token is refused (403); the draft stays as it was."""
    inst = bilingual_site
    notice_id = bilingual_draft(inst.app)
    edit = f"/notices/{notice_id}/edit"
    typed = {"text": ROAD_ELM, "text-in:es": CALLE_ELM, "follow-up-in:es": ABIERTA}
    with serving(inst.app) as url:
        with signed_in(url, "abe") as abe:
            token = csrf_for(abe.get(edit).text, edit)
            refused = abe.post(edit, data={"csrf": token, **typed})
            assert refused.status_code == 403
            assert "does not hold the dispatcher role" in refused.text
            assert f">{CALLE_ELM}</textarea>" in refused.text
        with signed_in(url, "dana") as dana:
            assert dana.post(edit, data=typed).status_code == 403
            detail = dana.get(f"/notices/{notice_id}.json").json()
    assert (detail["text"], detail["revision"]) == (ROAD, 1)
    assert detail["languages"][1]["text"] == CALLE


def test_the_edit_form_adds_and_drops_a_language(bilingual_site: Instance) -> None:
    """An English draft's form offers the Spanish to add (left empty, it is not); saved with
    a Spanish text, the notice has it, with a post on each account; the form then offers to
    drop it, and saved with the box ticked the notice is English only again, its Spanish
    posts gone."""
    inst = bilingual_site
    made = notices.draft(
        inst.app,
        DANA,
        NoticeDraft(category="road-closure", text=ROAD, targets=("feed", "feed-apart")),
    )
    notice_id = made.notice.id
    edit = f"/notices/{notice_id}/edit"
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        assert 'Add <span lang="es">español</span> (es) (optional)</legend>' in form
        assert 'name="drop"' not in form
        token = csrf_for(form, edit)
        added = dana.post(edit, data={"csrf": token, "text": ROAD, "text-in:es": CALLE})
        assert added.status_code == 303, added.text
        shown = dana.get(f"/notices/{notice_id}.json").json()
        assert [(v["lang"], v["text"]) for v in shown["languages"]] == [
            ("en", ROAD),
            ("es", CALLE),
        ]
        assert sorted(d["delivery"] for d in shown["deliveries"]) == [
            "feed",
            "feed-apart",
            "feed-apart[es]",
            "feed[es]",
        ]
        form = dana.get(edit).text
        assert 'id="drop-es" name="drop" value="es"' in form
        dropped = dana.post(
            edit,
            data={"csrf": token, "text": ROAD, "drop": "es", "text-in:es": CALLE},
        )
        assert dropped.status_code == 303, dropped.text
        shown = dana.get(f"/notices/{notice_id}.json").json()
    assert shown["revision"] == 3 and [v["lang"] for v in shown["languages"]] == ["en"]
    assert sorted(d["delivery"] for d in shown["deliveries"]) == ["feed", "feed-apart"]


@pytest.mark.slow
def test_the_edit_form_in_two_languages_passes_axe(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the edit form of a notice in English
    and Spanish, on it showing an error next to the Spanish follow-up, and on the form of an
    English notice offering the Spanish to add, at 320 and 1280 pixels, without sideways
    scrolling."""
    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + WEB_PEOPLE
    )
    try:
        add_with_password(inst.app, "dana", "dispatcher")
        notice_id = bilingual_draft(inst.app)
        english = notices.draft(
            inst.app, DANA, NoticeDraft(category="road-closure", text=ROAD, targets=("feed",))
        ).notice.id
        edit = f"/notices/{notice_id}/edit"
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "dana", edit)
                    assert page.input_value("#text-in-es") == CALLE
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    page.fill("#follow-up-in-es", "")
                    page.click("button[type=submit]")
                    page.wait_for_selector("#follow-up-in-es-error")
                    assert page.get_attribute("#follow-up-in-es", "aria-invalid") == "true"
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    page.goto(f"{url}/notices/{english}/edit")  # the Spanish to add
                    assert page.input_value("#text-in-es") == ""
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                finally:
                    context.close()
    finally:
        inst.app.close()
