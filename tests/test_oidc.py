"""Single sign-on to the web console through OpenID Connect: Bulletin (a real uvicorn) and the
test provider (tests/oidc_provider, a real process) talk over HTTP; a client follows the
redirects as a browser would. Authorization code with PKCE, state bound to the browser, nonce,
ID token checks, key rotation, roles from the groups claim, and the session that follows."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import uvicorn
from sqlmodel import Session, select
from starlette.testclient import TestClient

from bulletin.app import Actor, App, users
from bulletin.app.sso import mapped_roles
from bulletin.audit import events
from bulletin.config import load_settings
from bulletin.config.oidc import OidcSettings
from bulletin.errors import ConfigError
from bulletin.users.models import UserAccount, UserIdentity
from bulletin.web import create_app
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance

CLIENT_ID = "bulletin-console"
CLIENT_SECRET = "provider-issued-secret-4f9a1c"
SECRET_NAME = "bulletin_oidc_secret"
ADA = Actor("ada", "os-user", "console-1")
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Provider:
    """The test provider process and its control API."""

    url: str

    def control(self, what: str, **body: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/_test/{what}", json=body, timeout=10)
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    def person(self, **fields: Any) -> None:
        self.control("person", **fields)


@dataclass
class Site:
    """Bulletin served on ``url``, configured for the provider."""

    instance: Instance
    provider: Provider
    url: str

    @property
    def app(self) -> App:
        return self.instance.app

    def browser(self) -> httpx.Client:
        """A fresh browser: its own cookies, following no redirect by itself."""
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=20)


def oidc_config(issuer: str, public: bool = False, **extra: str) -> str:
    """``[auth.oidc]`` for the provider at ``issuer`` (a public client: no secret)."""
    if not public:
        extra = {"client_secret_env": f'"{SECRET_NAME}"', **extra}
    lines = "\n".join(f"{k} = {v}" for k, v in extra.items())
    return f"""
[users.ada]
roles = ["admin"]

