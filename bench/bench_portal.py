"""Portal benchmark: search p95 server time over N archived records on SQLite and PostgreSQL,
and requests/s of a thread page against a static file served by the same server in the same
run.

Seeding: as ``bench_export.py`` (N records through ``Archiver.archive_batch`` on the local
WORM store, threads of one post and 19 comments, about 80 characters of text each, spread
over ten days), with two redactions; then ``ANALYZE records`` on PostgreSQL (this machine's
runs without autovacuum). With ``--seed index`` the same records go straight into
``records`` in batches of 10,000 (and SQLite's full-text index, as ``bench_capture.py
--seed index`` does): no store objects or ledger, which the searches and thread pages never
read; this is what makes 1,000,000 records affordable. The portal runs under uvicorn in a
thread on a free port with ``show_comments = true`` (so the searches see every record) and
no rate limit to speak of; a timing wrapper around the ASGI app records each request's
server time (from the call to the last body byte).

Query mix (each run ``--rounds`` times, page 1 of 20): a word in every comment (``bridge``),
a word in one post in 20 (``closed``), a rare word (``notice`` plus a thread number), a prefix
(``reop*``), a phrase (``"main street"``), a day (``from:D0 to:D0 road``), an account and a
word (``account:feed officers``), and page 3 of ``bridge``.

Throughput: one client, keep-alive, sequential requests for ``--seconds`` each: a thread page
(its first page, 20 records) and ``/static/portal.css`` (FileResponse), requests/s of each.

    python bench/bench_portal.py --records 100000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx2 as httpx  # noqa: E402
import uvicorn  # noqa: E402


class Timed:
    """ASGI wrapper: the server time of each request, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        began = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.times[scope["path"]].append(time.perf_counter() - began)
            await send(message)

        await self.app(scope, receive, timed_send)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def queries(base_day: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("common word", {"q": "bridge"}),
        ("post word", {"q": "closed"}),
        ("rare word", {"q": "notice 1234"}),
        ("prefix", {"q": "reop*"}),
        ("phrase", {"q": '"main street"'}),
        ("one day", {"q": f"from:{base_day} to:{base_day} road"}),
        ("account", {"q": "account:feed officers"}),
        ("page 3", {"q": "bridge", "page": "3"}),
    ]


def rate(web: httpx.Client, path: str, seconds: float) -> float:
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        assert web.get(path).status_code == 200
        done += 1
    return done / (time.perf_counter() - began)


def seed_index(app: Any, records: int) -> None:
    """The records of ``bench_export.seed``, inserted straight into ``records``."""
    import hashlib

    from _support import insert_records
    from bench_export import BASE, DAYS, THREAD

    rows: list[dict[str, object]] = []
    now = BASE + timedelta(days=DAYS + 1)
    retain = now + timedelta(days=7 * 365)

    def flush() -> None:
        insert_records(app, rows)
        rows.clear()

    threads = max(1, records // THREAD)
    made = 0
    for t in range(threads):
        start = BASE + timedelta(days=t * DAYS // threads, seconds=t)
        size = THREAD if t < threads - 1 else records - made
        for n in range(size):
            text = (
                f"Road closed on Main Street between Oak and Elm tonight, notice {t}"
                if n == 0
                else f"Comment {n} on notice {t}: when will the bridge reopen? Thanks, officers."
            )
            digest = hashlib.sha256(f"{t}/{n}/{text}".encode()).hexdigest()
            rows.append(
                {
                    "account": "feed",
                    "platform": "feed",
                    "kind": "post" if n == 0 else "comment",
                    "remote_id": f"t{t}" if n == 0 else f"t{t}c{n}",
                    "parent_id": None if n == 0 else f"t{t}",
                    "thread_id": f"t{t}",
                    "version": 1,
                    "state": "visible",
                    "author": "Bench PD" if n == 0 else f"visitor{(t * 7 + n) % 5000}",
                    "text": text,
                    "posted_at": start + timedelta(seconds=n),
                    "captured_at": now,
                    "series": "agency-posts" if n == 0 else "visitor-comments",
                    "retain_until": retain,
                    "content_sha256": digest,
                    "object_sha256": digest,
                    "raw_sha256": digest,
                    "size": 700,
                    "change": "new",
                }
            )
            made += 1
            if len(rows) >= 10_000:
                flush()
    if rows:
        flush()


def run(kind: str, records: int, rounds: int, seconds: float, how: str = "archive") -> None:
    from _support import configure, database
    from bench_export import BASE, seed
    from sqlmodel import Session, col, select

    from bulletin.app import App
    from bulletin.archiver import redaction
    from bulletin.config.site import PortalSettings
    from bulletin.models import Record
    from bulletin.portal.app import create_app

    with (
        tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp,
        database(kind, Path(tmp)) as url,
    ):
        config, app = configure(Path(tmp), url, "http://127.0.0.1:9")
        app.close()
        began = time.perf_counter()
        if how == "index":
            seeder = App(app.settings, environ={})
            seed_index(seeder, records)
            seeder.close()
        else:
            seed(config, records)
        print(
            f"{kind}: seeded {records} records ({how} path) in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        if kind == "postgres":  # as autovacuum would soon after a bulk load
            with App(app.settings, environ={}).engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE records")
        first = App(app.settings, environ={})
        settings = first.settings.model_copy(
            update={"portal": PortalSettings(enabled=True, show_comments=True, rate_limit=10**9)}
        )
        portal_app = App(settings, environ={})
        with Session(portal_app.engine) as session:
            posts = select(col(Record.id)).where(col(Record.kind) == "post")
            ids = list(session.exec(posts.order_by(col(Record.id)).limit(2)))
        for record_id in ids:
            redaction.add(
                portal_app.engine, settings, record_id or 0, match="Main Street", code="26c",
                reason="bench", actor="bench", now=BASE + timedelta(days=30),
                store=portal_app.store,
            )  # fmt: skip
        timed = Timed(create_app(portal_app))
        with serving(timed) as base, httpx.Client(base_url=base, timeout=60) as web:
            day = BASE.date().isoformat()
            mix = queries(day)
            for label, params in mix:  # warm the caches once
                assert web.get("/search", params=params).status_code == 200, label
            timed.times.clear()
            per: dict[str, list[float]] = defaultdict(list)
            for _ in range(rounds):
                for label, params in mix:
                    before = len(timed.times["/search"])
                    assert web.get("/search", params=params).status_code == 200
                    per[label].append(timed.times["/search"][before])
            every = sorted(timed.times["/search"])
            p95 = every[int(0.95 * (len(every) - 1))]
            print(
                f"{kind}: search p50 {statistics.median(every) * 1000:.1f} ms, "
                f"p95 {p95 * 1000:.1f} ms over {len(every)} searches ({records} records)"
            )
            for label, values in per.items():
                values.sort()
                print(
                    f"  {label:<12} p50 {statistics.median(values) * 1000:7.1f} ms, "
                    f"max {values[-1] * 1000:7.1f} ms"
                )
            thread = rate(web, f"/threads/{ids[-1]}", seconds)
            static = rate(web, "/static/portal.css", seconds)
            print(
                f"{kind}: thread page {thread:.0f} req/s, static file {static:.0f} req/s "
                f"(ratio {thread / static:.2f}; one client, sequential, keep-alive)"
            )
        portal_app.close()
        first.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", choices=("archive", "index"), default="archive")
    args = parser.parse_args()
    for kind in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run(kind, args.records, args.rounds, args.seconds, args.seed)


if __name__ == "__main__":
    main()
