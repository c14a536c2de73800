"""Capture lag of Facebook comments: Page webhooks against the sweep baseline, with comments
deleted within seconds and hidden, and a peak mode.

One Page post, then visitor comments (about 40 bytes of text each) written through the
sandbox at ``--rate`` per second for ``--duration`` seconds (defaults 10/s for 300 s, 3,000
comments); ``--deleted-share`` of them (default 1 %) are deleted by their author between 1
and 5 s after creation and ``--hidden-share`` (default 1 %) hidden by a moderator between 1
and 10 s after. A Bulletin runs in this process as it runs in production: its web door under
uvicorn on a free port and the daemon (dispatcher, waker, scheduled jobs), on ``--db``
(sqlite or postgres).

- ``webhook``: the Page is subscribed; the sandbox delivers each change's signed webhook to
  ``/webhooks/facebook``, which stores it and wakes the daemon, whose capture job archives
  it. The sweeps run too (the safety net) and may win a race.
- ``sweep``: the Page is not subscribed; only the capture sweeps see the comments (the
  polling baseline, same run), with ``capture_interval``, ``[capture] hot_interval`` and
  ``warm_interval`` at ``--sweep-interval`` (default 15 s; the shipped defaults for a
  thread under a day old are 300 s, so real sweep lags are about 20x these).
- ``--peak``: the missing-child post instead: 5,000 comments spread over an hour plus a
  burst of 100 per second for a minute (starting a third of the way in). ``--compress N``
  runs the hour in 3600/N seconds (the hour's 5,000 comments at N times their rate); the
  burst always runs at 100/s for 60 s of real time.
- ``--webhook-batch N``: the sandbox puts up to N queued changes in one delivery (several
  ``entry`` objects in one body); default 1, one delivery per change.
- ``--webhook-senders N``: deliveries the sandbox has in flight at once (default 1: each
  waits for the answer to the one before, so receipt can go no faster than one commit,
  fsync included, per delivery).
- ``--progress``: every 10 s, where the backlog is (deliveries the sandbox has not sent,
  receipts waiting for the capture job, comments captured).

Lag = the comment's ``captured_at`` (its first archived version, a durable snapshot: the
group commit is fsynced before the index row exists) minus the moment the sandbox answered
its creation, wall clock, same machine; split by the path that captured it first. Also:
how many of the quickly deleted comments are in the record at all (and with a ``deleted``
version), how many hidden ones have a ``hidden`` version, and how many comments are missing.

    python bench/bench_capture_lag.py [--duration 300] [--rate 10] [--db sqlite|postgres]
        [--sweep-interval 15] [--mode webhook] [--mode sweep]
        [--deleted-share 0.01] [--hidden-share 0.01] [--peak [--compress 12]]
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
import uvicorn
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from _support import CONFIG, database, start_sandbox  # noqa: E402

from bulletin.app import Actor, App  # noqa: E402
from bulletin.app.facebook_webhooks import subscribe_page  # noqa: E402
from bulletin.archiver.capture.webhooks import pending_count  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.base import OutgoingPost  # noqa: E402
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, SandboxServer  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.logs import configure  # noqa: E402
from bulletin.models import FacebookWebhookChange, Record  # noqa: E402
from bulletin.service.daemon import running  # noqa: E402
from bulletin.web import create_app  # noqa: E402

SECRET = "bench-app-secret"  # noqa: S105 - the sandbox holds nothing of value
ENV = {"BENCH_FB_APP_SECRET": SECRET, "BENCH_FB_VERIFY_TOKEN": "bench-verify"}
BURST_RATE, BURST_SECONDS, PEAK_HOUR_COMMENTS = 100.0, 60.0, 5000


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def serve(app: App) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@dataclass
class Load:
    """When each comment is written (seconds from the start), and what happens to it."""

    offsets: list[float]
    deleted_share: float
    hidden_share: float
    label: str

    @staticmethod
    def steady(rate: float, duration: float, deleted: float, hidden: float) -> Load:
        count = round(rate * duration)
        return Load(
            [i / rate for i in range(count)], deleted, hidden, f"{rate:g}/s x {duration:g} s"
        )

    @staticmethod
    def peak(compress: float, deleted: float, hidden: float) -> Load:
        hour = 3600.0 / compress
        base = [i * hour / PEAK_HOUR_COMMENTS for i in range(PEAK_HOUR_COMMENTS)]
        start = hour / 3
        burst = [start + i / BURST_RATE for i in range(round(BURST_RATE * BURST_SECONDS))]
        label = f"peak: 5000 in {hour:g} s + 100/s x 60 s"
        return Load(sorted(base + burst), deleted, hidden, label)


@dataclass
class Written:
    at: dict[str, float] = field(default_factory=dict)  # comment id -> wall time created
    deleted: set[str] = field(default_factory=set)  # deleted within 5 s
    hidden: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(sandbox_url: str, post_id: str, load: Load, written: Written, seed: int) -> None:
    """Write the comments on schedule (4 writers), deleting and hiding some of them later,
    into ``written``."""
    rng = random.Random(seed)
    later: list[tuple[float, int, str, str]] = []  # (monotonic due, n, id, what)
    later_lock = threading.Lock()
    done = threading.Event()
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        s: requests.Session = local.s
        return s

    def write(i: int) -> None:
        answer = session().post(
            f"{sandbox_url}/_sandbox/fb/comments",
            json={"post_id": post_id, "message": f"comment {i} " + "x" * 30},
            timeout=10,
        )
        answer.raise_for_status()
        created = time.time()
        cid = answer.json()["ids"][0]
        with written.lock:
            written.at[cid] = created
        fate = rng.random()
        now = time.monotonic()
        with later_lock:
            if fate < load.deleted_share:
                heapq.heappush(later, (now + rng.uniform(1.0, 4.5), i, cid, "delete"))
            elif fate < load.deleted_share + load.hidden_share:
                heapq.heappush(later, (now + rng.uniform(1.0, 10.0), i, cid, "hide"))

    def act() -> None:
        s = requests.Session()
        while True:
            with later_lock:
                item = later[0] if later else None
                if item is not None and item[0] <= time.monotonic():
                    heapq.heappop(later)
                else:
                    item = None
            if item is None:
                if done.is_set() and not later:
                    return
                time.sleep(0.02)
                continue
            _, _, cid, what = item
            url = f"{sandbox_url}/_sandbox/fb/comments/{cid}"
            if what == "delete":
                s.delete(url, timeout=10).raise_for_status()
                with written.lock:
                    if time.time() - written.at[cid] <= 5.0:
                        written.deleted.add(cid)
            else:
                s.patch(url, json={"is_hidden": True}, timeout=10).raise_for_status()
                written.hidden.add(cid)

    actor = threading.Thread(target=act, daemon=True)
    actor.start()
    began = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        for i, offset in enumerate(load.offsets):
            time.sleep(max(0.0, began + offset - time.monotonic()))
            pool.submit(write, i)
    done.set()
    actor.join()


def watch(sandbox: SandboxServer, app: App, written: Written, stop: threading.Event) -> None:
    """Every 10 s: deliveries the sandbox has yet to send, receipts waiting for capture and
    comments captured so far (where a backlog sits)."""
    began = time.monotonic()
    while not stop.wait(10.0):
        with written.lock:
            ids = list(written.at)
        print(
            f"    {time.monotonic() - began:5.0f} s: written {len(ids)}, unsent deliveries "
            f"{sandbox.app.webhooks.backlog()}, receipts pending {pending_count(app.engine)}, "
            f"captured {len(first_versions(app, ids))}; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


def run(
    mode: str,
    kind: str,
    load: Load,
    interval: int,
    batch: int = 1,
    senders: int = 1,
    progress: bool = False,
) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sandbox = start_sandbox()
        with database(kind, tmp) as db_url:
            data_dir = tmp / "data"
            data_dir.mkdir()
            config = tmp / "bulletin.toml"
            config.write_text(
                CONFIG.replace("capture_interval = 3600", f"capture_interval = {interval}").format(
                    data_dir=data_dir, db_url=db_url, url=sandbox.url,
                    page=DEFAULT_FB_PAGE["id"], lease=30,
                )
                + f"""
