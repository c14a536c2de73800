"""Readable renderings: each thread as a web page, the index of threads, the chain-of-custody
report and the redaction log; and the production's README.

The pages are Jinja2 templates (``templates/*.html.j2``, autoescaped) fed the plain data
:mod:`.pages` builds. Every page is plain HTML with its stylesheet (``templates/style.css``)
inline: no scripts and no external resources, so it opens offline in any browser, and it is
written to meet WCAG 2.1 AA: ``lang``, a skip link, landmarks (header, nav, main, footer), one
``h1`` then ``h2`` per item and ``h3`` per record, text alternatives for images, states and
redactions in words (never by colour alone), contrast of at least 4.5:1, reflow down to 320
CSS pixels and a print stylesheet. Visitor text keeps its direction (``dir="auto"``,
``<bdi>``) and line breaks, and is always escaped.

Pages live one folder below the bag's ``data/`` (``threads/``, ``custody/``...), so links
between them are ``../folder/file``.

A thread page is streamed: :func:`thread_head`, then :func:`thread_item` once per record in
Bates order (its data from :func:`.pages.item`: the versions of one item are consecutive,
:class:`~.pages.Place` says where a record stands among them, so the first opens the item's
``<article>`` and the last closes it), then :data:`PAGE_FOOT`. Nothing here holds more than
one record.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template
from markupsafe import Markup

from bulletin.archiver.export import pages, times
from bulletin.archiver.siblings import language_name
from bulletin.models import Record

__all__ = [
    "INDEX_FOOT",
    "PAGE_FOOT",
    "custody_html",
    "custody_markdown",
    "index_head",
    "index_item",
    "readme",
    "redaction_log_html",
    "thread_head",
    "thread_item",
    "time_html",
]


def _finalize(value: Any) -> Any:
    """Every value printed into a page is escaped as :func:`html.escape` does (quotes too);
    None prints nothing."""
    if value is None:
        return ""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value)))  # noqa: S704 - escaped here


def _stylesheet() -> Markup:
    """``templates/style.css`` on one line (a rule per line in the file)."""
    text = files("bulletin.archiver.export").joinpath("templates/style.css").read_text("utf-8")
    return Markup("".join(line.strip() for line in text.splitlines()))  # noqa: S704 - ours


_LOADER = PackageLoader("bulletin.archiver.export", "templates")
_SPACING: dict[str, Any] = {
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}
ENV = Environment(
    loader=_LOADER,
    autoescape=True,
    finalize=_finalize,
    undefined=StrictUndefined,
    auto_reload=False,
    **_SPACING,
)
"""The pages' templates (``*.html.j2``), autoescaped."""
ENV.globals["stylesheet"] = _stylesheet()
_TEXT = Environment(
    loader=_LOADER,
    autoescape=False,  # noqa: S701 - Markdown and plain text, never HTML
    undefined=StrictUndefined,
    auto_reload=False,
    **_SPACING,
)
"""The text documents' templates (``*.md.j2``, ``*.txt.j2``), not escaped."""


@cache
def _template(name: str) -> Template:
    return (ENV if name.endswith(".html.j2") else _TEXT).get_template(name)


def _render(name: str, data: object = None, /, **values: Any) -> str:
    fields = dict(vars(data)) if data is not None else {}
    return _template(name).render(**fields, **values)


PAGE_FOOT = _render("_foot.html.j2")
INDEX_FOOT = _render("index_foot.html.j2")


def time_html(when: datetime | str | None, zone: str) -> str:
    """``<time datetime="UTC">local, readable</time>``, or ``unknown``."""
    return str(_template("_macros.html.j2").module.time(times.time(when, zone)))  # type: ignore[attr-defined]


# -- thread pages --------------------------------------------------------------------------------


