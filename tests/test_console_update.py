"""Posting an update after publishing: a reply now to every published post, from the
notice's page and from the command line, through the same application-layer function (an
approver's action, the category's content policy applied). Over a real uvicorn on a free
port, against SQLite and PostgreSQL; the page checked with axe-core at 320 and 1280 pixels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session, select

from bulletin.audit import events
from bulletin.models import Delivery
from bulletin.states import DeliveryKind, DeliveryState
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke, run
from tests.test_console import (
    GUILT,
    NO_SIDEWAYS,
    WIDEST,
    browser_sign_in,
    browser_site,  # noqa: F401  (a fixture)
    csrf_for,
    signed_in,
    site,  # noqa: F401  (a fixture)
    web,  # noqa: F401  (a fixture)
)
from tests.test_console_actions import done_of, published, state_of
from tests.test_web import error_of, serving

NEWS = "Mass Ave has reopened in both directions."


def updates_of(inst: Instance) -> list[Delivery]:
    with Session(inst.app.engine) as session:
        return list(
            session.exec(select(Delivery).where(Delivery.kind == DeliveryKind.UPDATE)).all()
        )


def test_an_approver_posts_an_update_from_the_page_and_it_is_published(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The update form needs its token; an empty text is the application layer's 400; a
    text that breaks the content policy is refused (403, the rule named, the text kept); an
    update is queued as a reply to the feed's post, published by the daemon, and the notice
    stays published."""
    notice_id = published(site)
    update = f"/notices/{notice_id}/update"
    with signed_in(web, "abe") as abe:
        page = abe.get(f"/notices/{notice_id}").text
        token = csrf_for(page, update)
        assert abe.post(update, data={"text": NEWS}).status_code == 403
        empty = abe.post(update, data={"csrf": token, "text": " "})
        assert empty.status_code == 400 and "update needs its text" in error_of(empty.text)
        blocked = abe.post(update, data={"csrf": token, "text": GUILT})
        assert blocked.status_code == 403, blocked.text
        assert "guilt-or-prosecution" in error_of(blocked.text) and GUILT in blocked.text
        done = abe.post(update, data={"csrf": token, "text": NEWS})
        assert done.status_code == 200, done.text
        said = done_of(done.text)
        assert f"Update of notice {notice_id} queued." in said and "Queued for feed" in said
    [reply] = updates_of(site)
    assert (reply.text, reply.account, reply.revision) == (NEWS, "feed", 1)
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    [reply] = updates_of(site)
    assert reply.state == DeliveryState.PUBLISHED and reply.parent_id is not None
    with signed_in(web, "rita") as rita:
        assert state_of(rita, notice_id) == "published"
    [queued] = events(site.app.engine, action="update-queued")
    assert queued.actor == "abe"


def test_a_dispatcher_may_not_post_an_update(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The application layer refuses a dispatcher's update through the page (403, the role
    named) and on the command line; nothing is queued."""
    notice_id = published(site)
    update = f"/notices/{notice_id}/update"
    with signed_in(web, "dana") as dana:
        page = dana.get(f"/notices/{notice_id}").text
        refused = dana.post(update, data={"csrf": csrf_for(page, update), "text": NEWS})
        assert refused.status_code == 403 and "approver" in error_of(refused.text)
    result = invoke(site, "notice", "update", str(notice_id), "--text", NEWS, login="dana")
    assert result.exit_code != 0 and "approver" in result.output
    assert updates_of(site) == []


def test_an_update_on_the_command_line(site: Instance) -> None:  # noqa: F811
    """``notice update`` queues the same reply (JSON says for which account); a draft has
    nothing published to update."""
    notice_id = published(site)
    out = run(
        site,
        "notice",
        "update",
        str(notice_id),
        "--text",
        NEWS,
        "--json",
        login="abe",
        stdout=True,
    )
    assert json.loads(out)["queued"] == [["feed", 1]]
    [reply] = updates_of(site)
    assert reply.text == NEWS
    from tests.test_console import drafted

    draft = drafted(site.app)
    result = invoke(site, "notice", "update", str(draft), "--text", NEWS, login="abe")
    assert result.exit_code != 0 and "nothing published to update" in result.output


@pytest.mark.slow
def test_the_notice_page_with_its_update_form_passes_axe(
    browser_site: Instance,  # noqa: F811
    browser: Any,
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on a published notice's page with the
    update form, with a refusal and with an outcome shown, at 320 and 1280 pixels."""
    notice_id = published(browser_site)
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "abe", f"/notices/{notice_id}")
                page.fill("#update-text", GUILT)
                page.click(f"text=Post update to notice {notice_id}")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#update-text", NEWS)
                page.click(f"text=Post update to notice {notice_id}")
                page.wait_for_selector("div.done")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                if width == 1280:
                    screenshot(page, "console-notice-update")
            finally:
                context.close()
