"""Readable thread renderings: thread pages, the index, the custody page and the redaction log,
as HTML a member of the public can read without tools (WCAG 2.1 AA, checked with axe-core in
headless Chromium)."""

from __future__ import annotations

import json
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bulletin.archiver import redaction
from bulletin.archiver.archive import Capture, MediaBlob
from bulletin.archiver.export import export_bundle, pages, render, resolve, times
from bulletin.archiver.export.pages import Place
from bulletin.connectors.base import RemoteItem
from bulletin.models import Record
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance

POSTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 9:00 AM in Lexington (EST)
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)"> & "quotes" \'apos\''
RTL = "الطريق مغلق بسبب الاستعراض — הכביש סגור"
EMOJI = "Thank you officers 🚓👮🏽‍♀️🇺🇸 e\u0301"
LONG_WORD = "Aaaaargh" * 40
LONG_URL = "https://example.org/" + "very-long-path-segment/" * 12 + "?q=" + "x" * 80
EXEMPTION = "G.L. c.4 §7(26)(c)"
SECRET = "Jane Roe, 12 Elm Street"
PHONE = "555-0142"
PHONE_TEXT = f"I saw him on Elm St. Call my cell {PHONE} if you need a witness."
LOG_ROW = {  # a line of the redaction log (redactions/redaction-log.csv)
    "bates": "BUL0000002",
    "record_id": "17",
    "version": "2",
    "redaction_id": "4",
    "characters": "10:33",
    "exemption": "ma-c",
    "exemption_label": EXEMPTION,
    "reason": "home address of a private person <b>",
    "redacted_by": "clerk1",
    "redacted_at": datetime(2026, 11, 26, 15, 30, tzinfo=UTC),
}


def record(**fields: Any) -> Record:
    """A record as the exporter hands it to the renderer (not archived)."""
    values: dict[str, Any] = {
        "id": 1,
        "account": "feed",
        "platform": "feed",
        "kind": "comment",
        "remote_id": "c1",
        "parent_id": "p1",
        "thread_id": "p1",
        "version": 1,
        "state": "visible",
        "author": "visitor",
        "text": "hello",
        "posted_at": POSTED,
        "captured_at": POSTED + timedelta(minutes=5),
        "series": "visitor-comments",
        "content_sha256": "0" * 64,
        "object_sha256": "1" * 64,
    }
    values.update(fields)
    return Record(**values)


def item_html(rec: Record, bates: str = "BUL0000002", **options: Any) -> str:
    return render.thread_item(
        pages.item(
            rec,
            bates,
            "2026-11-20T14:00:00Z",
            "2026-11-20T14:05:00.250000Z",
            f"natives/0001/{bates}.json",
            zone="America/New_York",
            **options,
        )
    )


