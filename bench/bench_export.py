"""Export benchmark: a production of N archived records as a BagIt bag, against bagit-python's
``make_bag`` over the same payload files.

Seeding: N records through ``Archiver.archive_batch`` (batches of 5,000) on SQLite and the
local WORM store, in threads of one post and 19 comments (a comment is about 80 characters of
text; its snapshot about 700 bytes of canonical JSON, its raw response about 110 bytes). The
threads are spread over ten days, so ``from:D0 to:D0`` selects a tenth of them and
``from:D0 to:D9`` all of them.

Each export runs in a child process (``bulletin`` library call, no progress bar) that reports
its wall time and its peak RSS (VmHWM; ``ru_maxrss`` after the exec of a child keeps the
parent's peak on Linux). Then the payload of the full export is copied
to a fresh directory (not timed) and ``bagit.make_bag(dir, checksums=["sha256"])`` runs over it
in a child process: what bagging alone costs for the same files (it moves them into ``data/``,
reads and hashes each, writes manifests; it makes nothing durable, where the export syncs
every batch). The target is export rate / bagging rate >= 1.0 with renderings excluded (the
full scope exported once more with ``renderings=False``, and ``make_bag`` over that export's
payload); the rate with thread pages is printed beside it. With ``--rounds R`` the bare export
and ``make_bag`` alternate R times (each over a fresh copy) and the best and the median of
each are compared, so that a burst of load on a shared machine does not fall on one side
only. Before each timed child the file systems are synced (not timed), so that no child pays
for the writeback of the one before.

The thread pages are HTML only unless ``--pdf`` is given: their PDF/A copies render at about
a page a second, measured apart by ``bench_pdf.py``.

With ``--warc`` every seeded batch also carries the exchanges that listed its threads (one
Graph answer per thread, about 2.6 KB of JSON for 20 items), stored as WARC objects, so every
export writes ``data/warc/`` (one gzip-per-record WARC file per record) and ``make_bag`` bags
those files too.

    python bench/bench_export.py --records 100000 [--warc] [--pdf] [--rounds 3]
    python bench/bench_export.py --records 1000000 --warc --memory-only
    python bench/bench_export.py --reuse DIR ...   (a directory kept by --keep: no seeding)
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulletin.connectors.wire import Exchange

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

THREAD = 20  # one post and 19 comments
DAYS = 10
BASE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _peak_kb() -> int:
    """Peak RSS of this process in KiB: VmHWM, which starts afresh at exec (``ru_maxrss``
    of a child started by a large parent carries the parent's peak over on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_export(
    config: str, query: str, out: str, renderings: str = "yes", pdf: str = "no"
) -> None:
    from bulletin.app import App
    from bulletin.archiver.export import export_bundle, resolve
    from bulletin.config import load_settings

    app = App(load_settings(config, environ={}), environ={})
    engine = app.checked_engine()
    scope = resolve(engine, app.settings, None, query)
    options: dict[str, Any] = {"pdf": pdf == "yes"}
    began, cpu = time.perf_counter(), time.process_time()
    result = export_bundle(
        engine,
        app.store,
        app.settings,
        scope,
        out=Path(out),
        actor="bench",
        now=app.clock.now,
        renderings=renderings == "yes",
        **options,
    )
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    print(
        json.dumps(
            {"records": result.records, "seconds": seconds, "cpu": cpu, "rss_kb": _peak_kb()}
        )
    )


def _child_bag(directory: str) -> None:
    import bagit

    began = time.perf_counter()
    bagit.make_bag(directory, checksums=["sha256"])
    seconds = time.perf_counter() - began
    print(json.dumps({"seconds": seconds, "rss_kb": _peak_kb()}))


def _child(*args: str) -> dict[str, float]:
    os.sync()  # the writeback of what came before is not the child's to pay
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr}")
    value: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return value


def _exchange(thread: int, raws: list[bytes], at: datetime) -> Exchange:
    """The Graph answer that listed one thread's items (what a sweep records)."""
    from bulletin.connectors.wire import Exchange

    body = b'{"data":[' + b",".join(raws) + b'],"paging":{"cursors":{"after":"QVFIUj"}}}'
    return Exchange(
        at=at,
        method="GET",
        url=f"https://graph.facebook.com/v26.0/t{thread}/comments?limit=25&access_token=REDACTED",
        request_headers=(("User-Agent", "python-requests/2.32"), ("Accept", "*/*")),
        status=200,
        reason="OK",
        response_headers=(
            ("Content-Type", "application/json; charset=UTF-8"),
            ("Content-Length", str(len(body))),
        ),
        body=body,
    )


