"""Approve-to-post as the dispatcher sees it, on SQLite and on PostgreSQL.

For each database: ``--future`` approved notices (default 10,000) are scheduled days ahead and
a daemon subprocess runs. Each round drafts two emergency notices through the library; the
first is approved by spawning the real ``bulletin notice approve ID`` command, timed from the
spawn to the sandbox receiving the create-post request (timestamped inside the in-process
sandbox); the second is approved through the library in this process, as the command does
(commit, then wake the daemon), timed from the commit to the sandbox receiving it: the
daemon's share alone, the baseline. The command is spawned twice a round: as a dispatcher
runs it (the daemon answers it on its command socket) and with ``BULLETIN_LOCAL=1`` (in its
own process). Rounds interleave them all. Also printed: the command's own wall time, spawn to
exit. PostgreSQL is skipped when no server answers.

    python bench/bench_approve_to_post.py [--runs 30] [--future 10000] [--db sqlite]
                                          [--src DIR] [--before DIR]

``--src`` runs the command and the daemon from another source tree (a checkout's ``src``);
``--before DIR`` also spawns the command from DIR in every round (same daemon, same data, same
load), for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from _support import PG_URL, ROOT, Daemon, configure, database, seed_future_notices, start_sandbox
from bench_dispatch import Arrivals, percentile

from bulletin.app import App
from bulletin.connectors.sandbox import SandboxServer
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice


def draft(app: App, text: str) -> int:
    notice = create_notice(
        app.engine, app.settings, app.clock, NoticeDraft("evacuation", text, ("x",)), "dispatcher"
    )
    return notice.id or 0


def approve_by_command(
    app: App, command: list[str], env: dict[str, str], tmp: Path, arrivals: Arrivals, label: str
) -> tuple[float, float]:
    """Draft a notice, approve it by spawning ``command``; (spawn -> the sandbox has the post,
    spawn -> the command exits)."""
    text = f"{label} {time.time_ns()}"
    notice_id = draft(app, text)
    began = time.perf_counter()
    done = subprocess.run(
        [*command, str(notice_id), "--by", "chief"], env=env, cwd=tmp, capture_output=True
    )
    exited = time.perf_counter()
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace"))
    return arrivals.wait_for(text) - began, exited - began


def measure(
    kind: str,
    runs: int,
    future: int,
    sandbox: SandboxServer,
    arrivals: Arrivals,
    before: Path | None,
) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="ba-") as tmp_name,
        database(kind, Path(tmp_name)) as url,
    ):
        tmp = Path(tmp_name)
        config, app = configure(tmp, url, sandbox.url)
        seed_future_notices(app, future, "feed", datetime.now(UTC))
        daemon = Daemon(config, tmp / "daemon.log").start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
        env["BULLETIN_CONFIG"] = str(config)
        command = [sys.executable, "-m", "bulletin", "notice", "approve"]
        variants = {" (daemon)": env, " (local)": {**env, "BULLETIN_LOCAL": "1"}}
        if before is not None:
            variants[" (before)"] = {**env, "PYTHONPATH": str(before), "BULLETIN_LOCAL": "1"}
        to_post: dict[str, list[float]] = {v: [] for v in variants}
        to_exit: dict[str, list[float]] = {v: [] for v in variants}
        daemon_only = []
        try:
            for i in range(runs + 1):  # the first round warms the caches and is not counted
                for variant, variant_env in variants.items():
                    label = f"[{kind}] Evacuate Zone {i % 7}: command{variant} {i}"
                    posted, exited = approve_by_command(
                        app, command, variant_env, tmp, arrivals, label
                    )
                    if i:
                        to_post[variant].append(posted)
                        to_exit[variant].append(exited)
                text = f"[{kind}] Evacuate Zone {i % 7}: library {i} {time.time_ns()}"
                notice_id = draft(app, text)
                approve_notice(app.engine, app.settings, app.clock, notice_id, "chief")
                committed = time.perf_counter()
                alone = arrivals.wait_for(text) - committed
                if i:
                    daemon_only.append(alone)
        finally:
            daemon.stop()
            app.close()
    print(
        f"{kind}: {runs} rounds, {future:,} other notices scheduled; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows = [("daemon only: commit -> sandbox has the post", daemon_only)]
    for variant in variants:
        rows.append((f"spawn `notice approve`{variant} -> sandbox has it", to_post[variant]))
        rows.append((f"spawn `notice approve`{variant} -> it exits", to_exit[variant]))
    base = statistics.median(daemon_only)
    for name, values in rows:
        print(
            f"  {name:<58} p50 {statistics.median(values) * 1000:7.1f} ms   "
            f"p99 {percentile(values, 99) * 1000:7.1f} ms   "
            f"{statistics.median(values) / base:5.1f}x the daemon's share"
        )


def postgres_answers() -> bool:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--future", type=int, default=10_000)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--before", type=Path)
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(args.src.resolve())  # the command's and the daemon's code
    print(f"code under test: {args.src}; load average {os.getloadavg()[0]:.1f}")
    sandbox = start_sandbox()
    sandbox.app.state.data["settings"]["enforce_rate_limits"] = False
    arrivals = Arrivals(sandbox)
    try:
        for kind in args.db or ["sqlite", "postgres"]:
            if kind == "postgres" and not postgres_answers():
                print(f"postgres: skipped, no server answers at {PG_URL}")
                continue
            before = args.before.resolve() if args.before else None
            measure(kind, args.runs, args.future, sandbox, arrivals, before)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