class _Balance(HTMLParser):
    """Checks that every element is closed in order (void elements excepted)."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if found.get("href"):
            self.hrefs.append(str(found["href"]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(markup: str) -> _Balance:
    checker = _Balance()
    checker.feed(markup)
    checker.close()
    return checker


def balanced(markup: str) -> _Balance:
    checker = parsed(markup)
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    return checker


# -- unit: one record ----------------------------------------------------------------------------


def test_hostile_text_author_id_and_url_are_escaped() -> None:
    """Markup in any visitor-controlled field comes out as text; a javascript: URL is no link."""
    rec = record(
        text=HOSTILE,
        author=HOSTILE,
        remote_id='c1"><script>x</script>',
        url="javascript:alert(1)",
    )
    page = item_html(rec)
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'href="javascript' not in page
    checker = balanced(page)
    assert HOSTILE in "".join(checker.text)


def test_rtl_text_and_emoji_keep_direction_and_characters() -> None:
    """Text is in a dir="auto" block, authors and ids in <bdi>; emoji and combining marks
    survive."""
    page = item_html(record(text=f"{RTL}\n{EMOJI}", author="زائر 🦉"))
    assert f'<div class="text" dir="auto">{RTL}\n{EMOJI}</div>' in page
    assert "<bdi>زائر 🦉</bdi>" in page


def test_times_are_local_and_readable_with_utc_machine_value() -> None:
    """Posted and captured times read in the agency's zone; <time datetime> carries UTC, at most
    milliseconds."""
    page = item_html(record())
    assert (
        '<time datetime="2026-11-20T14:00:00Z">Friday, November 20, 2026, 9:00:00 AM EST</time>'
        in page
    )
    assert '<time datetime="2026-11-20T14:05:00.250Z">' in page
    summer = datetime(2026, 7, 4, 23, 30, tzinfo=UTC)
    assert times.human_time(summer, "America/New_York") == "Saturday, July 4, 2026, 7:30:00 PM EDT"
    assert render.time_html(None, "UTC") == "unknown"


def test_comment_and_nested_reply_link_to_what_they_answer() -> None:
    """A comment points at the post, a reply is marked as one and links to the comment it
    answers, whose article carries that anchor."""
    parent = item_html(record(remote_id="c 1/ü"))
    reply = item_html(record(remote_id="c2", parent_id="c 1/ü"), bates="BUL0000003")
    anchor = re.search(r'<article class="item comment" id="([^"]+)"', parent)
    assert anchor is not None
    assert " " not in anchor.group(1)
    assert '<article class="item comment reply"' in reply
    assert f'In reply to <a href="#{anchor.group(1)}">comment <bdi>c 1/ü</bdi></a>' in reply
    assert "<h2>Reply by <bdi>visitor</bdi></h2>" in reply
    assert 'On <a href="#item.post.p1">the post</a>' in parent
    post = item_html(record(kind="post", remote_id="p1", parent_id=None), bates="BUL0000001")
    assert 'id="item.post.p1"' in post and "<h2>Post by" in post


def test_versions_of_one_item_are_grouped_and_linked() -> None:
    """The first version opens the item's article, the last closes it; each says which version
    it is, how it changed and links the earlier and later ones."""
    first = item_html(record(), "BUL0000002", place=Place(1, 3, None, "BUL0000003"))
    second = item_html(
        record(version=2, change="edited", text="hello, edited"),
        "BUL0000003",
        place=Place(2, 3, "BUL0000002", "BUL0000004"),
    )
    third = item_html(
        record(version=3, change="hidden", state="hidden", text="hello, edited"),
        "BUL0000004",
        place=Place(3, 3, "BUL0000003", None),
    )
    assert first.count("<article") == 1 and "</article>" not in first
    assert "<article" not in second and "</article>" not in second
    assert "<article" not in third and third.endswith("</article>\n")
    assert "3 archived versions follow" in first
    assert (
        'Version 2 of 3, edited; earlier version: <a href="#BUL0000002">BUL0000002</a>; '
        'later version: <a href="#BUL0000004">BUL0000004</a>.'
    ) in second
    assert "<h3>Record BUL0000003</h3>" in second
    checker = balanced(first + second + third)
    assert {"BUL0000002", "BUL0000003", "BUL0000004"} <= set(checker.ids)


def test_hidden_and_deleted_are_said_in_words() -> None:
    """A hidden or deleted version says so in text, not only by its styling."""
    hidden = item_html(record(state="hidden", change="hidden"))
    deleted = item_html(record(state="deleted", change="deleted"))
    assert "<strong>Hidden:</strong> this version was hidden from public view" in hidden
    assert "<strong>Deleted:</strong> this version records that the item was deleted" in deleted
    assert "<dt>State</dt><dd>deleted</dd>" in deleted
    visible = item_html(record())
    assert 'class="state"' not in visible


def test_media_show_their_alt_text_or_say_there_is_none() -> None:
    """An image shows the author's description as its alt text and caption and links its file;
    without one, both say that no description was provided; other files are links."""
    media = [
        {"path": "natives/0001/BUL0000002.media-1.png", "alt_text": "A detour sign <b>"},
        {"path": "natives/0001/BUL0000002.media-2.jpg", "alt_text": None},
        {"path": "natives/0001/BUL0000002.media-3.jpg", "alt_text": "  "},
        {"path": "natives/0001/BUL0000002.media-4.mp4", "alt_text": None},
    ]
    page = item_html(record(), media=media)
    assert (
        '<img src="../natives/0001/BUL0000002.media-1.png" alt="A detour sign &lt;b&gt;">' in page
    )
    assert 'Description by the author: <span dir="auto">A detour sign &lt;b&gt;</span>' in page
    assert 'alt="Image 2 of BUL0000002: no description provided by the author"' in page
    assert 'alt="Image 3 of BUL0000002: no description provided by the author"' in page
    assert page.count("No description provided by the author.") == 3
    assert '<a href="../natives/0001/BUL0000002.media-4.mp4">' in page
    assert page.count("<img") == 3
    balanced(page)


def test_public_redaction_box_never_contains_the_withheld_text() -> None:
    """Public: each withheld piece is a box naming its exemption in real text; the original
    never appears, even if a caller passed it by mistake."""
    pieces = [("Call from ", None), ("", EXEMPTION), (" about ", None), (SECRET, EXEMPTION)]
    page = item_html(record(text=f"Call from {SECRET} about {SECRET}"), pieces=pieces)
    text_block = page[page.index('<div class="text"') :]
    assert SECRET not in text_block
    assert text_block.count(f"WITHHELD: {EXEMPTION}") == 2
    assert (
        '<span class="withheld"><span aria-hidden="true">█</span> WITHHELD: '
        f'{EXEMPTION} <span aria-hidden="true">█</span></span>'
    ) in page
    assert "Part of this text is withheld" in page
    checker = balanced(page)
    spoken = "".join(checker.text)
    assert f"WITHHELD: {EXEMPTION}" in spoken


def test_counsel_sees_the_withheld_text_highlighted_with_its_code() -> None:
    """Counsel: the withheld text is shown in <mark> right after its exemption code."""
    pieces = [("Call from ", None), (SECRET, EXEMPTION)]
    page = item_html(record(text=f"Call from {SECRET}"), pieces=pieces, counsel=True)
    assert (
        f'<span class="exemption">[withheld from the public copy: {EXEMPTION}]</span> '
        f'<mark class="redacted">{SECRET}</mark>'
    ) in page
    assert 'class="withheld"' not in page
    head = render.thread_head(record(kind="post"), "BUL0000001", "BUL0000002", counsel=True)
    assert "Counsel-only copy" in head


def test_without_pieces_the_text_is_rendered_whole() -> None:
    """No pieces: the record's text as it is; no withheld note."""
    page = item_html(record(text="plain & simple"))
    assert '<div class="text" dir="auto">plain &amp; simple</div>' in page
    assert "withheld" not in page.lower()
    assert "This version has no text." in item_html(record(text=""))