def thread_head(
    record: Record,
    first: str,
    last: str,
    *,
    zone: str = "UTC",
    agency: str = "",
    production: str = "",
    counsel: bool = False,
) -> str:
    """The top of a thread's page; ``record`` is the first of the thread (normally its post)."""
    title = pages.thread_title(record, zone)
    head = pages.head(
        f"{title.plain} ({first} to {last})",
        heading=title,
        agency=agency,
        production=production,
        counsel=counsel,
    )
    thread = pages.Thread(
        head,
        first,
        last,
        record.account,
        pages.platform(record),
        record.thread_id or record.remote_id,
        zone,
    )
    return _render("thread_head.html.j2", thread)


def thread_item(item: pages.Item) -> str:
    """One record of a thread page (see :func:`.pages.item`). The first version of an item
    opens its ``<article>``, the last closes it."""
    return _render("thread_item.html.j2", item)


# -- the index of threads ------------------------------------------------------------------------


def index_head(
    agency: str,
    identifier: str,
    *,
    zone: str = "UTC",
    records: int | None = None,
    counsel: bool = False,
) -> str:
    """The top of ``threads/index.html``, up to the opening of its list of threads;
    :data:`INDEX_FOOT` closes it."""
    head = pages.head(
        f"{agency}: production {identifier}",
        agency=agency,
        production=identifier,
        here="index",
        counsel=counsel,
    )
    return _render("index_head.html.j2", pages.Index(head, records, zone))


def index_item(
    path: str, first: str, last: str, record: Record, count: int, *, zone: str = "UTC"
) -> str:
    """One thread in the index; ``record`` is the thread's first."""
    entry = pages.Entry(
        path.removeprefix("threads/"),
        pages.thread_title(record, zone),
        first,
        last,
        count,
        record.account,
        pages.platform(record),
        record.thread_id or record.remote_id,
        record.lang if record.kind == "post" else None,
        language_name(record.lang) if record.kind == "post" and record.lang else "",
    )
    return _render("index_item.html.j2", entry)


# -- the redaction log ---------------------------------------------------------------------------


def redaction_log_html(
    rows: Sequence[Mapping[str, Any]],
    production: str,
    *,
    agency: str = "",
    identifier: str = "",
    zone: str = "UTC",
    threads: bool = True,
) -> str:
    """The redaction log of a ``public`` or ``counsel`` production as a whole page: a table
    with a caption, one row per withheld range, never the withheld text (see
    :func:`.pages.log_rows` for ``rows``)."""
    counsel = production == "counsel"
    title = f"Redaction log: {agency} production {identifier}" if agency else "Redaction log"
    head = pages.head(
        title,
        agency=agency,
        production=identifier,
        here="redactions",
        counsel=counsel,
        threads=threads,
    )
    return _render(
        "redaction_log.html.j2",
        head=head,
        counsel=counsel,
        rows=pages.log_rows(rows, zone),
        columns=[label for _, label in pages.REDACTION_COLUMNS],
        zone=zone,
    )


# -- the chain of custody and the README ---------------------------------------------------------


def custody_markdown(facts: Mapping[str, Any]) -> str:
    """The chain-of-custody report as Markdown (reads as plain text too)."""
    kinds = [(kind, state, n) for (kind, state), n in sorted(facts["by_kind_state"].items())]
    return _render("chain-of-custody.md.j2", **{**facts, "by_kind_state": kinds})


def custody_html(
    markdown: str,
    title: str,
    *,
    agency: str = "",
    production: str = "",
    counsel: bool = False,
    threads: bool = True,
) -> str:
    """A faithful HTML rendering of :func:`custody_markdown`'s output (its small subset)."""
    head = pages.head(
        title,
        agency=agency,
        production=production,
        here="custody",
        counsel=counsel,
        threads=threads,
    )
    return _render("custody.html.j2", head=head, blocks=pages.blocks(markdown))


def readme(facts: Mapping[str, Any], *, threads: bool = True) -> str:
    """``README.txt`` of a production, from its facts (see :func:`custody_markdown`)."""
    return _render("README.txt.j2", **facts, threads=threads)
