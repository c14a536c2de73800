"""Correspondence notes and fees on a records request: recorded from its console page
(audited, never changed), listed with the fees' total; clerks only. Over a real uvicorn on
a free port against SQLite and PostgreSQL; the page checked with axe at 320 and 1280
pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bulletin.app import Actor, clerk_desk, requests
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.models import AuditEvent
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_records_console import CLEO, opened
from tests.test_web import PEOPLE, add_with_password, serving

DANA = Actor("dana", "session", "127.0.0.1")


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = make_instance(tmp_path, db_url, PEOPLE)
    for name, roles in {"cleo": ["clerk"], "dana": ["dispatcher"]}.items():
        add_with_password(inst.app, name, *roles)
    yield inst
    inst.app.close()


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


def test_fee_amounts_are_read_in_cents() -> None:
    """Whole and decimal amounts, with or without a dollar sign; anything else is refused."""
    assert requests.fee_cents("12") == 1200
    assert requests.fee_cents("$12.5") == 1250
    assert requests.fee_cents(" 0.05 ") == 5
    for bad in ("", "12,50", "-3", "1.234", "ten"):
        with pytest.raises(UsageError, match="not an amount"):
            requests.fee_cents(bad)


def test_notes_and_fees_are_recorded_audited_and_totalled(site: Instance) -> None:
    """A clerk's note and fees land on the request's page, oldest first, with the total;
    each is audited (without its text); a dispatcher is refused; no request, no entry."""
    request_id = opened(site, 0, "Globe")
    requests.add_note(site.app, CLEO, request_id, text="Phoned the requester")
    requests.add_fee(site.app, CLEO, request_id, amount_cents=1250, text="Copies")
    requests.add_fee(site.app, CLEO, request_id, amount_cents=75, text="Postage")
    page = clerk_desk.request_page(site.app, CLEO, request_id)
    assert [(e.kind, e.text) for e in page.entries] == [
        ("note", "Phoned the requester"),
        ("fee", "Copies"),
        ("fee", "Postage"),
    ]
    assert page.fees_cents == 1325
    with Session(site.app.engine) as session:
        actions = session.exec(
            select(AuditEvent.action, AuditEvent.detail)
            .where(col(AuditEvent.object_type) == "request")
            .where(col(AuditEvent.action).like("request-%-added"))
            .order_by(col(AuditEvent.id))
        ).all()
    assert [a for a, _ in actions] == [
        "request-note-added",
        "request-fee-added",
        "request-fee-added",
    ]
    assert all("Phoned" not in (d or "") for _, d in actions)
    with pytest.raises(Refused, match="does not hold the clerk role"):
        requests.add_note(site.app, DANA, request_id, text="x")
    with pytest.raises(Refused, match="does not hold the clerk role"):
        requests.add_fee(site.app, DANA, request_id, amount_cents=1, text="x")
    with pytest.raises(NotFound):
        requests.add_note(site.app, CLEO, 999, text="x")
    with pytest.raises(UsageError):
        requests.add_fee(site.app, CLEO, request_id, amount_cents=0, text="Nothing")


def test_a_clerk_records_a_note_and_a_fee_on_the_page(site: Instance, web: str) -> None:
    """The forms (with their tokens) record a note and a fee; a bad amount is shown on the
    page; without the token nothing is done."""
    request_id = opened(site, 0, "Globe")
    path = f"/requests/{request_id}"
    with signed_in(web, "cleo") as cleo:
        page = cleo.get(path).text
        assert "No note or fee yet." in page
        note, fee = csrf_for(page, f"{path}/notes"), csrf_for(page, f"{path}/fees")
        assert cleo.post(f"{path}/notes", data={"note": "Hi"}).status_code == 403
        done = cleo.post(f"{path}/notes", data={"csrf": note, "note": "Emailed the estimate"})
        assert done.status_code == 303 and done.headers["location"] == f"{path}?done=noted"
        bad = cleo.post(f"{path}/fees", data={"csrf": fee, "amount": "lots", "for": "Copies"})
        assert bad.status_code == 400 and "not an amount" in bad.text
        done = cleo.post(f"{path}/fees", data={"csrf": fee, "amount": "12.50", "for": "Copies"})
        assert done.status_code == 303
        page = cleo.get(done.headers["location"]).text
        assert "The fee is recorded" in page and "Emailed the estimate" in page
        assert "fee 12.50</strong> for Copies" in page and "Fees charged: 12.50." in page
    with signed_in(web, "dana") as dana:
        assert dana.get(path).status_code == 403


@pytest.mark.slow
def test_the_request_page_with_notes_passes_axe(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on a request's page with a note and a
    fee, and with a refused fee, at 320 and 1280 pixels; nothing scrolls sideways."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    add_with_password(inst.app, "cleo", "clerk")
    request_id = opened(inst, 0, "Globe")
    requests.add_note(inst.app, CLEO, request_id, text="Phoned the requester")
    requests.add_fee(inst.app, CLEO, request_id, amount_cents=1250, text="Copies")
    path = f"/requests/{request_id}"
    try:
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "cleo", path)
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    page.fill("#amount", "lots")
                    page.click(f"text=Add the fee to request {request_id}")
                    page.wait_for_selector("p.error")
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                finally:
                    context.close()
    finally:
        inst.app.close()
