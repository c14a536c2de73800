"""The console's edit form adds a follow-up to a draft that has an expiry but none (its
field left empty adds none), or removes one with a box: the revision the command line's
``notice edit --follow-up`` / ``--no-follow-up`` make; a language left without one is
refused next to its field unless the box letting it go without is ticked; the form token is
checked. Over a real uvicorn, against SQLite and PostgreSQL; the form checked with axe-core
at 320 and 1280 pixels."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bulletin.app import App, notices
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.notices import NoticeDraft
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_console_compose_languages import CALLE, ROAD, notice_as_made
from tests.test_console_edit_languages import (
    ABIERTA,
    DANA,
    REOPENED,
    bilingual_draft,
    bilingual_site,
    field_of,
)
from tests.test_languages import LANGUAGES, bilingual_instance
from tests.test_web import PEOPLE as WEB_PEOPLE
from tests.test_web import add_with_password, serving

__all__ = ["bilingual_site"]  # a fixture used here


def without_follow_up(app: App) -> int:
    """dana's road closure in English and Spanish to both feeds, expiring in six hours,
    without a follow-up."""
    made = notices.draft(
        app,
        DANA,
        NoticeDraft(
            category="road-closure",
            text=ROAD,
            targets=("feed", "feed-es"),
            expires_at=app.clock.now() + timedelta(hours=6),
            languages=[LanguageVariant("es", CALLE)],
        ),
    )
    assert made.notice.id is not None
    return made.notice.id


def error_at(page: str, field_id: str) -> str:
    """The error shown next to the control ``field_id`` (checked to be tied to it)."""
    shown = re.search(
        rf'<span class="error field-error" id="{field_id}-error">([^<]*)</span>\n?'
        + re.escape(field_of(page, field_id)),
        page,
    )
    assert shown, page
    control = field_of(page, field_id)
    assert f"{field_id}-error" in control.split('aria-describedby="')[1].split('"')[0]
    assert 'aria-invalid="true"' in control
    return shown.group(1)


def test_the_edit_form_adds_a_follow_up_as_the_command_line_does(
    bilingual_site: Instance,
) -> None:
    """A draft without a follow-up: its form has an empty, optional follow-up field in each
    language and no box to remove one; saved empty, none is added; the English alone is
    refused next to the Spanish field (what was typed kept); with the Spanish too it makes
    revision 2 with both, the notice notice edit --follow-up --languages-file makes."""
    inst = bilingual_site
    by_form, by_cli = without_follow_up(inst.app), without_follow_up(inst.app)
    edit = f"/notices/{by_form}/edit"
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        assert "(optional)</label>" in form and ">\n</textarea>" not in form
        assert 'name="follow-up" lang="en"' in field_of(form, "follow-up")
        assert "required" not in field_of(form, "follow-up")
        assert 'name="follow-up-in:es"' in field_of(form, "follow-up-in-es")
        assert 'id="remove-follow-up"' not in form
        token = csrf_for(form, edit)
        base = {"csrf": token, "text": ROAD, "text-in:es": CALLE}
        unchanged = dana.post(edit, data={**base, "follow-up": "", "follow-up-in:es": ""})
        assert unchanged.status_code == 400, unchanged.text
        assert "is unchanged" in unchanged.text
        refused = dana.post(edit, data={**base, "follow-up": REOPENED, "follow-up-in:es": ""})
        assert refused.status_code == 400, refused.text
        said = error_at(refused.text, "follow-up-in-es")
        assert said.startswith("The follow-up has no es text"), said
        assert f">{REOPENED}</textarea>" in refused.text
        assert dana.get(f"/notices/{by_form}.json").json()["revision"] == 1
        saved = dana.post(edit, data={**base, "follow-up": REOPENED, "follow-up-in:es": ABIERTA})
        assert saved.status_code == 303, saved.text
        shown = dana.get(f"/notices/{by_form}.json").json()
        again = dana.get(edit).text
    assert shown["revision"] == 2
    assert [v["follow_up"] for v in shown["languages"]] == [REOPENED, ABIERTA]
    assert [f["text"] for f in shown["follow_ups"]] == [REOPENED, ABIERTA]
    assert 'id="remove-follow-up" name="remove-follow-up"' in again
    variants = inst.data_dir.parent / "es.json"
    variants.write_text(
        f'[{{"lang": "es", "text": "{CALLE}", "follow_up": "{ABIERTA}"}}]', encoding="utf-8"
    )
    done = invoke(
        inst,
        *("notice", "edit", str(by_cli), "--text", ROAD, "--follow-up", REOPENED),
        *("--languages-file", str(variants)),
        login="dana",
        clock=inst.clock,
    )
    assert done.exit_code == 0, done.output
    assert notice_as_made(inst, by_form) == notice_as_made(inst, by_cli)


def test_the_edit_form_may_leave_a_language_without_the_added_follow_up(
    bilingual_site: Instance,
) -> None:
    """With the box letting a language go without one ticked, the English follow-up alone
    is added; the Spanish posts get none."""
    inst = bilingual_site
    notice_id = without_follow_up(inst.app)
    edit = f"/notices/{notice_id}/edit"
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        assert 'id="follow-up-partial" name="follow-up-partial"' in form
        saved = dana.post(
            edit,
            data={
                "csrf": csrf_for(form, edit),
                "text": ROAD,
                "text-in:es": CALLE,
                "follow-up": REOPENED,
                "follow-up-partial": "1",
            },
        )
        assert saved.status_code == 303, saved.text
        shown = dana.get(f"/notices/{notice_id}.json").json()
    assert [v["follow_up"] for v in shown["languages"]] == [REOPENED, None]


def test_the_edit_form_removes_a_follow_up_with_its_box(bilingual_site: Instance) -> None:
    """A draft with a follow-up in both languages: ticking the box removes it in each
    (the texts still in their fields are not kept), as notice edit --no-follow-up does; the
    form then offers to add one. A form without its token changes nothing (403)."""
    inst = bilingual_site
    by_form, by_cli = bilingual_draft(inst.app), bilingual_draft(inst.app)
    edit = f"/notices/{by_form}/edit"
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        typed = {
            "text": ROAD,
            "text-in:es": CALLE,
            "follow-up": REOPENED,
            "follow-up-in:es": ABIERTA,
            "remove-follow-up": "1",
        }
        assert dana.post(edit, data=typed).status_code == 403
        assert dana.get(f"/notices/{by_form}.json").json()["revision"] == 1
        removed = dana.post(edit, data={"csrf": csrf_for(form, edit), **typed})
        assert removed.status_code == 303, removed.text
        shown = dana.get(f"/notices/{by_form}.json").json()
        again = dana.get(edit).text
    assert shown["revision"] == 2
    assert [v["follow_up"] for v in shown["languages"]] == [None, None]
    assert shown["follow_ups"] == []
    assert 'id="remove-follow-up"' not in again and "(optional)</label>" in again
    done = invoke(
        inst,
        *("notice", "edit", str(by_cli), "--text", ROAD, "--no-follow-up"),
        login="dana",
        clock=inst.clock,
    )
    assert done.exit_code == 0, done.output
    assert notice_as_made(inst, by_form) == notice_as_made(inst, by_cli)


def test_a_stale_form_removing_a_follow_up_is_refused_at_its_box(
    bilingual_site: Instance,
) -> None:
    """The box sent for a notice that has no follow-up (a form older than the notice) is
    refused next to the box, the one line the API gives."""
    inst = bilingual_site
    notice_id = without_follow_up(inst.app)
    edit = f"/notices/{notice_id}/edit"
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        refused = dana.post(
            edit,
            data={
                "csrf": csrf_for(form, edit),
                "text": ROAD,
                "text-in:es": CALLE,
                "follow-up": "",
                "remove-follow-up": "1",
            },
        )
    assert refused.status_code == 400, refused.text
    said = error_at(refused.text, "remove-follow-up")
    assert said == f"Notice {notice_id} has no follow-up to remove.", said


@pytest.mark.slow
def test_the_edit_form_adding_or_removing_a_follow_up_passes_axe(
    tmp_path: Path, browser: Any
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the form of a draft without a
    follow-up, on it showing the Spanish one missing, and on the form of a draft with one
    (its box to remove it), at 320 and 1280 pixels, without sideways scrolling."""
    inst = bilingual_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", LANGUAGES + WEB_PEOPLE
    )
    try:
        add_with_password(inst.app, "dana", "dispatcher")
        bare = without_follow_up(inst.app)
        followed = bilingual_draft(inst.app)
        edit = f"/notices/{bare}/edit"
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "dana", edit)
                    assert page.input_value("#follow-up") == ""
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    page.fill("#follow-up", REOPENED)
                    page.click("button[type=submit]")
                    page.wait_for_selector("#follow-up-in-es-error")
                    assert page.get_attribute("#follow-up-in-es", "aria-invalid") == "true"
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    page.goto(f"{url}/notices/{followed}/edit")
                    assert page.is_visible("#remove-follow-up")
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                finally:
                    context.close()
    finally:
        inst.app.close()
