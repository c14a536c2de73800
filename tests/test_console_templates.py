"""Reviewing a template in the console: the list with where each stands, a version's page
with the diff from the approved version, and approving it through the application layer
(refused without the role and for its own author). Over a real uvicorn on a free port,
against SQLite and PostgreSQL; the pages checked with axe-core at 320 and 1280 pixels."""

from __future__ import annotations

from typing import Any

import pytest

from bulletin.app import Actor, templates
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance
from tests.test_console import (
    ANN,
    DANA,
    NO_SIDEWAYS,
    WIDEST,
    browser_sign_in,
    browser_site,  # noqa: F401  (a fixture)
    csrf_for,
    signed_in,
    site,  # noqa: F401  (a fixture)
    web,  # noqa: F401  (a fixture)
)
from tests.test_web import error_of, serving

ABE = Actor("abe", "session", "127.0.0.1")
FIRST = "Road closed: {road} until {until}. Use another route."
SECOND = "Road closed: {road} until {until}. Questions: {phone}."


def two_versions(inst: Instance) -> None:
    """Version 1 approved; version 2, by ann, changes the text and adds a variable."""
    templates.add(
        inst.app, DANA, "road-closed", "road-closure", FIRST, {"road": "str", "until": "time"}
    )
    templates.approve(inst.app, ABE, "road-closed")
    variables = {"road": "str", "until": "time", "phone": "phone"}
    templates.add(inst.app, ANN, "road-closed", "road-closure", SECOND, variables)


def test_a_new_version_shows_its_diff_and_is_approved_by_another_approver(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The list says version 2 waits for review; its page shows the removed and added
    lines from the approved version 1; a dispatcher's and its author's approvals are refused
    by the application layer (403, the reason shown); another approver approves it."""
    two_versions(site)
    path = "/templates/road-closed/approve"
    with signed_in(web, "rita") as rita:
        listed = rita.get("/templates").text
        assert 'href="/templates/road-closed"' in listed and "waiting for review" in listed
        page = rita.get("/templates/road-closed").text
        assert "From the approved version 1 to version 2" in page
        assert f"<del>\u2212 {FIRST}</del>" in page and f"<ins>+ {SECOND}</ins>" in page
        assert "<ins>+ variable phone: phone</ins>" in page
        assert rita.get("/templates/nothing").status_code == 404
    with signed_in(web, "dana") as dana:
        token = csrf_for(dana.get("/templates/road-closed").text, path)
        refused = dana.post(path, data={"csrf": token})
        assert refused.status_code == 403 and "approver" in error_of(refused.text)
    with signed_in(web, "ann") as ann:
        token = csrf_for(ann.get("/templates/road-closed").text, path)
        assert ann.post(path, data={}).status_code == 403
        own = ann.post(path, data={"csrf": token})
        assert own.status_code == 403 and "may not approve it" in error_of(own.text)
    with signed_in(web, "abe") as abe:
        token = csrf_for(abe.get("/templates/road-closed").text, path)
        done = abe.post(path, data={"csrf": token})
        assert done.status_code == 200, done.text
        assert "Version 2 of road-closed is approved." in done.text
        assert "This is the approved version." in done.text
        assert f'action="{path}"' not in done.text
    assert templates.show(site.app, "road-closed").approved_by == "abe"
    with signed_in(web, "cleo") as cleo:
        assert cleo.get("/templates").status_code == 403


@pytest.mark.slow
def test_the_template_pages_pass_axe_at_320_and_1280_pixels(
    browser_site: Instance,  # noqa: F811
    browser: Any,
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the list and on a version's page with
    its diff and approve button, and after a refusal, without sideways scrolling."""
    two_versions(browser_site)
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "ann", "/templates")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.goto(f"{url}/templates/road-closed")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                if width == 1280:
                    screenshot(page, "console-template-review")
                page.click("text=Approve version 2 of road-closed")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
            finally:
                context.close()
