"""The actions after publishing on a notice's page: cancel, correct and retract, each through
the application layer with the signed-in person, its form token checked, its outcome or the
application layer's refusal shown on the same page. Over a real uvicorn on a free port,
against SQLite and PostgreSQL; the page checked with axe-core at 320 and 1280 pixels."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import Session, select

from bulletin.app import Actor, notices, templates
from bulletin.audit import events
from bulletin.models import Delivery
from bulletin.states import DeliveryKind
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.test_console import (
    DANA,
    NO_SIDEWAYS,
    WIDEST,
    browser_sign_in,
    browser_site,  # noqa: F401  (a fixture)
    csrf_for,
    drafted,
    signed_in,
    site,  # noqa: F401  (a fixture)
    web,  # noqa: F401  (a fixture)
)
from tests.test_web import error_of, serving

ABE = Actor("abe", "session", "127.0.0.1")


def published(inst: Instance) -> int:
    """A notice approved by abe and published to the feed by one daemon pass."""
    notice_id = drafted(inst.app)
    notices.approve(inst.app, ABE, notice_id)
    run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
    return notice_id


def state_of(client: Any, notice_id: int) -> str:
    return str(client.get(f"/notices/{notice_id}.json").json()["state"])


def done_of(page: str) -> str:
    found = re.search(r'<div class="done" role="status">(.*?)</div>', page, re.S)
    assert found, page
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_correct_then_retract_a_published_notice_through_the_page(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """An approver corrects a published notice (the reply queued for the feed) and then
    retracts it; each form needs its own token; a missing reason or a reply text with a
    deletion is the application layer's 400, shown on the page with what was typed; once
    retracted, the page offers no action."""
    notice_id = published(site)
    correct, retract = f"/notices/{notice_id}/correct", f"/notices/{notice_id}/retract"
    with signed_in(web, "abe") as abe:
        page = abe.get(f"/notices/{notice_id}").text
        assert f'action="/notices/{notice_id}/cancel"' not in page
        token, retract_token = csrf_for(page, correct), csrf_for(page, retract)
        fix = {"text": "Detour by Worthen Rd.", "reason": "The detour was missing."}
        assert abe.post(correct, data=fix).status_code == 403
        assert abe.post(correct, data={**fix, "csrf": retract_token}).status_code == 403
        no_reason = abe.post(correct, data={**fix, "reason": " ", "csrf": token})
        assert no_reason.status_code == 400
        assert "reason" in error_of(no_reason.text) and fix["text"] in no_reason.text
        done = abe.post(correct, data={**fix, "csrf": token})
        assert done.status_code == 200, done.text
        said = done_of(done.text)
        assert f"Correction of notice {notice_id} queued." in said and "Queued for feed" in said
        [corrected] = events(site.app.engine, action="correction-queued")
        assert (corrected.actor, corrected.reason) == ("abe", fix["reason"])
        assert state_of(abe, notice_id) == "published"
        both = {"csrf": retract_token, "reason": "Reopened.", "delete": "1", "text": "Gone."}
        refused = abe.post(retract, data=both)
        assert refused.status_code == 400 and "Gone." in refused.text
        assert 'id="retract-delete" name="delete" value="1" checked' in refused.text
        done = abe.post(retract, data={"csrf": retract_token, "reason": "The road reopened."})
        assert done.status_code == 200, done.text
        said = done_of(done.text)
        assert f"Retraction of notice {notice_id} queued." in said and "Queued for feed" in said
        assert state_of(abe, notice_id) == "retracted"
        assert 'id="actions-heading"' not in abe.get(f"/notices/{notice_id}").text
        [retracted] = events(site.app.engine, action="retracted")
        assert (retracted.actor, retracted.reason) == ("abe", "The road reopened.")


def test_a_dispatcher_may_not_retract_or_correct_a_published_notice(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """A dispatcher sees the forms (the state allows them) but the application layer
    refuses a free-text retraction and a correction: 403 with its reason on the page, and
    the notice stays published."""
    notice_id = published(site)
    with signed_in(web, "dana") as dana:
        page = dana.get(f"/notices/{notice_id}").text
        retract, correct = f"/notices/{notice_id}/retract", f"/notices/{notice_id}/correct"
        refused = dana.post(
            retract, data={"csrf": csrf_for(page, retract), "reason": "The road reopened."}
        )
        assert refused.status_code == 403
        assert "approver" in error_of(refused.text)
        assert "The road reopened." in refused.text
        refused = dana.post(
            correct, data={"csrf": csrf_for(page, correct), "text": "x", "reason": "y"}
        )
        assert refused.status_code == 403 and "approver" in error_of(refused.text)
        assert state_of(dana, notice_id) == "published"
    assert not events(site.app.engine, action="retracted")
    assert not events(site.app.engine, action="correction-queued")


def test_a_dispatcher_retracts_with_an_approved_template(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The retract form lists the approved templates without variables; a dispatcher
    retracting with one is let through by the application layer, its text the reply."""
    notice_id = published(site)
    withdrawn = "This closure notice is withdrawn; the road is open."
    templates.add(site.app, DANA, "withdrawn", "road-closure", withdrawn, {})
    templates.approve(site.app, ABE, "withdrawn")
    retract = f"/notices/{notice_id}/retract"
    with signed_in(web, "dana") as dana:
        page = dana.get(f"/notices/{notice_id}").text
        assert '<option value="withdrawn">withdrawn</option>' in page
        form = {"csrf": csrf_for(page, retract), "reason": "The road reopened."}
        done = dana.post(retract, data={**form, "template": "withdrawn"})
        assert done.status_code == 200, done.text
        assert "Queued for feed" in done_of(done.text)
        assert state_of(dana, notice_id) == "retracted"
    [retracted] = events(site.app.engine, action="retracted")
    assert retracted.actor == "dana"
    with Session(site.app.engine) as session:
        [reply] = session.exec(
            select(Delivery).where(Delivery.kind == DeliveryKind.RETRACTION)
        ).all()
    assert reply.text == withdrawn


