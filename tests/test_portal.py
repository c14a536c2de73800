"""The public archive portal (`bulletin portal`): residents search, browse and read the public
record over HTTP, without signing in. Against SQLite and PostgreSQL, through a real uvicorn on
a free port, with records archived by the archiver and redacted by the redaction module."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest
import uvicorn
from sqlmodel import Session, col, select
from starlette.routing import Route

from bulletin.app import App, public
from bulletin.archiver import ledger, redaction
from bulletin.archiver.archive import Capture
from bulletin.connectors.base import ItemState, RemoteItem
from bulletin.models import Record
from bulletin.portal.app import create_app
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance, write_config
from tests.plugins.cli import invoke

POSTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
PORTAL = """
[portal]
enabled = true
rate_limit = {rate}
show_comments = {comments}
max_page_size = 5
max_results = 20
"""
SECRET = "555-0142"
LABEL = "G.L. c.4 §7(26)(c)"
WRITES = ("POST", "PUT", "DELETE", "PATCH")


def post(remote_id: str, text: str, minutes: int = 0, training: bool = False) -> Capture:
    item = RemoteItem(
        kind="post",
        remote_id=remote_id,
        text=text,
        author="Lexington PD",
        posted_at=POSTED + timedelta(minutes=minutes),
        thread_id=remote_id,
        raw=json.dumps({"id": remote_id, "text": text}).encode(),
    )
    return Capture("feed", "feed", item, training=training)


def spanish(remote_id: str, text: str, thread: str, minutes: int) -> Capture:
    """The Spanish post of a notice in two languages, published as a reply to the primary's
    post, as the publisher archives it (its language in ``extra``)."""
    item = RemoteItem(
        kind="post",
        remote_id=remote_id,
        text=text,
        author="Lexington PD",
        posted_at=POSTED + timedelta(minutes=minutes),
        parent_id=thread,
        thread_id=thread,
        raw=json.dumps({"id": remote_id, "text": text}).encode(),
        extra={"lang": "es", "primary_lang": "en", "notice_id": 7},
    )
    return Capture("feed", "feed", item, notice_id=7)


def comment(
    remote_id: str, thread: str, text: str, minutes: int, state: ItemState = "visible"
) -> Capture:
    item = RemoteItem(
        kind="comment",
        remote_id=remote_id,
        text=text,
        author="visitor",
        posted_at=POSTED + timedelta(minutes=minutes),
        parent_id=thread,
        thread_id=thread,
        state=state,
        raw=json.dumps({"id": remote_id, "state": state, "text": text}).encode(),
    )
    return Capture("feed", "feed", item)


def seed(inst: Instance) -> dict[str, int]:
    """A notice with a visible, a hidden, a deleted and a redacted comment; a redacted notice;
    a training notice; a checkpoint. Returns the record id of each by name."""
    archiver = inst.app.archiver
    archiver.archive(
        [
            post("p1", "Water main break on Mass Ave"),
            post("p2", f"Missing person: call {SECRET} with sightings", minutes=5),
            post("t1", "Training water main drill", minutes=6, training=True),
        ]
    )
    archiver.archive(
        [
            comment("c1", "p1", "Thanks for the water update", 10),
            comment("c2", "p1", "Rude water remark", 11),
            comment("c3", "p1", "Water everywhere on Elm", 12),
            comment("c4", "p1", f"My water number is {SECRET}", 13),
        ]
    )
    archiver.archive([comment("c2", "p1", "Rude water remark", 11, state="hidden")])
    archiver.archive([comment("c3", "p1", "Water everywhere on Elm", 12, state="deleted")])
    engine = inst.app.engine
    with Session(engine) as session:
        ids = {
            f"{r.remote_id}v{r.version}": r.id or 0
            for r in session.exec(select(Record).order_by(col(Record.id)))
        }
        ledger.write_checkpoint(session, inst.app.store, inst.clock.now())
    for name in ("p2v1", "c4v1"):
        redaction.add(
            engine,
            inst.settings,
            ids[name],
            spans=(),
            match=SECRET,
            code="26c",
            reason="a private telephone number",
            actor="clerk",
            now=inst.clock.now(),
            store=inst.app.store,
        )
    return ids


def portal_instance(
    tmp_path: Path, db_url: str, *, rate: int = 1000, comments: bool = False
) -> Instance:
    extra = PORTAL.format(rate=rate, comments=str(comments).lower())
    return make_instance(tmp_path, db_url, extra)


@contextmanager
def serving(app: App) -> Iterator[str]:
    """The portal under a real uvicorn on a free port, in a thread; its base URL."""
    config = uvicorn.Config(
        create_app(app), host="127.0.0.1", port=0, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[tuple[Instance, dict[str, int]]]:
    inst = portal_instance(tmp_path, db_url)
    ids = seed(inst)
    yield inst, ids
    inst.app.close()


@pytest.fixture
def web(site: tuple[Instance, dict[str, int]]) -> Iterator[httpx.Client]:
    with serving(site[0].app) as url, httpx.Client(timeout=30, base_url=url) as client:
        yield client


def paths(app: App) -> list[str]:
    out = []
    for route in create_app(app).routes:
        assert isinstance(route, Route)
        out.append(route.path.replace("{id:int}", "1").replace("{account}", "feed"))
    return [p.replace("{month}", "2026-11") for p in out]


def test_no_route_writes(site: tuple[Instance, dict[str, int]], web: httpx.Client) -> None:
    """Every route of the app answers POST, PUT, DELETE and PATCH with 405; GET and HEAD are
    the only methods any route declares."""
    inst, _ = site
    for route in create_app(inst.app).routes:
        if isinstance(route, Route):
            assert route.methods is not None and route.methods <= {"GET", "HEAD"}, route.path
    for path in paths(inst.app):
        assert web.head(path).status_code in (200, 400, 404), path
        for method in WRITES:
            answer = web.request(method, path, content=b"x=1")
            assert answer.status_code == 405, (method, path)
            assert answer.headers["Allow"] == "GET, HEAD"


def test_pages_show_posts_only_and_apply_redactions(
    site: tuple[Instance, dict[str, int]], web: httpx.Client
) -> None:
    """Search, the home page, record, thread and browse pages (HTML and JSON) and the feed show
    the agency's posts, with the box in place of withheld words; comments stay out."""
    _, ids = site
    found = web.get("/search", params={"q": "water"})
    assert found.status_code == 200
    assert 'lang="en"' in found.text
    assert found.headers["Cache-Control"] == "public, max-age=300"
    assert found.headers["X-Robots-Tag"] == "noindex"
    results = web.get("/search", params={"q": "water", "format": "json"}).json()["results"]
    assert [r["remote_id"] for r in results] == ["p1"]
    missing = web.get("/search", params={"q": "missing", "format": "json"}).json()["results"]
    assert missing[0]["text"] == f"Missing person: call [WITHHELD: {LABEL}] with sightings"
    pages = [
        web.get("/").text,
        web.get("/search", params={"q": "missing"}).text,
        web.get(f"/records/{ids['p2v1']}").text,
        web.get(f"/threads/{ids['p2v1']}").text,
        web.get("/browse/feed/2026-11").text,
        web.get("/feed.atom").text,
        web.get(f"/records/{ids['p2v1']}", params={"format": "json"}).text,
        web.get(f"/threads/{ids['p1v1']}", params={"format": "json"}).text,
        web.get("/browse/feed/2026-11", params={"format": "json"}).text,
    ]
    for text in pages:
        assert SECRET not in text
        assert "Missing person" in text or "Water main" in text
    for html in pages[:5]:
        assert f"WITHHELD: {LABEL}" in html
    assert f"[WITHHELD: {LABEL}]" in pages[5]  # the feed
    thread = web.get(f"/threads/{ids['p1v1']}", params={"format": "json"}).json()
    assert [r["remote_id"] for r in thread["items"]] == ["p1"]
    assert web.get("/browse/feed", params={"format": "json"}).json()["months"] == ["2026-11"]
    assert web.get("/feed.atom").headers["Content-Type"].startswith("application/atom+xml")


