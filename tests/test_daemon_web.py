"""The web console served by the daemon (``[web] serve_with_daemon``), the first admin's
one-time link (``bulletin init --first-admin``), and several ``bulletin web`` processes on one
PostgreSQL database. Every server takes a free port."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from bulletin.app import users
from bulletin.app.actor import Actor
from bulletin.errors import Refused
from bulletin.identity import require_role
from bulletin.service.metrics import StatusCollector
from bulletin.service.status import gather, problems
from tests.plugins.bulletin_app import Instance, feed_entry_id, make_instance
from tests.plugins.cli import invoke, run
from tests.plugins.environment import free_port
from tests.test_daemon_process import MakeDaemon, add_and_approve_fast, feed_entry_ids
from tests.test_metrics import scrape
from tests.test_web import csrf_of, sign_in

PASSWORD = "correct horse battery staple"
SYSTEM = Actor.system()


def served(port: int) -> str:
    return f'[web]\naddress = "127.0.0.1:{port}"\nserve_with_daemon = true\n'


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Instance, int]]:
    """A Bulletin on SQLite whose daemon serves the console at a free port."""
    port = free_port()
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", served(port))
    yield inst, port
    inst.app.close()


def answering(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.05)
    return False


def first_admin_link(output: str) -> str:
    found = re.search(r"http://\S+/set-password/\S+", output)
    assert found, output
    return found.group(0)


@pytest.mark.slow
def test_the_daemon_serves_the_console_and_sigterm_stops_it(
    site: tuple[Instance, int], daemon_process: MakeDaemon, tmp_path: Path
) -> None:
    """With serve_with_daemon the daemon answers /healthz and the sign-in page at [web]
    address by the time it tells systemd READY=1; SIGTERM stops the console with the daemon
    (STOPPING=1, exit 0, port closed)."""
    inst, port = site
    notify = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(notify)
        listener.settimeout(10)
        daemon = daemon_process(inst.env(NOTIFY_SOCKET=notify), inst.config.parent).start()
        assert "READY=1" in listener.recv(4096).decode()
        assert f"url=http://127.0.0.1:{port}/" in daemon.log.read_text()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as web:
            assert web.get("/healthz").text == "ok\n"
            page = web.get("/sign-in")
            assert page.status_code == 200 and "<h1>Sign in</h1>" in page.text
            assert "server" not in page.headers
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        assert "STOPPING=1" in listener.recv(4096).decode()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 0.5):
        pass


@pytest.mark.slow
def test_a_busy_port_is_reported_and_publishing_goes_on(
    site: tuple[Instance, int], daemon_process: MakeDaemon
) -> None:
    """Another program holds [web] address: the daemon logs one line naming the address and
    the setting, `status --check` reports it, and an approved notice is still published."""
    inst, port = site
    with socket.create_server(("127.0.0.1", port)):
        daemon = daemon_process(inst.env(), inst.config.parent).start()
        notice_id = add_and_approve_fast(inst, "Published without the console.")
        deadline = time.monotonic() + 15
        while feed_entry_id(inst, notice_id) not in feed_entry_ids(inst):
            assert time.monotonic() < deadline, daemon.log.read_text()
            time.sleep(0.05)
        [line] = [x for x in daemon.log.read_text().splitlines() if "web console not served" in x]
        assert f"127.0.0.1:{port} ([web] address): address already in use" in line
        check = invoke(inst, "status", "--check")
        assert check.exit_code == 1
        assert f"web console not served: cannot serve the web console at 127.0.0.1:{port}" in (
            check.output
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0


def test_status_forgets_the_console_problem_of_a_stopped_daemon(
    site: tuple[Instance, int],
) -> None:
    """A daemon that could not serve the console, then stopped: nothing left to report."""
    from bulletin.service.daemon import Daemon
    from bulletin.service.instances import HEARTBEAT_SECONDS

    inst, port = site
    with socket.create_server(("127.0.0.1", port)):
        daemon = Daemon(inst.app)
        daemon.start()
        try:
            state = gather(inst.app, HEARTBEAT_SECONDS)
            [line] = [p for p in problems(state, {}, inst.clock.now()) if "web console" in p]
            assert line.startswith(f"daemon {daemon.owner}: web console not served")
            assert state.payload()["web_unavailable"][0]["daemon"] == daemon.owner
            got = scrape(StatusCollector(inst.app, HEARTBEAT_SECONDS))
            assert got[("bulletin_web_console_unavailable", ())] == 1
        finally:
            daemon.stop()
    assert gather(inst.app, HEARTBEAT_SECONDS).web_unavailable == []


@pytest.mark.slow
def test_the_first_admin_link_signs_in_through_the_daemon(
    site: tuple[Instance, int], daemon_process: MakeDaemon
) -> None:
    """`init --first-admin` prints the console and a one-time link; through the daemon's
    console the link sets the password and `admin` signs in; a second run prints the address
    only; no password is ever printed."""
    inst, port = site
    first = run(inst, "init", "--first-admin")
    assert f"Console: http://127.0.0.1:{port}/" in first
    link = first_admin_link(first)
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
        page = web.get(link)
        assert page.status_code == 200 and "admin" in page.text
        form = {"csrf": csrf_of(page.text), "password": PASSWORD, "confirm": PASSWORD}
        assert web.post(link, data=form).status_code == 200
        assert web.get(link).status_code == 403  # used up
        done = sign_in(web, name="admin", password=PASSWORD)
        assert done.status_code == 303
        assert "Signed in as <strong>admin</strong> (admin)" in web.get("/").text
    again = run(inst, "init", "--first-admin")
    assert f"Console: http://127.0.0.1:{port}/" in again and "set-password" not in again
    assert PASSWORD not in first + again + daemon.log.read_text()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_an_unused_first_admin_link_is_renewed_and_the_old_one_revoked(
    site: tuple[Instance, int],
) -> None:
    """Run again before the first admin set a password: a fresh link, the earlier one dead."""
    inst, _ = site
    made = users.open_console(inst.app, SYSTEM)
    assert made.state == "made" and made.link is not None
    renewed = users.open_console(inst.app, SYSTEM)
    assert renewed.state == "renewed" and renewed.link is not None
    old, new = (x.link.url.rsplit("/", 1)[1] for x in (made, renewed) if x.link is not None)
    with pytest.raises(Refused):
        users.link_holder(inst.app, old)
    assert users.link_holder(inst.app, new) == "admin"
    payload = json.loads(run(inst, "init", "--first-admin", "--json", stdout=True))
    assert payload["first_admin"]["state"] == "renewed"
    assert payload["console"] == f"{inst.settings.web.link_base}/"


def test_the_first_admin_leaves_the_command_line_in_open_mode(
    site: tuple[Instance, int],
) -> None:
    """The first admin opens the console only: names are still recorded as given until a
    second account is added; then the database decides who exists."""
    inst, _ = site
    made = users.open_console(inst.app, SYSTEM)
    assert made.link is not None
    require_role(inst.settings, "dispatcher1", "dispatcher", inst.app.engine)
    with pytest.raises(Refused, match="does not hold the dispatcher role"):
        require_role(inst.settings, "admin", "dispatcher", inst.app.engine)
    users.add(inst.app, Actor("admin", "password"), "dana", ["dispatcher"])
    with pytest.raises(Refused, match="unknown user 'dispatcher1'"):
        require_role(inst.settings, "dispatcher1", "dispatcher", inst.app.engine)
    assert users.open_console(inst.app, SYSTEM).state == "staffed"


def test_whoever_ran_init_stays_the_admin_on_the_command_line(
    site: tuple[Instance, int],
) -> None:
    """The first admin is mapped to the OS login that ran `init --first-admin`: once a second
    account ends open mode, that person still acts as `admin` from the shell, and nobody
    else does."""
    inst, _ = site
    run(inst, "init", "--first-admin", login="ops")
    run(inst, "user", "add", "dana", "--role", "dispatcher", "--os-user", "dana", login="ops")
    refused = run(inst, "user", "disable", "dana", login="mallory", code=1)
    assert "mallory" in refused
    run(inst, "user", "disable", "dana", login="ops")
    listed = json.loads(run(inst, "user", "list", "--json", stdout=True, login="ops"))
    assert {(a["name"], a["disabled"]) for a in listed["users"]} == {
        ("admin", False),
        ("dana", True),
    }


def test_no_first_admin_beside_configured_users(tmp_path: Path) -> None:
    """With [users] seeded there is someone to sign in already: the console's address only."""
    inst = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'bulletin.db'}", '[users.ada]\nroles = ["admin"]\n'
    )
    try:
        out = run(inst, "init", "--first-admin")
        assert "Console: http://127.0.0.1:8080/" in out and "set-password" not in out
    finally:
        inst.app.close()


