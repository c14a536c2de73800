"""Capture and search benchmarks.

1. Capture: one Facebook Page post with ``--comments`` comments (default 10,000) in a sandbox
   running in this process; one sweep lists them (100 a page), archives them (snapshot + raw
   response, about 0.9 KB per record, in group commits of 1,000) and indexes them (SQLite
   row + FTS5 triggers + ledger). Records per second end to end (sweep -> archive -> index).
2. Search: ``--records`` comment records (default 100,000) in threads of 1,000 comments, each
   with 6-18 words drawn from 36 (a word is in about a third of the records; "zanzibar" in
   one in 997), 500 authors, one posted a minute. One item in 20 has a second version: half
   of them deleted, half edited. Seeded either through ``Archiver.archive_batch`` (``--seed
   archive``: store objects, index rows, FTS, ledger, audit; the archive's own path) or
   straight into the ``records`` table (``--seed index``: the rows and the full-text index
   that search reads, nothing else; for the 1,000,000-record run). Then the query mix below,
   ``--repeat`` rounds (default 40), parameters drawn afresh for every query; latency and CPU
   time per query type and over the mix (p50 / p95 / p99), on each ``--db``.

   The mix (limit 20, as ``bulletin archive search`` asks): a common word; the rare word;
   two words; a prefix; author + word; author alone; deleted + word; deleted alone; account +
   one day (no words); word + one day. Reported apart, outside the mix: a state no record has
   + a common word (the walk reads every match), and a thread of 1,000 comments. Floor: the
   bare FTS5 / GIN lookup of the newest 20 rowids for the common word, in the same run.

3. Platforms (``--platforms``): for each of X, Facebook, Mastodon, Bluesky, Threads and
   Instagram, one post published through its connector and ``--replies`` replies (default
   300) added by visitors through the sandbox (in this process, on loopback, its rate
   limits off); one capture
   sweep of that account through Bulletin, timed (records archived per second: list ->
   snapshot + raw + WARC -> index + FTS + ledger). Baseline in the same run: the GET requests
   that sweep sent, replayed as they were with a bare ``requests`` session (no parsing, no
   archiving), so the ratio is Bulletin's cost over the wire's.

    python bench/bench_capture.py [--comments 10000] [--records 100000] [--repeat 40]
        [--db sqlite] [--db postgres] [--seed archive|index] [--skip-capture]
    python bench/bench_capture.py --platforms [--replies 300]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import requests
import requests.adapters
import sqlalchemy as sa
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from _support import database, insert_records  # noqa: E402

from bulletin.app import App  # noqa: E402
from bulletin.archiver.archive import Capture  # noqa: E402
from bulletin.archiver.capture.sweep import sweep  # noqa: E402
from bulletin.archiver.search import Query, search, thread_of  # noqa: E402
from bulletin.archiver.search.conditions import PG_VECTOR  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.base import RemoteItem  # noqa: E402
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, SANDBOX_ENV, SandboxServer  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.logs import configure  # noqa: E402
from bulletin.models import Record  # noqa: E402
from bulletin.service.daemon import Daemon  # noqa: E402

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


def make_app(root: Path, url: str | None, sandbox_url: str, accounts: bool = True) -> App:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "bulletin.toml"
    database = f'[database]\nurl = "{url}"\n' if url else ""
    facebook = (
        f'[accounts.facebook]\nplatform = "facebook"\nbase_url = "{sandbox_url}"\n'
        f'page_id = "{DEFAULT_FB_PAGE["id"]}"\ntoken_env = "SANDBOX_FACEBOOK_PAGE_TOKEN"\n'
    )
    config.write_text(
        f'[paths]\ndata_dir = "{root / "data"}"\n{database}' + (facebook if accounts else "")
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


PLATFORMS = ("x", "facebook", "mastodon", "bluesky", "threads", "instagram")

PLATFORM_CONFIG = """
[accounts.x]
platform = "x"
base_url = "{url}"
consumer_key_env = "SANDBOX_X_CONSUMER_KEY"
consumer_secret_env = "SANDBOX_X_CONSUMER_SECRET"
access_token_env = "SANDBOX_X_ACCESS_TOKEN"
access_token_secret_env = "SANDBOX_X_ACCESS_TOKEN_SECRET"
[accounts.facebook]
platform = "facebook"
base_url = "{url}"
page_id = "{page}"
token_env = "SANDBOX_FACEBOOK_PAGE_TOKEN"
[accounts.mastodon]
platform = "mastodon"
base_url = "{url}"
instance = "https://sandbox.social"
token_env = "SANDBOX_MASTODON_TOKEN"
[accounts.bluesky]
platform = "bluesky"
base_url = "{url}"
handle = "bulletin.sandbox.test"
app_password_env = "SANDBOX_BLUESKY_APP_PASSWORD"
[accounts.threads]
platform = "threads"
base_url = "{url}"
user_id = "{threads}"
token_env = "SANDBOX_THREADS_TOKEN"
[accounts.instagram]
platform = "instagram"
base_url = "{url}"
ig_user_id = "{instagram}"
token_env = "SANDBOX_INSTAGRAM_TOKEN"
media_base_url = "{url}/_sandbox/media"
"""


# The smallest PNG (1x1, grey): Instagram posts need an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a4944415408d763680000000201003a7dc3ea0000000049454e44ae426082"
)


def seed_replies(url: str, platform: str, root: str, count: int) -> None:
    """``count`` replies to ``root`` by visitors, through the sandbox's own APIs."""
    from tests.plugins.sandbox import (
        Control,
        InstagramVisitor,
        SkyVisitor,
        ThreadsVisitor,
        Visitor,
    )

    text = "reply about the detour on Main St, is Elm open?"
    if platform == "x":
        Control(url).post("x/replies", {"tweet_id": root, "count": count, "text": text})
    elif platform == "facebook":
        Control(url).post("fb/comments", {"post_id": root, "count": count, "message": text})
    else:
        visitors: dict[str, Callable[[], Callable[[str, str], object]]] = {
            "mastodon": lambda: Visitor(url).reply,
            "bluesky": lambda: SkyVisitor(url).reply,
            "threads": lambda: ThreadsVisitor(url).reply,
            "instagram": lambda: InstagramVisitor(url).comment,
        }
        reply = visitors[platform]()
        for i in range(count):
            reply(root, f"{text} {i + 1}")