def test_redaction_log_is_a_captioned_table() -> None:
    """The log has a caption and column headers, one row per withheld passage, escaped."""
    rows = [LOG_ROW, {**LOG_ROW, "exemption_label": "", "redacted_at": "2026-11-26T15:30:00Z"}]
    page = render.redaction_log_html(
        rows, "public", agency="Lexington PD", identifier="request-3", zone="America/New_York"
    )
    checker = balanced(page)
    assert "<caption" in page and page.count('<th scope="col">') == 7
    assert page.count("<td>17, version 2</td>") == 2
    assert "home address of a private person &lt;b&gt;" in page
    assert page.count("Thursday, November 26, 2026, 10:30:00 AM EST") == 2
    assert f'<td dir="auto">{EXEMPTION}</td>' in page and '<td dir="auto">ma-c</td>' in page
    assert "clerk1" in "".join(checker.text)
    assert 'aria-current="page">Redaction log' in page
    empty = render.redaction_log_html([], "counsel")
    assert "No text is withheld" in empty and "Counsel-only copy" in empty


def test_pages_have_lang_skip_link_and_landmarks() -> None:
    """Index, thread and custody pages share one head: lang, viewport, skip link to main,
    header, nav, main and footer, no script, nothing external."""
    head = render.thread_head(
        record(kind="post", remote_id="p1", parent_id=None, author="Lexington PD"),
        "BUL0000001",
        "BUL0000001",
        zone="America/New_York",
        agency="Lexington PD",
        production="request-3",
    )
    thread = head + item_html(record(kind="post", remote_id="p1")) + render.PAGE_FOOT
    index = render.index_head("Lexington PD", "request-3", records=0) + render.INDEX_FOOT
    custody = render.custody_html("# T\n\n- a `b`\n\n| x | y |\n|---|---|\n| 1 | 2 |\n", "T")
    for page in (thread, index, custody):
        checker = balanced(page)
        assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
        assert '<a class="skip" href="#main">' in page and 'id="main"' in page
        for landmark in ("<header>", "<nav ", "<main ", "<footer>"):
            assert landmark in page
        assert "<script" not in page and "http" not in "".join(
            h for h in checker.hrefs if not h.startswith("../")
        )
    assert "This production is empty" in index
    assert (
        '<h1>Post by <bdi>Lexington PD</bdi>, <time datetime="2026-11-20T14:00:00Z">'
        "Friday, November 20, 2026, 9:00 AM EST</time></h1>"
    ) in thread


