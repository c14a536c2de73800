"""The HTTP API's cost, each figure against its baseline in the same run.

1. Draft-and-approve to feed: for each of ``--notices`` notices (default 40), a dispatcher's
   token POSTs /api/v1/notices and an approver's token POSTs /api/v1/notices/ID/approve over
   a real socket (uvicorn in this process, one keep-alive connection per token); the time runs
   until the feed file holds the entry (a daemon runs in this process and is woken by the
   approval). Baseline: the same two actions through the application layer directly
   (``app.notices.draft`` and ``approve``), timed the same way. p50 and p99 of each.
2. Authenticated reads: requests/s of ``GET /api/v1/notices?limit=20`` (bearer token checked
   against the database, 20 notices read and serialised) for ``--seconds`` (default 5) with
   ``--clients`` keep-alive clients (default 4), against a bare Starlette hello-world served
   the same way (uvicorn in this process, same clients).

SQLite in a temporary directory; the feed account only. About a minute with the defaults.

    python bench/bench_api.py [--notices 40] [--seconds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx2 as httpx  # noqa: E402
import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.types import ASGIApp  # noqa: E402

from bulletin.app import Actor, App, notices, tokens, users  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.publisher.notices import NoticeDraft  # noqa: E402
from bulletin.service.daemon import running  # noqa: E402
from bulletin.web import create_app  # noqa: E402

TEXT = "Road closed: Mass Ave between Waltham St and Muzzey St until 6 pm (water main repair)."
DAN, ABE = Actor("dan", "token"), Actor("abe", "token")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def make_app(root: Path) -> App:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "bulletin.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{root / "data"}"\n[accounts.feed]\nplatform = "feed"\n'
        "capture_interval = 3600\n[daemon]\nscan_interval = 1.0\n"
        '[users.dan]\nroles = ["dispatcher"]\n[users.abe]\nroles = ["approver"]\n'
    )
    (root / "data").mkdir()
    app = App(load_settings(config, environ={}), environ={})
    migrate(app.engine)
    users.seed(app)
    return app


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


def until_in_feed(app: App, notice_id: int) -> None:
    feed = app.settings.feed_path("feed")
    tagged, plain = f"notice-{notice_id}.".encode(), f"notice-{notice_id}<".encode()
    while True:  # the entry's id ends in the notice's uid (or, without one, at its number)
        body = feed.read_bytes() if feed.exists() else b""
        if tagged in body or plain in body:
            return
        time.sleep(0.0005)


def timed(count: int, one: Callable[[int], None]) -> list[float]:
    spent = []
    for i in range(count):
        start = time.perf_counter()
        one(i)
        spent.append(time.perf_counter() - start)
    return spent


def bench_publish(app: App, url: str, count: int) -> None:
    dan = tokens.create(app, Actor("dan"), "bench-dan", ["notices:write"]).token
    abe = tokens.create(app, Actor("abe"), "bench-abe", ["notices:write"]).token
    with (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {dan}"}) as as_dan,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {abe}"}) as as_abe,
    ):

        def through_api(i: int) -> None:
            made = as_dan.post(
                "/api/v1/notices",
                json={"category": "road-closure", "text": f"{TEXT} api {i}", "targets": ["feed"]},
            )
            made.raise_for_status()
            notice_id = made.json()["id"]
            as_abe.post(f"/api/v1/notices/{notice_id}/approve").raise_for_status()
            until_in_feed(app, notice_id)

        def through_app(i: int) -> None:
            draft = NoticeDraft("road-closure", f"{TEXT} app {i}", ("feed",))
            notice_id = notices.draft(app, DAN, draft).notice.id or 0
            notices.approve(app, ABE, notice_id)
            until_in_feed(app, notice_id)

        through_app(-1)  # warm both paths (imports, connections, the feed file)
        through_api(-1)
        api = timed(count, through_api)
        direct = timed(count, through_app)
    ms = 1000
    print(f"draft + approve until the feed has the post, {count} notices each (SQLite):")
    for label, spent in (("HTTP API", api), ("app layer", direct)):
        print(
            f"  {label:<10} p50 {statistics.median(spent) * ms:7.1f} ms   "
            f"p99 {percentile(spent, 99) * ms:7.1f} ms"
        )
    print(
        f"  ratio API/app: p50 {statistics.median(api) / statistics.median(direct):4.2f}x   "
        f"p99 {percentile(api, 99) / percentile(direct, 99):4.2f}x"
    )


def rate(url: str, path: str, headers: dict[str, str], seconds: float, clients: int) -> float:
    """Requests/s of ``GET path`` by ``clients`` keep-alive clients for ``seconds``."""
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers=headers) as web:
            while time.perf_counter() < stop:
                web.get(path).raise_for_status()
                done[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def hello_world() -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello\n")

    return Starlette(routes=[Route("/", hello)])


def bench_reads(app: App, url: str, seconds: float, clients: int) -> None:
    reader = tokens.create(app, Actor("dan"), "bench-read", ["notices:read"]).token
    api = rate(
        url, "/api/v1/notices?limit=20", {"Authorization": f"Bearer {reader}"}, seconds, clients
    )
    with serving(hello_world()) as bare_url:
        bare = rate(bare_url, "/", {}, seconds, clients)
    print(f"requests/s over {seconds:g} s, {clients} keep-alive clients, uvicorn in process:")
    print(f"  GET /api/v1/notices?limit=20 (token checked, 20 notices): {api:8.0f}")
    print(f"  bare Starlette hello-world:                              {bare:8.0f}")
    print(f"  ratio hello/API: {bare / api:4.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        app = make_app(Path(tmp))
        try:
            with running(app), serving(create_app(app)) as url:
                bench_publish(app, url, args.notices)
                bench_reads(app, url, args.seconds, args.clients)
        finally:
            app.close()


if __name__ == "__main__":
    main()
