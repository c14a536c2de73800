"""The records clerk's console: search the archive in its query language and read one record
with every version, the word changes between them, its redactions, hashes and ledger
position; JSON twins; only clerks and admins. Over a real uvicorn on a free port, against
SQLite and PostgreSQL; pages checked with axe-core in Chromium at 320 and 1280 pixels."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from bulletin.app import Actor, clerk_desk, holds, record_pages, redactions, requests
from bulletin.app.clerk_desk import urgency
from bulletin.app.record_pages import MAX_HITS, word_diff
from bulletin.archiver.archive import Capture
from bulletin.connectors.base import ItemState, RemoteItem
from bulletin.errors import NotFound, Refused
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import (
    NO_SIDEWAYS,
    PEOPLE_ROLES,
    WIDEST,
    browser_sign_in,
    csrf_for,
    signed_in,
)
from tests.test_web import PEOPLE, add_with_password, serving

FIRST = "The plows skipped Elm Street and my phone is 555-0100"
SECOND = "The plows cleared Elm Street today and my phone is 555-0100"
CLEO = Actor("cleo", "session", "127.0.0.1")


def _item(remote_id: str, text: str, minute: int, state: ItemState = "visible") -> Capture:
    posted = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    item = RemoteItem(
        "comment", remote_id, text, "Ann Lee", posted, parent_id="p1", thread_id="p1", state=state
    )
    return Capture("facebook", "facebook", item)


def seeded(inst: Instance) -> dict[str, int]:
    """An edited comment (two versions, the newest with its phone number redacted), another
    comment, and a post: their record ids by name."""
    archiver = inst.app.archiver
    [post, first, other] = archiver.archive(
        [
            Capture(
                "facebook",
                "facebook",
                RemoteItem(
                    "post", "p1", "Snow emergency: parking ban", "Agency", None, thread_id="p1"
                ),
            ),
            _item("c1", FIRST, 1),
            _item("c2", "Road salt please", 2),
        ]
    )
    inst.clock.advance(timedelta(hours=2))
    [second] = archiver.archive([_item("c1", SECOND, 1)])
    assert second.version == 2 and second.id is not None
    redactions.add_redaction(
        inst.app, CLEO, second.id, code="26c", reason="A private phone number", match="555-0100"
    )
    ids = {"post": post.id, "first": first.id, "other": other.id, "second": second.id}
    return {k: v for k, v in ids.items() if v is not None}


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """dana (dispatcher), cleo (clerk), adam (admin) and the others of the
    dispatcher console, each with a password; an archive with an edited comment."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    for name, roles in {**PEOPLE_ROLES, "adam": ["admin"]}.items():
        add_with_password(inst.app, name, *roles)
    yield inst
    inst.app.close()


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


def test_word_diff_marks_words_added_and_taken_away() -> None:
    """Changed words are one taken away and one added; the rest is kept; the pieces put
    together again give either text."""
    changes = word_diff(FIRST, SECOND)
    assert ("del", "skipped") in changes and ("ins", "cleared") in changes
    assert ("ins", "today ") in changes or ("ins", " today") in changes
    assert "".join(t for op, t in changes if op != "ins") == FIRST
    assert "".join(t for op, t in changes if op != "del") == SECOND
    assert word_diff("same", "same") == [("same", "same")]