@pytest.mark.slow
def test_a_session_from_one_web_process_works_on_another(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """Two `bulletin web` processes on one PostgreSQL schema: signed in on one, the cookie
    works on the other; signing out there ends the session on the first."""
    inst = make_instance(tmp_path, pg_schema_url, '[users.ada]\nroles = ["admin"]\n')
    link = users.add(inst.app, Actor("ada", "os-user"), "rosa", ["dispatcher"])
    users.set_password(inst.app, link.url.rsplit("/", 1)[1], PASSWORD)
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bulletin", "web", "--address", f"127.0.0.1:{port}"],
            env=inst.env(),
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        assert all(answering(port) for port in ports)
        one = httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=10)
        two = httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", timeout=10)
        with one, two:
            assert sign_in(one).status_code == 303
            two.cookies = one.cookies
            home = two.get("/")
            assert "Signed in as <strong>rosa</strong>" in home.text
            signed_out = two.post("/sign-out", data={"csrf": csrf_of(home.text)})
            assert signed_out.status_code == 303
            assert one.get("/").headers["location"].startswith("/sign-in")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)
        inst.app.close()


def test_bulletin_web_on_a_busy_port_is_one_line(site: tuple[Instance, int]) -> None:
    inst, port = site
    with socket.create_server(("127.0.0.1", port)):
        result = invoke(inst, "web")
    assert result.exit_code == 2
    assert result.output == (
        f"bulletin: error: cannot serve the web console at 127.0.0.1:{port} ([web] address): "
        "address already in use; stop what listens there or choose another address\n"
    )


