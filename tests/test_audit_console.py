"""The audit trail in the console: filtered by actor, action, object and days, and as CSV;
clerks and admins only. Over a real uvicorn on a free port against SQLite and PostgreSQL;
the page checked with axe at 320 and 1280 pixels."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from bulletin import audit as trail
from bulletin.app import Actor, audit
from bulletin.app.audit import Filter
from bulletin.errors import Refused, UsageError
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, signed_in
from tests.test_web import PEOPLE, add_with_password, serving

CLEO = Actor("cleo", "session", "127.0.0.1")


def events(inst: Instance) -> None:
    """Three events a day apart: cleo placed a hold, abe approved a notice, cleo added a
    redaction (with a reason a spreadsheet would take for a formula)."""
    with Session(inst.app.engine) as session:
        for days, actor, action, kind, ident, reason in (
            (2, "cleo", "hold-placed", "hold", "1", "Litigation"),
            (1, "abe", "approved", "notice", "7", "Fine"),
            (0, "cleo", "redaction-added", "record", "3", "=HYPERLINK(1)"),
        ):
            trail.record_event(
                session,
                at=inst.clock.now() - timedelta(days=days),
                actor=actor,
                action=action,
                object_type=kind,
                object_id=ident,
                reason=reason,
            )
        session.commit()


def ours(actions: list[str]) -> list[str]:
    """``actions`` without those of signing in and setting passwords."""
    return [a for a in actions if not a.startswith("user.")]


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = make_instance(tmp_path, db_url, PEOPLE)
    for name, roles in {"cleo": ["clerk"], "dana": ["dispatcher"]}.items():
        add_with_password(inst.app, name, *roles)
    events(inst)
    yield inst
    inst.app.close()


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


def test_the_application_layer_filters_events_and_refuses_a_dispatcher(site: Instance) -> None:
    """Each filter narrows; days are whole days in the agency's zone, both ends included;
    a dispatcher is refused; a range the wrong way round is a usage error."""
    mine = audit.search_events(site.app, CLEO, Filter(actor="cleo"))
    assert ours([e.action for e in mine]) == ["redaction-added", "hold-placed"]
    assert [e.actor for e in audit.search_events(site.app, CLEO, Filter(action="approved"))] == [
        "abe"
    ]
    held = audit.search_events(site.app, CLEO, Filter(object_type="hold", object_id="1"))
    assert [e.action for e in held] == ["hold-placed"]
    today = site.clock.now().date()
    one_day = audit.search_events(
        site.app, CLEO, Filter(since=today - timedelta(days=1), until=today - timedelta(days=1))
    )
    assert [e.action for e in one_day] == ["approved"]
    with pytest.raises(UsageError, match="first day comes after"):
        audit.search_events(site.app, CLEO, Filter(since=today, until=today - timedelta(days=1)))
    with pytest.raises(Refused, match="holds none of the roles clerk, records-officer, admin"):
        audit.search_events(site.app, Actor("dana"), Filter())


def test_a_clerk_filters_the_trail_and_takes_it_as_csv(site: Instance, web: str) -> None:
    """The page lists the events matching the filter; the CSV holds the same, with a
    formula-like cell defused; a bad day is shown on the page; a dispatcher is refused."""
    with signed_in(web, "cleo") as cleo:
        page = cleo.get("/audit", params={"actor": "cleo"})
        assert page.status_code == 200
        assert "redaction-added" in page.text and "hold-placed" in page.text
        assert "<td>approved</td>" not in page.text
        assert 'href="/audit.csv?actor=cleo"' in page.text
        got = cleo.get("/audit.csv", params={"actor": "cleo"})
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert ours([r["action"] for r in rows]) == ["redaction-added", "hold-placed"]
        assert next(r for r in rows if r["action"] == "redaction-added")["reason"] == (
            "'=HYPERLINK(1)"
        )
        bad = cleo.get("/audit", params={"since": "yesterday"})
        assert bad.status_code == 400 and "is not a date" in bad.text
    with signed_in(web, "dana") as dana:
        for path in ("/audit", "/audit.csv"):
            got = dana.get(path)
            assert got.status_code == 403 and "holds none of the roles" in got.text, path


@pytest.mark.slow
def test_the_audit_page_passes_axe_at_320_and_1280_pixels(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the audit page (all events, filtered
    to none, with an error) at 320 and 1280 pixels, and nothing scrolls sideways."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    add_with_password(inst.app, "cleo", "clerk")
    events(inst)
    try:
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "cleo", "/audit")
                    for path in ("/audit", "/audit?actor=nobody", "/audit?until=soon"):
                        page.goto(f"{url}{path}")
                        assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                        assert page.evaluate(NO_SIDEWAYS), (path, page.evaluate(WIDEST))
                finally:
                    context.close()
    finally:
        inst.app.close()
