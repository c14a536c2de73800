"""Retention in the console: batches awaiting approval with what each would destroy, the
approval form (a records officer's; two-person: who listed a batch cannot approve it), the
certificates of the batches approved. Over a real uvicorn on a free port against SQLite and
PostgreSQL; pages checked with axe at 320 and 1280 pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulletin.app import Actor, retention
from bulletin.errors import Refused
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_retention import PAST_RETENTION, SCHEDULE, archive
from tests.test_web import PEOPLE, add_with_password, serving

ALEX = Actor("alex", "session", "127.0.0.1")
STAFF = {
    "cleo": ["clerk"],
    "dana": ["dispatcher"],
    "chief": ["approver"],
    "rita": ["records-officer"],
    "alex": ["admin", "records-officer"],
}


def staffed(tmp_path: Path, db_url: str) -> Instance:
    """Visitor comments destroyed 2 years after posting; three of them, past retention; a
    batch of them listed by alex."""
    inst = make_instance(tmp_path, db_url, PEOPLE + SCHEDULE)
    for name, roles in STAFF.items():
        add_with_password(inst.app, name, *roles)
    archive(inst, 1, 2, 3)
    inst.clock.set(PAST_RETENTION)
    return inst


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = staffed(tmp_path, db_url)
    yield inst
    inst.app.close()


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


def test_who_listed_a_batch_cannot_approve_it(site: Instance) -> None:
    """The application layer refuses the one who listed a batch (two-person rule, though a
    records officer) and an approver, a clerk or a dispatcher (naming the records-officer
    role) whichever door asks; another records officer destroys it."""
    batch = retention.list_batch(site.app, ALEX)
    assert batch is not None and batch.id is not None
    with pytest.raises(Refused, match="two-person rule"):
        retention.approve_batch(site.app, ALEX, batch.id)
    for name in ("chief", "cleo", "dana"):
        with pytest.raises(Refused, match="does not hold the records-officer role") as refused:
            retention.approve_batch(site.app, Actor(name), batch.id)
        assert "approver role approves notices and no longer approves destruction" in str(
            refused.value
        )
    assert retention.show_batch(site.app, ALEX, batch.id).batch.state == "listed"
    done = retention.approve_batch(site.app, Actor("rita"), batch.id)
    assert done.batch.approved_by == "rita"


def test_a_batch_is_shown_approved_and_certified(site: Instance, web: str) -> None:
    """The desk lists the batch awaiting approval; its page lists what it would destroy;
    the lister is refused, and so is an approver (the page names the records-officer role);
    the form needs its token and the confirmation; a records officer approves it and the
    certificate is listed, checked; the navigation shows a records officer the records and
    retention pages."""
    batch = retention.list_batch(site.app, ALEX)
    assert batch is not None
    path = f"/retention/{batch.id}"
    with signed_in(web, "cleo") as cleo:
        desk = cleo.get("/retention").text
        assert f'href="{path}"' in desk and "No batch awaits approval." not in desk
        page = cleo.get(path).text
        assert page.count('href="/records/') == 3 and "What approval would destroy" in page
    with signed_in(web, "alex") as alex:
        token = csrf_for(alex.get(path).text, f"{path}/approve")
        refused = alex.post(f"{path}/approve", data={"csrf": token, "confirm": "yes"})
        assert refused.status_code == 403 and "two-person rule" in refused.text
    with signed_in(web, "chief") as chief:
        token = csrf_for(chief.get(path).text, f"{path}/approve")
        refused = chief.post(f"{path}/approve", data={"csrf": token, "confirm": "yes"})
        assert refused.status_code == 403
        assert "does not hold the records-officer role" in refused.text
        assert "no longer approves destruction" in refused.text
        assert "No batch awaits approval." not in chief.get("/retention").text
    with signed_in(web, "cleo") as cleo:
        token = csrf_for(cleo.get(path).text, f"{path}/approve")
        refused = cleo.post(f"{path}/approve", data={"csrf": token, "confirm": "yes"})
        assert refused.status_code == 403 and "records-officer role" in refused.text
    with signed_in(web, "rita") as rita:
        home = rita.get("/retention").text
        for link in ("/records", "/requests", "/holds", "/productions", "/audit", "/retention"):
            assert f'href="{link}"' in home, link
        token = csrf_for(rita.get(path).text, f"{path}/approve")
        assert rita.post(f"{path}/approve", data={"confirm": "yes"}).status_code == 403
        unconfirmed = rita.post(f"{path}/approve", data={"csrf": token})
        assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.text
        done = rita.post(f"{path}/approve", data={"csrf": token, "confirm": "yes"})
        assert done.status_code == 303
        page = rita.get(done.headers["location"]).text
        assert "is destroyed and its certificate written" in page
        assert "Certificate checked</dt><dd>verified" in page
        desk = rita.get("/retention").text
        assert "No batch awaits approval." in desk and "approved by rita" in desk
    with signed_in(web, "dana") as dana:
        for got in (dana.get("/retention"), dana.get(path)):
            assert got.status_code == 403 and "holds none of the roles" in got.text


@pytest.mark.slow
def test_retention_pages_pass_axe_at_320_and_1280_pixels(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the desk (with a batch awaiting, then
    with none and a certified one), a batch awaiting approval, a refusal and an approved
    batch, at 320 and 1280 pixels, and nothing scrolls sideways."""
    inst = staffed(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    batch = retention.list_batch(inst.app, ALEX)
    assert batch is not None
    path = f"/retention/{batch.id}"
    try:
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "rita", "/retention")
                    for shown in ("/retention", path):
                        page.goto(f"{url}{shown}")
                        assert not (found := axe_violations(page)), f"{shown}: {describe(found)}"
                        assert page.evaluate(NO_SIDEWAYS), (shown, page.evaluate(WIDEST))
                    if width == 1280:
                        page.click(f"text=Approve batch {batch.id}")
                        page.wait_for_selector("p.error")
                        assert not (found := axe_violations(page)), describe(found)
                        page.check("#confirm")
                        page.click(f"text=Approve batch {batch.id}")
                        page.wait_for_selector("p.done")
                        assert not (found := axe_violations(page)), describe(found)
                        assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                        page.goto(f"{url}/retention")
                        assert not (found := axe_violations(page)), describe(found)
                finally:
                    context.close()
    finally:
        inst.app.close()
