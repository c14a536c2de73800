"""Ingest benchmark of the WORM stores: comment-sized records, durable by batch.

Each record is one visitor comment as canonical JSON (RFC 8785), about 600 bytes (the mean is
printed). Ingest = put every record content-addressed, with a seven-year retain-until, and flush
once per batch (default 500 records), as the capture sweep does before it advances a cursor.

The floor does the least any durable content-addressed ingest must do: hash each record, write
it to a new plain file named by its hash, and issue one ``syncfs`` per batch; no sidecar, no
staging, no checks. The ratio store / floor is what the store's guarantees cost.

With ``--s3`` the same records go to SeaweedFS (started here as the test fixture starts it),
against a floor of one plain boto3 ``put_object`` per record.

An ingest is any callable taking the list of records, so the index step (added later) can be
wrapped around or swapped in without touching the timing code::

    python bench/bench_store.py --records 20000 [--batch 500] [--rounds 3] [--s3]
                              [--s3-records 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bulletin.archiver.store.base import WormStore, sha256_hex  # noqa: E402
from bulletin.archiver.store.local import LocalStore  # noqa: E402

Ingest = Callable[[Sequence[bytes]], None]
RETAIN = datetime.now(UTC) + timedelta(days=7 * 366)
WORDS = [
    *("road", "closed", "main", "street", "detour", "tonight", "thanks", "officers", "when"),
    *("will", "it", "reopen", "the", "bridge", "traffic", "is", "backed", "up", "please"),
    *("share", "missing", "person", "last", "seen", "wearing", "a", "blue", "jacket", "call"),
    *("the", "tip", "line", "great", "work", "community", "event", "saturday", "park"),
]


def make_records(count: int, seed: int = 1) -> list[bytes]:
    """``count`` distinct comment records as canonical JSON, about 600 bytes each."""
    rng = random.Random(seed)
    start = datetime(2026, 7, 1, tzinfo=UTC)
    records = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 36)))
        body: dict[str, Any] = {
            "account": "x-main",
            "author": {"id": str(rng.getrandbits(60)), "name": f"resident{rng.randint(1, 99999)}"},
            "captured_at": (start + timedelta(seconds=i)).isoformat(),
            "conversation_id": str(1_800_000_000_000_000_000 + i // 40),
            "created_at": (start + timedelta(seconds=i - 30)).isoformat(),
            "id": str(1_900_000_000_000_000_000 + i),
            "in_reply_to": str(1_800_000_000_000_000_000 + i // 40),
            "kind": "comment",
            "platform": "x",
            "public_metrics": {"likes": rng.randint(0, 50), "replies": rng.randint(0, 5)},
            "series": "visitor-comments",
            "text": text[:340],
            "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
        }
        records.append(rfc8785.dumps(body))
    return records


def store_ingest(store: WormStore, batch: int) -> Ingest:
    """Put every record content-addressed and flush once per ``batch``."""

    def ingest(records: Sequence[bytes]) -> None:
        for i, record in enumerate(records, 1):
            store.put_object(record, retain_until=RETAIN)
            if i % batch == 0:
                store.flush()
        store.flush()

    return ingest


def floor_ingest(root: Path, batch: int, *, sidecar: bool = False) -> Ingest:
    """Hash each record, write it to a new plain file, one syncfs per batch; nothing else.

    ``sidecar`` also writes a second small file per record, as the store's sidecar, so the
    figures separate the cost of a second file from the cost of the store's own logic.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def barrier() -> None:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            libc.syncfs(fd)
        finally:
            os.close(fd)

    def ingest(records: Sequence[bytes]) -> None:
        made: set[str] = set()
        for i, record in enumerate(records, 1):
            digest = sha256_hex(record)
            if digest[:2] not in made:
                (root / digest[:2]).mkdir(parents=True, exist_ok=True)
                made.add(digest[:2])
            fd = os.open(root / digest[:2] / digest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444)
            os.write(fd, record)
            os.close(fd)
            if sidecar:
                meta = f'{{"retain_until":"2033-07-01T00:00:00Z","sha256":"{digest}"}}'
                path = root / digest[:2] / f"{digest}.meta.json"
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444)
                os.write(fd, meta.encode())
                os.close(fd)
            if i % batch == 0:
                barrier()
        barrier()

    return ingest


def s3_floor_ingest(client: object, bucket: str) -> Ingest:
    """One plain put_object per record (each S3 put is durable on its own)."""

    def ingest(records: Sequence[bytes]) -> None:
        for record in records:
            client.put_object(Bucket=bucket, Key=f"sha256/{sha256_hex(record)}", Body=record)  # type: ignore[attr-defined]

    return ingest


def timed(ingest: Ingest, records: Sequence[bytes]) -> float:
    """Records per second of one ingest run."""
    began = time.perf_counter()
    ingest(records)
    return len(records) / (time.perf_counter() - began)


def report(label: str, rate: float, floor: float, floor_label: str) -> None:
    """Print one pair of figures and their ratio."""
    print(f"  {label:<34} {rate:>10,.0f} records/s")
    print(f"  {floor_label:<34} {floor:>10,.0f} records/s")
    print(f"  {'ratio store / floor':<34} {rate / floor:>10.2f}")


def bench_local(records: Sequence[bytes], batch: int, work: Path, rounds: int) -> None:
    """The local store against the plain-file floor, alternating, best round of each."""
    floor = floor2 = rate = 0.0
    for n in range(rounds):
        floor = max(floor, timed(floor_ingest(work / f"floor-{n}", batch), records))
        floor2 = max(
            floor2, timed(floor_ingest(work / f"floor2-{n}", batch, sidecar=True), records)
        )
        store = LocalStore(work / f"store-{n}")
        rate = max(rate, timed(store_ingest(store, batch), records))
        store.close()
        assert len(list(store.keys())) == len(records)
    print(f"local store on {work} (flush every {batch} records, best of {rounds} rounds):")
    report("LocalStore put_object + flush", rate, floor, "floor: sha256 + file + syncfs")
    print(f"  {'floor with a sidecar file each':<34} {floor2:>10,.0f} records/s")
    print(f"  {'ratio store / floor with sidecar':<34} {rate / floor2:>10.2f}")


def bench_s3(records: Sequence[bytes], work: Path) -> None:
    """The S3 store on SeaweedFS against plain boto3 puts."""
    from tests.plugins.seaweedfs import find_weed, run_seaweedfs, s3_client

    from bulletin.archiver.store.s3 import S3Store

    weed = find_weed()
    if weed is None:
        print("s3: skipped, no weed binary found")
        return
    with run_seaweedfs(work / "seaweedfs", weed) as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="bench-floor")
        floor = timed(s3_floor_ingest(client, "bench-floor"), records)
        store = S3Store(client, "bench-store", create_bucket=True)
        rate = timed(store_ingest(store, len(records)), records)
        print(f"S3 store on SeaweedFS {endpoint} (each put durable on its own):")
        report("S3Store put_object", rate, floor, "floor: boto3 put_object")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, build the records, run the benchmarks, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="records per flush")
    parser.add_argument("--s3", action="store_true", help="also run against SeaweedFS")
    parser.add_argument("--s3-records", type=int, default=None, help="default: --records")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = parser.parse_args(argv)

    records = make_records(args.records)
    mean = sum(map(len, records)) / len(records)
    print(f"{len(records):,} comment records, canonical JSON, mean {mean:.0f} bytes")
    with _workdir(args.dir) as work:
        bench_local(records, args.batch, work, args.rounds)
        if args.s3:
            bench_s3(records[: args.s3_records or len(records)], work)


@contextlib.contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(dir=given))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