def test_a_post_in_another_language_is_marked_for_screen_readers(
    site: tuple[Instance, dict[str, int]], web: httpx.Client
) -> None:
    """The page says it is in English (the portal's own words are); a post archived in another
    language carries ``lang`` on its text wherever it is shown (thread, search, record, JSON,
    feed)."""
    inst, ids = site
    (es,) = inst.app.archiver.archive([spanish("p1-es", "Rotura de tubería de agua", "p1", 1)])
    marked = '<div class="text" dir="auto" lang="es">Rotura de tubería de agua</div>'
    plain = '<div class="text" dir="auto">Water main break on Mass Ave</div>'
    for path in (f"/threads/{ids['p1v1']}", "/search?q=agua", f"/records/{es.id}"):
        page = web.get(path)
        assert page.status_code == 200, path
        assert '<html lang="en">' in page.text, path
        assert marked in page.text, path
    thread = web.get(f"/threads/{ids['p1v1']}").text
    assert plain in thread and thread.count('lang="es"') == 1
    found = web.get("/search", params={"q": "agua", "format": "json"}).json()
    assert [r["lang"] for r in found["results"]] == ["es"]
    english = web.get("/search", params={"q": "main", "format": "json"}).json()
    assert [r["lang"] for r in english["results"]] == [None]
    feed = web.get("/feed.atom").text
    assert 'xml:lang="en"' in feed and feed.count('<entry xml:lang="es">') == 1