def test_a_clerk_searches_and_reads_a_record_with_its_versions(site: Instance, web: str) -> None:
    """The clerk's search lists matching items with their account, author, state, versions
    and a link; the record page shows both versions with the word diff, the redaction in
    force (its text kept for the clerk, marked), hashes and ledger position; the JSON twins
    say the same."""
    ids = seeded(site)
    with signed_in(web, "cleo") as cleo:
        assert '<a href="/records">Records</a>' in cleo.get("/records").text
        page = cleo.get("/records", params={"q": "elm"})
        assert page.status_code == 200
        assert f'href="/records/{ids["second"]}"' in page.text
        assert f'href="/records/{ids["other"]}"' not in page.text
        row = page.text.split(f'href="/records/{ids["second"]}"')[1].split("</tr>")[0]
        assert "<td>facebook</td>" in row and "<td>Ann Lee</td>" in row and "<td>2</td>" in row
        everything = cleo.get("/records").text
        for key in ("post", "second", "other"):
            assert f'href="/records/{ids[key]}"' in everything, key
        found = cleo.get("/records.json", params={"q": "elm"}).json()
        assert found == cleo.get("/records", params={"q": "elm", "format": "json"}).json()
        [hit] = found["hits"]
        assert (hit["id"], hit["versions"], hit["current_state"]) == (ids["second"], 2, "visible")
        assert hit["author"] == "Ann Lee" and hit["account"] == "facebook"
        assert cleo.get("/records.json", params={"q": "kind:comment", "limit": "1"}).json()["more"]
        capped = cleo.get("/records.json", params={"limit": "100000"}).json()
        assert capped["limit"] == MAX_HITS
        bad = cleo.get("/records", params={"q": "colour:blue"})
        assert bad.status_code == 400 and 'class="error"' in bad.text
        assert cleo.get("/records.json", params={"q": "colour:blue"}).status_code == 400

        one = cleo.get(f"/records/{ids['second']}")
        assert one.status_code == 200
        text = html.unescape(re.sub(r"<[^>]+>", "", one.text))
        assert "Version 1" in text and "Version 2 (this record)" in text
        assert f'href="/records/{ids["first"]}"' in one.text
        assert re.search(r"<del>.*skipped.*</del>", one.text)
        assert re.search(r"<ins>.*cleared.*</ins>", one.text)
        assert re.search(r"<mark>555-0100<span", one.text)
        assert "A private phone number" in one.text and "G.L. c.4 §7(26)(c)" in text
        detail = cleo.get(f"/records/{ids['second']}.json").json()
        assert detail == cleo.get(f"/records/{ids['second']}", params={"format": "json"}).json()
        assert detail["text"] == SECOND and detail["contradictions"] == []
        first, second = detail["versions"]
        assert (first["version"], second["version"]) == (1, 2)
        assert first["changes"] == [] and first["redactions"] == []
        assert {"op": "del", "text": "skipped"} in second["changes"]
        [red] = second["redactions"]
        assert SECOND[red["start"] : red["end"]] == "555-0100" and red["exemption"] == "26c"
        for v in (first, second):
            assert v["ledger_seq"] and len(v["entry_hash"]) == 64
            assert len(v["object_sha256"]) == 64 and v["object_sha256"] in one.text
            assert v["entry_hash"] in one.text
        assert cleo.get("/records/999999").status_code == 404


def test_a_post_in_another_language_is_marked(site: Instance, web: str) -> None:
    """The record page marks the text of a post archived in Spanish with lang="es" (the
    console is in English); its JSON says "lang"; a comment has none."""
    ids = seeded(site)
    spanish = spanish_post(site)
    with signed_in(web, "cleo") as cleo:
        page = cleo.get(f"/records/{spanish}").text
        assert re.search(r'<blockquote class="text" lang="es"[^>]*>Prohibido estacionar', page)
        assert cleo.get(f"/records/{spanish}.json").json()["lang"] == "es"
        comment = cleo.get(f"/records/{ids['second']}").text
        assert "lang=" not in comment.split("<main")[1]
        assert cleo.get(f"/records/{ids['second']}.json").json()["lang"] is None


def spanish_post(inst: Instance) -> int:
    """The Spanish post of a notice in two languages, as the publisher archives it."""
    item = RemoteItem(
        "post",
        "p1-es",
        "Prohibido estacionar: emergencia de nieve",
        "Agency",
        None,
        thread_id="p1",
        extra={"lang": "es", "notice_id": 3},
    )
    [record] = inst.app.archiver.archive([Capture("facebook", "facebook", item, notice_id=3)])
    assert record.id is not None
    return record.id


