"""The HTTP API for programs (/api/v1): bearer tokens and their scopes, every refusal as an
RFC 9457 problem with the command line's message, notices from draft to approval, cursor
pages, and exactly-once drafting through Idempotency-Key (concurrent requests, a client gone
after the server committed). Against SQLite and PostgreSQL, through Starlette's client and a
real uvicorn."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
import uvicorn
from starlette.testclient import TestClient

from bulletin.app import Actor, App, notices, tokens, users
from bulletin.app import webhooks as hooks
from bulletin.errors import Refused
from bulletin.publisher.notices import NoticeDraft
from bulletin.web import create_app
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke

PEOPLE = """
[users.ada]
roles = ["admin"]
os_user = "ada"

[users.dan]
roles = ["dispatcher"]
os_user = "dan"

[users.abe]
roles = ["approver"]
os_user = "abe"

[users.lt]
roles = ["dispatcher", "approver"]
os_user = "lt"

[users.cleo]
roles = ["clerk"]
os_user = "cleo"
"""
TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."
DRAFT = {"category": "road-closure", "text": TEXT, "targets": ["feed"]}
PROBLEM = "application/problem+json"
ALL = list(tokens.SCOPES)


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database with an admin, a dispatcher, an approver and a lieutenant
    who holds both roles."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    users.seed(inst.app)
    yield inst
    inst.app.close()


def token(site: Instance, name: str, *scopes: str) -> str:
    made = tokens.create(site.app, Actor(name), f"t-{name}-{len(scopes)}", list(scopes or ALL))
    return made.token


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def client(site: Instance) -> TestClient:
    return TestClient(create_app(site.app), base_url="http://testserver/api/v1/")


def problem_of(response: httpx.Response, status: int) -> str:
    """The problem's detail, after checking it is an RFC 9457 problem of ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    detail: str = body["detail"]
    assert "\n" not in detail
    return detail


def count(site: Instance, table: str) -> int:
    with site.app.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)  # noqa: S608


def test_a_dispatchers_notice_is_approved_by_an_approver(site: Instance) -> None:
    """Draft (201, Location), show, deliveries, approve: the notice is approved and due."""
    dan, abe = token(site, "dan"), token(site, "abe")
    with client(site) as api:
        made = api.post("notices", json=DRAFT, headers=auth(dan))
        assert made.status_code == 201, made.text
        notice = made.json()
        assert notice["state"] == "draft" and notice["author"] == "dan"
        assert made.headers["location"] == f"/api/v1/notices/{notice['id']}"
        shown = api.get(f"notices/{notice['id']}", headers=auth(abe)).json()
        assert shown["text"] == TEXT and [d["account"] for d in shown["deliveries"]] == ["feed"]
        done = api.post(f"notices/{notice['id']}/approve", headers=auth(abe))
        assert done.status_code == 200, done.text
        assert done.json()["notice"]["state"] == "approved"
        [delivery] = api.get(f"notices/{notice['id']}/deliveries", headers=auth(dan)).json()[
            "items"
        ]
        assert delivery["state"] == "pending" and delivery["due_at"] is not None
    approved = [e for e in _events(site) if e["action"] == "approved"]
    assert approved and approved[0]["via"] == "token"


def test_an_approver_sends_a_draft_back_and_its_author_edits_it(site: Instance) -> None:
    """Send back with a comment: approval waits for the author's edit; the edit is a new
    revision the approver then approves; nobody else edits, and nobody sends back their own."""
    dan, abe, lt = token(site, "dan"), token(site, "abe"), token(site, "lt")
    with client(site) as api:
        notice_id = api.post("notices", json=DRAFT, headers=auth(dan)).json()["id"]
        back = api.post(
            f"notices/{notice_id}/send-back",
            json={"comment": "Name the detour."},
            headers=auth(abe),
        )
        assert back.status_code == 200, back.text
        assert (back.json()["sent_back"], back.json()["revision"]) == ("Name the detour.", 1)
        waiting = api.post(f"notices/{notice_id}/approve", headers=auth(abe))
        assert "sent back" in problem_of(waiting, 403)
        assert problem_of(
            api.post(f"notices/{notice_id}/edit", json={"text": TEXT + " x"}, headers=auth(lt)),
            403,
        )
        edited = api.post(
            f"notices/{notice_id}/edit", json={"text": TEXT + " Detour: Elm St."}, headers=auth(dan)
        )
        assert edited.status_code == 200, edited.text
        assert (edited.json()["revision"], edited.json()["sent_back"]) == (2, None)
        done = api.post(f"notices/{notice_id}/approve", headers=auth(abe))
        assert done.json()["notice"]["state"] == "approved", done.text
        own = api.post("notices", json=DRAFT, headers=auth(lt)).json()["id"]
        refused = api.post(f"notices/{own}/send-back", json={"comment": "x"}, headers=auth(lt))
        assert problem_of(refused, 403)
        assert problem_of(
            api.post(f"notices/{own}/send-back", json={"comment": ""}, headers=auth(abe)), 422
        )