def test_hidden_deleted_training_and_comments_are_not_found(
    site: tuple[Instance, dict[str, int]], web: httpx.Client
) -> None:
    """By id guessing, every version of a hidden or deleted comment, a training record, a
    comment (without show_comments) and a number past the last record are 404; the search
    never finds them."""
    _, ids = site
    for name in ("c1v1", "c2v1", "c2v2", "c3v1", "c3v2", "c4v1", "t1v1"):
        for path in (f"/records/{ids[name]}", f"/threads/{ids[name]}"):
            answer = web.get(path)
            assert answer.status_code == 404, (name, path)
            assert answer.headers["Cache-Control"] == "no-store"
        assert web.get(f"/records/{ids[name]}/proof.json").status_code == 404
    assert web.get("/records/999999").status_code == 404
    assert web.get("/records/99999999999999").status_code == 404
    for words in ("drill", "rude", "elm", "thanks"):
        assert web.get("/search", params={"q": words, "format": "json"}).json()["results"] == []


def test_comments_shown_only_with_show_comments(tmp_path: Path, db_url: str) -> None:
    """With show_comments the visible comment is public, its redacted sibling shows the box;
    hidden and deleted ones still are not."""
    inst = portal_instance(tmp_path, db_url, comments=True)
    try:
        ids = seed(inst)
        with serving(inst.app) as url, httpx.Client(timeout=30, base_url=url) as web:
            thread = web.get(f"/threads/{ids['p1v1']}", params={"format": "json"}).json()
            assert [r["remote_id"] for r in thread["items"]] == ["p1", "c1", "c4"]
            assert thread["items"][2]["text"] == f"My water number is [WITHHELD: {LABEL}]"
            page = web.get(f"/threads/{ids['p1v1']}").text
            assert SECRET not in page and "Rude" not in page and "Elm" not in page
            assert web.get(f"/records/{ids['c1v1']}").status_code == 200
            assert web.get(f"/records/{ids['c2v1']}").status_code == 404
            found = web.get("/search", params={"q": "water", "format": "json"}).json()
            assert {r["remote_id"] for r in found["results"]} == {"p1", "c1", "c4"}
    finally:
        inst.app.close()


