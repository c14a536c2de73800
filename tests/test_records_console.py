"""The records clerk's console: search the archive in its query language and read one record
with every version, the word changes between them, its redactions, hashes and ledger
position; JSON twins; only clerks and admins. Over a real uvicorn on a free port, against
SQLite and PostgreSQL; pages checked with axe-core in Chromium at 320 and 1280 pixels."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from bulletin.app import Actor, redactions
from bulletin.app.record_pages import MAX_HITS, word_diff
from bulletin.archiver.archive import Capture
from bulletin.connectors.base import ItemState, RemoteItem
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import (
    NO_SIDEWAYS,
    PEOPLE_ROLES,
    WIDEST,
    browser_sign_in,
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


def test_a_held_record_is_marked(site: Instance, web: str) -> None:
    """A record under legal hold says so in the results and on its page, and in the JSON."""
    from bulletin.app import holds

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
    with httpx.Client(base_url=web, follow_redirects=False) as anonymous:
        for path in paths:
            got = anonymous.get(path)
            assert got.status_code == 303, path
            assert got.headers["location"] == f"/sign-in?next={path}"
    for name in ("dana", "rita"):
        with signed_in(web, name) as person:
            for path in (*paths, f"/records/{ids['second']}.json"):
                got = person.get(path)
                assert got.status_code == 403, (name, path)
                assert "holds none of the roles clerk, admin" in got.text
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
    with an error) and a record with two versions and a redaction, at 320 and 1280 pixels,
    and no page scrolls sideways."""
    ids = seeded(browser_site)
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
                ):
                    page.goto(f"{url}{path}")
                    assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                    assert page.evaluate(NO_SIDEWAYS), (path, page.evaluate(WIDEST))
            finally:
                context.close()
