"""The web console's first pages: sign-in, sessions kept in the database, sign-out, set-password
links, and the protections every page carries (CSRF tokens, security headers, throttling, no
open redirect). Against SQLite and PostgreSQL, through Starlette's client and a real uvicorn."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from bulletin.app import Actor, App, users
from bulletin.audit import events
from bulletin.config import load_settings
from bulletin.errors import ConfigError
from bulletin.web import create_app
from bulletin.web.security import CSP, local_path
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke

PEOPLE = """
[users.ada]
roles = ["admin"]
os_user = "ada"

[web]
base_url = "https://bulletin.example.org"
trusted_proxies = ["10.0.0.0/8"]
session_idle = "30min"
session_lifetime = "12h"
throttle_account_failures = 3
throttle_address_failures = 5
"""
PASSWORD = "correct horse battery staple"
ADA = Actor("ada", "os-user", "console-1")
LINK_PREFIX = "https://bulletin.example.org/set-password/"


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database with an admin configured and rosa, a dispatcher, whose
    password is set."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    add_with_password(inst.app, "rosa", "dispatcher")
    yield inst
    inst.app.close()


def add_with_password(app: App, name: str, *roles: str) -> None:
    link = users.add(app, ADA, name, list(roles), os_user=name)
    users.set_password(app, link.url.removeprefix(LINK_PREFIX), PASSWORD)


def client(site: Instance, **options: Any) -> TestClient:
    return TestClient(create_app(site.app), follow_redirects=False, **options)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, page
    return found.group(1)


def error_of(page: str) -> str:
    found = re.search(r'<p class="error"[^>]*>([^<]*)</p>', page)
    assert found, page
    return found.group(1)


def sign_in(
    web: TestClient | httpx.Client,
    name: str = "rosa",
    password: str = PASSWORD,
    next_: str | None = None,
    **extra: str,
) -> httpx.Response:
    """Open the sign-in page (its form token) and post the form."""
    page = web.get("/sign-in")
    assert page.status_code == 200
    form = {"csrf": csrf_of(page.text), "name": name, "password": password, **extra}
    if next_ is not None:
        form["next"] = next_
    return web.post("/sign-in", data=form)


def test_sign_in_shows_home_and_who(site: Instance) -> None:
    """Signing in lands on home, which says who is signed in and their roles; the cookie is
    HttpOnly and SameSite=Lax (not Secure over plain HTTP); home without it goes to sign-in."""
    with client(site) as web:
        assert web.get("/").headers["location"] == "/sign-in?next=/"
        done = sign_in(web)
        assert done.status_code == 303 and done.headers["location"] == "/"
        cookie = next(c for c in done.headers.get_list("set-cookie") if "bulletin_session=" in c)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        home = web.get("/")
        assert home.status_code == 200
        assert "Signed in as <strong>rosa</strong> (dispatcher)" in home.text
        assert '<html lang="en">' in home.text and 'href="#main"' in home.text
    [signed_in] = events(site.app.engine, action="user.signed_in")
    assert (signed_in.actor, signed_in.via) == ("rosa", "password")


def test_wrong_password_and_unknown_user_get_the_same_message(site: Instance) -> None:
    with client(site) as web:
        wrong = sign_in(web, password="not the password at all")
        unknown = sign_in(web, name="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert error_of(wrong.text) == error_of(unknown.text) == "Wrong user name or password."
    assert "bulletin_session" not in wrong.headers.get("set-cookie", "")


def test_a_cookie_set_before_sign_in_is_never_the_session(site: Instance) -> None:
    """Session fixation: a session cookie planted before sign-in is replaced, and the planted
    value does not sign anyone in."""
    planted = "attacker-chosen-value"
    with client(site) as web:
        web.cookies.set("bulletin_session", planted)
        done = sign_in(web)
        after = done.cookies.get("bulletin_session")
        assert after and after != planted
    with client(site) as other:
        other.cookies.set("bulletin_session", planted)
        assert other.get("/").status_code == 303
    with client(site) as web:  # signing in again gives a new session, the old one ends
        first = sign_in(web).cookies["bulletin_session"]
        second = sign_in(web).cookies["bulletin_session"]
        assert first != second
    with client(site) as old:
        old.cookies.set("bulletin_session", first)
        assert old.get("/").status_code == 303


def test_a_post_without_or_with_a_wrong_token_is_refused(site: Instance) -> None:
    """The sign-in form and the sign-out form both need their token; the sign-in page's
    token cannot sign anyone out."""
    with client(site) as web:
        page = web.get("/sign-in")
        form = {"name": "rosa", "password": PASSWORD}
        assert web.post("/sign-in", data=form).status_code == 403
        assert web.post("/sign-in", data={**form, "csrf": "0" * 64}).status_code == 403
        pre_token = csrf_of(page.text)
        assert sign_in(web).status_code == 303
        assert web.post("/sign-out", data={}).status_code == 403
        assert web.post("/sign-out", data={"csrf": pre_token}).status_code == 403
        assert web.get("/").status_code == 200  # still signed in
    with client(site) as fresh:  # a token without its cookie is refused
        assert fresh.post("/sign-in", data={**form, "csrf": pre_token}).status_code == 403


def test_every_page_carries_the_security_headers(site: Instance) -> None:
    """CSP without inline script or style, nosniff, same-origin referrer; HSTS only over TLS."""
    with client(site) as web:
        for path in ("/sign-in", "/healthz", "/static/bulletin.css", "/nowhere"):
            got = web.get(path)
            assert got.headers["content-security-policy"] == CSP, path
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.headers["referrer-policy"] == "same-origin"
            assert "strict-transport-security" not in got.headers
            assert (got.headers.get("cache-control") == "no-store") is ("static" not in path)
        page = web.get("/sign-in").text
        assert "<script" not in page and "style=" not in page and "<style" not in page
    with client(site, base_url="https://testserver") as tls:
        done = sign_in(tls)
        assert "max-age=" in done.headers["strict-transport-security"]
        assert "Secure" in done.headers["set-cookie"]


def test_forwarded_headers_count_only_from_trusted_proxies(site: Instance) -> None:
    """X-Forwarded-Proto https makes the cookie Secure and X-Forwarded-For names the client,
    from a proxy in [web] trusted_proxies only."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    for peer, tls in (("10.1.2.3", True), ("198.51.100.9", False)):
        with client(site, client=(peer, 40000), headers=forwarded) as web:
            page = web.get("/sign-in")
            pre = page.headers["set-cookie"]
            assert ("Secure" in pre) is tls
            value = re.search(r"bulletin_pre=([^;]+)", pre)
            assert value
            form = {"csrf": csrf_of(page.text), "name": "rosa", "password": PASSWORD}
            cookie = {"Cookie": f"bulletin_pre={value.group(1)}"}  # sent over TLS, we pretend
            done = web.post("/sign-in", data=form, headers=cookie)
            assert done.status_code == 303
            session = next(c for c in done.headers.get_list("set-cookie") if "session=" in c)
            assert ("Secure" in session) is tls
            assert ("strict-transport-security" in done.headers) is tls
    hosts = [e.host for e in events(site.app.engine, action="user.signed_in")]
    assert hosts == ["203.0.113.7", "198.51.100.9"]