# -- a real production, in a browser ---------------------------------------------------------------


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small solid-colour PNG with a darker frame."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            edge = x < 4 or y < 4 or x >= width - 4 or y >= height - 4
            row += bytes(c // 3 for c in rgb) if edge else bytes(rgb)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def item(
    kind: str,
    remote_id: str,
    minutes: int,
    text: str,
    *,
    author: str = "visitor",
    parent: str | None = "p1",
    state: str = "visible",
) -> RemoteItem:
    return RemoteItem(
        kind=kind,  # type: ignore[arg-type]
        remote_id=remote_id,
        text=text,
        author=author,
        posted_at=POSTED + timedelta(minutes=minutes),
        url=f"https://lexington.example/{remote_id}",
        parent_id=parent,
        thread_id="p1",
        state=state,  # type: ignore[arg-type]
        raw=json.dumps({"id": remote_id, "text": text}).encode(),
    )


def seed_thread(inst: Instance) -> None:
    """A post, comments and a reply; an edited then hidden comment, a deleted one; images with
    and without alt text; right-to-left text, emoji, hostile markup, a long word and URL."""
    archiver = inst.app.archiver
    post = item(
        "post",
        "p1",
        0,
        "Parade on Mass Ave Saturday: roads closed 9 AM to 2 PM. Detour map attached.",
        author="Lexington PD",
        parent=None,
    )
    sign = MediaBlob(
        "https://lexington.example/detour.png",
        png(240, 160, (0, 90, 170)),
        "image/png",
        alt_text="Map: Mass Ave closed between Waltham St and Woburn St; detour by Route 4/225",
    )
    archiver.archive([Capture("feed", "feed", post, media=(sign,))])
    photo = MediaBlob(
        "https://lexington.example/crowd.jpg", png(200, 120, (200, 120, 0)), "image/png"
    )
    archiver.archive(
        [
            Capture("feed", "feed", item("comment", "c1", 10, "Will the bus run?")),
            Capture("feed", "feed", item("comment", "c2", 12, f"{RTL}\n{EMOJI}", author="زائر")),
            Capture(
                "feed",
                "feed",
                item("comment", "c3", 15, "Crowd at the corner last year"),
                media=(photo,),
            ),
            Capture(
                "feed",
                "feed",
                item(
                    "comment",
                    "r1",
                    20,
                    "Yes, route 62 detours.",
                    parent="c1",
                    author="Lexington PD",
                ),
            ),
            Capture("feed", "feed", item("comment", "c4", 25, f"{HOSTILE} {LONG_WORD} {LONG_URL}")),
            Capture("feed", "feed", item("comment", "c5", 30, "You people are useless")),
            Capture("feed", "feed", item("comment", "c6", 35, PHONE_TEXT)),
        ]
    )
    archiver.archive([Capture("feed", "feed", item("comment", "c1", 10, "Will the 62 bus run?"))])
    archiver.archive(
        [
            Capture(
                "feed", "feed", item("comment", "c5", 30, "You people are useless", state="hidden")
            )
        ]
    )
    archiver.archive(
        [
            Capture(
                "feed",
                "feed",
                item("comment", "c3", 15, "Crowd at the corner last year", state="deleted"),
                media=(photo,),
            )
        ]
    )


def export_thread(inst: Instance, out: Path, production: str) -> Path:
    export_bundle(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        resolve(inst.app.engine, inst.settings, None, "thread:p1"),
        out=out,
        actor="clerk1",
        now=inst.clock.now,
        production=production,  # type: ignore[arg-type]
    )
    return out / "data"