class WireLog:
    """Every GET sent through ``requests`` or ``httpx`` (Bluesky's client) while active:
    (url, headers) as they went on the wire, for replaying."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self._requests = requests.adapters.HTTPAdapter.send
        self._httpx = httpx.HTTPTransport.handle_request

    def __enter__(self) -> WireLog:
        via_requests, via_httpx, sent = self._requests, self._httpx, self.sent

        def send(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            if request.method == "GET":
                sent.append((str(request.url), dict(request.headers)))
            return via_requests(adapter, request, *args, **kwargs)

        def handle(transport: Any, request: httpx.Request) -> httpx.Response:
            if request.method == "GET":
                sent.append((str(request.url), dict(request.headers)))
            return via_httpx(transport, request)

        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign,assignment]
        httpx.HTTPTransport.handle_request = handle  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: object) -> None:
        requests.adapters.HTTPAdapter.send = self._requests  # type: ignore[method-assign]
        httpx.HTTPTransport.handle_request = self._httpx  # type: ignore[method-assign]


def bare_fetch(sent: list[tuple[str, dict[str, str]]]) -> float:
    """Seconds to send ``sent`` again with a plain session, reading each body whole."""
    session = requests.Session()
    started = time.perf_counter()
    for url, headers in sent:
        response = session.get(url, headers=headers, timeout=30)
        response.raise_for_status()
        _ = response.content
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def bench_platforms(root: Path, count: int) -> None:
    from bulletin.connectors.base import Media, OutgoingPost
    from bulletin.connectors.sandbox.state import DEFAULT_IG_ACCOUNT, DEFAULT_THREADS_PROFILE

    rows = []
    with SandboxServer("127.0.0.1", 0, root / "sandbox-platforms.json") as server:
        app = make_app(root / "platforms", None, server.url, accounts=False)
        config = root / "platforms" / "bulletin.toml"
        config.write_text(
            config.read_text()
            + PLATFORM_CONFIG.format(
                url=server.url,
                page=DEFAULT_FB_PAGE["id"],
                threads=DEFAULT_THREADS_PROFILE["id"],
                instagram=DEFAULT_IG_ACCOUNT["id"],
            )
        )
        app.close()
        app = App(load_settings(config, environ={}), environ=dict(SANDBOX_ENV))
        Daemon(app).prepare()
        server.state.data["settings"]["enforce_rate_limits"] = False  # seeding is many writes
        for platform in PLATFORMS:
            connector = app.connector(platform)
            image = (Media(PNG, "image/png", "Map of the closure"),)
            post = connector.publish(
                OutgoingPost(
                    key=f"bench-{platform}",
                    text="Road closed: Main St until 6 pm.",
                    media=image if platform == "instagram" else (),
                )
            )
            seeded = time.perf_counter()
            seed_replies(server.url, platform, post.remote_id, count)
            seeding = time.perf_counter() - seeded
            with WireLog() as wire:
                started = time.perf_counter()
                result = sweep(app.archiver, connector, platform, app.clock)
                elapsed = time.perf_counter() - started
            with Session(app.engine) as session:
                sizes = session.exec(
                    select(Record.size)
                    .where(Record.account == platform)
                    .where(Record.kind == "comment")
                ).all()
            if result.errors or len(sizes) != count:
                raise SystemExit(f"{platform}: {len(sizes)} of {count} replies ({result.errors})")
            bare = bare_fetch(wire.sent)
            rows.append(
                (platform, result.archived, len(wire.sent), sum(sizes) / len(sizes), elapsed, bare)
            )
            print(f"  {platform}: seeded {count} replies in {seeding:.1f} s", flush=True)
        app.close()
    print(
        f"platforms: {count} replies on one post each, sandbox in this process on loopback "
        f"(rate limits off), SQLite, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  {'platform':<10} {'records':>7} {'GETs':>5} {'rec. size':>9} "
        f"{'Bulletin rec/s':>14} {'bare GET rec/s':>14} {'ratio':>6}"
    )
    for platform, archived, gets, size, elapsed, bare in rows:
        ours, wire_rate = archived / elapsed, archived / bare
        print(
            f"  {platform:<10} {archived:>7} {gets:>5} {size:>7.0f} B "
            f"{ours:>14.0f} {wire_rate:>14.0f} {wire_rate / ours:>5.1f}x"
        )


def items(count: int, rng: random.Random) -> Iterator[tuple[RemoteItem, int, str]]:
    """The seeded stream: (item, version, change); one item in 20 gets a second version."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = 0
    n = 0
    while made < count:
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
        yield item, 1, "new"
        made += 1
        if n % 20 == 0 and made < count:
            state = "deleted" if n % 40 == 0 else "visible"
            changed = text if state == "deleted" else text + " (edited)"
            again = RemoteItem(**{**item.__dict__, "state": state, "text": changed})
            yield again, 2, "deleted" if state == "deleted" else "edited"
            made += 1
        n += 1