def test_sign_in_is_throttled_per_account_and_audited(site: Instance) -> None:
    """After 3 failures for one name (from different addresses) even the right password waits;
    the refusal is audited; once the wait is over it works."""
    for n in range(3):
        with client(site, client=(f"192.0.2.{n + 1}", 1)) as web:
            assert sign_in(web, password="wrong password, wrong").status_code == 401
    with client(site, client=("192.0.2.99", 1)) as web:
        refused = sign_in(web)
        assert refused.status_code == 429
        assert "too many failed sign-ins" in error_of(refused.text).lower()
        assert int(refused.headers["retry-after"]) == 30
        [audited] = events(site.app.engine, action="user.sign_in_throttled")
        assert (audited.object_id, audited.host) == ("rosa", "192.0.2.99")
        site.clock.advance(timedelta(seconds=31))
        assert sign_in(web).status_code == 303


def test_sign_in_is_throttled_per_address(site: Instance) -> None:
    """After 5 failures from one address (any names) a sixth name waits too; another address
    does not."""
    with client(site, client=("192.0.2.50", 1)) as web:
        for n in range(5):
            assert sign_in(web, name=f"guess{n}").status_code == 401
        assert sign_in(web).status_code == 429
    with client(site, client=("192.0.2.51", 1)) as elsewhere:
        assert sign_in(elsewhere).status_code == 303
    audited = events(site.app.engine, action="user.sign_in_throttled")
    assert [(e.object_id, e.host) for e in audited] == [("rosa", "192.0.2.50")]