@pytest.fixture
def production(sqlite_instance: Instance, tmp_path: Path) -> Path:
    """The seeded thread, a phone number in one comment withheld, exported as the public
    production; returns its data/ folder."""
    inst = sqlite_instance
    seed_thread(inst)
    with Session(inst.app.engine) as session:
        phone = session.exec(select(Record).where(col(Record.remote_id) == "c6")).one()
    start = PHONE_TEXT.index(PHONE)
    assert phone.id is not None
    redaction.add(
        inst.app.engine,
        inst.settings,
        phone.id,
        spans=[(start, start + len(PHONE))],
        code="26c",
        reason="private phone number of a resident",
        actor="clerk1",
        now=inst.clock.now(),
        store=inst.app.store,
    )
    return export_thread(inst, tmp_path / "public", "public")


@pytest.fixture
def counsel_production(sqlite_instance: Instance, production: Path, tmp_path: Path) -> Path:
    """The same thread as the counsel production (numbered after the public one)."""
    return export_thread(sqlite_instance, tmp_path / "counsel", "counsel")


def first_thread_page(data: Path) -> Path:
    """The page of a production's first thread, named by its first Bates number."""
    summary = json.loads((data / "manifest/production.json").read_text(encoding="utf-8"))
    return data / "threads" / f"{summary['first_bates']}.html"


def test_exported_thread_page_has_every_part(production: Path, counsel_production: Path) -> None:
    """The exported page groups versions with history links, nests the reply, marks hidden and
    deleted records in words, shows alt text or its absence, boxes the withheld phone number
    (highlighted in the counsel copy), and is well formed."""
    page = (production / "threads/BUL0000001.html").read_text(encoding="utf-8")
    checker = balanced(page)
    assert page.count('<section class="record') == 11
    assert 'Version 2 of 2, edited; earlier version: <a href="#BUL0000002">' in page
    assert "Version 2 of 2, hidden;" in page and "Version 2 of 2, deleted;" in page
    assert "<strong>Hidden:</strong>" in page and "<strong>Deleted:</strong>" in page
    assert '<article class="item comment reply" id="item.comment.r1">' in page
    assert 'In reply to <a href="#item.comment.c1">' in page
    assert 'alt="Map: Mass Ave closed between Waltham St and Woburn St' in page
    assert 'alt="Image 1 of BUL0000005: no description provided by the author"' in page
    for href in checker.hrefs:
        if href.startswith("#"):
            assert href[1:] in checker.ids, href
        elif href.startswith("../"):
            assert (production / "threads" / href).resolve().exists(), href
        else:
            assert href.startswith("https://lexington.example/"), href
    assert "<script" not in page
    assert "Friday, November 20, 2026, 9:00:00 AM EST" in page
    assert f"WITHHELD: {EXEMPTION}" in page
    assert all(PHONE not in p.read_text("utf-8") for p in production.rglob("*.html"))
    counsel = first_thread_page(counsel_production).read_text(encoding="utf-8")
    assert f'<mark class="redacted">{PHONE}</mark>' in counsel and "Counsel-only copy" in counsel
    index = (production / "threads/index.html").read_text(encoding="utf-8")
    assert '<a href="BUL0000001.html">Post by <bdi>Lexington PD</bdi>' in index
    records = [json.loads(line) for line in (production / "manifest/records.jsonl").open()]
    assert [m["alt_text"] for r in records for m in r["media"]][:1] == [
        "Map: Mass Ave closed between Waltham St and Woburn St; detour by Route 4/225"
    ]


def _open(browser: Any, path: Path, width: int, height: int) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(path.as_uri())
    return context, page, requested


