"""Capture lag of X replies: the filtered stream against polling recent search, same run.

One post of the sandbox X account (an emergency thread), then visitors' replies written
through the sandbox at ``--rate`` per second for ``--duration`` seconds (defaults 10/s for
60 s), ``--deleted-share`` of them (default 1 %) deleted by their author 1-4.5 s after. A
Bulletin on SQLite in this process; the sandbox in this process too.

- ``stream``: a :class:`~bulletin.archiver.capture.xstream.ReplyStream` follows the thread
  (one ``conversation_id:`` rule), archiving what the stream delivers; its catch-up sweeps
  list any gap.
- ``poll``: no stream; the thread is swept every ``--poll-interval`` seconds (default 3 s:
  X allows 300 recent searches per 15 minutes per user, one every 3 s for *all* hot threads
  of the account together), ``new`` sweeps from the thread's ``since_id``.

Lag = the reply's first archived version's ``captured_at`` minus the moment the sandbox
answered its creation. Reported: p50, p99, max, replies captured, quickly deleted replies in
the record.

    python bench/bench_x_stream.py [--rate 10] [--duration 60] [--mode stream] [--mode poll]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from _support import CONFIG, database, start_sandbox  # noqa: E402

from bulletin.app import App  # noqa: E402
from bulletin.archiver.capture.sweep import sweep  # noqa: E402
from bulletin.archiver.capture.threads import register_threads  # noqa: E402
from bulletin.archiver.capture.xstream import ReplyStream  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.base import OutgoingPost  # noqa: E402
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE  # noqa: E402
from bulletin.connectors.x import XConnector  # noqa: E402
from bulletin.db import migrate, session_scope  # noqa: E402
from bulletin.logs import configure  # noqa: E402
from bulletin.models import Record  # noqa: E402
from bulletin.publisher.notices import sync_account  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(mode: str, rate: float, duration: float, deleted_share: float, interval: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sandbox = start_sandbox()
        with database("sqlite", tmp) as db_url:
            data_dir = tmp / "data"
            data_dir.mkdir()
            config = tmp / "bulletin.toml"
            text = CONFIG.format(
                data_dir=data_dir,
                db_url=db_url,
                url=sandbox.url,
                page=DEFAULT_FB_PAGE["id"],
                lease=30,
            )
            text = text.replace(
                'access_token_secret_env = "SANDBOX_X_ACCESS_TOKEN_SECRET"',
                'access_token_secret_env = "SANDBOX_X_ACCESS_TOKEN_SECRET"\n'
                'bearer_token_env = "SANDBOX_X_BEARER_TOKEN"\nstream = true',
            )
            config.write_text(text + "[capture]\nhot_interval = 1\nfull_interval = 86400\n")
            app = App(load_settings(config, environ={}), environ={})
            migrate(app.engine)
            control = requests.Session()
            control.post(f"{sandbox.url}/_sandbox/settings", json={"x_stream_keepalive": 1.0})
            with session_scope(app.engine) as session:
                sync_account(session, app.settings, "x")
            connector = app.connector("x")
            assert isinstance(connector, XConnector)
            post = connector.publish(OutgoingPost("b1", "Missing child: have you seen Ana?"))
            register_threads(
                app.engine, "x", app.clock, [(post.remote_id, app.clock.now(), "emergency")]
            )
            stop = threading.Event()
            if mode == "stream":
                listener = ReplyStream(app.archiver, connector, "x", app.clock, stop=stop)
                worker = threading.Thread(target=listener.run, daemon=True)
                worker.start()
                while listener.stats.catch_ups < 1:
                    time.sleep(0.05)
            else:

                def poll() -> None:
                    poller = app.connector("x")  # this thread's own
                    while not stop.is_set():
                        began = time.monotonic()
                        sweep(app.archiver, poller, "x", app.clock, catch_up=[post.remote_id])
                        stop.wait(max(0.0, interval - (time.monotonic() - began)))

                worker = threading.Thread(target=poll, daemon=True)
                worker.start()
            written, deleted = write(sandbox.url, post.remote_id, rate, duration, deleted_share)
            deadline = time.monotonic() + 30
            captured: dict[str, datetime] = {}
            while time.monotonic() < deadline:
                captured = first_versions(app, list(written))
                if len(captured) == len(written):
                    break
                time.sleep(0.2)
            stop.set()
            worker.join(30)
            app.close()
        sandbox.stop()
    lags = [max(0.0, captured[i].timestamp() - t) for i, t in written.items() if i in captured]
    kept = sum(1 for i in deleted if i in captured)
    line = f"{mode:6} {len(written)} replies at {rate:g}/s: captured {len(captured)}"
    if lags:
        line += (
            f"  p50 {percentile(lags, 50):6.2f} s  p99 {percentile(lags, 99):6.2f} s"
            f"  max {max(lags):6.2f} s"
        )
    print(f"{line}; deleted within 5 s: {len(deleted)}, in the record {kept}", flush=True)


def write(
    url: str, post_id: str, rate: float, duration: float, deleted_share: float
) -> tuple[dict[str, float], set[str]]:
    """Write the replies on schedule; delete some 1-4.5 s later. (id -> created, deleted)"""
    rng = random.Random(24)
    session = requests.Session()
    written: dict[str, float] = {}
    doomed: list[tuple[float, str]] = []
    deleted: set[str] = set()
    began = time.monotonic()
    for i in range(round(rate * duration)):
        time.sleep(max(0.0, began + i / rate - time.monotonic()))
        answer = session.post(
            f"{url}/_sandbox/x/replies",
            json={"tweet_id": post_id, "text": f"reply {i}"},
            timeout=10,
        )
        answer.raise_for_status()
        rid = answer.json()["ids"][0]
        written[rid] = time.time()
        if rng.random() < deleted_share:
            doomed.append((time.monotonic() + rng.uniform(1.0, 4.5), rid))
        for due, victim in [d for d in doomed if d[0] <= time.monotonic()]:
            session.delete(f"{url}/_sandbox/x/tweets/{victim}", timeout=10).raise_for_status()
            doomed.remove((due, victim))
            deleted.add(victim)
    for due, victim in sorted(doomed):
        time.sleep(max(0.0, due - time.monotonic()))
        session.delete(f"{url}/_sandbox/x/tweets/{victim}", timeout=10).raise_for_status()
        deleted.add(victim)
    return written, deleted


def first_versions(app: App, ids: list[str]) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    with Session(app.engine) as session:
        for start in range(0, len(ids), 500):
            rows = session.exec(
                select(Record.remote_id, Record.captured_at)
                .where(col(Record.remote_id).in_(ids[start : start + 500]))
                .where(col(Record.version) == 1)
            ).all()
            out.update({rid: at.astimezone(UTC) for rid, at in rows})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--deleted-share", type=float, default=0.01)
    parser.add_argument("--poll-interval", type=float, default=3.0)
    parser.add_argument("--mode", action="append", choices=["stream", "poll"])
    args = parser.parse_args()
    configure("warning", "console")
    for mode in args.mode or ["stream", "poll"]:
        run(mode, args.rate, args.duration, args.deleted_share, args.poll_interval)


if __name__ == "__main__":
    main()