@pytest.mark.parametrize(
    "target", ["https://evil.example", "//evil.example", "/\\evil.example", "http:/x", " /x"]
)
def test_next_is_only_a_local_path(target: str) -> None:
    assert local_path(target) == "/"
    assert local_path("/notices?state=draft") == "/notices?state=draft"


def test_sign_in_goes_on_to_next_but_never_off_site(site: Instance) -> None:
    with client(site) as web:
        for evil in ("https://evil.example/", "//evil.example", "/\\evil.example"):
            assert sign_in(web, next_=evil).headers["location"] == "/"
            page = web.get("/sign-in", params={"next": evil}).text
            assert 'name="next" value="/"' in page
        assert sign_in(web, next_="/notices").headers["location"] == "/notices"


def test_a_session_ends_after_its_idle_time_and_its_lifetime(site: Instance) -> None:
    with client(site) as web:
        sign_in(web)
        site.clock.advance(timedelta(minutes=29))
        assert web.get("/").status_code == 200  # seen: the idle time starts again
        site.clock.advance(timedelta(minutes=29))
        assert web.get("/").status_code == 200
        site.clock.advance(timedelta(minutes=31))
        assert web.get("/").status_code == 303
        sign_in(web)
        for _ in range(25):  # active all along, but 12 hours is the most
            site.clock.advance(timedelta(minutes=29))
            got = web.get("/")
        assert got.status_code == 303


def test_sign_out_revokes_the_session(site: Instance) -> None:
    with client(site) as web:
        cookie = sign_in(web).cookies["bulletin_session"]
        home = web.get("/")
        out = web.post("/sign-out", data={"csrf": csrf_of(home.text)})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    with client(site) as thief:
        thief.cookies.set("bulletin_session", cookie)
        assert thief.get("/").status_code == 303
        again = thief.post("/sign-out", data={})  # an ended session: nothing to protect
        assert again.status_code == 303 and again.headers["location"] == "/sign-in"
    assert [e.actor for e in events(site.app.engine, action="user.signed_out")] == ["rosa"]


def test_an_admin_signs_a_user_out_everywhere(site: Instance) -> None:
    """`bulletin user sign-out-everywhere NAME` ends every session of NAME; a non-admin may
    not do it to someone else."""
    with client(site) as one, client(site) as two:
        sign_in(one)
        sign_in(two)
        refused = invoke(site, "user", "sign-out-everywhere", "ada", login="rosa")
        assert refused.exit_code == 1 and "admin" in refused.output
        done = invoke(site, "user", "sign-out-everywhere", "rosa", "--json", login="ada")
        assert done.exit_code == 0, done.output
        assert '"sessions": 2' in done.output
        assert one.get("/").status_code == two.get("/").status_code == 303
    [audited] = events(site.app.engine, action="user.sessions_revoked")
    assert (audited.actor, audited.object_id) == ("ada", "rosa")


def test_disabling_or_resetting_an_account_ends_its_sessions(site: Instance) -> None:
    with client(site) as web:
        sign_in(web)
        users.reset(site.app, ADA, "rosa")
        assert web.get("/").status_code == 303
    add_with_password(site.app, "dan", "dispatcher")
    with client(site) as web:
        sign_in(web, name="dan")
        users.disable(site.app, ADA, "dan")
        assert web.get("/").status_code == 303


def test_unknown_pages_and_big_bodies_get_a_page_with_the_headers(site: Instance) -> None:
    with client(site) as web:
        missing = web.get("/nowhere")
        assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.text
        assert missing.headers["content-security-policy"] == CSP
        wrong = web.get("/sign-out")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        big = web.post("/sign-in", data={"name": "x" * 100_000})
        assert big.status_code == 413


