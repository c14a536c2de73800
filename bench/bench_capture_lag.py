"""Capture lag of Facebook comments: Page webhooks against the sweep baseline.

One Page post, then ``--comments`` visitor comments (default 200) written through the sandbox
at ``--rate`` per second (default 10), each about 40 bytes of text. A Bulletin runs in this
process as it runs in production: its web door under uvicorn on a free port and the daemon
(dispatcher, waker, scheduled jobs), on ``--db`` (sqlite or postgres).

- ``webhook``: the Page is subscribed; the sandbox delivers each comment's signed webhook to
  ``/webhooks/facebook``, which stores it and wakes the daemon, whose capture job reads the
  comment and archives it. The sweeps run too (the safety net) and may win a race.
- ``sweep``: the Page is not subscribed; only the capture sweeps see the comments, with
  ``capture_interval``, ``[capture] hot_interval`` and ``warm_interval`` at
  ``--sweep-interval`` (default 15 s; the shipped defaults for a thread under a day old are
  300 s, so real sweep lags are about 20x these).

Lag = the comment's ``captured_at`` (its first archived version) minus the moment the sandbox
answered its creation, wall clock, same machine. Reported: p50, p99 and max per mode, and how
many comments each path captured first.

    python bench/bench_capture_lag.py [--comments 200] [--rate 10] [--db sqlite|postgres]
        [--sweep-interval 15] [--mode webhook] [--mode sweep]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
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
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.base import OutgoingPost  # noqa: E402
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.logs import configure  # noqa: E402
from bulletin.models import FacebookWebhookChange, Record  # noqa: E402
from bulletin.service.daemon import running  # noqa: E402
from bulletin.web import create_app  # noqa: E402

SECRET = "bench-app-secret"  # noqa: S105 - the sandbox holds nothing of value
ENV = {"BENCH_FB_APP_SECRET": SECRET, "BENCH_FB_VERIFY_TOKEN": "bench-verify"}


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


def run(mode: str, kind: str, comments: int, rate: float, interval: int) -> None:
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
                        json={"callback_url": f"{url}/webhooks/facebook", "app_secret": SECRET},
                        timeout=5,
                    ).raise_for_status()
                    subscribe_page(app, Actor("bench"), "facebook")
                written: dict[str, float] = {}
                with running(app):
                    time.sleep(2)  # the first sweep has listed the post
                    began = time.monotonic()
                    for i in range(comments):
                        due = began + i / rate
                        time.sleep(max(0.0, due - time.monotonic()))
                        answer = control.post(
                            f"{sandbox.url}/_sandbox/fb/comments",
                            json={"post_id": post.remote_id, "message": f"comment {i} " + "x" * 30},
                            timeout=5,
                        )
                        answer.raise_for_status()
                        written[answer.json()["ids"][0]] = time.time()
                    deadline = time.monotonic() + 3 * interval + 30
                    captured: dict[str, tuple[datetime, int | None]] = {}
                    while time.monotonic() < deadline and len(captured) < len(written):
                        time.sleep(0.2)
                        captured = first_versions(app, list(written))
            finally:
                server.should_exit = True
                thread.join(10)
                app.close()
        sandbox.stop()
    lags = [captured[i][0].timestamp() - t for i, t in written.items() if i in captured]
    if not lags:
        print(f"{mode:8} {kind:8} nothing captured of {len(written)} comments", flush=True)
        return
    by_hook = sum(1 for i in captured if captured[i][1] is not None)
    missing = len(written) - len(captured)
    print(
        f"{mode:8} {kind:8} {len(lags):5} comments  p50 {percentile(lags, 50):7.2f} s  "
        f"p99 {percentile(lags, 99):7.2f} s  max {max(lags):7.2f} s  "
        f"first by webhook {by_hook}, by sweep {len(captured) - by_hook}, missing {missing}",
        flush=True,
    )


def first_versions(app: App, ids: list[str]) -> dict[str, tuple[datetime, int | None]]:
    """comment id -> (captured_at of its first version, the webhook change that made it)."""
    with Session(app.engine) as session:
        rows = session.exec(
            select(Record.remote_id, Record.captured_at, FacebookWebhookChange.event_id)
            .outerjoin(
                FacebookWebhookChange,
                col(FacebookWebhookChange.record_id) == col(Record.id),
            )
            .where(col(Record.remote_id).in_(ids))
            .where(col(Record.version) == 1)
        ).all()
    return {rid: (at.astimezone(UTC), event) for rid, at, event in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--mode", action="append", choices=["webhook", "sweep"])
    parser.add_argument("--sweep-interval", type=int, default=15)
    args = parser.parse_args()
    configure("warning", "console")
    for kind in args.db or ["sqlite"]:
        for mode in args.mode or ["webhook", "sweep"]:
            run(mode, kind, args.comments, args.rate, args.sweep_interval)


if __name__ == "__main__":
    main()
