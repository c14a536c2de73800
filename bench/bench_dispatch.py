"""Dispatch latency with a real daemon process, on SQLite and on PostgreSQL.

For each database: ``--future`` approved notices (default 10,000) are scheduled days ahead, a
daemon subprocess runs, and ``--notices`` emergency notices (default 500) are drafted and
approved one after another through the library, exactly as ``bulletin notice approve`` does
(commit, then wake the daemon). Latency = from approval committed to the sandbox receiving the
create-post request (timestamped inside the in-process sandbox). Baseline in the same run: the
bare X connector publishing to the same sandbox (call start to the sandbox receiving it, and
the whole call). Then start-up time and RSS of a daemon with ``--startup-notices`` (default
100,000) future notices.

    python bench/bench_dispatch.py [--notices 500] [--future 10000] [--startup-notices 100000]
                                   [--db sqlite --db postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import _support
from _support import Daemon, configure, database, seed_future_notices, start_sandbox

from bulletin.connectors.base import OutgoingPost
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.x import XConnector
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice

_ = _support


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Arrivals:
    """Records when the sandbox receives each create-post request, by text."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        original = sandbox.app.handle

        def handle(request):  # type: ignore[no-untyped-def]
            if request.method == "POST" and request.path.endswith("/2/tweets"):
                text = str((request.json() or {}).get("text", ""))
                with self.cond:
                    self.seen[text] = time.perf_counter()
                    self.cond.notify_all()
            return original(request)

        sandbox.app.handle = handle  # type: ignore[method-assign]

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: text in self.seen, timeout):
                raise TimeoutError(text)
            return self.seen[text]


def measure(
    kind: str, notices: int, future: int, sandbox: SandboxServer, arrivals: Arrivals
) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bd-") as tmp_name,
        database(kind, Path(tmp_name)) as url,
    ):
        tmp = Path(tmp_name)
        config, app = configure(tmp, url, sandbox.url)
        seed_future_notices(app, future, "feed", datetime.now(UTC))
        daemon = Daemon(config, tmp / "daemon.log").start()
        latencies = []
        try:
            for i in range(notices):
                text = f"[{kind}] Evacuate Zone {i % 7}: bench run {i} {time.time_ns()}"
                notice = create_notice(
                    app.engine,
                    app.settings,
                    app.clock,
                    NoticeDraft("evacuation", text, ("x",)),
                    "dispatcher",
                )
                approve_notice(app.engine, app.settings, app.clock, notice.id or 0, "chief")
                committed = time.perf_counter()
                latencies.append(arrivals.wait_for(text) - committed)
        finally:
            daemon.stop()
            app.close()
    med, p99 = statistics.median(latencies), percentile(latencies, 99)
    slowest = sorted(range(len(latencies)), key=lambda i: -latencies[i])[:3]
    print("  slowest: " + ", ".join(f"#{i} {latencies[i] * 1000:.0f} ms" for i in slowest))
    print(
        f"{kind:<9} approval -> sandbox receives: median {med * 1000:7.1f} ms   "
        f"p99 {p99 * 1000:7.1f} ms   ({notices} notices, {future} others scheduled)"
    )


def bare(sandbox: SandboxServer, arrivals: Arrivals, count: int) -> None:
    from bulletin.connectors.sandbox import SANDBOX_ENV

    x = XConnector(
        "x",
        consumer_key=_secret(SANDBOX_ENV["SANDBOX_X_CONSUMER_KEY"]),
        consumer_secret=_secret(SANDBOX_ENV["SANDBOX_X_CONSUMER_SECRET"]),
        access_token=_secret(SANDBOX_ENV["SANDBOX_X_ACCESS_TOKEN"]),
        access_token_secret=_secret(SANDBOX_ENV["SANDBOX_X_ACCESS_TOKEN_SECRET"]),
        base_url=sandbox.url,
    )
    to_arrival, whole = [], []
    for i in range(count):
        text = f"bare call {i} {time.time_ns()}"
        start = time.perf_counter()
        x.publish(OutgoingPost(key=f"bare-{i}", text=text))
        whole.append(time.perf_counter() - start)
        to_arrival.append(arrivals.wait_for(text) - start)
    arrival_med, arrival_p99 = statistics.median(to_arrival), percentile(to_arrival, 99)
    print(
        f"bare X connector: call -> sandbox receives median {arrival_med * 1000:6.1f} ms, "
        f"p99 {arrival_p99 * 1000:6.1f} ms; whole call median "
        f"{statistics.median(whole) * 1000:6.1f} ms"
    )


def _secret(value: str):  # type: ignore[no-untyped-def]
    from bulletin.config.secrets import Secret

    return Secret(value)


def startup(kind: str, count: int, sandbox: SandboxServer) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bs-") as tmp_name,
        database(kind, Path(tmp_name)) as url,
    ):
        tmp = Path(tmp_name)
        config, app = configure(tmp, url, sandbox.url)
        began = time.perf_counter()
        seed_future_notices(app, count, "feed", datetime.now(UTC))
        seeded = time.perf_counter() - began
        app.close()
        daemon = Daemon(config, tmp / "daemon.log").start()
        time.sleep(3)
        rss = daemon.rss_mb()
        daemon.stop()
        print(
            f"{kind:<9} start-up with {count} future notices: {daemon.started_in:5.2f} s to "
            f"listening, RSS after 3 s {rss:6.1f} MB (seeding took {seeded:.1f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--future", type=int, default=10_000)
    parser.add_argument("--startup-notices", type=int, default=100_000)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    kinds = args.db or ["sqlite", "postgres"]
    sandbox = start_sandbox()
    sandbox.app.state.data["settings"]["enforce_rate_limits"] = False
    arrivals = Arrivals(sandbox)
    try:
        bare(sandbox, arrivals, min(args.notices, 200))
        for kind in kinds:
            measure(kind, args.notices, args.future, sandbox, arrivals)
        for kind in kinds:
            startup(kind, args.startup_notices, sandbox)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