def seed(config: Path, records: int, warc: bool = False) -> float:
    from bulletin.app import App
    from bulletin.archiver.archive import Capture
    from bulletin.config import load_settings
    from bulletin.connectors.base import RemoteItem

    app = App(load_settings(config, environ={}), environ={})
    threads = max(1, records // THREAD)
    began = time.perf_counter()
    batch: list[Capture] = []
    wire: list[Exchange] = []
    made = 0
    for t in range(threads):
        day = t * DAYS // threads
        start = BASE + timedelta(days=day, seconds=t)
        size = THREAD if t < threads - 1 else records - made
        raws: list[bytes] = []
        for n in range(size):
            kind = "post" if n == 0 else "comment"
            rid = f"t{t}" if n == 0 else f"t{t}c{n}"
            text = (
                f"Road closed on Main Street between Oak and Elm tonight, notice {t}"
                if n == 0
                else f"Comment {n} on notice {t}: when will the bridge reopen? Thanks, officers."
            )
            item = RemoteItem(
                kind=kind,  # type: ignore[arg-type]
                remote_id=rid,
                text=text,
                author="Bench PD" if n == 0 else f"visitor{(t * 7 + n) % 5000}",
                posted_at=start + timedelta(seconds=n),
                parent_id=None if n == 0 else f"t{t}",
                thread_id=f"t{t}",
                raw=json.dumps({"id": rid, "message": text, "from": {"id": n}}).encode(),
            )
            batch.append(Capture("feed", "feed", item))
            raws.append(item.raw)
            made += 1
            if len(batch) == 5000:
                if warc:
                    wire.append(_exchange(t, raws, start))
                    raws = []
                app.archiver.archive_batch(batch, wire=wire)
                batch, wire = [], []
        if warc and raws:
            wire.append(_exchange(t, raws, start))
    if batch:
        app.archiver.archive_batch(batch, wire=wire)
    app.close()
    return time.perf_counter() - began


def _export_line(label: str, found: dict[str, float], what: str) -> str:
    rate = found["records"] / found["seconds"]
    return (
        f"export {label:>6}: {int(found['records']):>8} records in "
        f"{found['seconds']:7.1f} s = {rate:7.0f} records/s "
        f"({found['cpu'] * 1e6 / max(1, found['records']):.0f} us CPU/record), "
        f"peak RSS {found['rss_kb'] / 1024:6.1f} MB, {what}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--warc",
        action="store_true",
        help="Seed every record with the WARC of the answer that listed it (one exchange per "
        "thread) and produce data/warc/ too.",
    )
    parser.add_argument(
        "--pdf", action="store_true", help="Render the thread pages as PDF in every export too."
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="Alternate the bare export and make_bag this many times; compare best and median.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory.")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="A directory kept by --keep: its archive is exported again, nothing is seeded.",
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="Only the full export with thread pages: its rate and peak RSS (the large run).",
    )
    args = parser.parse_args()
    pdf = "yes" if args.pdf else "no"

    from _support import configure

    if args.reuse is not None:
        tmp = args.reuse
        config = tmp / "bulletin.toml"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    # every output under a name of its own, removed at the end only: removing 400,000 files
    # takes minutes on a busy machine, and belongs to no measurement
    work = Path(tempfile.mkdtemp(prefix="run-", dir=tmp))
    try:
        if args.reuse is None:
            config, app = configure(
                tmp, f"sqlite:///{tmp / 'data' / 'bulletin.db'}", "http://127.0.0.1:9"
            )
            app.close()
            seconds = seed(config, args.records, args.warc)
            print(
                f"seeded {args.records} records in {seconds:.1f} s ({args.records / seconds:.0f}/s)"
            )
        first = BASE.date().isoformat()
        last = (BASE + timedelta(days=DAYS - 1)).date().isoformat()
        extra = ", PDF" if args.pdf else ""
        runs: dict[str, dict[str, float]] = {}
        plan = [
            ("N/10", f"from:{first} to:{first}", "yes"),
            ("N", f"from:{first} to:{last}", "yes"),
        ]
        for label, query, renderings in plan[1:] if args.memory_only else plan:
            out = work / f"export-{label.replace('/', '_')}"
            found = _child("--child-export", str(config), query, str(out), renderings, pdf)
            runs[label] = found
            print(_export_line(label, found, "with thread pages" + extra))
        if args.memory_only:
            print(f"machine    : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
            return
        bare: list[dict[str, float]] = []
        bagged: list[dict[str, float]] = []
        for round_ in range(args.rounds):
            out = work / f"export-N-bare-{round_}"
            query = plan[1][1]
            found = _child("--child-export", str(config), query, str(out), "no", pdf)
            bare.append(found)
            print(_export_line("N-bare", found, "renderings excluded" + extra))
            payload = work / f"make-bag-{round_}"
            shutil.copytree(out / "data", payload)
            files = sum(1 for p in payload.rglob("*") if p.is_file())
            if args.warc and round_ == 0:
                warcs = [p for p in (payload / "warc").rglob("*.warc.gz")]
                print(
                    f"data/warc  : {len(warcs)} WARC files, "
                    f"{sum(p.stat().st_size for p in warcs) / 1e6:.1f} MB (in the payload below)"
                )
            size = sum(p.stat().st_size for p in payload.rglob("*") if p.is_file())
            made = _child("--child-bag", str(payload))
            bagged.append(made)
            print(
                f"make_bag   : {files} payload files, {size / 1e6:.1f} MB in "
                f"{made['seconds']:7.1f} s = {found['records'] / made['seconds']:7.0f} "
                f"records/s ({files / made['seconds']:.0f} files/s), "
                f"peak RSS {made['rss_kb'] / 1024:.1f} MB"
            )
        records = bare[0]["records"]
        ours = [records / b["seconds"] for b in bare]
        theirs = [records / b["seconds"] for b in bagged]
        for name, pick in (("best", max), ("median", median)):
            print(
                f"ratio {name:>6}: export {pick(ours):.0f} / make_bag {pick(theirs):.0f} "
                f"records/s = {pick(ours) / pick(theirs):.2f} (target >= 1.00, renderings "
                f"excluded; {args.rounds} round(s))"
            )
        paged_rate = runs["N"]["records"] / runs["N"]["seconds"]
        print(
            f"             with thread pages: {paged_rate:.0f} / {max(theirs):.0f} = "
            f"{paged_rate / max(theirs):.2f}"
        )
        small, big = runs["N/10"]["rss_kb"], runs["N"]["rss_kb"]
        print(
            f"memory     : peak RSS {small / 1024:.1f} MB at N/10, {big / 1024:.1f} MB at N "
            f"({big / small:.2f}x for 10x the records)"
        )
        print(f"machine    : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    finally:
        if args.reuse is not None:
            print(f"kept {tmp}; this run's outputs are in {work}")
        elif args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-export":
        _child_export(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-bag":
        _child_bag(sys.argv[2])
    else:
        main()