def seed_archive(app: App, count: int, rng: random.Random) -> None:
    """Through ``Archiver.archive_batch``: objects in the store, index rows, ledger."""
    batch: list[Capture] = []
    for item, _, _ in items(count, rng):
        batch.append(Capture("facebook", "facebook", item))
        if len(batch) >= 2000:
            app.archiver.archive_batch(batch, resolve=False)
            batch = []
    if batch:
        app.archiver.archive_batch(batch, resolve=False)


def seed_index(app: App, count: int, rng: random.Random) -> None:
    """Straight into ``records`` (on SQLite the rows are added to the full-text index as
    the archiver adds them, by one statement per batch; PostgreSQL's GIN index follows by
    itself); no store objects, ledger or audit rows."""
    now = datetime.now(UTC)
    retain = now + timedelta(days=7 * 365)
    rows: list[dict[str, object]] = []

    def flush() -> None:
        insert_records(app, rows)
        rows.clear()

    for item, version, change in items(count, rng):
        digest = hashlib.sha256(f"{item.remote_id}/{version}/{item.text}".encode()).hexdigest()
        rows.append(
            {
                "account": "facebook",
                "platform": "facebook",
                "kind": item.kind,
                "remote_id": item.remote_id,
                "parent_id": item.parent_id,
                "thread_id": item.thread_id,
                "version": version,
                "state": item.state,
                "author": item.author,
                "text": item.text,
                "posted_at": item.posted_at,
                "captured_at": now,
                "series": "visitor-comments",
                "retain_until": retain,
                "content_sha256": digest,
                "object_sha256": digest,
                "raw_sha256": hashlib.sha256(item.raw).hexdigest(),
                "size": 700,
                "change": change,
            }
        )
        if len(rows) >= 10_000:
            flush()
    if rows:
        flush()


def mix(rng: random.Random, span_days: int) -> dict[str, Query]:
    """One query of each type, with parameters drawn from ``rng``."""
    day = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(max(span_days, 1)))
    word = rng.choice(WORDS)
    return {
        "common word": Query(text=(word,)),
        "rare word": Query(text=("zanzibar",)),
        "two words": Query(text=(" ".join(rng.sample(WORDS, 2)),)),
        "prefix": Query(text=(f"{word[:3]}*",)),
        "author + word": Query(text=(word,), author=rng.choice(AUTHORS)),
        "author only": Query(author=rng.choice(AUTHORS)),
        "deleted + word": Query(text=(word,), state="deleted"),
        "deleted only": Query(state="deleted"),
        "account + day": Query(account="facebook", since=day, until=day + timedelta(days=1)),
        "word + day": Query(text=(word,), since=day, until=day + timedelta(days=1)),
    }


EXTRA = ("hidden + word (none hidden)", "thread of 1,000 comments", "floor: bare index lookup")


