"""The console's cost on SQLite (or ``--db postgres``: a schema of its own, dropped after the
run) with ``--future`` approved notices scheduled (default 10,000), each figure against its
baseline in the same run.

1. Approve click to post: a daemon subprocess serves the console (``[web] serve_with_daemon``).
   Each round a dispatcher drafts an emergency notice (application layer, this process); the
   approver, signed in over one keep-alive connection, POSTs the approval form (with its CSRF
   token) to ``/approvals/ID``; timed from sending the POST to the in-process sandbox receiving
   the create-post request (and, apart, to the 303 answer). Baseline, interleaved: a second
   notice approved through the library in this process (commit, then wake the daemon), timed
   from the commit to the sandbox receiving it: the daemon's own share. p50 and p99 of each.
2. Page loads: the board (``/notices``) and the week calendar (``/notices/week``, the week that
   holds the scheduled notices, and an empty one four weeks later) for a signed-in
   dispatcher, against a bare Starlette hello-world route, all served by one uvicorn in this
   process (the daemon still running).
   Server time = from the request reaching the ASGI app to its last body byte, taken by a thin
   wrapper around both; the client's round trip is printed too.

    python bench/bench_console.py [--db sqlite|postgres] [--future 10000] [--runs 50]
        [--loads 50] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

import httpx2 as httpx  # noqa: E402
import uvicorn  # noqa: E402
from _support import Daemon, configure, database, seed_future_notices, start_sandbox  # noqa: E402
from bench_dispatch import Arrivals, percentile  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from bulletin.app import Actor, App, notices, users  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.publisher.approval import approve_notice  # noqa: E402
from bulletin.publisher.notices import NoticeDraft  # noqa: E402
from bulletin.web import create_app  # noqa: E402

PASSWORD = secrets.token_urlsafe(18)  # this run's, for the two bench accounts
ADA = Actor("ada", "os-user", "bench")
DANA = Actor("dana", "session", "127.0.0.1")
HELLO = "/__hello"
MS = 1000

WEB = """
[web]
address = "127.0.0.1:{port}"
serve_with_daemon = true
base_url = "https://bulletin.example.org"
[users.ada]
roles = ["admin"]
os_user = "ada"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answering(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers at port {port}")


def add_person(app: App, name: str, role: str) -> None:
    link = users.add(app, ADA, name, [role])
    users.set_password(app, link.url.rsplit("/", 1)[-1], PASSWORD)


def sign_in(client: httpx.Client, name: str) -> None:
    page = client.get("/sign-in")
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    done = client.post(
        "/sign-in", data={"csrf": found.group(1), "name": name, "password": PASSWORD}
    )
    assert done.status_code == 303, done.text


def csrf_for(page: str, action_prefix: str) -> str:
    found = re.search(
        rf'action="{re.escape(action_prefix)}[^"]*"[^>]*>\s*'
        r'<input type="hidden" name="csrf" value="(\w+)"',
        page,
    )
    assert found, page
    return found.group(1)


def summary(label: str, values: list[float], base: float | None = None) -> str:
    med, p99 = statistics.median(values), percentile(values, 99)
    line = f"  {label:<52} p50 {med * MS:7.1f} ms   p99 {p99 * MS:7.1f} ms"
    return line + (f"   {med / base:5.1f}x" if base else "")


def draft(app: App, text: str) -> int:
    made = notices.draft(app, DANA, NoticeDraft("evacuation", text, ("x",)))
    return made.notice.id or 0


def bench_clicks(app: App, port: int, runs: int, arrivals: Arrivals) -> None:
    to_post, to_answer, daemon_only = [], [], []
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=120
    ) as abe:
        sign_in(abe, "abe")
        for i in range(runs + 1):  # the first round warms the caches and is not counted
            text = f"Evacuate Zone {i % 7}: console click {i} {time.time_ns()}"
            notice_id = draft(app, text)
            token = csrf_for(abe.get("/approvals").text, f"/approvals/{notice_id}")
            began = time.perf_counter()
            answer = abe.post(f"/approvals/{notice_id}", data={"csrf": token})
            answered = time.perf_counter()
            assert answer.status_code == 303, answer.text
            posted = arrivals.wait_for(text) - began
            text = f"Evacuate Zone {i % 7}: library {i} {time.time_ns()}"
            notice_id = draft(app, text)
            approve_notice(app.engine, app.settings, app.clock, notice_id, "abe")
            committed = time.perf_counter()
            alone = arrivals.wait_for(text) - committed
            if i:
                to_post.append(posted)
                to_answer.append(answered - began)
                daemon_only.append(alone)
    base = statistics.median(daemon_only)
    print(f"approve click -> sandbox has the post, {runs} rounds (x the daemon's share, p50):")
    print(summary("daemon only: commit -> sandbox has the post", daemon_only, base))
    print(summary("console: POST /approvals/ID -> sandbox has the post", to_post, base))
    print(summary("console: POST /approvals/ID -> 303 answer", to_answer, base))
    goal = percentile(to_post, 99) < 0.300
    print(f"  goal p99 < 300 ms: {'met' if goal else 'NOT met'}")


