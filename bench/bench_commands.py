"""How long a dispatcher waits for a command: wall time from spawn to exit of ``bulletin
--help``, ``--version``, ``notice list``, ``status`` and ``archive search WORD`` on a seeded
SQLite data directory (10,000 scheduled notices, archived comments), against ``python -c
pass`` and ``python -c "import sqlalchemy"`` spawned in the same rounds, interleaved.

    python bench/bench_commands.py [--runs 30] [--notices 10000] [--records 2000] [--src DIR]

``--src`` runs the commands from another source tree (a checkout's ``src``), for a
before/after comparison on the same data.

Prints the median and p90 of each, and each median as a ratio of ``python -c pass``.
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

from _support import ROOT, configure, seed_future_notices
from bench_capture import percentile
from bench_publish import comment


def seed(tmp: Path, notices: int, records: int) -> Path:
    """A configured SQLite instance with ``notices`` scheduled notices and ``records``
    archived comments; returns its config file."""
    data = tmp / "data"
    data.mkdir(parents=True)
    config, app = configure(tmp, f"sqlite:///{data / 'bulletin.db'}", "http://127.0.0.1:9")
    seed_future_notices(app, notices, "feed", datetime(2026, 12, 1, tzinfo=UTC))
    for first in range(0, records, 500):
        app.archiver.archive_batch([comment(i) for i in range(first, min(records, first + 500))])
    app.close()
    return config


def commands(python: str) -> dict[str, list[str]]:
    bulletin = [python, "-m", "bulletin"]
    return {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import sqlalchemy"': [python, "-c", "import sqlalchemy"],
        "bulletin --help": [*bulletin, "--help"],
        "bulletin --version": [*bulletin, "--version"],
        "bulletin notice list": [*bulletin, "notice", "list"],
        "bulletin status": [*bulletin, "status"],
        "bulletin archive search officers": [*bulletin, "archive", "search", "officers"],
    }


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.decode(errors='replace')[-800:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = seed(tmp, args.notices, args.records)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
        env.update(
            BULLETIN_CONFIG=str(config),
            BULLETIN_USER="dispatcher1",
            PYTHONPATH=str(args.src.resolve()),
        )
        runs = commands(sys.executable)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for argv in runs.values():  # warm the page cache and .pyc files
            wall(argv, env, tmp)
        for _ in range(args.runs):
            for name, argv in runs.items():
                times[name].append(wall(argv, env, tmp))
    base = statistics.median(times["python -c pass"])
    print(
        f"code under test: {args.src}; {args.runs} runs each, interleaved; "
        f"{args.notices:,} notices, {args.records:,} archived comments, SQLite; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| command | median ms | p90 ms | x python -c pass |\n|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| `{name}` | {median * 1000:.0f} | {percentile(values, 90) * 1000:.0f} "
            f"| {median / base:.1f} |"
        )


if __name__ == "__main__":
    main()
