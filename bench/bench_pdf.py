"""PDF/A thread pages: pages per second of the production path against WeasyPrint rendering
the same HTML alone, in one run.

Seeding: T threads of one post and 19 comments (about 80 characters each, one comment per
thread with a phone number withheld by a redaction) through ``Archiver.archive_batch`` on
SQLite and the local WORM store. Then, in this process, one after another:

- the production without PDFs (``pdf=False``): what an export costs without them;
- the production with PDFs (the default): the PDF share is the difference of the two wall
  times, pages counted from ``data/manifest/pdfs.csv``;
- WeasyPrint alone over the thread pages of that production: ``HTML(file).write_pdf()``
  with its defaults (no PDF/A, no tags, no print stylesheet), the baseline;
- WeasyPrint with the production's options (``bulletin.archiver.export.pdf.render``: the
  print stylesheet, PDF/A-2b, tags), to tell WeasyPrint's own cost from the export's.

WeasyPrint's import and first font lookup (about a second, once per process) are paid
before any timing.

    python bench/bench_pdf.py --threads 50
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

THREAD = 20
BASE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PHONE = "617-555-0142"


def seed(config: Path, threads: int) -> None:
    from bulletin.app import App
    from bulletin.archiver import redaction
    from bulletin.archiver.archive import Capture
    from bulletin.config import load_settings
    from bulletin.connectors.base import RemoteItem
    from bulletin.models import Record

    app = App(load_settings(config, environ={}), environ={})
    batch: list[Capture] = []
    for t in range(threads):
        start = BASE + timedelta(minutes=t)
        for n in range(THREAD):
            rid = f"t{t}" if n == 0 else f"t{t}c{n}"
            text = (
                f"Road closed on Main Street between Oak and Elm tonight, notice {t}"
                if n == 0
                else f"Comment {n} on notice {t}: when will the bridge reopen? Thanks, officers."
            )
            if n == 1:
                text = f"Saw the crash; call my cell {PHONE} if you need a witness."
            item = RemoteItem(
                kind="post" if n == 0 else "comment",
                remote_id=rid,
                text=text,
                author="Bench PD" if n == 0 else f"visitor{n}",
                posted_at=start + timedelta(seconds=n),
                parent_id=None if n == 0 else f"t{t}",
                thread_id=f"t{t}",
                raw=json.dumps({"id": rid, "message": text}).encode(),
            )
            batch.append(Capture("feed", "feed", item))
    app.archiver.archive_batch(batch)
    from sqlmodel import Session, col, select

    with Session(app.engine) as session:
        ids = session.exec(select(Record.id).where(col(Record.remote_id).endswith("c1"))).all()
    text = "Saw the crash; call my cell 617-555-0142 if you need a witness."
    start_at = text.index(PHONE)
    for record_id in ids:
        assert record_id is not None
        redaction.add(
            app.engine,
            app.settings,
            record_id,
            spans=[(start_at, start_at + len(PHONE))],
            code="26c",
            reason="private phone number of a resident",
            actor="bench",
            now=app.clock.now(),
            store=app.store,
        )
    app.close()


def export(config: Path, out: Path, pdf: bool) -> float:
    from bulletin.app import App
    from bulletin.archiver.export import export_bundle, resolve
    from bulletin.config import load_settings

    app = App(load_settings(config, environ={}), environ={})
    engine = app.checked_engine()
    scope = resolve(engine, app.settings, None, "account:feed")
    began = time.perf_counter()
    export_bundle(
        engine, app.store, app.settings, scope, out=out, actor="bench", now=app.clock.now, pdf=pdf
    )
    seconds = time.perf_counter() - began
    app.close()
    return seconds


def weasyprint_alone(pages: list[Path], production_options: bool) -> tuple[float, int]:
    """Seconds and pages to render ``pages`` with WeasyPrint's defaults, or with the
    production's options."""
    from weasyprint import HTML

    from bulletin.archiver.export import pdf

    count = 0
    began = time.perf_counter()
    for page in pages:
        if production_options:
            count += pdf.render(page)[1]
        else:
            document = HTML(filename=str(page), encoding="utf-8").render()
            document.write_pdf()
            count += len(document.pages)
    return time.perf_counter() - began, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=50)
    args = parser.parse_args()

    import logging

    from _support import configure

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
    try:
        config, app = configure(
            tmp, f"sqlite:///{tmp / 'data' / 'bulletin.db'}", "http://127.0.0.1:9"
        )
        app.close()
        seed(config, args.threads)
        warm = tmp / "warm.html"
        warm.write_text("<!DOCTYPE html><html lang=en><title>w</title><p>warm 🚓</p>")
        from bulletin.archiver.export import pdf

        pdf.render(warm)  # import, fonts and caches: paid once per process, outside the timing
        records = args.threads * THREAD
        bare = export(config, tmp / "without", pdf=False)
        full = export(config, tmp / "with", pdf=True)
        listing = (tmp / "with/data/manifest/pdfs.csv").read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(listing.splitlines()))
        pages = sum(int(row["pages"]) for row in rows)
        share = full - bare
        html = [tmp / "with/data" / row["pdf"].removesuffix(".pdf") for row in rows]
        html = [p.with_name(p.name + ".html") for p in html]
        alone, alone_pages = weasyprint_alone(html, production_options=False)
        ours, ours_pages = weasyprint_alone(html, production_options=True)
        print(f"seeded     : {records} records, {len(rows)} threads, {len(rows)} redactions")
        print(f"export     : {bare:6.2f} s without PDFs, {full:6.2f} s with {len(rows)} PDFs "
              f"of {pages} pages in all")  # fmt: skip
        print(f"production : {pages / share:6.1f} PDF pages/s (the PDFs' share, {share:.2f} s)")
        print(f"weasyprint : {alone_pages / alone:6.1f} pages/s alone, defaults "
              f"({alone_pages} pages, {alone:.2f} s)")  # fmt: skip
        print(f"             {ours_pages / ours:6.1f} pages/s alone, PDF/A-2b + tags + stylesheet "
              f"({ours_pages} pages, {ours:.2f} s)")  # fmt: skip
        print(
              f"ratio      : production / WeasyPrint alone = "
              f"{(pages / share) / (alone_pages / alone):.2f} in pages/s (the defaults lay the "
              f"page out without the print stylesheet: {alone_pages} pages, not {pages})"
        )  # fmt: skip
        print(f"             same {len(rows)} HTML files: production {share / len(rows):.2f} s, "
              f"WeasyPrint alone {alone / len(rows):.2f} s (defaults), {ours / len(rows):.2f} s "
              f"(production options) per thread; time ratio {share / alone:.2f}")  # fmt: skip
        print(f"machine    : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