def test_a_session_cookie_is_kept_as_its_sha256_only(site: tuple[Instance, int]) -> None:
    """The database keeps the sha256 of the session cookie, never the cookie itself."""
    import hashlib

    from starlette.testclient import TestClient

    from bulletin.web import create_app

    inst, _ = site
    made = users.open_console(inst.app, SYSTEM)
    assert made.link is not None
    users.set_password(inst.app, made.link.url.rsplit("/", 1)[1], PASSWORD)
    with TestClient(create_app(inst.app), follow_redirects=False) as web:
        cookie = sign_in(web, name="admin", password=PASSWORD).cookies["bulletin_session"]
    with sqlite3.connect(inst.app.engine.url.database or "") as db:
        [(digest,)] = db.execute("SELECT id FROM web_sessions").fetchall()
        rows = db.execute("SELECT * FROM web_sessions").fetchall()
    assert digest == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in repr(rows)


def test_a_reload_says_web_changes_wait_for_a_restart(site: tuple[Instance, int]) -> None:
    """SIGHUP with a new [web] address: the running console stays where it is, and says so."""
    from structlog.testing import capture_logs

    from bulletin.service.daemon import Daemon

    inst, port = site
    inst.config.write_text(inst.config.read_text().replace(str(port), str(free_port())))
    with capture_logs() as logs:
        Daemon(inst.app, str(inst.config)).reload()
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "[web] changes take effect at the next start"
    assert warning["keys"] == "address"


@pytest.mark.slow
def test_make_run_on_the_embedded_defaults_gives_a_console_and_a_link(
    tmp_path: Path, daemon_process: MakeDaemon
) -> None:
    """What `make run` does, in a fresh folder with no configuration (the console and the
    sandbox moved to free ports through the environment): `init --first-admin` prints the
    console and a link, the daemon serves both, and the CLI stays in open mode."""
    port, sandbox = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env |= {
        "BULLETIN_WEB__ADDRESS": f"127.0.0.1:{port}",
        "BULLETIN_SANDBOX__PORT": str(sandbox),
        "BULLETIN_ACCOUNTS__SANDBOX-X__BASE_URL": f"http://127.0.0.1:{sandbox}",
        "BULLETIN_ACCOUNTS__SANDBOX-FACEBOOK__BASE_URL": f"http://127.0.0.1:{sandbox}",
    }

    def bulletin(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bulletin", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = bulletin("init", "--first-admin")
    assert f"Console: http://127.0.0.1:{port}/" in out
    link = first_admin_link(out)
    daemon = daemon_process(env, tmp_path).start()
    daemon.wait_for_log("web console")  # "sandbox started" comes first
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
        assert web.get("/sign-in").status_code == 200
        assert web.get(link).status_code == 200
    drafted = bulletin(
        "notice", "add", "--category", "traffic", "--text", "Open mode.", "--target", "feed",
        "--as", "dispatcher1",
    )  # fmt: skip
    assert "drafted" in drafted
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