[facebook]
app_secret_env = "BENCH_FB_APP_SECRET"
verify_token_env = "BENCH_FB_VERIFY_TOKEN"
[capture]
hot_interval = {interval}
warm_interval = {interval}
full_interval = {interval}
"""
            )  # fmt: skip
            app = App(load_settings(config, environ=ENV), environ=ENV)
            migrate(app.engine)
            server, thread, url = serve(app)
            control = requests.Session()
            try:
                post = app.connector("facebook").publish(OutgoingPost("b1", "Bench post"))
                if mode == "webhook":
                    control.post(
                        f"{sandbox.url}/_sandbox/fb/webhooks",
                        json={
                            "callback_url": f"{url}/webhooks/facebook",
                            "app_secret": SECRET,
                            "batch": batch,
                            "concurrency": senders,
                        },
                        timeout=5,
                    ).raise_for_status()
                    subscribe_page(app, Actor("bench"), "facebook")
                with running(app):
                    time.sleep(2)  # the first sweep has listed the post
                    began = time.monotonic()
                    written = Written()
                    stop = threading.Event()
                    if progress:
                        args = (sandbox, app, written, stop)
                        threading.Thread(target=watch, args=args, daemon=True).start()
                    drive(sandbox.url, post.remote_id, load, written, seed=24)
                    wrote_for = time.monotonic() - began
                    deadline = time.monotonic() + 3 * interval + 60
                    captured: dict[str, tuple[datetime, bool]] = {}
                    while time.monotonic() < deadline:
                        captured = first_versions(app, list(written.at))
                        states = version_states(app, list(written.deleted | written.hidden))
                        if (
                            len(captured) == len(written.at)
                            and all("deleted" in states.get(i, ()) for i in written.deleted)
                            and all("hidden" in states.get(i, ()) for i in written.hidden)
                        ):
                            break
                        time.sleep(0.5)
                    states = version_states(app, list(written.deleted | written.hidden))
                    stop.set()
            finally:
                server.should_exit = True
                thread.join(10)
                app.close()
        sandbox.stop()
    report(mode, kind, load, written, captured, states, wrote_for)


def report(
    mode: str,
    kind: str,
    load: Load,
    written: Written,
    captured: dict[str, tuple[datetime, bool]],
    states: dict[str, set[str]],
    wrote_for: float,
) -> None:
    by_path: dict[str, list[float]] = {"webhook": [], "sweep": []}
    for cid, t in written.at.items():
        if cid in captured:
            at, hook = captured[cid]
            by_path["webhook" if hook else "sweep"].append(max(0.0, at.timestamp() - t))
    every = by_path["webhook"] + by_path["sweep"]
    missing = len(written.at) - len(captured)
    print(
        f"{mode:8} {kind:8} {load.label}: {len(written.at)} comments, writes, deletions and "
        f"hides done in {wrote_for:.0f} s; {len(captured)} captured, missing {missing}",
        flush=True,
    )
    for path, lags in [("all", every), *by_path.items()]:
        if lags:
            print(
                f"    first by {path:7} {len(lags):6}  p50 {percentile(lags, 50):7.2f} s  "
                f"p99 {percentile(lags, 99):7.2f} s  max {max(lags):7.2f} s",
                flush=True,
            )
    kept = [i for i in written.deleted if i in captured]
    marked = [i for i in written.deleted if "deleted" in states.get(i, set())]
    hidden = [i for i in written.hidden if "hidden" in states.get(i, set())]
    print(
        f"    deleted within 5 s: {len(written.deleted)}; in the record {len(kept)}, with a "
        f"deleted version {len(marked)}; hidden: {len(written.hidden)}, with a hidden "
        f"version {len(hidden)}",
        flush=True,
    )


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def first_versions(app: App, ids: list[str]) -> dict[str, tuple[datetime, bool]]:
    """comment id -> (captured_at of its first version, made by a webhook change)."""
    out: dict[str, tuple[datetime, bool]] = {}
    with Session(app.engine) as session:
        for chunk in _chunks(ids):
            rows = session.exec(
                select(Record.remote_id, Record.captured_at, FacebookWebhookChange.event_id)
                .outerjoin(
                    FacebookWebhookChange,
                    col(FacebookWebhookChange.record_id) == col(Record.id),
                )
                .where(col(Record.remote_id).in_(chunk))
                .where(col(Record.version) == 1)
            ).all()
            out.update({rid: (at.astimezone(UTC), event is not None) for rid, at, event in rows})
    return out


def version_states(app: App, ids: list[str]) -> dict[str, set[str]]:
    """comment id -> the states of its archived versions."""
    out: dict[str, set[str]] = {}
    with Session(app.engine) as session:
        for chunk in _chunks(ids):
            for rid, state in session.exec(
                select(Record.remote_id, Record.state).where(col(Record.remote_id).in_(chunk))
            ).all():
                out.setdefault(rid, set()).add(str(getattr(state, "value", state)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of writing")
    parser.add_argument("--rate", type=float, default=10.0, help="comments per second")
    parser.add_argument("--deleted-share", type=float, default=0.01)
    parser.add_argument("--hidden-share", type=float, default=0.01)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--mode", action="append", choices=["webhook", "sweep"])
    parser.add_argument("--sweep-interval", type=int, default=15)
    parser.add_argument("--peak", action="store_true", help="the missing-child post")
    parser.add_argument("--compress", type=float, default=1.0, help="peak: hour / N")
    parser.add_argument(
        "--webhook-batch", type=int, default=1, help="changes per webhook delivery, at most"
    )
    parser.add_argument(
        "--webhook-senders", type=int, default=1, help="webhook deliveries in flight at once"
    )
    parser.add_argument(
        "--progress", action="store_true", help="print where the backlog is every 10 s"
    )
    args = parser.parse_args()
    configure("warning", "console")
    if args.peak:
        load = Load.peak(args.compress, args.deleted_share, args.hidden_share)
    else:
        load = Load.steady(args.rate, args.duration, args.deleted_share, args.hidden_share)
    for kind in args.db or ["sqlite"]:
        for mode in args.mode or ["webhook", "sweep"]:
            run(
                mode,
                kind,
                load,
                args.sweep_interval,
                args.webhook_batch,
                args.webhook_senders,
                args.progress,
            )


if __name__ == "__main__":
    main()