@pytest.mark.slow
def test_production_pages_pass_axe_wcag_21_aa(
    browser: Any, production: Path, counsel_production: Path
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the index, a thread page, the custody
    page and the redaction log of the public production, nor on the counsel production's
    thread page; none of them loads anything from outside the production."""
    pages = [
        production / "threads/index.html",
        production / "threads/BUL0000001.html",
        production / "custody/chain-of-custody.html",
        production / "redactions/redaction-log.html",
        first_thread_page(counsel_production),
    ]
    for rel in pages:
        context, page, requested = _open(browser, rel, 1280, 800)
        try:
            violations = axe_violations(page)
            assert violations == [], f"{rel}:\n{describe(violations)}"
            assert all(url.startswith("file://") for url in requested), requested
        finally:
            context.close()


@pytest.mark.slow
def test_redaction_boxes_and_log_pass_axe(browser: Any, tmp_path: Path) -> None:
    """A public page with redaction boxes, its counsel twin and the redaction log pass axe; the
    box's exemption is in the accessibility tree, the withheld text nowhere on the public page."""
    pieces = [("Caller ", None), ("", EXEMPTION), (" reported the crash.", None)]
    rows = [LOG_ROW]
    for name, counsel in (("public", False), ("counsel", True)):
        head = render.thread_head(
            record(kind="post", remote_id="p1", parent_id=None),
            "BUL0000001",
            "BUL0000002",
            zone="America/New_York",
            agency="Lexington PD",
            production="request-3",
            counsel=counsel,
        )
        body = item_html(
            record(kind="post", remote_id="p1", parent_id=None), "BUL0000001"
        ) + item_html(
            record(text="x"),
            pieces=[(SECRET if counsel and code else text, code) for text, code in pieces],
            counsel=counsel,
        )
        folder = tmp_path / name / "threads"
        folder.mkdir(parents=True)
        (folder / "page.html").write_text(head + body + render.PAGE_FOOT, encoding="utf-8")
        (folder / "log.html").write_text(
            render.redaction_log_html(
                rows,
                name,
                agency="Lexington PD",
                identifier="request-3",
                zone="America/New_York",
            ),
            encoding="utf-8",
        )
    for path in sorted(tmp_path.glob("*/threads/*.html")):
        context, page, _ = _open(browser, path, 1280, 800)
        try:
            violations = axe_violations(page)
            assert violations == [], f"{path}:\n{describe(violations)}"
            if path.parent.parent.name == "public" and path.name == "page.html":
                snapshot = page.locator("main").aria_snapshot()
                assert f"WITHHELD: {EXEMPTION}" in snapshot
                assert SECRET not in page.content()
        finally:
            context.close()


_LAYOUT_PROBE = """() => {
  const doc = document.documentElement;
  const problems = [];
  const clips = (el) => getComputedStyle(el).overflowX !== 'visible';
  for (const el of document.querySelectorAll('main *, header *, footer *')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.position === 'absolute') continue;
    let parent = el.parentElement;
    while (parent && getComputedStyle(parent).display === 'contents') {
      parent = parent.parentElement;
    }
    if (!parent || clips(parent)) continue;
    const box = el.getBoundingClientRect(), outer = parent.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > outer.right + 1 || box.left < outer.left - 1) {
      problems.push(`${el.tagName.toLowerCase()}.${el.className} overflows ` +
                    `${parent.tagName.toLowerCase()}.${parent.className}: ` +
                    `${Math.round(box.left)}..${Math.round(box.right)} outside ` +
                    `${Math.round(outer.left)}..${Math.round(outer.right)}`);
    }
  }
  const overflowing = [...document.querySelectorAll('.text, dd, h1, h2, h3, figcaption')]
    .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className || el.tagName);
  const long = [...document.querySelectorAll('.text')]
    .find((el) => el.textContent.includes('Aaaaargh'));
  const lineHeight = long ? parseFloat(getComputedStyle(long).lineHeight) : 0;
  return {
    scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth, problems, overflowing,
    longLines: long ? Math.round(long.getBoundingClientRect().height / lineHeight) : 0,
  };
}"""


@pytest.mark.slow
def test_thread_page_layout_reflows_at_1280_and_320(
    browser: Any, production: Path, tmp_path: Path
) -> None:
    """At 1280x800 and at 320x640 (reflow): no horizontal scrolling, no element sticking out of
    its container, the long word and URL wrap onto several lines; printing hides the navigation.
    Screenshots are kept beside the test's files."""
    page_path = production / "threads/BUL0000001.html"
    for width, height in ((1280, 800), (320, 640)):
        context, page, _ = _open(browser, page_path, width, height)
        try:
            found = page.evaluate(_LAYOUT_PROBE)
            page.screenshot(path=str(tmp_path / f"thread-{width}.png"), full_page=True)
            assert found["scrollWidth"] <= found["innerWidth"], found
            assert found["problems"] == [], found["problems"]
            assert found["overflowing"] == [], found["overflowing"]
            assert found["longLines"] >= (3 if width == 320 else 2), found
            page.emulate_media(media="print")
            assert page.locator("nav").is_hidden()
            assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        finally:
            context.close()
    assert (tmp_path / "thread-320.png").stat().st_size > 0