def test_every_route_that_takes_a_body_caps_it(site: Instance) -> None:
    """Every route a POST reaches, the console's, the API's and sign-in's alike, refuses a
    body over the form limit (413) before any handler reads it; only Meta's webhook, which
    authenticates its larger bodies by signature, the compose form with an image, capped
    at the image's limit and a form's, and the API's new notice with its images take more."""
    from starlette.routing import Mount, Route

    from bulletin.web import MAX_BODY, api, console, create_app, facebook_hook

    asgi = create_app(site.app)
    posts = [
        re.sub(r"\{\w+:int\}", "1", re.sub(r"\{\w+\}", "x", r.path))
        for r in asgi.routes
        if isinstance(r, Route) and "POST" in (r.methods or set())
    ]
    posts += [
        f"{r.path}/{p}"
        for r in asgi.routes
        if isinstance(r, Mount) and "api" in r.path
        for p in ("notices", "notices/1/approve", "notices/from-template")
    ]
    assert "/notices/new" in posts and "/api/v1/notices" in posts
    big = b"x" * (MAX_BODY + 1)
    with client(site) as web:
        for path in posts:
            if path == facebook_hook.PATH:
                continue
            if path == console.UPLOAD_PATH:
                huge = b"x" * (console.MAX_UPLOAD + MAX_BODY + 1)
                answer = web.post(path, content=huge, headers={"content-type": "text/plain"})
                assert answer.status_code == 413, path
                continue
            if path.removeprefix(api.PREFIX) in api.NEW_NOTICES:
                huge = b"x" * (api.MAX_NOTICE_BODY + 1)
                answer = web.post(path, content=huge, headers={"content-type": "text/plain"})
                assert answer.status_code == 413, path
                continue
            answer = web.post(path, content=big, headers={"content-type": "text/plain"})
            assert answer.status_code == 413, path


def test_a_set_password_link_works_once(site: Instance) -> None:
    link = users.add(site.app, ADA, "cleo", ["clerk"])
    path = link.url.removeprefix("https://bulletin.example.org")
    with client(site) as web:
        page = web.get(path)
        assert page.status_code == 200 and "Set your password" in page.text
        assert "<strong>cleo</strong>" in page.text
        form = {"csrf": csrf_of(page.text), "password": PASSWORD, "confirm": PASSWORD}
        assert web.post(path, data={**form, "confirm": "something else!"}).status_code == 400
        assert web.post(path, data={}).status_code == 403
        done = web.post(path, data=form)
        assert done.status_code == 200 and "cleo" in done.text
        again = web.post(path, data=form)
        assert again.status_code == 403 and "not valid" in again.text
        assert web.get(path).status_code == 403
        assert sign_in(web, name="cleo").status_code == 303


def test_health_and_readiness_say_nothing_secret(site: Instance, tmp_path: Path) -> None:
    with client(site) as web:
        assert web.get("/healthz").text == "ok\n"
        ready = web.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"database": "ok", "store": "ok"}
        assert str(tmp_path) not in ready.text and "postgresql" not in ready.text


def test_readiness_fails_without_a_database(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    (tmp_path / "data" / "bulletin.db").unlink()
    inst.app.engine.dispose()  # a pooled connection would still read the unlinked file
    try:
        with TestClient(create_app(inst.app)) as web:
            assert web.get("/healthz").status_code == 200
            ready = web.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"database": "unavailable", "store": "ok"}
            assert str(tmp_path) not in ready.text
    finally:
        inst.app.close()


@contextmanager
def serving(app: App) -> Iterator[str]:
    """``create_app(app)`` under a real uvicorn on a free port, in a thread; its base URL."""
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