def test_search_takes_only_the_public_keys(web: httpx.Client) -> None:
    """state:, author:, kind: and the like are refused with one line; from:/to: and account:
    work."""
    for query in ("state:hidden", "author:visitor water", "kind:comment", "series:x"):
        answer = web.get("/search", params={"q": query})
        assert answer.status_code == 400, query
        assert "public search takes words" in answer.text
    dated = {"q": "water from:2026-11-20 to:2026-11-20 account:feed", "format": "json"}
    assert len(web.get("/search", params=dated).json()["results"]) == 1
    later = {"q": "water from:2026-11-21", "format": "json"}
    assert web.get("/search", params=later).json()["results"] == []
    prefix = {"q": '"water main" wat*', "format": "json"}
    assert len(web.get("/search", params=prefix).json()["results"]) == 1


def test_page_size_and_depth_are_capped(site: tuple[Instance, dict[str, int]]) -> None:
    """A page holds at most max_page_size results and paging stops at max_results; pages link
    to the next one."""
    inst, _ = site
    inst.app.archiver.archive([post(f"n{i}", f"Snow notice {i}", 20 + i) for i in range(12)])
    with serving(inst.app) as url, httpx.Client(timeout=30, base_url=url) as web:
        first = web.get("/search", params={"q": "snow", "size": "5", "format": "json"}).json()
        assert len(first["results"]) == 5 and first["more"]
        seen = [r["remote_id"] for r in first["results"]]
        for page in (2, 3):
            more = web.get("/search", params={"q": "snow", "page": page, "format": "json"})
            seen += [r["remote_id"] for r in more.json()["results"]]
        assert sorted(seen) == sorted(f"n{i}" for i in range(12))
        assert web.get("/search", params={"q": "snow", "size": "6"}).status_code == 400
        too_deep = web.get("/search", params={"q": "snow", "page": "5", "size": "5"})
        assert too_deep.status_code == 400 and "narrow the search" in too_deep.text
        assert 'href="/search?q=snow&amp;page=2"' in web.get("/search?q=snow&size=5").text


def test_a_search_reads_a_bounded_number_of_rows(tmp_path: Path) -> None:
    """On SQLite a search by words walks at most max_scan rows of the full-text index (plus a
    page): a post behind 600 newer matching comments (not public) is out of reach with
    max_scan = 100 and found with the default."""
    database = f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}"
    inst = portal_instance(tmp_path, database)
    try:
        inst.app.archiver.archive([post("old", "Salt trucks are out")])
        salty = [comment(f"s{i}", "old", f"salt report {i}", 20 + i) for i in range(600)]
        inst.app.archiver.archive(salty)
        assert [r.remote_id for r in public.search_public(inst.app, "salt").items] == ["old"]
        bounded = inst.settings.portal.model_copy(update={"max_scan": 100})
        narrow = App(inst.settings.model_copy(update={"portal": bounded}), environ={})
        try:
            assert public.search_public(narrow, "salt").items == []
        finally:
            narrow.close()
    finally:
        inst.app.close()


def test_rate_limit_per_address(tmp_path: Path) -> None:
    """Past rate_limit requests a minute an address gets 429 with Retry-After; a minute later
    it is served again."""
    inst = portal_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", rate=3)
    try:
        with serving(inst.app) as url, httpx.Client(timeout=30, base_url=url) as web:
            assert [web.get("/healthz").status_code for _ in range(3)] == [200] * 3
            refused = web.get("/")
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            inst.clock.advance(timedelta(seconds=61))
            assert web.get("/").status_code == 200
    finally:
        inst.app.close()