def _events(site: Instance) -> list[dict[str, Any]]:
    with site.app.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT action, actor, via FROM audit_events ORDER BY id"))
        return [dict(r._mapping) for r in rows]


def test_every_refusal_is_a_problem(site: Instance) -> None:
    """No token or a bad one 401; a missing scope 403; a role the account lacks 403; an
    unknown id 404; bad JSON 400; a bad value 422; all as problem+json."""
    reader = token(site, "dan", "notices:read")
    abe = token(site, "abe")
    dan = token(site, "dan")
    with client(site) as api:
        missing = api.post("notices", json=DRAFT)
        assert "no API token" in problem_of(missing, 401)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "not valid" in problem_of(api.get("notices", headers=auth("bltn_nope")), 401)
        scoped = api.post("notices", json=DRAFT, headers=auth(reader))
        assert problem_of(scoped, 403).startswith(
            "this API token does not hold the notices:write scope"
        )
        role = api.post("notices", json=DRAFT, headers=auth(abe))
        assert problem_of(role, 403) == "user 'abe' does not hold the dispatcher role"
        assert "no notice 424242" in problem_of(api.get("notices/424242", headers=auth(dan)), 404)
        assert problem_of(api.get("notices/0", headers=auth(dan)), 422)
        bad = api.post(
            "notices",
            content=b"{not json",
            headers={**auth(dan), "content-type": "application/json"},
        )
        assert problem_of(bad, 400) == "the request body is not valid JSON"
        assert "targets" in problem_of(
            api.post("notices", json={**DRAFT, "targets": "feed"}, headers=auth(dan)), 422
        )
        assert "unknown" in problem_of(
            api.post("notices", json={**DRAFT, "category": "gossip"}, headers=auth(dan)), 422
        )
        nul = api.post("notices", json={**DRAFT, "text": "a\x00b"}, headers=auth(dan))
        assert "NUL" in problem_of(nul, 422)
        assert problem_of(api.get("notices?cursor=xyz", headers=auth(dan)), 422)
        assert problem_of(api.get("notices?limit=1000", headers=auth(dan)), 422)
        assert problem_of(api.get("nothing-here", headers=auth(dan)), 404)


def test_self_approval_is_refused_as_on_the_command_line(site: Instance) -> None:
    """The lieutenant drafts and tries to approve their own notice: 403 through the API with
    the message the command line prints for the same refusal."""
    lt = token(site, "lt")
    with client(site) as api:
        first = api.post("notices", json=DRAFT, headers=auth(lt)).json()["id"]
        refused = problem_of(api.post(f"notices/{first}/approve", headers=auth(lt)), 403)
    second = notices.draft(site.app, Actor("lt"), NoticeDraft("road-closure", TEXT, ["feed"]))
    with pytest.raises(Refused) as caught:
        notices.approve(site.app, Actor("lt"), second.notice.id or 0)
    assert refused == str(caught.value).replace(str(second.notice.id), str(first))
    line = invoke(site, "notice", "approve", str(first), login="lt").output.strip()
    assert line.startswith(f"bulletin: error: {refused}")


def test_no_object_is_read_by_guessing_an_id_without_the_role(site: Instance) -> None:
    """A dispatcher whose token holds the webhook scopes still cannot list, remove or probe
    webhooks (an admin's): 403 for an id that exists and one that does not alike."""
    made = hooks.add_webhook(
        site.app, Actor("ada"), "https://hooks.example.org/x", ["notice.published"]
    )
    dan, ada = token(site, "dan"), token(site, "ada")
    with client(site) as api:
        assert problem_of(api.get("webhooks", headers=auth(dan)), 403)
        real = api.delete(f"webhooks/{made.webhook.id}", headers=auth(dan))
        guessed = api.delete("webhooks/999", headers=auth(dan))
        assert problem_of(real, 403) == problem_of(guessed, 403)
        listed = api.get("webhooks", headers=auth(ada)).json()["items"]
        assert [w["id"] for w in listed] == [made.webhook.id]
        assert "secret" not in json.dumps(listed)
        assert api.delete(f"webhooks/{made.webhook.id}", headers=auth(ada)).status_code == 204


