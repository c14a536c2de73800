"""Thread-page rendering benchmark: CPU time and bytes per record of ``render.thread_item``
(its data built by ``pages.item``), against the record's Concordance DAT line built in the
same run (work every export does for every record anyway).

Records are built in memory as the exporter builds them (``Record.model_construct``), in
threads of one post and 19 comments; a comment has about 80 characters of text, every fifth
comment is a reply, every tenth item has two versions, every fiftieth an image. No disk, no
database: this isolates the renderer. Figures are CPU time (``time.process_time``), so other
work on the machine changes them less than wall time.

    python bench/bench_render.py --records 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from sqlalchemy.orm import configure_mappers  # noqa: E402

from bulletin.archiver.export import layout, loadfile, pages, render  # noqa: E402
from bulletin.models import Record  # noqa: E402

THREAD = 20
BASE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TEXT = "Is the detour on Waltham St still in place tomorrow morning? The buses were late today."


def records(n: int) -> list[tuple[Record, pages.Place, list[dict[str, object]]]]:
    out: list[tuple[Record, pages.Place, list[dict[str, object]]]] = []
    position = 0
    while len(out) < n:
        thread = f"t{position}"
        for index in range(THREAD):
            kind = "post" if index == 0 else "comment"
            versions = 2 if index % 10 == 3 else 1
            for version in range(1, versions + 1):
                position += 1
                parent = (
                    None if index == 0 else (f"{thread}-{index - 1}" if index % 5 == 0 else thread)
                )
                record = Record.model_construct(
                    id=position,
                    account="facebook",
                    platform="facebook",
                    kind=kind,
                    remote_id=thread if index == 0 else f"{thread}-{index}",
                    parent_id=parent,
                    thread_id=thread,
                    version=version,
                    state="visible",
                    change="new" if version == 1 else "edited",
                    author="Lexington PD" if index == 0 else f"Visitor {index}",
                    text=TEXT,
                    url=f"https://www.facebook.com/100/posts/{position}",
                    posted_at=BASE + timedelta(minutes=index),
                    captured_at=BASE + timedelta(hours=1),
                    series="visitor-comments",
                    content_sha256=f"{position:064x}",
                    object_sha256=f"{position:064x}",
                )
                place = pages.Place(
                    version,
                    versions,
                    f"BUL{position - 1:07d}" if version > 1 else None,
                    f"BUL{position + 1:07d}" if version < versions else None,
                )
                media: list[dict[str, object]] = []
                if position % 50 == 0:
                    path = layout.media_path("BUL", position, 1, "image/jpeg")
                    media = [{"path": path, "alt_text": "A sign" if position % 100 else None}]
                out.append((record, place, media))
    return out[:n]


def measure(work: Callable[[], int]) -> tuple[float, int]:
    began = time.process_time()
    size = work()
    return time.process_time() - began, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    configure_mappers()  # as the exporter's database use does before it builds records
    items = records(args.records)
    posted, captured = "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"

    def thread_pages() -> int:
        size = 0
        for position, (record, place, media) in enumerate(items, start=1):
            bates = f"BUL{position:07d}"
            size += len(
                render.thread_item(
                    pages.item(
                        record,
                        bates,
                        posted,
                        captured,
                        layout.native_path("BUL", position),
                        zone="America/New_York",
                        place=place,
                        media=media,
                    )
                ).encode("utf-8")
            )
        return size

    def dat() -> int:
        size = 0
        for position, (record, _, _) in enumerate(items, start=1):
            bates = f"BUL{position:07d}"
            fields = [bates, bates, record.platform, record.account, record.kind, record.remote_id]
            fields += [record.author or "", posted, captured, record.state, record.text]
            size += len(loadfile.dat_line(fields).encode("utf-8"))
        return size

    base_cpu, base_bytes = measure(dat)
    cpu, size = measure(thread_pages)
    n = len(items)
    print(f"records    : {n} (threads of {THREAD}; 1 in 10 items edited, 1 in 50 with an image)")
    print(
        f"DAT line   : {base_cpu / n * 1e6:7.1f} µs CPU/record, {base_bytes / n:7.0f} bytes/record"
    )
    print(f"thread page: {cpu / n * 1e6:7.1f} µs CPU/record, {size / n:7.0f} bytes/record")
    print(f"ratio      : thread page / DAT line CPU = {cpu / base_cpu:.1f}")
    print(f"machine    : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
