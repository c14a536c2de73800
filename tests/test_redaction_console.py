"""Redaction by selection on a record's console page: the words chosen by typing them (and
which occurrence) or, with JavaScript, by selecting them in the archived text; the public
rendering with its box previewed before saving; redactions listed and removed, audited; the
archive unchanged. Over a real uvicorn on a free port against SQLite and PostgreSQL; the flow
end to end in Chromium, and the page checked with axe at 320 and 1280 pixels."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlmodel import Session, col, select

from bulletin.app import Actor, exports, redactions
from bulletin.archiver.store.base import object_key
from bulletin.errors import Refused, UsageError
from bulletin.models import AuditEvent, Record
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_portal import PORTAL, post
from tests.test_portal import serving as portal_serving
from tests.test_web import PEOPLE, add_with_password, serving

SECRET = "555-0142"
TEXT = f"Missing person: call {SECRET} with sightings"
TWICE = "Call Ann Lee or ask Ann Lee's neighbour"
LABEL = "G.L. c.4 §7(26)(c)"
CLEO = Actor("cleo", "session", "127.0.0.1")
DANA = Actor("dana", "session", "127.0.0.1")


def config() -> str:
    return PEOPLE + PORTAL.format(rate=1000, comments="false")


def seeded(inst: Instance) -> dict[str, int]:
    """Two agency posts on the feed: one with a phone number, one naming a person twice."""
    made = inst.app.archiver.archive([post("p1", TEXT), post("p2", TWICE, minutes=1)])
    return {"phone": made[0].id or 0, "twice": made[1].id or 0}


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """cleo (clerk), dana (dispatcher), adam (admin), each with a password."""
    inst = make_instance(tmp_path, db_url, config())
    for name, roles in {"cleo": ["clerk"], "dana": ["dispatcher"], "adam": ["admin"]}.items():
        add_with_password(inst.app, name, *roles)
    yield inst
    inst.app.close()


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


def _plain(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _audited(inst: Instance) -> list[tuple[str, str]]:
    with Session(inst.app.engine) as session:
        rows = session.exec(
            select(AuditEvent.action, AuditEvent.actor)
            .where(col(AuditEvent.action).like("redaction-%"))
            .order_by(col(AuditEvent.id))
        ).all()
    return [(a, b) for a, b in rows]


def test_phrase_spans_find_one_occurrence_or_all() -> None:
    """The n-th place of a phrase, or every place; a missing phrase or occurrence is a usage
    error naming how many there are."""
    assert redactions.phrase_spans(TWICE, "Ann Lee", 2) == [(20, 27)]
    assert redactions.phrase_spans(TWICE, "Ann Lee", None) == [(5, 12), (20, 27)]
    with pytest.raises(UsageError, match="2 time"):
        redactions.phrase_spans(TWICE, "Ann Lee", 3)
    with pytest.raises(UsageError, match="does not contain"):
        redactions.phrase_spans(TWICE, "Bob", None)
    with pytest.raises(UsageError, match="say what to withhold"):
        redactions.phrase_spans(TWICE, "", None)


def test_a_clerk_previews_saves_and_removes_a_redaction(site: Instance, web: str) -> None:
    """Preview shows the public rendering with the box and saves nothing; saving withholds
    only the occurrence chosen; the page lists it and removes it with a reason; both steps
    are audited; the archived text never changes."""
    ids = seeded(site)
    path = f"/records/{ids['twice']}"
    with signed_in(web, "cleo") as cleo:
        page = cleo.get(path)
        assert page.status_code == 200
        assert 'id="archived-text"' in page.text and "/static/select.js" in page.text
        assert '<option value="26c"' in page.text
        token = csrf_for(page.text, f"{path}/redact")
        form = {"csrf": token, "phrase": "Ann Lee", "occurrence": "2", "code": "26c"}
        shown = cleo.post(f"{path}/redact", data=form | {"action": "preview"})
        assert shown.status_code == 200
        preview = shown.text.split('id="preview-heading"')[1].split("</section>")[0]
        assert f"WITHHELD: {LABEL}" in html.unescape(preview)
        inner = re.search(r'<blockquote class="text public-text">(.*?)</blockquote>', preview)
        assert inner and _plain(inner.group(1)).startswith("Call Ann Lee or ask █ WITHHELD:")
        assert redactions.list_redactions(site.app, CLEO) == []
        # no reason: refused, nothing saved, the form keeps what was typed
        refused = cleo.post(f"{path}/redact", data=form | {"action": "save"})
        assert refused.status_code == 400 and 'class="error"' in refused.text
        assert 'value="Ann Lee"' in refused.text
        saved = cleo.post(
            f"{path}/redact", data=form | {"action": "save", "reason": "A private name"}
        )
        assert saved.status_code == 303 and saved.headers["location"] == f"{path}?done=redacted"
        [made] = redactions.list_redactions(site.app, CLEO)
        assert (made.record_id, made.start, made.end, made.reason) == (
            ids["twice"],
            20,
            27,
            "A private name",
        )
        page = cleo.get(f"{path}?done=redacted")
        assert "The text is withheld from the public" in page.text
        assert f"Redaction {made.id}, characters 20\u201327" in _plain(page.text)
        # overlapping the one in force: refused in the preview already
        again = cleo.post(f"{path}/redact", data=form | {"action": "preview"})
        assert again.status_code == 403 and f"overlaps redaction {made.id}" in again.text
        remove = f"{path}/redactions/{made.id}/remove"
        token = csrf_for(page.text, remove)
        assert cleo.post(remove, data={"csrf": token, "reason": " "}).status_code == 400
        gone = cleo.post(remove, data={"csrf": token, "reason": "The requester is Ann Lee"})
        assert gone.status_code == 303 and gone.headers["location"] == f"{path}?done=removed"
        after = cleo.get(gone.headers["location"]).text
        assert "Removed redactions" in after and "The requester is Ann Lee" in after
        assert cleo.post(remove, data={"csrf": token, "reason": "x"}).status_code == 403
    assert redactions.list_redactions(site.app, CLEO) == []
    assert _audited(site) == [("redaction-added", "cleo"), ("redaction-removed", "cleo")]
    with Session(site.app.engine) as session:
        record = session.get(Record, ids["twice"])
        assert record is not None and record.text == TWICE


def test_every_occurrence_when_none_is_named(site: Instance, web: str) -> None:
    """An empty occurrence withholds every place the words stand."""
    ids = seeded(site)
    path = f"/records/{ids['twice']}"
    with signed_in(web, "cleo") as cleo:
        token = csrf_for(cleo.get(path).text, f"{path}/redact")
        data = {"csrf": token, "phrase": "Ann Lee", "code": "26c", "reason": "Names"}
        assert cleo.post(f"{path}/redact", data=data | {"action": "save"}).status_code == 303
    spans = [(r.start, r.end) for r in redactions.list_redactions(site.app, CLEO)]
    assert spans == [(5, 12), (20, 27)]


def test_the_redaction_forms_need_their_token_and_the_clerk_role(site: Instance, web: str) -> None:
    """Without the form's token nothing is done; a dispatcher is refused the page and the
    forms; an admin without the clerk role sees the form but the application layer refuses
    the preview and the change."""
    ids = seeded(site)
    path = f"/records/{ids['phone']}"
    data = {"phrase": SECRET, "code": "26c", "reason": "Phone", "action": "save"}
    with signed_in(web, "cleo") as cleo:
        assert cleo.post(f"{path}/redact", data=data).status_code == 403
        foreign = csrf_for(cleo.get("/holds/new").text, "/holds/new")
        assert cleo.post(f"{path}/redact", data=data | {"csrf": foreign}).status_code == 403
    assert redactions.list_redactions(site.app, CLEO) == []
    with signed_in(web, "dana") as dana:
        got = dana.get(path)
        assert got.status_code == 403
        assert "holds none of the roles clerk, records-officer, admin" in got.text
    with signed_in(web, "adam") as adam:
        token = csrf_for(adam.get(path).text, f"{path}/redact")
        for action in ("preview", "save"):
            got = adam.post(f"{path}/redact", data=data | {"csrf": token, "action": action})
            assert got.status_code == 403 and "does not hold the clerk role" in got.text
    assert redactions.list_redactions(site.app, CLEO) == []


def test_the_application_layer_refuses_redaction_to_a_dispatcher(site: Instance) -> None:
    """Whichever door asks, a dispatcher may not preview, add or remove a redaction."""
    ids = seeded(site)
    with pytest.raises(Refused, match="does not hold the clerk role"):
        redactions.preview_redaction(site.app, DANA, ids["phone"], code="26c", spans=[(0, 7)])
    with pytest.raises(Refused, match="does not hold the clerk role"):
        redactions.add_redaction(site.app, DANA, ids["phone"], code="26c", reason="x", match="x")
    made = redactions.add_redaction(
        site.app, CLEO, ids["phone"], code="26c", reason="Phone", match=SECRET
    )
    with pytest.raises(Refused, match="does not hold the clerk role"):
        redactions.remove_redaction(site.app, DANA, made.redactions[0].id or 0, reason="x")


def _threads_html(out: Path) -> str:
    pages = sorted((out / "data/threads").glob("*.html"))
    return "".join(p.read_text("utf-8") for p in pages if p.name != "index.html")


@pytest.fixture
def browser_site(tmp_path: Path) -> Iterator[Instance]:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", config())
    add_with_password(inst.app, "cleo", "clerk")
    yield inst
    inst.app.close()


SELECT = """([needle]) => {
  const source = document.getElementById('archived-text');
  const node = source.firstChild;
  const at = node.data.indexOf(needle);
  const range = document.createRange();
  range.setStart(node, at);
  range.setEnd(node, at + needle.length + 1);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}"""


@pytest.mark.slow
def test_select_preview_save_then_portal_and_productions(
    browser_site: Instance, browser: Any, tmp_path: Path
) -> None:
    """In Chromium a clerk selects the phone number in the archived text (the form fills in),
    previews the box, saves; then the public portal and a public production show the box and
    not the number, a counsel production shows the number, and the archived object still
    re-hashes to its sha256, byte for byte as before."""
    ids = seeded(browser_site)
    with Session(browser_site.app.engine) as session:
        record = session.get(Record, ids["phone"])
        assert record is not None
    key = object_key(record.object_sha256)
    before = browser_site.app.store.get(key)
    path = f"/records/{ids['phone']}"
    with serving(browser_site.app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        try:
            browser_sign_in(page, url, "cleo", path)
            page.evaluate(SELECT, [SECRET])
            page.wait_for_function(
                "([v]) => document.getElementById('phrase').value === v", arg=[SECRET]
            )
            assert page.input_value("#occurrence") == "1"
            assert SECRET in page.inner_text("#selected")
            page.select_option("#code", "26c")
            page.fill("#redact-reason", "A private telephone number")
            page.click("button[value=preview]")
            page.wait_for_selector("#preview-heading")
            shown = page.inner_text(".public-text")
            assert f"WITHHELD: {LABEL}" in shown and SECRET not in shown
            assert redactions.list_redactions(browser_site.app, CLEO) == []
            page.click("button[value=save]")
            page.wait_for_url(f"{url}{path}?done=redacted")
            assert "The text is withheld from the public" in page.inner_text("main")
        finally:
            context.close()
    [made] = redactions.list_redactions(browser_site.app, CLEO)
    assert (made.start, made.end) == (TEXT.index(SECRET), TEXT.index(SECRET) + len(SECRET))
    with (
        portal_serving(browser_site.app) as portal,
        httpx.Client(timeout=30, base_url=portal) as public,
    ):
        for shown_path in (f"/records/{ids['phone']}", "/search?q=missing"):
            got = public.get(shown_path)
            assert got.status_code == 200, shown_path
            assert SECRET not in got.text and f"WITHHELD: {LABEL}" in got.text, shown_path
    public_out, counsel_out = tmp_path / "public", tmp_path / "counsel"
    exports.produce(browser_site.app, CLEO, query="missing", out=public_out)
    exports.produce(browser_site.app, CLEO, query="missing", out=counsel_out, production="counsel")
    public_html = _threads_html(public_out)
    assert f"WITHHELD: {LABEL}" in public_html and SECRET not in public_html
    assert f'<mark class="redacted">{SECRET}</mark>' in _threads_html(counsel_out)
    after = browser_site.app.store.get(key)
    assert after == before
    assert hashlib.sha256(after).hexdigest() == record.object_sha256


@pytest.mark.slow
def test_the_redaction_form_passes_axe_at_320_and_1280_pixels(
    browser_site: Instance, browser: Any
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on a record's page with the redaction
    form, its preview, a refusal, a redaction in force with its remove form and a removed
    one, at 320 and 1280 pixels, and no page scrolls sideways."""
    ids = seeded(browser_site)
    made = redactions.add_redaction(
        browser_site.app, CLEO, ids["twice"], code="26c", reason="Name", match="Ann Lee's"
    )
    first = redactions.add_redaction(
        browser_site.app, CLEO, ids["twice"], code="26c", reason="Name", spans=[(5, 12)]
    )
    redactions.remove_redaction(
        browser_site.app, CLEO, first.redactions[0].id or 0, reason="Public already"
    )
    assert made.redactions
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "cleo", f"/records/{ids['phone']}")
                for path in (f"/records/{ids['phone']}", f"/records/{ids['twice']}"):
                    page.goto(f"{url}{path}")
                    assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                    assert page.evaluate(NO_SIDEWAYS), (path, page.evaluate(WIDEST))
                page.goto(f"{url}/records/{ids['phone']}")
                page.fill("#phrase", SECRET)
                page.click("button[value=preview]")
                page.wait_for_selector("#preview-heading")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#phrase", "zebra")
                page.click("button[value=save]")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
            finally:
                context.close()