def floor(engine: sa.Engine, word: str) -> None:
    """The least a text search must do: the newest 20 matching rowids, nothing else."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = (
                "SELECT rowid FROM records_fts WHERE records_fts MATCH :q "
                "ORDER BY rowid DESC LIMIT 20"
            )
        else:
            sql = (
                f"SELECT id FROM records WHERE {PG_VECTOR} @@ to_tsquery('simple', :q) "  # noqa: S608 - a constant
                "ORDER BY id DESC LIMIT 20"
            )
        conn.execute(sa.text(sql), {"q": word}).all()


def timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def line(name: str, walls: list[float], cpus: list[float]) -> str:
    return (
        f"  {name:<28} p50 {percentile(walls, 50):6.1f}  p95 {percentile(walls, 95):6.1f}  "
        f"p99 {percentile(walls, 99):6.1f} ms   cpu p50 {percentile(cpus, 50):6.1f} ms"
    )


def bench_search(root: Path, kind: str, count: int, repeat: int, how: str) -> None:
    with database(kind, root / f"search-{kind}") as url:
        app = make_app(
            root / f"search-{kind}", None if kind == "sqlite" else url, "http://127.0.0.1:9"
        )
        started, cpu = time.perf_counter(), time.process_time()
        (seed_archive if how == "archive" else seed_index)(app, count, random.Random(7))
        elapsed = time.perf_counter() - started
        with app.engine.begin() as conn:
            # This machine's PostgreSQL runs without autovacuum: gather the statistics that
            # autovacuum would after a bulk load. SQLite's plans here do not depend on any.
            if kind == "postgres":
                conn.execute(sa.text("ANALYZE records"))
            total = conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one()
        per_record = (time.process_time() - cpu) / total * 1e6
        print(
            f"{kind}: seeded {total} records ({how} path) in {elapsed:.0f} s "
            f"({total / elapsed:.0f} records/s, CPU {per_record:.0f} µs per record in this process)"
        )
        rng = random.Random(11)
        span = count // 1440
        walls: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        engine = app.engine
        search(engine, Query(text=("road",)))  # warm the connection pool
        for _ in range(repeat):
            queries: dict[str, Callable[[], object]] = {
                name: functools.partial(search, engine, q) for name, q in mix(rng, span).items()
            }
            word = rng.choice(WORDS)
            queries[EXTRA[0]] = functools.partial(
                search, engine, Query(text=(word,), state="hidden")
            )
            thread = rng.randrange(max(count // 1000, 1))
            queries[EXTRA[1]] = functools.partial(thread_at, engine, thread)
            queries[EXTRA[2]] = functools.partial(floor, engine, word)
            for name, run in queries.items():
                wall, used = timed(run)
                walls.setdefault(name, []).append(wall)
                cpus.setdefault(name, []).append(used)
        every = [w for name, ws in walls.items() if name not in EXTRA for w in ws]
        every_cpu = [c for name, cs in cpus.items() if name not in EXTRA for c in cs]
        for name in walls:
            if name == EXTRA[0]:
                print("  outside the mix:")
            print(line(name, walls[name], cpus[name]))
        print(
            line(f"mix ({len(every)} queries)", every, every_cpu)
            + f"   ({count} records, {kind}, load {os.getloadavg()[0]:.1f})"
        )
        common = percentile(walls["common word"], 50) / max(percentile(walls[EXTRA[2]], 50), 1e-3)
        print(f"  ratio: common word p50 / bare index lookup p50 = {common:.1f}")
        app.close()


def thread_at(engine: sa.Engine, thread: int) -> None:
    with Session(engine) as session:
        record_id = session.exec(
            select(Record.id)
            .where(Record.account == "facebook")
            .where(Record.thread_id == f"p{thread}")
        ).first()
    if record_id is not None:
        thread_of(engine, record_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument(
        "--db",
        action="append",
        choices=["sqlite", "postgres"],
        help="search on this database (repeat for both; default sqlite)",
    )
    parser.add_argument("--seed", choices=["archive", "index"], default="archive")
    parser.add_argument("--skip-capture", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument(
        "--platforms", action="store_true", help="only the capture sweep of each platform"
    )
    parser.add_argument("--replies", type=int, default=300, help="per platform (--platforms)")
    args = parser.parse_args()
    configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        root = Path(tmp)
        if args.platforms:
            bench_platforms(root, args.replies)
            return
        if not args.skip_capture:
            bench_capture(root, None, args.comments)
        if not args.skip_search:
            for kind in args.db or ["sqlite"]:
                bench_search(root, kind, args.records, args.repeat, args.seed)


if __name__ == "__main__":
    main()
