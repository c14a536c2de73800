"""Walking-skeleton benchmarks: approve-to-feed latency and archive throughput.

1. Approve-to-feed: a daemon runs in this process (dispatcher thread, waker socket). For each
   of ``--notices`` notices (default 200) we draft and approve it through the library, poke the
   daemon as the CLI does, and time until the feed file holds its entry. Baseline in the same
   run: the bare feed connector's publish of the same text (atomic write + fsync).
2. Archive throughput: ``--records`` comment-sized records (default 100,000; canonical JSON
   snapshot about 700 bytes plus a ~200-byte raw response) through ``Archiver.archive_batch`` in
   batches of ``--batch`` into the local WORM store with the SQLite index and ledger, durable by
   batch. Baseline in the same run: the same snapshot bytes hashed and written as plain files
   with one ``syncfs`` per batch, no index.

    python bench/bench_publish.py [--notices 200] [--records 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from bulletin.app import App  # noqa: E402
from bulletin.archiver.archive import Capture  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.connectors.base import OutgoingPost, RemoteItem  # noqa: E402
from bulletin.connectors.feed import FeedConnector  # noqa: E402
from bulletin.daemon import running  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.logs import configure  # noqa: E402
from bulletin.publisher.notices import NoticeDraft, approve_notice, create_notice  # noqa: E402
from bulletin.waker import poke  # noqa: E402

TEXT = "Road closed: Mass Ave between Waltham St and Muzzey St until 6 pm (water main repair)."


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def make_app(root: Path) -> App:
    config = root / "bulletin.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{root / "data"}"\n[accounts.feed]\nplatform = "feed"\n'
        "capture_interval = 3600\n[daemon]\nscan_interval = 1.0\n"
    )
    (root / "data").mkdir()
    app = App(load_settings(config, environ={}), environ={})
    migrate(app.engine)
    return app


def bench_latency(root: Path, notices: int) -> None:
    app = make_app(root)
    feed_path = app.settings.feed_path("feed")
    latencies: list[float] = []
    with running(app):
        for i in range(notices):
            notice = create_notice(
                app.engine,
                app.settings,
                app.clock,
                NoticeDraft("road-closure", f"{TEXT} #{i}", ("feed",)),
                "dispatcher",
            )
            assert notice.id is not None
            approve_notice(app.engine, app.settings, app.clock, notice.id, "approver")
            start = time.perf_counter()
            poke(app.settings.data_dir)
            needle = f"notice-{notice.id}<".encode()
            while not feed_path.exists() or needle not in feed_path.read_bytes():
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - start)
    app.close()

    bare = FeedConnector("bare", root / "bare.xml", "bare", "")
    base: list[float] = []
    for i in range(notices):
        start = time.perf_counter()
        bare.publish(OutgoingPost(key=f"k{i}", text=f"{TEXT} #{i}"))
        base.append(time.perf_counter() - start)
    med, p99 = statistics.median(latencies), percentile(latencies, 99)
    bmed, bp99 = statistics.median(base), percentile(base, 99)
    print(f"approve-to-feed over {notices} notices (daemon in process, poked like the CLI):")
    print(f"  median {med * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms")
    print(f"  bare feed publish: median {bmed * 1000:6.1f} ms   p99 {bp99 * 1000:6.1f} ms")
    print(f"  ratio (median): {med / bmed:5.1f}x the bare publish")


def comment(i: int) -> Capture:
    text = (
        f"Comment {i}: thank you officers, is Mass Ave open again tonight? The detour by "
        "Waltham St is backed up past the high school and people are turning around in "
        "driveways. Please post an update when it reopens. 🚧"
    )
    raw = (
        f'{{"id":"{i}","message":"{text[:120]}","from":{{"id":"u{i % 997}"}},'
        f'"created_time":"2026-11-25T12:00:00+0000"}}'
    ).encode()
    item = RemoteItem(
        kind="comment",
        remote_id=f"c{i}",
        text=text,
        author=f"visitor{i % 997}",
        posted_at=datetime(2026, 11, 25, 12, tzinfo=UTC),
        parent_id="p1",
        thread_id="p1",
        raw=raw,
    )
    return Capture("feed", "feed", item)


def syncfs(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc.syncfs(fd)
    finally:
        os.close(fd)


def bench_archive(root: Path, records: int, batch: int) -> None:
    app = make_app(root)
    archiver = app.archiver
    captures = [comment(i) for i in range(records)]
    start, cpu = time.perf_counter(), time.process_time()
    for s in range(0, records, batch):
        archiver.archive_batch(captures[s : s + batch])
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    sizes = [r.size for r in archiver.archive(captures[:100])]
    app.close()

    floor_dir = root / "floor"
    floor_dir.mkdir()
    payloads = [c.item.raw * 4 for c in captures]  # about the snapshot's size
    start = time.perf_counter()
    for s in range(0, records, batch):
        for data in payloads[s : s + batch]:
            digest = hashlib.sha256(data).hexdigest()
            with open(floor_dir / digest, "xb") as f:
                f.write(data)
        syncfs(floor_dir)
    floor = time.perf_counter() - start
    rate, floor_rate = records / elapsed, records / floor
    print(
        f"archive throughput, {records} comment records in batches of {batch} "
        f"(snapshot ~{statistics.mean(sizes):.0f} B + raw ~{len(captures[0].item.raw)} B):"
    )
    print(f"  Bulletin (local WORM store + SQLite index + ledger): {rate:9.0f} records/s")
    print(f"  floor (hash + plain file + one syncfs per batch):     {floor_rate:9.0f} records/s")
    print(f"  ratio: {rate / floor_rate:5.2f} of the floor")
    print(
        f"  Bulletin CPU time (user + system): {cpu / records * 1e6:.0f} us per record; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=200)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    configure("warning")
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        (Path(tmp) / "latency").mkdir()
        bench_latency(Path(tmp) / "latency", args.notices)
        (Path(tmp) / "archive").mkdir()
        bench_archive(Path(tmp) / "archive", args.records, args.batch)


if __name__ == "__main__":
    main()