def test_a_post_links_the_same_notice_in_other_languages(site: Instance, web: str) -> None:
    """The record page of a notice's Spanish post lists its English post under "Also
    published in", linked to its record, the language named in itself and marked; the JSON
    lists it; the English post's page lists the Spanish one."""
    english, spanish = bilingual_posts(site)
    with signed_in(web, "cleo") as cleo:
        page = cleo.get(f"/records/{spanish}").text
        assert (
            f'<a href="/records/{english}" hreflang="en"><span lang="en">English</span> (en) '
            "on facebook</a>"
        ) in page
        data = cleo.get(f"/records/{spanish}.json").json()
        assert [(s["lang"], s["name"], s["record_id"]) for s in data["siblings"]] == [
            ("en", "English", english)
        ]
        page = cleo.get(f"/records/{english}").text
        assert f'<a href="/records/{spanish}" hreflang="es"><span lang="es">Español</span>' in page


def bilingual_posts(inst: Instance) -> tuple[int, int]:
    """A notice's English post and its Spanish reply, as the publisher archives them."""

    def post(remote_id: str, text: str, lang: str, other: str) -> Capture:
        item = RemoteItem(
            "post",
            remote_id,
            text,
            "Agency",
            None,
            thread_id="p9",
            parent_id=None if lang == "en" else "p9",
            extra={
                "lang": lang,
                "notice_id": 9,
                "primary_lang": "en",
                "siblings": [{"lang": other, "account": "facebook", "key": f"notice-9-{other}"}],
            },
        )
        return Capture("facebook", "facebook", item, notice_id=9)

    english, spanish = inst.app.archiver.archive(
        [
            post("p9", "Snow emergency: parking ban", "en", "es"),
            post("p9-es", "Emergencia de nieve: prohibido estacionar", "es", "en"),
        ]
    )
    assert english.id is not None and spanish.id is not None
    return english.id, spanish.id


def test_a_held_record_is_marked(site: Instance, web: str) -> None:
    """A record under legal hold says so in the results and on its page, and in the JSON."""
    ids = seeded(site)
    holds.place_hold(site.app, CLEO, name="snow", query="road salt", reason="Litigation")
    with signed_in(web, "cleo") as cleo:
        page = cleo.get("/records", params={"q": "salt"}).text
        assert "on legal hold" in page
        one = cleo.get(f"/records/{ids['other']}")
        assert "<strong>On legal hold:</strong>" in one.text
        assert cleo.get(f"/records/{ids['other']}.json").json()["legal_hold"] is True
        assert "On legal hold" not in cleo.get(f"/records/{ids['post']}").text


def test_only_clerks_and_admins_read_records(site: Instance, web: str) -> None:
    """Without a session the pages go to sign-in and back; a dispatcher (and a reader) is
    refused by the application layer (403) and sees no Records link; an admin reads."""
    ids = seeded(site)
    paths = ("/records", "/records.json", f"/records/{ids['second']}")
    with httpx.Client(timeout=30, base_url=web, follow_redirects=False) as anonymous:
        for path in paths:
            got = anonymous.get(path)
            assert got.status_code == 303, path
            assert got.headers["location"] == f"/sign-in?next={path}"
    for name in ("dana", "rita"):
        with signed_in(web, name) as person:
            for path in (*paths, f"/records/{ids['second']}.json"):
                got = person.get(path)
                assert got.status_code == 403, (name, path)
                assert "holds none of the roles clerk, records-officer, admin" in got.text
            assert '<a href="/records">' not in person.get("/notices").text
    with signed_in(web, "adam") as adam:
        assert adam.get(f"/records/{ids['second']}").status_code == 200
        assert adam.get("/records.json").json()["hits"]


@pytest.fixture
def browser_site(tmp_path: Path) -> Iterator[Instance]:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    add_with_password(inst.app, "cleo", "clerk")
    yield inst
    inst.app.close()