[auth.oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
role_claim = "groups"
label = "Lexington ID"
{lines}

[auth.oidc.role_map]
bulletin-dispatch = ["dispatcher"]
bulletin-admins = ["admin", "approver"]
"""


@contextmanager
def provider_process(redirect_uri: str, secret: str = CLIENT_SECRET) -> Iterator[Provider]:
    """``python -m tests.oidc_provider`` on a free port, until the block ends."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.oidc_provider",
        "--port",
        str(port),
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        secret,
        "--redirect-uri",
        redirect_uri,
    ]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                httpx.get(f"{url}/.well-known/openid-configuration", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the test provider did not start"
                time.sleep(0.05)
        yield Provider(url)
    finally:
        process.terminate()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


@contextmanager
def serving(app: App, port: int) -> Iterator[str]:
    """The web console under a real uvicorn on ``port``, in a thread."""
    config = uvicorn.Config(
        create_app(app), host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def running_site(tmp_path: Path, db_url: str, public: bool = False, **extra: str) -> Iterator[Site]:
    web_port = free_port()
    callback = f"http://127.0.0.1:{web_port}/sign-in/oidc/callback"
    with provider_process(callback, "" if public else CLIENT_SECRET) as provider:
        config = oidc_config(provider.url, public, **extra)
        config += f'\n[web]\naddress = "127.0.0.1:{web_port}"\n'
        inst = make_instance(tmp_path, db_url, config)
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / SECRET_NAME).write_text(CLIENT_SECRET + "\n")
        inst.app.environ = {"CREDENTIALS_DIRECTORY": str(credentials)}
        provider.control("clock", now=int(inst.clock.now().timestamp()))
        try:
            with serving(inst.app, web_port) as url:
                yield Site(inst, provider, url)
        finally:
            inst.app.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with running_site(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}") as found:
        yield found


@pytest.fixture
def site_on_each_database(tmp_path: Path, db_url: str) -> Iterator[Site]:
    with running_site(tmp_path, db_url) as found:
        yield found


def location(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    return response.headers["location"]


@dataclass
class Steps:
    """One sign-on, step by step: Bulletin's redirect to the provider, the provider's back."""

    to_provider: str
    callback: str


def go_to_provider(web: httpx.Client, next_: str = "/") -> Steps:
    """Press the button and let the provider answer; stop before coming back to Bulletin."""
    to_provider = location(web.get("/sign-in/oidc", params={"next": next_}))
    callback = location(httpx.get(to_provider, timeout=10))
    return Steps(to_provider, callback)


def come_back(web: httpx.Client, steps: Steps) -> httpx.Response:
    return web.get(steps.callback)


def sign_on(web: httpx.Client, next_: str = "/") -> httpx.Response:
    """The whole sign-on; the answer to the provider's redirect back."""
    return come_back(web, go_to_provider(web, next_))


def error_of(page: str) -> str:
    found = re.search(r'<p class="error"[^>]*>([^<]*)</p>', page)
    assert found, page
    return found.group(1).replace("&#39;", "'")


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert "bulletin_session" not in response.headers.get("set-cookie", "")
    return error_of(response.text)


# -- the flow ------------------------------------------------------------------------------


def test_signing_on_lands_home_with_roles_from_the_groups_claim(
    site_on_each_database: Site,
) -> None:
    """Given the provider's maria in bulletin-dispatch, when she presses "Sign in with
    Lexington ID", she lands on home as the dispatcher maria; her account has no password and
    is linked to (issuer, subject); the audit says via oidc and names the subject."""
    site = site_on_each_database
    with site.browser() as web:
        page = web.get("/sign-in").text
        assert 'href="/sign-in/oidc?next=/"' in page and "Sign in with Lexington ID" in page
        steps = go_to_provider(web)
        sent = parse_qs(urlsplit(steps.to_provider).query)
        assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
        assert sent["nonce"][0] and sent["state"][0] and sent["client_id"] == [CLIENT_ID]
        assert "openid" in sent["scope"][0].split()
        assert "code_verifier" not in steps.to_provider
        done = come_back(web, steps)
        assert location(done) == "/"
        assert "bulletin_pre=" in done.headers["set-cookie"]  # the pre-session cookie is dropped
        home = web.get("/")
        assert "Signed in as <strong>maria</strong> (dispatcher)" in home.text
    with Session(site.app.engine) as session:
        account = session.exec(select(UserAccount).where(UserAccount.name == "maria")).one()
        identity = session.exec(select(UserIdentity)).one()
    assert account.password_hash is None and account.roles == ["dispatcher"]
    assert (identity.issuer, identity.subject, identity.account_id) == (
        site.provider.url,
        "u-1001",
        account.id,
    )
    [signed_in] = events(site.app.engine, action="user.signed_in")
    assert (signed_in.actor, signed_in.via, signed_in.host) == ("maria", "oidc", "127.0.0.1")
    assert json.loads(signed_in.detail or "{}")["subject"] == "u-1001"


def test_the_session_is_rotated_and_the_old_one_ends(site: Site) -> None:
    """A planted session cookie is replaced; signing on again gives a new session and ends the
    one before; every session cookie is HttpOnly and SameSite=Lax."""
    with site.browser() as web:
        web.cookies.set("bulletin_session", "attacker-chosen-value")
        first = sign_on(web)
        cookie = next(c for c in first.headers.get_list("set-cookie") if "session=" in c)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        one = first.cookies["bulletin_session"]
        assert one != "attacker-chosen-value"
        two = sign_on(web).cookies["bulletin_session"]
        assert two != one
        assert web.get("/").status_code == 200
    with site.browser() as old:
        old.cookies.set("bulletin_session", one)
        assert old.get("/").status_code == 303


def test_next_stays_on_this_site(site: Site) -> None:
    with site.browser() as web:
        assert location(sign_on(web, "https://evil.example/")) == "/"
        assert location(sign_on(web, "//evil.example")) == "/"
        assert location(sign_on(web, "/notices?state=draft")) == "/notices?state=draft"


# -- what is refused -------------------------------------------------------------------------


def test_a_callback_from_another_browser_or_with_another_state_is_refused(site: Site) -> None:
    """The state is bound to the browser that began: the provider's answer replayed in another
    browser, a made-up state, and the same answer used twice are all refused."""
    with site.browser() as victim, site.browser() as other:
        steps = go_to_provider(victim)
        assert other.get("/sign-in").cookies["bulletin_pre"]  # a pre-session of its own
        assert "not started in this browser" in refused(come_back(other, steps))
        forged = re.sub(r"state=[^&]+", "state=made-up-state", steps.callback)
        assert "not started in this browser" in refused(victim.get(forged))
        assert location(come_back(victim, steps)) == "/"
        assert "used already" in refused(come_back(victim, steps))  # the same answer again


def test_a_token_carrying_an_earlier_nonce_is_refused(site: Site) -> None:
    """A provider (or a man in the middle) answering with the ID token's nonce of an earlier
    sign-on is refused: the nonce must be this sign-on's."""
    with site.browser() as web:
        assert location(sign_on(web)) == "/"
        site.provider.control("tamper", nonce="previous")
        assert "nonce" in refused(sign_on(web))


def test_a_code_meant_for_another_verifier_is_refused_by_the_provider(site: Site) -> None:
    """PKCE: an attacker's authorization code injected into the victim's callback is exchanged
    with the victim's verifier, which the provider refuses; straight to the provider, a wrong
    verifier is refused too."""
    with site.browser() as victim, site.browser() as attacker:
        mine = go_to_provider(victim)
        theirs = go_to_provider(attacker)
        their_code = parse_qs(urlsplit(theirs.callback).query)["code"][0]
        injected = re.sub(r"code=[^&]+", f"code={their_code}", mine.callback)
        assert "refused the sign-in (invalid_grant)" in refused(victim.get(injected))
    with site.browser() as web:
        steps = go_to_provider(web)
        code = parse_qs(urlsplit(steps.callback).query)["code"][0]
        answer = httpx.post(
            f"{site.provider.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{site.url}/sign-in/oidc/callback",
                "code_verifier": "w" * 64,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_an_answer_after_ten_minutes_or_a_refusal_by_the_provider_is_refused(
    site: Site,
) -> None:
    with site.browser() as web:
        steps = go_to_provider(web)
        site.instance.clock.advance(timedelta(minutes=11))
        assert "has expired" in refused(come_back(web, steps))
        steps = go_to_provider(web)
        state = parse_qs(urlsplit(steps.callback).query)["state"][0]
        denied = web.get(
            "/sign-in/oidc/callback", params={"error": "access_denied", "state": state}
        )
        assert refused(denied) == "The sign-on provider did not sign you in (access_denied)."


@pytest.mark.parametrize(
    ("tamper", "claim"),
    [({"iss": "https://other-provider.example"}, "iss"), ({"aud": "another-client"}, "aud")],
)
def test_a_token_from_another_issuer_or_for_another_audience_is_refused(
    site: Site, tamper: dict[str, str], claim: str
) -> None:
    site.provider.control("tamper", **tamper)
    with site.browser() as web:
        assert f"ID token's {claim} is not right" in refused(sign_on(web))
    assert not events(site.app.engine, action="user.signed_in")


def test_rotated_keys_are_fetched_again_and_unknown_keys_refused(site: Site) -> None:
    """After the provider rotates its key (the old one retired), the next sign-on works: the
    unknown kid fetches the key set again. A token signed with a key the provider does not
    publish is refused."""
    with site.browser() as web:
        assert location(sign_on(web)) == "/"
        site.provider.control("rotate", retire=True)
        assert location(sign_on(web)) == "/"
        site.provider.control("tamper", unpublished_key=True)
        assert "a key the provider does not publish" in refused(sign_on(web))


def test_no_mapped_role_is_refused_and_audited(site: Site) -> None:
    site.provider.person(groups=["cafeteria", "parking"])
    with site.browser() as web:
        assert "groups at the sign-on provider give no Bulletin role" in refused(sign_on(web))
    [audited] = events(site.app.engine, action="user.sign_in_refused")
    assert (audited.actor, audited.via) == ("maria", "oidc")
    assert json.loads(audited.detail or "{}")["subject"] == "u-1001"
    with Session(site.app.engine) as session:
        assert session.exec(select(UserAccount).where(UserAccount.name == "maria")).first() is None


def test_a_disabled_account_is_refused(site: Site) -> None:
    with site.browser() as web:
        assert location(sign_on(web)) == "/"
        users.disable(site.app, ADA, "maria")
        assert web.get("/").status_code == 303
        assert refused(sign_on(web)) == "This account is disabled."
    assert [e.via for e in events(site.app.engine, action="user.sign_in_refused")] == ["oidc"]


def test_roles_follow_the_claim_at_each_sign_on(site: Site) -> None:
    with site.browser() as web:
        sign_on(web)
        site.provider.person(groups=["bulletin-admins", "bulletin-dispatch"])
        sign_on(web)
        assert "(dispatcher, admin, approver)" in web.get("/").text
    [changed] = events(site.app.engine, action="user.roles")
    assert json.loads(changed.detail or "{}")["before"] == ["dispatcher"]


def test_groups_given_only_by_userinfo_count(site: Site) -> None:
    """A provider that leaves the groups out of the ID token (Okta's default) is asked at its
    userinfo endpoint."""
    site.provider.person(groups=["bulletin-admins"], groups_in="userinfo")
    with site.browser() as web:
        assert location(sign_on(web)) == "/"
        assert "(admin, approver)" in web.get("/").text


def test_a_name_taken_by_a_password_account_is_not_taken_over(site: Site) -> None:
    """maria at the provider does not become the local maria who signs in with a password."""
    link = users.add(site.app, ADA, "maria", ["clerk"])
    users.set_password(site.app, link.url.rsplit("/", 1)[1], "correct horse battery staple")
    with site.browser() as web:
        assert "taken by an account that signs in otherwise" in refused(sign_on(web))


def test_a_public_client_signs_on_with_pkce_alone(tmp_path: Path) -> None:
    """Without client_secret_env Bulletin is a public client: the provider is given no secret
    and the verifier alone proves the code is this sign-on's."""
    url = f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}"
    with running_site(tmp_path, url, public=True) as site, site.browser() as web:
        assert location(sign_on(web)) == "/"
        assert "Signed in as <strong>maria</strong>" in web.get("/").text


def test_the_allowed_domain_is_enforced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}"
    with running_site(tmp_path, url, allowed_domain='"lexingtonma.gov"') as site:
        with site.browser() as web:
            assert "Only addresses at lexingtonma.gov" in refused(sign_on(web))
        site.provider.person(email="maria@lexingtonma.gov", preferred_username="mlopez")
        with site.browser() as web:
            assert location(sign_on(web)) == "/"
            assert "Signed in as <strong>mlopez</strong>" in web.get("/").text


def test_the_secret_appears_nowhere(site: Site) -> None:
    """Not on a page, not in the authorization URL, not in the audit."""
    with site.browser() as web:
        steps = go_to_provider(web)
        page = come_back(web, steps)
        texts = [steps.to_provider, steps.callback, page.text, web.get("/").text]
    details = [str(e.detail) for e in events(site.app.engine, limit=200)]
    assert not any(CLIENT_SECRET in t for t in [*texts, *details])


def test_the_provider_exchanges_a_code_once_and_refreshes_tokens(site: Site) -> None:
    """The test provider on its own, as any client would use it: a code with its verifier
    gives tokens once; the refresh token gives new ones once; userinfo answers the access
    token."""
    verifier = "v" * 50
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    callback = f"{site.url}/sign-in/oidc/callback"
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": callback,
        "scope": "openid profile",
        "state": "s",
        "nonce": "n",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    back = location(httpx.get(f"{site.provider.url}/authorize", params=query))
    code = parse_qs(urlsplit(back).query)["code"][0]
    token_url = f"{site.provider.url}/token"
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback,
        "code_verifier": verifier,
    }
    auth = (CLIENT_ID, CLIENT_SECRET)
    tokens = httpx.post(token_url, data=grant, auth=auth).json()
    assert {"access_token", "id_token", "refresh_token"} <= set(tokens)
    assert httpx.post(token_url, data=grant, auth=auth).json()["error"] == "invalid_grant"
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    renewed = httpx.post(token_url, data=refresh, auth=auth).json()
    assert renewed["id_token"] and renewed["access_token"] != tokens["access_token"]
    assert httpx.post(token_url, data=refresh, auth=auth).json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {renewed['access_token']}"}
    info = httpx.get(f"{site.provider.url}/userinfo", headers=bearer).json()
    assert (info["sub"], info["groups"]) == ("u-1001", ["bulletin-dispatch"])
    assert httpx.post(token_url, data=grant, auth=(CLIENT_ID, "wrong")).status_code == 401