def test_cancel_what_has_not_gone_out_through_the_page(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The author cancels an approved notice before it goes out (the reason is required,
    the token checked); the page says it is cancelled and for which account; a second
    cancellation is refused by the application layer (403)."""
    notice_id = drafted(site.app)
    notices.approve(site.app, ABE, notice_id)
    cancel = f"/notices/{notice_id}/cancel"
    with signed_in(web, "dana") as dana:
        page = dana.get(f"/notices/{notice_id}").text
        assert f'action="/notices/{notice_id}/correct"' not in page
        token = csrf_for(page, cancel)
        assert dana.post(cancel, data={"reason": "Not needed."}).status_code == 403
        assert dana.post(cancel, data={"csrf": token, "reason": ""}).status_code == 400
        done = dana.post(cancel, data={"csrf": token, "reason": "Not needed."})
        assert done.status_code == 200, done.text
        said = done_of(done.text)
        assert f"Notice {notice_id} is cancelled." in said
        assert "Stopped before publishing: feed" in said
        assert 'id="actions-heading"' not in done.text
        again = dana.post(cancel, data={"csrf": token, "reason": "Again."})
        assert again.status_code == 403 and "already cancelled" in error_of(again.text)
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    [cancelled] = events(site.app.engine, action="cancelled")
    assert (cancelled.actor, cancelled.reason) == ("dana", "Not needed.")


@pytest.mark.slow
def test_the_notice_page_with_its_actions_passes_axe_at_320_and_1280_pixels(
    browser_site: Instance,  # noqa: F811
    browser: Any,
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on a published notice's page with its
    correct and retract forms (a template to choose), with a refusal shown, and with an
    outcome shown; a draft's page with its cancel form; and no page scrolls sideways."""
    app = browser_site.app
    notice_id = published(browser_site)
    draft = drafted(app, "Road work on Bedford St.")
    templates.add(app, DANA, "withdrawn", "road-closure", "This notice is withdrawn.", {})
    templates.approve(app, ABE, "withdrawn")
    with serving(app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "ann", f"/notices/{draft}")
                assert not (found := axe_violations(page)), describe(found)
                page.goto(f"{url}/notices/{notice_id}")
                assert page.locator("#retract-template").count() == 1
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#correct-text", "Detour by Worthen Rd.")
                page.fill("#correct-reason", " ")
                page.click(f"text=Correct notice {notice_id}")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#correct-reason", "The detour was missing.")
                page.click(f"text=Correct notice {notice_id}")
                page.wait_for_selector("div.done")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
            finally:
                context.close()