@pytest.mark.slow
def test_records_pages_pass_axe_at_320_and_1280_pixels(
    browser_site: Instance, browser: Any
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the search form (empty, with results,
    with an error), a record with two versions and a redaction, the requests (overdue, near,
    ok) and the holds (and a refused release), the request and hold forms (empty, previewed,
    refused), a request's page (and a refused extension), at 320 and 1280 pixels, and no page
    scrolls sideways."""
    ids = seeded(browser_site)
    spanish = spanish_post(browser_site)
    holds.place_hold(browser_site.app, CLEO, name="salt", query="road salt", reason="Claim")
    for days_ago in (0, 14, 60):
        request_id = opened(browser_site, days_ago, f"Requester {days_ago}")
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "cleo", "/records")
                for path in (
                    "/records",
                    "/records?q=elm",
                    "/records?q=colour%3Ablue",
                    f"/records/{ids['second']}",
                    f"/records/{ids['first']}",
                    f"/records/{spanish}",
                    "/requests",
                    "/holds",
                    "/requests/new?q=elm",
                    f"/requests/{request_id}",
                    "/holds/new?q=road%20salt",
                    "/holds/new?q=colour%3Ablue",
                ):
                    page.goto(f"{url}{path}")
                    assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                    assert page.evaluate(NO_SIDEWAYS), (path, page.evaluate(WIDEST))
                page.goto(f"{url}/requests/new?q=elm")
                page.click("text=Preview")
                page.wait_for_selector("#preview-heading")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#q", "zebra")
                page.click("button[value=open]")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.goto(f"{url}/requests/{request_id}")
                page.click("text=/^Extend request \\d+$/")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.goto(f"{url}/holds")
                page.fill("input[name=reason]", " ")
                page.click("text=/^Release hold \\d+$/")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
            finally:
                context.close()


def test_urgency_of_a_deadline() -> None:
    """Past the deadline is overdue; within warn_days (the deadline day too) near; else ok."""
    assert [urgency(d, 3) for d in (-1, 0, 3, 4)] == ["overdue", "near", "near", "ok"]


def opened(inst: Instance, days_ago: int, requester: str) -> int:
    received = inst.clock.now().date() - timedelta(days=days_ago)
    view = requests.open_request(
        inst.app,
        CLEO,
        requester=requester,
        received=received,
        description=f"Comments about snow, for {requester}",
        query="kind:post",
        allow_empty=True,
    )
    assert view.request.id is not None
    return view.request.id


def test_requests_are_listed_by_due_date_with_days_left(site: Instance, web: str) -> None:
    """Open requests are listed soonest due first, each with its days left and urgency (red
    when overdue, amber near the deadline); the JSON twin says the same; a dispatcher is
    refused."""
    seeded(site)
    fresh = opened(site, 0, "Fresh Times")
    late = opened(site, 60, "Late Ledger")
    near = opened(site, 14, "Near Gazette")
    with signed_in(web, "cleo") as cleo:
        page = cleo.get("/requests")
        assert page.status_code == 200
        order = [page.text.index(f"Request {i}:") for i in (late, near, fresh)]
        assert order == sorted(order)
        assert 'class="due-overdue"' in page.text and 'class="due-near"' in page.text
        docket = cleo.get("/requests.json").json()
        assert docket == cleo.get("/requests", params={"format": "json"}).json()
        assert [(r["id"], r["urgency"]) for r in docket["requests"]] == [
            (late, "overdue"),
            (near, "near"),
            (fresh, "ok"),
        ]
        assert docket["requests"][2]["days_left"] == 10 and docket["warn_days"] == 3
        assert f"overdue by {-docket['requests'][0]['days_left']}" in page.text
    with signed_in(web, "dana") as dana:
        for path in ("/requests", "/requests.json", "/holds", "/holds.json"):
            got = dana.get(path)
            assert got.status_code == 403, path
            assert "holds none of the roles clerk, records-officer, admin" in got.text


def test_a_clerk_releases_a_hold_through_the_form(site: Instance, web: str) -> None:
    """The holds page lists open holds; releasing one needs the form's token and a reason;
    an admin without the clerk role is refused by the application layer; a request's own
    hold has no release form; the released hold leaves the list and its records leave
    legal hold."""
    ids = seeded(site)
    placed = holds.place_hold(site.app, CLEO, name="salt", query="road salt", reason="Claim")
    hold_id = placed.hold.id
    request_id = opened(site, 0, "Fresh Times")
    with signed_in(web, "cleo") as cleo:
        page = cleo.get("/holds")
        assert page.status_code == 200
        assert f"Hold {hold_id}: salt" in page.text
        assert f"Released when records request {request_id} closes." in page.text
        listed = cleo.get("/holds.json").json()["holds"]
        assert {h["id"]: h["records"] for h in listed}[hold_id] == 1
        action = f"/holds/{hold_id}/release"
        token = csrf_for(page.text, action)
        assert cleo.post(action, data={"reason": "Settled"}).status_code == 403
        wrong = {"csrf": "0" * 64, "reason": "Settled"}
        assert cleo.post(action, data=wrong).status_code == 403
        no_reason = cleo.post(action, data={"csrf": token, "reason": " "})
        assert no_reason.status_code == 400 and 'class="error"' in no_reason.text
        assert cleo.get(f"/records/{ids['other']}.json").json()["legal_hold"] is True
        with signed_in(web, "adam") as adam:
            assert adam.get("/holds").status_code == 200
            theirs = csrf_for(adam.get("/holds").text, action)
            refused = adam.post(action, data={"csrf": theirs, "reason": "Settled"})
            assert refused.status_code == 403
            assert "does not hold the clerk role" in refused.text
        done = cleo.post(action, data={"csrf": token, "reason": "Settled"})
        assert done.status_code == 303
        after = cleo.get(done.headers["location"]).text
        assert f"Hold {hold_id} is released; 1 records left legal hold." in after
        assert f"Hold {hold_id}: salt" not in after
        assert hold_id not in [h["id"] for h in cleo.get("/holds.json").json()["holds"]]
        assert cleo.get(f"/records/{ids['other']}.json").json()["legal_hold"] is False
        again = cleo.post(action, data={"csrf": token, "reason": "Settled"})
        assert again.status_code == 403


def test_the_application_layer_refuses_the_clerk_reads_to_a_dispatcher(site: Instance) -> None:
    """Whichever door asks, the clerk's reads are refused to a dispatcher before anything is
    looked up, and a clerk gets past the check."""
    dana = Actor("dana", "session", "127.0.0.1")
    reads: list[Callable[[Actor], object]] = [
        lambda who: record_pages.find_records(site.app, who, "elm"),
        lambda who: record_pages.record_page(site.app, who, 999999),
        lambda who: clerk_desk.docket(site.app, who),
        lambda who: clerk_desk.open_holds(site.app, who),
    ]
    for read in reads:
        with pytest.raises(Refused, match="holds none of the roles clerk, records-officer, admin"):
            read(dana)
    assert record_pages.find_records(site.app, CLEO, "elm").hits == []
    with pytest.raises(NotFound):
        record_pages.record_page(site.app, CLEO, 999999)


def _plain(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_clerk_opens_a_request_after_a_preview_then_extends_and_closes_it(
    site: Instance, web: str
) -> None:
    """The request form previews its scope (count and threads, nothing saved); Open creates
    the request with its hold; its page shows the deadline, days left and hold; an
    extension needs the statutory reason; closing releases the hold; refusals are shown on
    the page."""
    ids = seeded(site)
    received = site.clock.now().date().isoformat()
    with signed_in(web, "cleo") as cleo:
        assert 'href="/requests/new"' in cleo.get("/requests").text
        form = cleo.get("/requests/new", params={"q": "elm"})
        assert form.status_code == 200 and 'value="elm"' in form.text
        token = csrf_for(form.text, "/requests/new")
        given = {
            "csrf": token,
            "requester": "Elm Street Times",
            "received": received,
            "description": "Comments about the plows on Elm Street",
            "q": "elm",
        }
        preview = cleo.post("/requests/new", data=given | {"action": "preview"})
        assert preview.status_code == 200
        text = _plain(preview.text)
        assert "matches 2 archived records in 1 thread" in text, text
        assert "facebook thread p1" in text and 'value="Elm Street Times"' in preview.text
        assert requests.list_requests(site.app, CLEO) == []
        bad_date = cleo.post("/requests/new", data=given | {"received": "soon"})
        assert bad_date.status_code == 400 and "is not a date" in bad_date.text
        nothing = cleo.post("/requests/new", data=given | {"q": "zebra"})
        assert nothing.status_code == 403 and "matches no archived record" in nothing.text
        assert requests.list_requests(site.app, CLEO) == []

        done = cleo.post("/requests/new", data=given | {"action": "open"})
        assert done.status_code == 303
        [view] = requests.list_requests(site.app, CLEO)
        request_id = view.request.id
        assert request_id is not None
        assert done.headers["location"] == f"/requests/{request_id}?done=opened"
        assert view.request.requester == "Elm Street Times" and view.request.hold_id
        assert cleo.get(f"/records/{ids['second']}.json").json()["legal_hold"] is True
        page = cleo.get(done.headers["location"])
        text = _plain(page.text)
        assert f"Request {request_id} is opened." in text
        assert f"Due {view.request.due_on.isoformat()}" in text
        assert f"Business days left {view.days_left}" in text
        assert f"Hold {view.request.hold_id}: 2 records" in text
        assert f'href="/requests/{request_id}"' in cleo.get("/requests").text

        extend = f"/requests/{request_id}/extend"
        token = csrf_for(page.text, extend)
        no_reason = cleo.post(extend, data={"csrf": token, "days": "10", "reason": " "})
        assert no_reason.status_code == 400 and 'class="error"' in no_reason.text
        not_days = cleo.post(extend, data={"csrf": token, "days": "ten", "reason": "Volume"})
        assert not_days.status_code == 400
        reason = "Voluminous records (G.L. c.66 §10(b)(vi))"
        extended = cleo.post(extend, data={"csrf": token, "days": "10", "reason": reason})
        assert extended.status_code == 303
        after = requests.show_request(site.app, CLEO, request_id)
        assert after.request.extension_days == 10 and after.request.due_on > view.request.due_on
        text = _plain(cleo.get(extended.headers["location"]).text)
        assert "is extended" in text and reason in text and after.request.due_on.isoformat() in text

        close = f"/requests/{request_id}/close"
        token = csrf_for(page.text, close)
        closed = cleo.post(close, data={"csrf": token, "reason": "Answered in full"})
        assert closed.status_code == 303
        text = _plain(cleo.get(closed.headers["location"]).text)
        assert "is closed" in text and "Answered in full" in text and "released" in text
        assert cleo.get(f"/records/{ids['second']}.json").json()["legal_hold"] is False
        again = cleo.post(close, data={"csrf": token, "reason": "Answered in full"})
        assert again.status_code == 403 and 'class="error"' in again.text
        assert cleo.get("/requests/999999").status_code == 404


def test_a_clerk_places_a_hold_on_a_search_after_a_preview(site: Instance, web: str) -> None:
    """From a /records search the hold form previews the count and threads of its scope;
    placing it needs a name and reason; the placed hold is listed and its records held."""
    ids = seeded(site)
    with signed_in(web, "cleo") as cleo:
        results = cleo.get("/records", params={"q": "road salt"}).text
        assert 'href="/holds/new?q=road%20salt"' in results
        form = cleo.get("/holds/new", params={"q": "road salt"})
        assert form.status_code == 200
        assert "matches 1 archived records in 1 thread" in _plain(form.text)
        token = csrf_for(form.text, "/holds/new")
        given = {"csrf": token, "q": "salt", "name": "Salt claim", "reason": "Notice of claim"}
        preview = cleo.post("/holds/new", data=given | {"action": "preview"})
        assert preview.status_code == 200 and "facebook thread p1" in _plain(preview.text)
        assert holds.list_holds(site.app, CLEO) == []
        unnamed = cleo.post("/holds/new", data=given | {"name": " ", "action": "place"})
        assert unnamed.status_code == 400 and 'class="error"' in unnamed.text
        broken = cleo.post("/holds/new", data=given | {"q": "colour:blue", "action": "preview"})
        assert broken.status_code == 400 and 'class="error"' in broken.text
        assert cleo.get("/holds/new", params={"q": "colour:blue"}).status_code == 400
        assert holds.list_holds(site.app, CLEO) == []
        placed = cleo.post("/holds/new", data=given | {"action": "place"})
        assert placed.status_code == 303
        [hold] = holds.list_holds(site.app, CLEO)
        assert (hold.hold.name, hold.hold.reason, hold.records) == (
            "Salt claim",
            "Notice of claim",
            1,
        )
        assert placed.headers["location"] == f"/holds?done=placed-{hold.hold.id}-1"
        listed = cleo.get(placed.headers["location"]).text
        assert f"Hold {hold.hold.id} is placed on 1 records." in listed
        assert cleo.get(f"/records/{ids['other']}.json").json()["legal_hold"] is True


def test_the_clerk_forms_need_their_token_and_the_clerk_role(site: Instance, web: str) -> None:
    """Every form post without its token (or with another form's) is refused before anything
    is done; a dispatcher is refused the forms by the application layer; an admin without
    the clerk role gets the form but the application layer refuses the change."""
    seeded(site)
    request_id = opened(site, 0, "Fresh Times")
    posts = {
        "/requests/new": {"requester": "X", "received": "2026-03-02", "description": "Y"},
        f"/requests/{request_id}/extend": {"days": "5", "reason": "Volume"},
        f"/requests/{request_id}/close": {"reason": "Done"},
        "/holds/new": {"q": "salt", "name": "N", "reason": "R", "action": "place"},
    }
    with signed_in(web, "cleo") as cleo:
        foreign = csrf_for(cleo.get("/holds/new").text, "/holds/new")
        for path, data in posts.items():
            assert cleo.post(path, data=data).status_code == 403, path
            if path != "/holds/new":
                assert cleo.post(path, data=data | {"csrf": foreign}).status_code == 403, path
    assert holds.list_holds(site.app, CLEO) == [] or all(
        h.hold.request_id for h in holds.list_holds(site.app, CLEO)
    )
    assert requests.show_request(site.app, CLEO, request_id).request.state == "open"
    with signed_in(web, "dana") as dana:
        for path in ("/requests/new", "/holds/new", f"/requests/{request_id}"):
            got = dana.get(path)
            assert got.status_code == 403, path
            assert "holds none of the roles clerk, records-officer, admin" in got.text
    with signed_in(web, "adam") as adam:
        form = adam.get("/holds/new", params={"q": "salt"})
        assert form.status_code == 200
        data = posts["/holds/new"] | {"csrf": csrf_for(form.text, "/holds/new")}
        refused = adam.post("/holds/new", data=data)
        assert refused.status_code == 403 and "does not hold the clerk role" in refused.text
        page = adam.get(f"/requests/{request_id}").text
        close = f"/requests/{request_id}/close"
        refused = adam.post(close, data={"csrf": csrf_for(page, close), "reason": "Done"})
        assert refused.status_code == 403 and "does not hold the clerk role" in refused.text


def test_the_application_layer_refuses_the_clerk_forms_to_a_dispatcher(site: Instance) -> None:
    """Whichever door asks, a dispatcher may not preview a scope, read a request's page,
    open, extend or close a request or place a hold."""
    dana = Actor("dana", "session", "127.0.0.1")
    seeded(site)
    request_id = opened(site, 0, "Fresh Times")
    with pytest.raises(Refused, match="holds none of the roles clerk, records-officer, admin"):
        clerk_desk.preview_scope(site.app, dana, "elm")
    with pytest.raises(Refused, match="holds none of the roles clerk, records-officer, admin"):
        clerk_desk.request_page(site.app, dana, request_id)
    with pytest.raises(Refused, match="holds none of the roles clerk, records-officer, admin"):
        clerk_desk.may_keep_records(site.app, dana)
    changes: list[Callable[[Actor], object]] = [
        lambda who: requests.open_request(
            site.app,
            who,
            requester="X",
            received=site.clock.now().date(),
            description="Y",
            query="elm",
        ),
        lambda who: requests.extend_request(site.app, who, request_id, days=5, reason="Volume"),
        lambda who: requests.close_request(site.app, who, request_id, reason="Done"),
        lambda who: holds.place_hold(site.app, who, name="N", query="elm", reason="R"),
    ]
    for change in changes:
        with pytest.raises(Refused, match="does not hold the clerk role"):
            change(dana)
    preview = clerk_desk.preview_scope(site.app, CLEO, "elm")
    assert (preview.records, preview.threads, preview.more) == (2, [("facebook", "p1")], False)