@pytest.mark.parametrize(
    ("claim", "roles"),
    [
        (["bulletin-admins", "bulletin-dispatch", "other"], ["dispatcher", "admin", "approver"]),
        ("bulletin-dispatch", ["dispatcher"]),  # one value, as Google's hd is
        ([], []),
        (None, []),
        ({"bulletin-admins": True}, []),  # not a list of values: nothing
    ],
)
def test_roles_are_mapped_from_a_list_or_a_single_value(claim: Any, roles: list[str]) -> None:
    oidc = OidcSettings(
        issuer="https://id.example",
        client_id="c",
        role_map={"bulletin-dispatch": ["dispatcher"], "bulletin-admins": ["admin", "approver"]},
    )
    assert mapped_roles(oidc, {"sub": "x", "groups": claim}) == roles


# -- without single sign-on, and configuration -----------------------------------------------


def test_no_button_and_no_route_without_oidc(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    try:
        with TestClient(create_app(inst.app), follow_redirects=False) as web:
            assert "/sign-in/oidc" not in web.get("/sign-in").text
            assert web.get("/sign-in/oidc").status_code == 404
    finally:
        inst.app.close()


def test_an_unreachable_provider_or_a_missing_secret_is_said_on_the_sign_in_page(
    tmp_path: Path,
) -> None:
    """The button still answers with the sign-in page and one line saying what is wrong."""
    closed = f"http://127.0.0.1:{free_port()}"
    inst = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", oidc_config(closed)
    )
    try:
        with TestClient(create_app(inst.app), follow_redirects=False) as web:
            missing = web.get("/sign-in/oidc")
            assert missing.status_code == 502
            assert error_of(missing.text) == (
                f"Single sign-on cannot start: its client secret {SECRET_NAME} is not set (an "
                "environment variable or a systemd credential of that name)."
            )
            inst.app.environ = {SECRET_NAME: CLIENT_SECRET}
            down = web.get("/sign-in/oidc", params={"next": "/notices"})
            assert down.status_code == 502
            assert error_of(down.text) == (
                "The sign-on provider cannot be reached; try again later."
            )
            assert 'name="next" value="/notices"' in down.text
    finally:
        inst.app.close()


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ('issuer = "ftp://id.example"', "auth.oidc.issuer: give the provider's https://"),
        ('issuer = "http://id.example"', "auth.oidc.issuer: give the provider's https://"),
        ('scopes = ["profile"]', 'auth.oidc.scopes: the scopes must include "openid"'),
        ('client_secret_env = "s3cr3tValueAbCdEf12"', "auth.oidc.client_secret_env: name the"),
        ('role_map = { staff = ["chief"] }', "auth.oidc.role_map.staff.0: Input should be"),
        ("role_map = { staff = [] }", "auth.oidc.role_map: 'staff' maps to no role"),
        ('allowed_domain = "not a domain"', "auth.oidc.allowed_domain: give a domain"),
        ('client_id = ""', "auth.oidc.client_id: String should have at least 1"),
    ],
)
def test_bad_oidc_settings_are_refused_in_one_line(
    tmp_path: Path, setting: str, problem: str
) -> None:
    base = {
        "issuer": '"https://id.example"',
        "client_id": '"c"',
        "role_map": '{ staff = ["clerk"] }',
    }
    key = setting.split(" = ")[0]
    body = "\n".join(f"{k} = {v}" for k, v in base.items() if k != key)
    config = tmp_path / "bulletin.toml"
    config.write_text(f"[auth.oidc]\n{body}\n{setting}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert problem in str(raised.value) and "\n" not in str(raised.value)
    assert "s3cr3tValueAbCdEf12" not in str(raised.value)


def test_a_missing_role_map_is_named(tmp_path: Path) -> None:
    config = tmp_path / "bulletin.toml"
    config.write_text('[auth.oidc]\nissuer = "https://id.example"\nclient_id = "c"\n')
    with pytest.raises(ConfigError, match=r"auth\.oidc\.role_map: Field required"):
        load_settings(config, environ={})


# -- in a real browser ------------------------------------------------------------------------


@pytest.mark.slow
def test_signing_on_in_chromium_and_axe_on_the_sign_in_page(site: Site, browser: Any) -> None:
    """In Chromium: the sign-in page with its "Sign in with" button passes axe (WCAG 2.1 AA) at
    320 and 1280 pixels, without sideways scrolling; pressing the button goes through the
    provider and lands on home, signed in."""
    for width in (320, 1280):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        try:
            page.goto(f"{site.url}/sign-in")
            assert not (found := axe_violations(page)), describe(found)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.click("text=Sign in with Lexington ID")
            page.wait_for_selector("p.who")
            assert page.url == f"{site.url}/"
            assert "Signed in as maria (dispatcher)" in page.inner_text("p.who")
            assert not (found := axe_violations(page)), describe(found)
        finally:
            context.close()