def test_proof_verifies_and_fails_when_altered(
    site: tuple[Instance, dict[str, int]], web: httpx.Client, tmp_path: Path
) -> None:
    """The proof of a public record verifies with the documented command (the served script,
    standard library only, and the module); altered snapshot bytes or a ledger entry fail it;
    a record with withheld text has no proof."""
    _, ids = site
    answer = web.get(f"/records/{ids['p1v1']}/proof.json")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["Content-Disposition"]
    proof = tmp_path / "proof.json"
    proof.write_bytes(answer.content)
    script = tmp_path / "verify_proof.py"
    script.write_bytes(web.get("/verify_proof.py").content)
    standalone = [sys.executable, "-I", str(script), str(proof)]
    done = subprocess.run(standalone, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"OK record {ids['p1v1']}") and "checkpoint" in done.stdout
    module = [sys.executable, "-m", "bulletin.portal.verify_proof", str(proof)]
    assert subprocess.run(module, capture_output=True).returncode == 0
    body = json.loads(answer.content)
    snapshot = json.loads(base64.b64decode(body["snapshot"]["base64"]))
    snapshot["text"] = "Water main fixed"
    altered = {**body, "snapshot": {**body["snapshot"]}}
    altered["snapshot"]["base64"] = base64.b64encode(json.dumps(snapshot).encode()).decode()
    proof.write_text(json.dumps(altered))
    done = subprocess.run(standalone, capture_output=True, text=True)
    assert done.returncode == 1 and "FAILED: the snapshot's bytes hash to" in done.stdout
    chain = json.loads(answer.content)
    chain["ledger"][-1]["recorded_at"] = "2030-01-01T00:00:00+00:00"
    proof.write_text(json.dumps(chain))
    done = subprocess.run(standalone, capture_output=True, text=True)
    assert done.returncode == 1 and "hash does not match its content" in done.stdout
    withheld = web.get(f"/records/{ids['p2v1']}/proof.json")
    assert withheld.status_code == 403 and SECRET not in withheld.text


def test_bulletin_portal_refuses_when_off(tmp_path: Path) -> None:
    """`bulletin portal` says how to turn it on when [portal] enabled is false."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    try:
        result = invoke(inst, "portal")
        assert result.exit_code == 2
        assert "set [portal] enabled = true" in result.output
    finally:
        inst.app.close()


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ('trusted_proxies = ["10.0.0.0/33"]', "not an IP address or network"),
        ('address = "localhost"', "give host:port"),
        ('robots = "sometimes"', "robots"),
        ("max_page_size = 0", "max_page_size"),
    ],
)
def test_bad_portal_settings_are_refused(tmp_path: Path, setting: str, problem: str) -> None:
    """A bad [portal] value stops `bulletin portal` with the key and the reason."""
    extra = f"\n[portal]\nenabled = true\n{setting}\n"
    config = write_config(tmp_path / "bulletin.toml", tmp_path / "data", "sqlite://", extra)
    result = invoke(config, "portal")
    assert result.exit_code == 2 and problem in result.output, result.output


def test_robots_follow_the_setting(tmp_path: Path) -> None:
    """robots = "noindex" (the default) keeps search engines out; "index" lets them in."""
    for robots, rule in (("noindex", "Disallow: /"), ("index", "Allow: /")):
        extra = PORTAL.format(rate=100, comments="false") + f'robots = "{robots}"\n'
        inst = make_instance(tmp_path / robots, f"sqlite:///{tmp_path / robots / 'b.db'}", extra)
        try:
            with serving(inst.app) as url, httpx.Client(timeout=30, base_url=url) as web:
                assert rule in web.get("/robots.txt").text
                assert ("X-Robots-Tag" in web.get("/").headers) == (robots == "noindex")
        finally:
            inst.app.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_bulletin_portal_serves_until_terminated(tmp_path: Path) -> None:
    """`bulletin portal --address` serves the portal as a process, with no sign-in; SIGTERM
    stops it."""
    inst = portal_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    seed(inst)
    port = free_port()
    command = [sys.executable, "-m", "bulletin", "portal", "--address", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, env=inst.env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                got = httpx.get(f"http://127.0.0.1:{port}/search?q=water&format=json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "bulletin portal did not answer"
                time.sleep(0.1)
        assert [r["remote_id"] for r in got.json()["results"]] == ["p1"]
        assert "server" not in got.headers
    finally:
        process.terminate()
        assert process.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        assert process.stderr is not None
        process.stderr.close()
        inst.app.close()


def test_forwarded_for_counts_only_from_trusted_proxies(tmp_path: Path) -> None:
    """Behind a trusted proxy each X-Forwarded-For address has its own budget; from anyone
    else the header is ignored and the peer's address is counted."""
    extra = PORTAL.format(rate=2, comments="false") + 'trusted_proxies = ["127.0.0.1"]\n'
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", extra)
    try:
        with serving(inst.app) as url, httpx.Client(timeout=30, base_url=url) as web:
            for client in ("203.0.113.7", "203.0.113.8"):
                codes = [
                    web.get("/healthz", headers={"X-Forwarded-For": client}).status_code
                    for _ in range(3)
                ]
                assert codes == [200, 200, 429], client
    finally:
        inst.app.close()


