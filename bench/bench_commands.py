"""How long a dispatcher waits for a command: wall time from spawn to exit of ``bulletin
--help``, ``--version``, ``notice list``, ``status`` and ``archive search WORD`` on a seeded
SQLite data directory (10,000 scheduled notices, archived comments), against ``python -c
pass`` and ``python -c "import sqlalchemy"`` spawned in the same rounds, interleaved.

A daemon runs on the data directory: each read command is timed answered by it (through its
command socket, the default) and run in its own process (``BULLETIN_LOCAL=1``), in the same
rounds. ``--no-daemon`` leaves it out.

    python bench/bench_commands.py [--runs 30] [--notices 10000] [--records 2000] [--src DIR]
                                   [--before DIR] [--no-daemon]

``--src`` runs the commands from another source tree (a checkout's ``src``); ``--before DIR``
also runs each ``bulletin`` command from DIR, interleaved with the others in the same rounds,
for a before/after comparison on the same data under the same load.

Prints the median and p90 of each, each median as a ratio of ``python -c pass``, and the
median CPU time (user + system) of the process, which a loaded machine inflates less.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

from _support import ROOT, Daemon, configure, seed_future_notices
from bench_capture import percentile
from bench_publish import comment

Run: TypeAlias = tuple[list[str], dict[str, str]]


def seed(tmp: Path, notices: int, records: int) -> Path:
    """A configured SQLite instance with ``notices`` scheduled notices and ``records``
    archived comments; returns its config file."""
    data = tmp / "data"
    data.mkdir(parents=True)
    config, app = configure(tmp, f"sqlite:///{data / 'bulletin.db'}", "http://127.0.0.1:9")
    seed_future_notices(app, notices, "feed", datetime.now(UTC))  # days ahead: none due
    for first in range(0, records, 500):
        app.archiver.archive_batch([comment(i) for i in range(first, min(records, first + 500))])
    app.close()
    return config


READS = ("notice list", "status", "archive search")


def commands(python: str, env: dict[str, str], before: Path | None, daemon: bool) -> dict[str, Run]:
    """Each command to time, by name: its argv and environment. With ``daemon``, each read
    command twice: answered by the daemon, and with ``BULLETIN_LOCAL=1`` in its own process."""
    bulletin = [python, "-m", "bulletin"]
    runs: dict[str, Run] = {
        "python -c pass": ([python, "-c", "pass"], env),
        'python -c "import sqlalchemy"': ([python, "-c", "import sqlalchemy"], env),
    }
    for args in (
        ["--help"],
        ["--version"],
        ["notice", "list"],
        ["status"],
        ["archive", "search", "officers"],
    ):
        name = " ".join(["bulletin", *args])
        if daemon and name.removeprefix("bulletin ").startswith(READS):
            runs[f"{name} (daemon)"] = ([*bulletin, *args], env)
            name += " (local)"
        runs[name] = ([*bulletin, *args], {**env, "BULLETIN_LOCAL": "1"} if daemon else env)
        if before is not None:
            runs[f"{name} (before)"] = ([*bulletin, *args], {**env, "PYTHONPATH": str(before)})
    return runs


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time of one run of ``argv``."""
    cpu_before, began = cpu(), time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed, used = time.perf_counter() - began, cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.decode(errors='replace')[-800:]}")
    return elapsed, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--before", type=Path)
    parser.add_argument("--no-daemon", action="store_true")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = seed(tmp, args.notices, args.records)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
        env.update(
            BULLETIN_CONFIG=str(config),
            BULLETIN_USER="dispatcher1",
            PYTHONPATH=str(args.src.resolve()),
        )
        before = args.before.resolve() if args.before else None
        runs = commands(sys.executable, env, before, not args.no_daemon)
        daemon = None
        if not args.no_daemon:
            os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # the daemon runs the code under test
            daemon = Daemon(config, tmp / "daemon.log").start()
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        try:
            for argv, run_env in runs.values():  # warm the page cache and .pyc files
                wall(argv, run_env, tmp)
            for _ in range(args.runs):
                for name, (argv, run_env) in runs.items():
                    elapsed, used = wall(argv, run_env, tmp)
                    times[name].append(elapsed)
                    cpus[name].append(used)
        finally:
            if daemon is not None:
                daemon.stop()
    base = statistics.median(times["python -c pass"])
    print(
        f"code under test: {args.src} (before: {args.before}); {args.runs} runs each, interleaved; "
        f"{args.notices:,} notices, {args.records:,} archived comments, SQLite; "
        f"load average {os.getloadavg()[0]:.1f} at the end (started at {load_at_start:.1f})"
    )
    print(
        "| command | median ms | p90 ms | x python -c pass | CPU median ms |\n"
        "|---|---:|---:|---:|---:|"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| `{name}` | {median * 1000:.0f} | {percentile(values, 90) * 1000:.0f} "
            f"| {median / base:.1f} | {statistics.median(cpus[name]) * 1000:.0f} |"
        )


if __name__ == "__main__":
    main()