def test_a_revoked_or_expired_token_and_a_disabled_account_get_401(site: Instance) -> None:
    dan = token(site, "dan")
    short = tokens.create(
        site.app, Actor("dan"), "short", ["notices:read"], expires_in=timedelta(hours=1)
    ).token
    with client(site) as api:
        assert api.get("notices", headers=auth(short)).status_code == 200
        site.clock.advance(timedelta(hours=1))
        assert problem_of(api.get("notices", headers=auth(short)), 401)
        users.disable(site.app, Actor("ada"), "dan")
        assert problem_of(api.get("notices", headers=auth(dan)), 401)


def test_lists_come_in_pages_with_an_opaque_cursor_and_filters(site: Instance) -> None:
    dan = token(site, "dan")
    with client(site) as api:
        ids = [api.post("notices", json=DRAFT, headers=auth(dan)).json()["id"] for _ in range(5)]
        api.post(
            "notices", json={**DRAFT, "category": "special-event"}, headers=auth(dan)
        ).raise_for_status()
        seen, cursor = [], None
        while True:
            query = "notices?limit=2&category=road-closure" + (
                f"&cursor={cursor}" if cursor else ""
            )
            page = api.get(query, headers=auth(dan)).json()
            seen += [n["id"] for n in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert str(seen[-1]) not in cursor  # opaque
        assert seen == sorted(ids, reverse=True)
        later = (site.clock.now() + timedelta(minutes=1)).isoformat()
        assert api.get("notices", params={"since": later}, headers=auth(dan)).json()["items"] == []
        drafts = api.get("notices?state=draft", headers=auth(dan)).json()["items"]
        assert len(drafts) == 6


def test_the_schema_and_the_docs_page_are_served(site: Instance) -> None:
    with client(site) as api:
        spec = api.get("openapi.json").json()
        assert spec["openapi"].startswith("3.1")
        assert "/notices" in spec["paths"] and "bearer" in json.dumps(spec).lower()
        page = api.get("docs")
        assert page.status_code == 200 and "/<wbr>api/<wbr>v1/<wbr>notices" in page.text
        assert "<script" not in page.text


def test_the_record_holds_requests_and_accounts(site: Instance) -> None:
    """A clerk's token places a hold and opens a request; a dispatcher's, with the same
    scopes, is refused by role; records list, search and 404 for an unknown id."""
    cleo, dan = token(site, "cleo"), token(site, "dan")
    hold = {"name": "smith", "query": "author:smith", "reason": "litigation", "allow_empty": True}
    request = {
        "requester": "J. Doe",
        "received": "2026-11-24",
        "description": "posts about Mass Ave",
        "query": "mass ave",
        "allow_empty": True,
    }
    with client(site) as api:
        assert "clerk role" in problem_of(api.post("holds", json=hold, headers=auth(dan)), 403)
        placed = api.post("holds", json=hold, headers=auth(cleo))
        assert placed.status_code == 201, placed.text
        [listed] = api.get("holds", headers=auth(dan)).json()["items"]
        assert listed["name"] == "smith" and listed["records"] == 0
        shown = api.get(f"holds/{listed['id']}", headers=auth(dan)).json()
        assert shown["record_ids"] == []
        released = api.post(
            f"holds/{listed['id']}/release", json={"reason": "settled"}, headers=auth(dan)
        )
        assert problem_of(released, 403)
        opened = api.post("requests", json=request, headers=auth(cleo))
        assert opened.status_code == 201, opened.text
        got = api.get(f"requests/{opened.json()['id']}", headers=auth(dan)).json()
        assert got["requester"] == "J. Doe" and got["due_on"] > "2026-11-24"
        assert api.get("records", headers=auth(dan)).json() == {"items": [], "next_cursor": None}
        assert api.get("records/search?q=water", headers=auth(dan)).json()["items"] == []
        assert problem_of(api.get("records/77", headers=auth(dan)), 404)
        accounts = api.get("accounts", headers=auth(dan)).json()["items"]
        assert [(a["name"], a["platform"]) for a in accounts] == [("feed", "feed")]


def test_an_export_is_started_followed_and_downloaded(site: Instance) -> None:
    """A clerk starts a production, follows it to done and downloads a zip; a dispatcher
    cannot follow it, and an unknown id is 404."""
    cleo, dan = token(site, "cleo"), token(site, "dan")
    with client(site) as api:
        assert problem_of(api.post("exports", json={"query": "x"}, headers=auth(dan)), 403)
        assert "exactly one" in problem_of(api.post("exports", json={}, headers=auth(cleo)), 422)
        started = api.post("exports", json={"query": "water"}, headers=auth(cleo))
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        deadline = time.monotonic() + 30
        while (state := api.get(f"exports/{job}", headers=auth(cleo)).json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["state"] == "done", state
        zipped = api.get(f"exports/{job}/download", headers=auth(cleo))
        assert zipped.status_code == 200 and zipped.content[:2] == b"PK"
        assert zipped.headers["content-type"] == "application/zip"
        assert problem_of(api.get(f"exports/{job}", headers=auth(dan)), 403)
        assert problem_of(api.get("exports/" + "x" * 24, headers=auth(cleo)), 404)


def test_the_docs_page_passes_axe_at_320_and_1280_pixels(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on /api/v1/docs; nothing scrolls sideways."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'db' / 'bulletin.db'}", PEOPLE)
    try:
        with serving(inst.app) as (url, _):
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    page.goto(f"{url}/docs")
                    assert page.inner_text("h1") == "Bulletin API"
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(
                        "document.documentElement.scrollWidth <= window.innerWidth"
                    )
                finally:
                    context.close()
    finally:
        inst.app.close()


# -- exactly once ---------------------------------------------------------------------------


def test_the_same_key_and_body_give_the_first_answer(site: Instance) -> None:
    """Same key, same body: the first notice and 201 again (a day later too); same key,
    another body: 422; another account's same key is its own."""
    dan, lt = token(site, "dan"), token(site, "lt")
    with client(site) as api:
        first = api.post("notices", json=DRAFT, headers={**auth(dan), "Idempotency-Key": "k1"})
        again = api.post("notices", json=DRAFT, headers={**auth(dan), "Idempotency-Key": "k1"})
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        other = api.post(
            "notices", json={**DRAFT, "title": "x"}, headers={**auth(dan), "Idempotency-Key": "k1"}
        )
        assert "used before with another request" in problem_of(other, 422)
        theirs = api.post("notices", json=DRAFT, headers={**auth(lt), "Idempotency-Key": "k1"})
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
        site.clock.advance(timedelta(hours=23, minutes=59))
        late = api.post("notices", json=DRAFT, headers={**auth(dan), "Idempotency-Key": "k1"})
        assert late.json()["id"] == first.json()["id"]
        assert count(site, "notices") == 2
        site.clock.advance(timedelta(days=2))
        api.post("notices", json=DRAFT, headers={**auth(dan), "Idempotency-Key": "k2"})
        assert count(site, "api_idempotency_keys") == 1  # older than a day: purged


@contextmanager
def serving(app: App) -> Iterator[tuple[str, int]]:
    """``create_app(app)`` under a real uvicorn on a free port, in a thread."""
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1", port
    finally:
        server.should_exit = True
        thread.join(10)


def test_concurrent_requests_with_one_key_make_one_notice(site: Instance) -> None:
    dan = token(site, "dan")
    answers: list[httpx.Response] = []
    with serving(site.app) as (url, _):
        start = threading.Barrier(4)

        def post() -> None:
            with httpx.Client(base_url=url, timeout=30) as web:
                start.wait()
                headers = {**auth(dan), "Idempotency-Key": "same"}
                answers.append(web.post("/notices", json=DRAFT, headers=headers))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert count(site, "notices") == 1


def test_a_retry_after_the_client_went_away_finds_the_notice(site: Instance) -> None:
    """The client sends the request and hangs up before reading; the server commits; the
    retry with the same key answers with that notice, and there is one."""
    dan = token(site, "dan")
    body = json.dumps(DRAFT).encode()
    with serving(site.app) as (url, port):
        raw = socket.create_connection(("127.0.0.1", port))
        raw.sendall(
            b"POST /api/v1/notices HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nIdempotency-Key: dropped\r\n"
            + f"Authorization: Bearer {dan}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        raw.close()
        deadline = time.monotonic() + 20
        while count(site, "api_idempotency_keys") == 0:
            assert time.monotonic() < deadline, "the server never committed"
            time.sleep(0.05)
        with httpx.Client(timeout=30, base_url=url) as web:
            retry = web.post(
                "/notices", json=DRAFT, headers={**auth(dan), "Idempotency-Key": "dropped"}
            )
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    with site.app.engine.connect() as conn:
        [(only,)] = conn.execute(sa.text("SELECT id FROM notices")).all()
    assert retry.json()["id"] == only