class ServerTime:
    """An ASGI wrapper noting, per path, the time from the call to the last body byte."""

    def __init__(self, console: ASGIApp, hello: ASGIApp) -> None:
        self.console, self.hello = console, hello
        self.spent: dict[str, list[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.console(scope, receive, send)
            return
        began = time.perf_counter()
        path = scope["path"]

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.spent.setdefault(path, []).append(time.perf_counter() - began)

        target = self.hello if path == HELLO else self.console
        await target(scope, receive, timed_send)


def hello_world() -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello\n")

    return Starlette(routes=[Route(HELLO, hello)])


@contextlib.contextmanager
def serving(asgi: ASGIApp) -> Iterator[str]:
    """``asgi`` under uvicorn on a free port, in a thread; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def bench_pages(app: App, loads: int, future: int) -> None:
    zone = ZoneInfo(app.settings.agency.time_zone)
    first = (datetime.now(UTC) + timedelta(days=1)).astimezone(zone).date()
    start, empty = first.isoformat(), (first + timedelta(days=28)).isoformat()
    paths = {
        "board": "/notices",
        "week": f"/notices/week?from={start}",
        "empty week": f"/notices/week?from={empty}",
        "hello": HELLO,
    }
    wrapper = ServerTime(create_app(app), hello_world())
    client_time: dict[str, list[float]] = {k: [] for k in paths}
    with serving(wrapper) as url, httpx.Client(base_url=url, timeout=120) as dana:
        sign_in(dana, "dana")
        week = dana.get(f"/notices/week.json?from={start}").json()
        shown = sum(len(d["entries"]) for d in week["days"])
        held = shown + sum(d["more"] for d in week["days"])
        for _ in range(3):  # warm-up, not counted
            for path in paths.values():
                dana.get(path).raise_for_status()
        wrapper.spent.clear()
        for _ in range(loads):
            for name, path in paths.items():
                began = time.perf_counter()
                dana.get(path).raise_for_status()
                client_time[name].append(time.perf_counter() - began)
    server: dict[str, list[float]] = {}
    for name, path in paths.items():  # the wrapper keys by path: the two weeks share theirs
        every = wrapper.spent[path.split("?")[0]]
        server[name] = every[0::2] if name == "week" else every[1::2] if "week" in name else every
    hello = statistics.median(server["hello"])
    print(
        f"page loads, {loads} each, signed-in dispatcher, {future:,} notices scheduled "
        f"({held:,} of them in the week shown, {shown:,} listed, the rest counted); x "
        "hello-world's server time, p50:"
    )
    for name, path in paths.items():
        print(summary(f"{name} ({path.split('?')[0]}) server time", server[name], hello))
        print(summary(f"{name} client round trip", client_time[name]))
    for name in ("board", "week", "empty week"):
        goal = percentile(server[name], 99) < 0.200
        print(f"  goal {name} < 200 ms server time (p99): {'met' if goal else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--future", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="500 notices, 5 runs, 5 loads")
    args = parser.parse_args()
    if args.quick:
        args.future, args.runs, args.loads = 500, 5, 5
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    print(f"load average {os.getloadavg()[0]:.1f}; {names[args.db]}")
    sandbox = start_sandbox()
    sandbox.app.state.data["settings"]["enforce_rate_limits"] = False
    arrivals = Arrivals(sandbox)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-console-") as tmp_name,
            database(args.db, Path(tmp_name)) as url,
        ):
            tmp = Path(tmp_name)
            config, first = configure(tmp, url, sandbox.url)
            first.close()
            port = free_port()
            with config.open("a") as f:
                f.write(WEB.format(port=port))
            app = App(load_settings(config, environ={}), environ={})
            try:
                add_person(app, "dana", "dispatcher")
                add_person(app, "abe", "approver")
                seed_future_notices(app, args.future, "feed", datetime.now(UTC))
                daemon = Daemon(config, tmp / "daemon.log").start()
                try:
                    answering(port)
                    bench_clicks(app, port, args.runs, arrivals)
                    bench_pages(app, args.loads, args.future)
                finally:
                    daemon.stop()
            finally:
                app.close()
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