@pytest.mark.slow
def test_pages_pass_axe_at_320_and_1280_pixels(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on any page of the portal, at 320 and
    1280 pixels, and nothing scrolls sideways."""
    inst = portal_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", comments=True
    )
    try:
        ids = seed(inst)
        inst.app.archiver.archive([spanish("p1-es", "Rotura de tubería de agua", "p1", 1)])
        pages = [
            "/",
            "/search?q=water",
            "/search?q=agua",
            "/search?q=state:hidden",
            "/browse",
            "/browse/feed",
            "/browse/feed/2026-11",
            f"/records/{ids['p1v1']}",
            f"/records/{ids['p2v1']}",
            f"/threads/{ids['p1v1']}",
            "/proofs",
            "/records/999999",
        ]
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    for path in pages:
                        page.goto(f"{url}{path}")
                        assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                        sideways = "document.documentElement.scrollWidth <= window.innerWidth"
                        assert page.evaluate(sideways), path
                finally:
                    context.close()
    finally:
        inst.app.close()


def _rows_read(conn: Any, statements: list[tuple[str, Any]]) -> int:
    """Rows of ``records`` the statements read, by EXPLAIN ANALYZE of each in one transaction
    (``SET LOCAL`` among them run as they are): every plan node on the table counts the rows
    it returned and those it read and threw away (filter, recheck), over all its loops."""

    def walk(node: dict[str, Any]) -> int:
        own = 0
        if node.get("Relation Name") == "records":
            loops = node.get("Actual Loops", 1)
            kept = node.get("Actual Rows", 0)
            dropped = node.get("Rows Removed by Filter", 0) + node.get(
                "Rows Removed by Index Recheck", 0
            )
            own = (kept + dropped) * loops
        return own + sum(walk(child) for child in node.get("Plans", []))

    total = 0
    with conn.begin():
        for sql, params in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                conn.exec_driver_sql(sql, params)
                continue
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).scalar()
            total += walk(plan[0]["Plan"])
    return total


@pytest.mark.postgres
def test_a_postgres_search_reads_a_bounded_number_of_rows(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """On PostgreSQL a search by words reads at most about max_scan rows of records, whatever
    the words (EXPLAIN ANALYZE of every statement it ran): the newest rows walked by id, then
    the older matches through the GIN index only if they fit in what is left. An old post
    behind 300 newer matching comments (not public) is then out of reach with max_scan = 100,
    and the page says the results were capped; a word only that post holds is still found
    among 600 newer rows, uncapped; with the default cap both are found. Without a cap the
    same search reads every matching row."""
    import sqlalchemy as sa

    from bulletin.archiver.search import Scan, search

    inst = portal_instance(tmp_path, pg_schema_url)
    try:
        inst.app.archiver.archive([post("old", "Salt trucks are out")])
        inst.app.archiver.archive(
            [comment(f"s{i}", "old", f"salt report {i}", 20 + i) for i in range(300)]
        )
        inst.app.archiver.archive([post(f"n{i}", f"Plow route {i}", 400 + i) for i in range(300)])
        with inst.app.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE records")
        bounded = inst.settings.portal.model_copy(update={"max_scan": 100})
        narrow = App(inst.settings.model_copy(update={"portal": bounded}), environ={})
        statements: list[tuple[str, Any]] = []

        def keep(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
            statements.append((sql, params))

        try:
            sa.event.listen(narrow.engine, "before_cursor_execute", keep)
            salt = public.search_public(narrow, "salt")
            sa.event.remove(narrow.engine, "before_cursor_execute", keep)
            assert salt.items == [] and salt.capped
            with narrow.engine.connect() as conn:
                capped_rows = _rows_read(conn, statements)
            assert 0 < capped_rows <= 2 * 100 + 2, capped_rows
            statements.clear()
            sa.event.listen(narrow.engine, "before_cursor_execute", keep)
            trucks = public.search_public(narrow, "trucks")
            sa.event.remove(narrow.engine, "before_cursor_execute", keep)
            assert [r.remote_id for r in trucks.items] == ["old"] and not trucks.capped
            with narrow.engine.connect() as conn:
                assert _rows_read(conn, statements) <= 2 * 100 + 2
            statements.clear()
            query = public.public_query("salt")
            sa.event.listen(narrow.engine, "before_cursor_execute", keep)
            search(narrow.engine, query, extra=public.rules(narrow.settings), scan=None)
            sa.event.remove(narrow.engine, "before_cursor_execute", keep)
            with narrow.engine.connect() as conn:
                assert _rows_read(conn, statements) > 300  # every salt row, without a cap
            with serving(narrow) as url, httpx.Client(timeout=30, base_url=url) as web:
                page = web.get("/search", params={"q": "salt"})
                assert page.status_code == 200 and "Results were capped" in page.text
                assert web.get("/search", params={"q": "salt", "format": "json"}).json()["capped"]
                assert "Results were capped" not in web.get("/search?q=trucks").text
        finally:
            narrow.close()
        for words in ("salt", "trucks"):
            found = public.search_public(inst.app, words)
            assert [r.remote_id for r in found.items] == ["old"] and not found.capped
        assert Scan(1).capped is False
    finally:
        inst.app.close()


def test_a_day_far_back_gives_its_newest_matches_under_the_cap(tmp_path: Path, db_url: str) -> None:
    """A day and a word with max_scan = 100, where the day holds more records than the cap and
    300 newer records hold the word: the walk starts at the day, so the day's newest matches
    are shown, uncapped; a word only one of the day's older records holds is found through
    the full-text index. On PostgreSQL each reads about max_scan rows of records at most."""
    import sqlalchemy as sa

    inst = portal_instance(tmp_path, db_url)
    try:
        day = [post(f"d{i}", f"Salt report {i}", i) for i in range(150)]
        day[3] = post("d3", "Salt trucks are out", 3)
        inst.app.archiver.archive(day)
        later = 2 * 24 * 60
        inst.app.archiver.archive([post(f"n{i}", f"Salt route {i}", later + i) for i in range(300)])
        postgres = inst.app.engine.dialect.name == "postgresql"
        if postgres:
            with inst.app.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE records")
        bounded = inst.settings.portal.model_copy(update={"max_scan": 100})
        narrow = App(inst.settings.model_copy(update={"portal": bounded}), environ={})
        statements: list[tuple[str, Any]] = []

        def keep(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
            statements.append((sql, params))

        date = POSTED.astimezone(ZoneInfo(inst.settings.agency.time_zone)).date().isoformat()
        try:
            for words, expected in (
                ("salt", [f"d{i}" for i in range(149, 144, -1)]),
                ("trucks", ["d3"]),
            ):
                statements.clear()
                sa.event.listen(narrow.engine, "before_cursor_execute", keep)
                found = public.search_public(narrow, f"from:{date} to:{date} {words}")
                sa.event.remove(narrow.engine, "before_cursor_execute", keep)
                assert [r.remote_id for r in found.items] == expected, words
                assert not found.capped, words
                if postgres:
                    with narrow.engine.connect() as conn:
                        assert _rows_read(conn, statements) <= 2 * 100 + 2, words
            newer = public.search_public(narrow, "salt")  # the newest day, as before
            assert [r.remote_id for r in newer.items] == [f"n{i}" for i in range(299, 294, -1)]
        finally:
            narrow.close()
    finally:
        inst.app.close()
