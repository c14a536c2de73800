"""Capture and search benchmarks.

1. Capture: one Facebook Page post with ``--comments`` comments (default 10,000) in a sandbox
   running in this process; one sweep lists them (100 a page), archives them (snapshot + raw
   response, about 0.9 KB per record, in group commits of 1,000) and indexes them (SQLite
   row + FTS5 triggers + ledger). Records per second end to end (sweep -> archive -> index).
2. Search: ``--records`` comments (default 100,000; one in 20 with a second, deleted version,
   one in 20 with an edited version) seeded through ``Archiver.archive_batch``, then a query
   mix, each query run ``--repeat`` times (default 40), latency per query type and overall
   p50/p95/max. Query mix: a common word; a rare word; two words; a prefix; author + word;
   state=deleted + word; account + date range (no text).

    python bench/bench_capture.py [--comments 10000] [--records 100000] [--repeat 40]
    [--database URL]  (default: SQLite in a temporary directory)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bulletin.app import App  # noqa: E402
from bulletin.archiver.archive import Capture  # noqa: E402
from bulletin.archiver.capture import sweep  # noqa: E402
from bulletin.archiver.search import Query, search  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.base import RemoteItem  # noqa: E402
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, SandboxServer  # noqa: E402
from bulletin.daemon import Daemon  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.logs import configure  # noqa: E402

WORDS = [
    "road",
    "closed",
    "detour",
    "snow",
    "plow",
    "parking",
    "ban",
    "main",
    "street",
    "elm",
    "route",
    "police",
    "thanks",
    "traffic",
    "water",
    "break",
    "power",
    "outage",
    "shelter",
    "school",
    "bus",
    "delay",
    "crash",
    "lane",
    "open",
    "night",
    "weekend",
    "officer",
    "patrol",
    "station",
    "meeting",
    "community",
    "event",
    "park",
    "bridge",
    "repair",
]
AUTHORS = [f"Visitor {i}" for i in range(500)]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def make_app(root: Path, url: str | None, sandbox_url: str) -> App:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "bulletin.toml"
    database = f'[database]\nurl = "{url}"\n' if url else ""
    config.write_text(
        f'[paths]\ndata_dir = "{root / "data"}"\n{database}'
        f'[accounts.facebook]\nplatform = "facebook"\nbase_url = "{sandbox_url}"\n'
        f'page_id = "{DEFAULT_FB_PAGE["id"]}"\ntoken_env = "SANDBOX_FACEBOOK_PAGE_TOKEN"\n'
    )
    (root / "data").mkdir(exist_ok=True)
    app = App(load_settings(config, environ={}), environ={})
    migrate(app.engine)
    Daemon(app).prepare()
    return app


def bench_capture(root: Path, url: str | None, count: int) -> None:
    with SandboxServer("127.0.0.1", 0, root / "sandbox.json") as server:
        app = make_app(root / "capture", url, server.url)
        post = server.state.add_fb_post(DEFAULT_FB_PAGE["id"], "Road closed: Main St")
        for i in range(count):
            server.state.add_fb_comment(post["id"], f"comment {i} about the detour", "Visitor")
        server.state.save()
        started = time.perf_counter()
        result = sweep(app.archiver, app.connector("facebook"), "facebook", app.clock)
        elapsed = time.perf_counter() - started
        app.close()
    print(
        f"capture: {result.archived} records ({count} comments + 1 post, {result.pages} pages) "
        f"in {elapsed:.1f} s = {result.archived / elapsed:.0f} records/s end to end "
        "(list -> snapshot + raw in the local WORM store -> index + FTS + ledger)"
    )


def seed(app: App, count: int, rng: random.Random) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    archiver = app.archiver
    batch: list[Capture] = []
    made = 0
    started = time.perf_counter()
    while made < count:
        n = made
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
        if n % 997 == 0:
            text += " zanzibar"  # the rare word
        item = RemoteItem(
            kind="comment",
            remote_id=f"c{n}",
            text=text,
            author=rng.choice(AUTHORS),
            posted_at=start + timedelta(minutes=n),
            parent_id=f"p{n // 1000}",
            thread_id=f"p{n // 1000}",
            raw=f'{{"id":"c{n}","message":"{text}"}}'.encode(),
        )
        batch.append(Capture("facebook", "facebook", item))
        made += 1
        if n % 20 == 0 and made < count:
            state = "deleted" if n % 40 == 0 else "visible"
            changed = text if state == "deleted" else text + " (edited)"
            again = RemoteItem(**{**item.__dict__, "state": state, "text": changed})
            batch.append(Capture("facebook", "facebook", again))
            made += 1
        if len(batch) >= 2000:
            archiver.archive_batch(batch, resolve=False)
            batch = []
    if batch:
        archiver.archive_batch(batch, resolve=False)
    elapsed = time.perf_counter() - started
    print(f"seeded {count} records in {elapsed:.0f} s ({count / elapsed:.0f} records/s)")


def bench_search(root: Path, url: str | None, count: int, repeat: int) -> None:
    rng = random.Random(7)
    app = make_app(root / "search", url, "http://127.0.0.1:9")
    seed(app, count, rng)
    mix = {
        "common word": Query(text="road"),
        "rare word": Query(text="zanzibar"),
        "two words": Query(text="snow plow"),
        "prefix": Query(text="clos*"),
        "author + word": Query(text="detour", author="Visitor 42"),
        "deleted + word": Query(text="bridge", state="deleted"),
        "account + dates": Query(
            account="facebook",
            since=datetime(2026, 1, 20, tzinfo=UTC),
            until=datetime(2026, 1, 21, tzinfo=UTC),
        ),
    }
    engine = app.engine
    every: list[float] = []
    for name, query in mix.items():
        times = []
        hits = 0
        for _ in range(repeat):
            started = time.perf_counter()
            hits = len(search(engine, query))
            times.append((time.perf_counter() - started) * 1000)
        every.extend(times)
        print(
            f"  {name:<16} p50 {statistics.median(times):6.1f} ms  p95 "
            f"{percentile(times, 95):6.1f} ms  ({hits} hits, limit 20)"
        )
    print(
        f"search over {count} records: p50 {statistics.median(every):.1f} ms, "
        f"p95 {percentile(every, 95):.1f} ms, max {max(every):.1f} ms "
        f"({len(every)} queries, {engine.dialect.name})"
    )
    app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--database", default=None, help="a database URL (default SQLite)")
    parser.add_argument("--skip-capture", action="store_true")
    args = parser.parse_args()
    configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        root = Path(tmp)
        if not args.skip_capture:
            bench_capture(root, args.database, args.comments)
        bench_search(root, args.database, args.records, args.repeat)


if __name__ == "__main__":
    main()
