"""Benchmark of ``archive verify``: records per second and peak memory, at two sizes.

Seeds comment records through ``Archiver.archive_batch`` (the capture path: local WORM store,
SQLite index, ledger; the same records as ``bench_publish.py``: a ~760-byte canonical snapshot
plus a ~200-byte raw response per record), then times :func:`bulletin.archiver.verify.verify`
over the whole archive: every object re-hashed, the ledger chain, the mirror, the orphan scan.

Each verify runs in a fresh child process, so its peak RSS (``ru_maxrss``) is that run's
alone; the seeding runs in another child. First ``N/10`` records are seeded and verified,
then the archive grows to ``N`` and is verified again: flat memory means equal peaks.

    python bench/bench_verify.py [--records 100000] [--batch 500] [--dir PATH] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]


def _app(work: Path, create: bool) -> object:
    from bench_publish import make_app

    from bulletin.app import App
    from bulletin.config import load_settings

    if create:
        return make_app(work)
    return App(load_settings(work / "bulletin.toml", environ={}), environ={})


def seed(work: Path, first: int, last: int, batch: int) -> dict[str, float]:
    """Archive records ``first`` to ``last - 1`` (creating the instance when ``first`` is 0)."""
    from bench_publish import comment

    from bulletin.app import App

    app = _app(work, create=first == 0)
    assert isinstance(app, App)
    began = time.perf_counter()
    for start in range(first, last, batch):
        app.archiver.archive_batch([comment(i) for i in range(start, min(last, start + batch))])
    elapsed = time.perf_counter() - began
    app.close()
    return {"seeded": last - first, "seconds": elapsed}


def check(work: Path) -> dict[str, float]:
    """Verify the whole archive; report speed and this process's peak RSS."""
    from bulletin.app import App
    from bulletin.archiver.verify import verify

    app = _app(work, create=False)
    assert isinstance(app, App)
    _ = app.store, app.engine
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    report = verify(app.engine, app.store, settings=app.settings)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    app.close()
    return {
        "ok": float(report.ok),
        "records": report.records,
        "objects": report.objects,
        "entries": report.entries,
        "seconds": elapsed,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
    }


def child(*args: str) -> dict[str, float]:
    """Run this file with ``args`` in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="leave the work directory")
    parser.add_argument("--seed", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.seed or args.check:
        from bulletin.logs import configure

        configure("warning")
        if args.seed:
            first, last = args.seed
            out = seed(args.work, first, last, args.batch)
        else:
            out = check(args.work)
        print(json.dumps(out))
        return

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-verify-", dir=args.dir))
    sizes = [max(1, args.records // 10), args.records]
    print(
        f"verify over comment records (snapshot ~760 B + raw ~200 B each, two objects per "
        f"record), seeded through Archiver.archive_batch in batches of {args.batch}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    try:
        done = 0
        for size in sizes:
            batch = ("--batch", str(args.batch))
            seeded = child("--seed", str(done), str(size), *batch, "--work", str(work))
            done = size
            got = child("--check", "--work", str(work))
            assert got["ok"] and got["records"] == size, got
            print(
                f"  {size:>9,} records: verify {got['seconds']:7.1f} s = "
                f"{size / got['seconds']:8,.0f} records/s ({got['objects'] / got['seconds']:,.0f} "
                f"objects/s); peak RSS {got['rss_peak_kib'] / 1024:6.1f} MiB "
                f"(after start-up {got['rss_before_kib'] / 1024:.1f} MiB); "
                f"seeding ran at {seeded['seeded'] / seeded['seconds']:,.0f} records/s"
            )
    finally:
        if args.keep:
            print(f"work directory (kept): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
