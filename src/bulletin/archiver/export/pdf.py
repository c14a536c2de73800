"""Each thread page of a production also as a PDF/A-2b document, for courts and clerks.

The PDF is rendered by WeasyPrint from the thread page's HTML as written in the bag, so it
shows exactly what the page shows: withheld text, never in the public page, is never in its
PDF; the counsel copy's highlighted text is in its PDF. A print stylesheet
(``templates/pdf.css``) adds what paper needs: every page stamped with the Bates numbers of
the records on it (``first to last``, CSS margin boxes fed by each record's ``id``), the page
number, the production and, in the counsel copy, a do-not-release line.

The document is PDF/A-2b (every font embedded, an sRGB output intent, XMP identification)
and tagged (a structure tree: headings, lists, figures with their alt text, the page's
``lang``), as WeasyPrint makes it. Links to other files of the bag (``../natives/...``) are
left out: a PDF may not launch files, and WeasyPrint would write the build directory's
absolute path into them; links within the page and to the web stay. Only files are read
(the page's images, beside it in the bag), never the network.

WeasyPrint is imported on first use: it is heavy, and a production without PDFs never
needs it.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from bulletin.archiver.export import loadfile
from bulletin.archiver.export.job import PDFS, Job

PDF_VARIANT = "pdf/a-2b"
# the columns of the listing of PDFs: path under data/, sha256, bytes, pages, Bates range
LISTING = ("pdf", "sha256", "bytes", "pages", "first_bates", "last_bates")


@cache
def _stylesheet() -> Any:
    from weasyprint import CSS  # heavy, needed only here

    text = files("bulletin.archiver.export").joinpath("templates/pdf.css").read_text("utf-8")
    return CSS(string=text)


def pdf_path(html_rel: str) -> str:
    """The PDF beside a thread page: ``threads/X.html`` gives ``threads/X.pdf``."""
    return html_rel.removesuffix(".html") + ".pdf"


def render(page: Path) -> tuple[bytes, int]:
    """The PDF/A-2b rendering of the HTML page at ``page`` (its images read from beside it),
    and its number of pages.

    :raises OSError: the page cannot be read.
    """
    from weasyprint import HTML, URLFetcher  # heavy, needed only here

    # unsupported screen-only CSS and images left out of a public copy are expected here
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    files_only = URLFetcher(allowed_protocols=("file",))  # never the network
    source = HTML(filename=str(page), encoding="utf-8", url_fetcher=files_only)
    document = source.render(stylesheets=[_stylesheet()])
    for rendered in document.pages:
        rendered.links[:] = [link for link in rendered.links if _kept(link)]
    data: bytes = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_tags=True)
    return data, len(document.pages)


def _kept(link: tuple[Any, ...]) -> bool:
    kind, target = link[0], link[1]
    return kind == "internal" or str(target).startswith(("https://", "http://"))


def write_listing_head(job: Job) -> None:
    """The header line of the listing of PDFs (:data:`~.job.PDFS`)."""
    job.writer.append(PDFS, (loadfile.BOM + loadfile.csv_line(list(LISTING))).encode())


def write_thread(job: Job, html_rel: str, first: str, last: str) -> None:
    """Render the finished thread page ``html_rel`` (under ``data/``, records ``first`` to
    ``last``) to its PDF, written and listed in the bag manifest like every payload file,
    and in the listing of PDFs."""
    writer = job.writer
    rel = pdf_path(html_rel)
    data, count = render(writer.data / html_rel)
    digest = writer.write(rel, data)
    row = [rel, digest, str(len(data)), str(count), first, last]
    writer.append(PDFS, loadfile.csv_line(row).encode())