def test_sign_in_and_out_through_a_real_server(site: Instance) -> None:
    """The same pages over a socket: sign in, home, sign out, the old cookie is dead."""
    with (
        serving(site.app) as url,
        httpx.Client(timeout=30, base_url=url, follow_redirects=False) as web,
    ):
        assert web.get("/healthz").status_code == 200
        done = sign_in(web)
        assert done.status_code == 303
        cookie = done.cookies["bulletin_session"]
        home = web.get("/")
        assert "Signed in as <strong>rosa</strong>" in home.text
        assert web.post("/sign-out", data={"csrf": csrf_of(home.text)}).status_code == 303
        web.cookies.clear()
        web.cookies.set("bulletin_session", cookie)
        assert web.get("/").status_code == 303
    hosts = {e.host for e in events(site.app.engine, action="user.signed_in")}
    assert hosts == {"127.0.0.1"}


@pytest.fixture
def browser_site(tmp_path: Path) -> Iterator[Instance]:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    add_with_password(inst.app, "rosa", "dispatcher", "approver")
    yield inst
    inst.app.close()


@pytest.mark.slow
def test_sign_in_and_home_pass_axe_at_320_and_1280_pixels(
    browser_site: Instance, browser: Any
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the sign-in page (with and without an
    error), on home and on the set-password pages, at 320 and 1280 pixels; the sign-in form is
    used with the keyboard alone."""
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                page.goto(f"{url}/sign-in")
                assert not (found := axe_violations(page)), describe(found)
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.textContent") == (
                    "Skip to main content"
                )
                page.fill("#name", "rosa")
                page.fill("#password", "wrong password, wrong")
                page.press("#password", "Enter")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                page.fill("#password", PASSWORD)
                page.press("#password", "Enter")
                page.wait_for_selector("p.who")
                assert "Signed in as rosa (dispatcher, approver)" in page.inner_text("p.who")
                assert not (found := axe_violations(page)), describe(found)
                no_sideways = "document.documentElement.scrollWidth <= window.innerWidth"
                assert page.evaluate(no_sideways)
                page.click("text=Sign out")
                page.wait_for_selector("h1:has-text('Sign in')")
                # the set-password form, the page after it, and the page of a spent link
                link = users.add(browser_site.app, ADA, f"cleo{width}", ["clerk"])
                address = link.url.replace(LINK_PREFIX, f"{url}/set-password/")
                page.goto(address)
                assert not (found := axe_violations(page)), describe(found)
                page.fill("#password", PASSWORD)
                page.fill("#confirm", PASSWORD)
                page.press("#confirm", "Enter")
                page.wait_for_load_state()
                assert not (found := axe_violations(page)), describe(found)
                page.goto(address)
                assert page.locator("p.error").count() == 1
                assert not (found := axe_violations(page)), describe(found)
            finally:
                context.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_bulletin_web_serves_until_terminated(site: Instance) -> None:
    """`bulletin web --address` runs the console as a process; SIGTERM stops it."""
    port = free_port()
    command = [sys.executable, "-m", "bulletin", "web", "--address", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, env=site.env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                got = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "bulletin web did not answer"
                time.sleep(0.1)
        assert got.json() == {"database": "ok", "store": "ok"}
        assert "server" not in got.headers
        with httpx.Client(timeout=30, base_url=f"http://127.0.0.1:{port}") as web:
            assert sign_in(web, next_="/").status_code == 303
    finally:
        process.terminate()
        assert process.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        assert process.stderr is not None
        process.stderr.close()


def test_bulletin_web_refuses_a_bad_address(site: Instance) -> None:
    result = invoke(site, "web", "--address", "8080")
    assert result.exit_code == 2 and "host:port" in result.output


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ('trusted_proxies = ["10.0.0.0/33"]', "not an IP address or network"),
        ('address = "localhost"', "give host:port"),
        ('session_idle = "soon"', "session_idle"),
        ('session_lifetime = "1mo"', "session_lifetime"),
    ],
)
def test_bad_web_settings_are_refused(tmp_path: Path, setting: str, problem: str) -> None:
    config = tmp_path / "bulletin.toml"
    config.write_text(f"[web]\n{setting}\n")
    with pytest.raises(ConfigError, match=problem):
        load_settings(config, environ={})


def test_links_start_at_the_web_address_without_a_base_url(tmp_path: Path) -> None:
    config = tmp_path / "bulletin.toml"
    config.write_text('[web]\naddress = "0.0.0.0:9090"\n')
    assert load_settings(config, environ={}).web.link_base == "http://0.0.0.0:9090"
