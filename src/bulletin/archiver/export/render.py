"""Readable renderings: each thread as a web page, the index of threads, the chain-of-custody
report and the redaction log.

Every page is plain HTML with its stylesheet inline: no scripts and no external resources, so
it opens offline in any browser, and it is written to meet WCAG 2.1 AA: ``lang``, a skip link,
landmarks (header, nav, main, footer), one ``h1`` then ``h2`` per item and ``h3`` per record,
text alternatives for images, states and redactions in words (never by colour alone),
contrast of at least 4.5:1, reflow down to 320 CSS pixels and a print stylesheet. Visitor text
keeps its direction (``dir="auto"``, ``<bdi>``) and line breaks, and is always escaped.

Pages live one folder below the bag's ``data/`` (``threads/``, ``custody/``...), so links
between them are ``../folder/file``.

A thread page is streamed: :func:`thread_head`, then :func:`thread_item` once per record in
Bates order (the versions of one item are consecutive; :class:`Place` says where a record
stands among them, so the first opens the item's ``<article>`` and the last closes it), then
:data:`PAGE_FOOT`. Nothing here holds more than one record.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from bulletin.models import Record

_STYLE = (
    ":root{color-scheme:light}*{box-sizing:border-box}"
    "body{margin:0;background:#fff;color:#1a1a1a;line-height:1.5;font-size:1rem;"
    'font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}'
    "header,nav,main,footer{display:block;max-width:50rem;margin:0 auto;padding:0 1rem}"
    "header{padding-top:1rem}header p{margin:0}.site{font-weight:bold}"
    "footer{margin-top:2rem;padding-bottom:2rem;border-top:1px solid #767676;font-size:.95rem}"
    "a{color:#0b4f9c}a:visited{color:#5a2a82}"
    "a:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}"
    ".skip:not(:focus){position:absolute;width:1px;height:1px;overflow:hidden;"
    "clip:rect(0 0 0 0);white-space:nowrap}"
    ".skip:focus{display:inline-block;margin:.5rem 1rem;padding:.25rem .5rem;"
    "background:#fff;border:2px solid #1a1a1a}"
    "nav ul{list-style:none;margin:.5rem 0;padding:0;display:flex;flex-wrap:wrap;"
    "gap:.25rem 1.25rem}nav a[aria-current]{font-weight:bold;color:#1a1a1a}"
    "h1,h2,h3{line-height:1.25;overflow-wrap:anywhere}"
    "h1{font-size:1.6rem;margin:1rem 0 .5rem}h2{font-size:1.2rem;margin:.25rem 0 .5rem}"
    "h3{font-size:1rem;margin:0 0 .25rem}"
    "p,li,dd,figcaption{overflow-wrap:anywhere}td,th{overflow-wrap:break-word}"
    ".banner{border:3px solid #1a1a1a;padding:.5rem .75rem;margin:.5rem 0;background:#fff3c4}"
    ".threads li{margin:.5rem 0}.threads .meta{display:block}"
    ".meta,.context,dl.meta{color:#333;font-size:.95rem}"
    "article.item{border:1px solid #767676;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}"
    "article.reply{margin-inline-start:clamp(.75rem,6vw,2.5rem);"
    "border-inline-start:6px solid #4d4d4d}"
    "article.moderation{border-style:dashed}"
    "section.record{padding:.5rem 0}"
    "section.record+section.record{border-top:1px solid #767676}"
    "section.hidden,section.deleted{margin:0 -.5rem;padding:.5rem}"
    "section.hidden{background:#fdf3d8}section.deleted{background:#eee}"
    ".state{margin:.25rem 0;padding:.1rem .5rem;border-inline-start:4px solid #1a1a1a}"
    ".history{margin:.25rem 0}"
    "dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:0 .75rem;"
    "margin:.5rem 0 .25rem}dl.meta div{display:contents}dl.meta dt{font-weight:bold}"
    "dl.meta dd{margin:0;min-width:0}"
    ".text{white-space:pre-wrap;overflow-wrap:anywhere;margin:.5rem 0;font-size:1.1rem;"
    "padding-inline-start:.75rem;border-inline-start:3px solid #0b4f9c}"
    ".empty{font-style:italic}"
    ".withheld{background:#000;color:#fff;padding:0 .3em;border:2px solid #000;"
    "white-space:normal;-webkit-box-decoration-break:clone;box-decoration-break:clone}"
    "mark.redacted{background:#ffe98a;color:#000;outline:2px dashed #000}"
    ".exemption{font-weight:bold}"
    "figure{margin:.75rem 0}img{display:block;max-width:100%;height:auto;max-height:28rem;"
    "border:1px solid #767676}"
    "table{border-collapse:collapse;margin:.5rem 0}caption{text-align:left;font-weight:bold;"
    "padding:.25rem 0}th,td{border:1px solid #767676;padding:.25rem .5rem;text-align:left;"
    "vertical-align:top}td:first-child{white-space:nowrap}.scroll{max-width:100%;overflow-x:auto}"
    "code{overflow-wrap:anywhere;font-size:.95em}"
    "@media (max-width:30rem){dl.meta{display:block}dl.meta div{display:block}"
    "dl.meta dt,dl.meta dd{display:inline}dl.meta dt{margin-inline-end:.4em}"
    "h1{font-size:1.35rem}article.item{padding:.5rem .6rem}}"
    "@page{margin:1.5cm}@media print{.skip,nav{display:none}body{font-size:11pt}"
    "header,main,footer{max-width:none;padding:0}a,a:visited{color:#000}"
    "section.record{break-inside:avoid}h2,h3{break-after:avoid}"
    "section.hidden,section.deleted{background:none}"
    ".withheld,mark{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "img{max-height:12cm}}"
)

PAGE_FOOT = (
    "</main>\n<footer>\n<p>Every record carries its Bates number. "
    '<a href="../README.txt">README.txt</a> at the top of this production says what is here '
    "and how to check that nothing was altered.</p>\n</footer>\n</body>\n</html>\n"
)
INDEX_FOOT = "</ol>\n" + PAGE_FOOT

_PLATFORMS = {"x": "X", "facebook": "Facebook", "feed": "the agency's Atom feed"}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_IMAGES = {"jpg", "jpeg", "png", "gif", "webp"}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


# -- times ---------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _parse(when: datetime | str | None) -> datetime | None:
    if when is None or when == "":
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def human_time(when: datetime, zone: str, *, seconds: bool = True, clock: bool = True) -> str:
    """``Friday, November 20, 2026, 9:00:05 AM EST``: ``when`` in the agency's time zone,
    in English whatever the machine's locale."""
    local = when.astimezone(_zone(zone))
    day = f"{_DAYS[local.weekday()]}, {_MONTHS[local.month - 1]} {local.day}, {local.year}"
    if not clock:
        return day
    hour = local.hour % 12 or 12
    tail = f":{local.second:02d}" if seconds else ""
    noon = "AM" if local.hour < 12 else "PM"
    return f"{day}, {hour}:{local.minute:02d}{tail} {noon} {local.tzname()}"


def machine_time(when: datetime) -> str:
    """A valid HTML global date-time in UTC (at most milliseconds)."""
    utc = when.astimezone(UTC)
    fraction = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def time_html(when: datetime | str | None, zone: str) -> str:
    """``<time datetime="UTC">local, readable</time>``, or ``unknown``."""
    parsed = _parse(when)
    if parsed is None:
        return "unknown"
    return f'<time datetime="{machine_time(parsed)}">{_e(human_time(parsed, zone))}</time>'


# -- pages ---------------------------------------------------------------------------------------


def page_head(
    title: str,
    *,
    heading: str | None = None,
    agency: str = "",
    production: str = "",
    here: str = "",
    counsel: bool = False,
    threads: bool = True,
) -> str:
    """Everything up to and including the page's ``h1``; :data:`PAGE_FOOT` closes it.

    ``heading`` is the ``h1`` as HTML (escaped ``title`` when None); ``here`` (``index``,
    ``custody``, ``redactions``) marks the current page in the navigation; without
    ``threads`` (a production made without renderings) the navigation has no thread index.
    """
    site = f"{agency}: production {production}" if agency else f"Production {production}"
    banner = (
        '<p class="banner"><strong>Counsel-only copy.</strong> Text withheld from the public '
        "copy is shown highlighted, each passage with the exemption that withholds it. Do not "
        "release this copy.</p>\n"
        if counsel
        else ""
    )

    def link(target: str, label: str, name: str) -> str:
        current = ' aria-current="page"' if here == name else ""
        return f'<li><a href="../{target}"{current}>{label}</a></li>'

    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        '<a class="skip" href="#main">Skip to main content</a>\n'
        f'<header>\n<p class="site">{_e(site)}</p>\n{banner}</header>\n'
        '<nav aria-label="Production">\n<ul>'
        + (link("threads/index.html", "All threads", "index") if threads else "")
        + link("custody/chain-of-custody.html", "Chain of custody", "custody")
        + link("redactions/redaction-log.html", "Redaction log", "redactions")
        + link("README.txt", "About this production (README)", "readme")
        + "</ul>\n</nav>\n"
        f'<main id="main" tabindex="-1">\n<h1>{heading if heading is not None else _e(title)}'
        "</h1>\n"
    )


def _platform(record: Record) -> str:
    return _PLATFORMS.get(record.platform, record.platform)


def _thread_title(record: Record, zone: str) -> tuple[str, str]:
    """The thread's name as plain text and as HTML (from its first record, never its text:
    the text may be withheld)."""
    when = _parse(record.posted_at) or _parse(record.captured_at)
    day = human_time(when, zone, seconds=False) if when else ""
    author = record.author or "an unknown author"
    if record.kind == "post":
        marked = f'<time datetime="{machine_time(when)}">{_e(day)}</time>' if when else ""
        return (
            f"Post by {author}{', ' if day else ''}{day}",
            f"Post by <bdi>{_e(author)}</bdi>{', ' if day else ''}{marked}",
        )
    thread = record.thread_id or record.remote_id
    plain = f"Comments on post {thread} (the post itself is not in this production)"
    return plain, _e(plain)


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
    plain, heading = _thread_title(record, zone)
    return page_head(
        f"{plain} ({first} to {last})",
        heading=heading,
        agency=agency,
        production=production,
        counsel=counsel,
    ) + (
        f"<p>Records {_e(first)} to {_e(last)}: account <bdi>{_e(record.account)}</bdi> on "
        f"{_e(_platform(record))}, thread {_e(record.thread_id or record.remote_id)}.</p>\n"
        "<p>Every archived version of every item is shown, including hidden, edited and "
        "deleted ones: the post first, then the comments and replies in the order they were "
        "posted, the versions of each item together, oldest first. Times are given in the "
        f"agency's time zone ({_e(zone)}).</p>\n"
    )


@dataclass(frozen=True)
class Place:
    """Where a record stands among the versions of its item in the production.

    ``index`` counts from 1 up to ``count``; ``previous`` and ``next`` are the Bates numbers
    of the neighbouring versions (None at either end).
    """

    index: int = 1
    count: int = 1
    previous: str | None = None
    next: str | None = None


def _anchor(kind: str, remote_id: str) -> str:
    """An element id for an item; ``.`` never occurs in a Bates number, so none collide."""
    safe = _UNSAFE_ID.sub(lambda m: "~" + m.group().encode("utf-8").hex(), remote_id)
    return f"item.{kind}.{safe}"


def _item_open(record: Record, place: Place, bates: str) -> str:
    thread = record.thread_id or record.remote_id
    parent = record.parent_id
    author = f"<bdi>{_e(record.author or 'an unknown author')}</bdi>"
    classes = ["item", record.kind]
    context = ""
    if record.kind == "post":
        heading = f"Post by {author}"
    elif record.kind == "moderation":
        heading = f"Moderation action by {author}"
        if parent:
            context = (
                f'About <a href="#{_e(_anchor("comment", parent))}">comment '
                f"<bdi>{_e(parent)}</bdi></a>. The text below is the reason recorded."
            )
    elif parent and parent != thread:
        classes.append("reply")
        heading = f"Reply by {author}"
        context = (
            f'In reply to <a href="#{_e(_anchor("comment", parent))}">comment '
            f"<bdi>{_e(parent)}</bdi></a>."
        )
    else:
        heading = f"Comment by {author}"
        context = f'On <a href="#{_e(_anchor("post", thread))}">the post</a>.'
    versions = (
        f" {place.count} archived versions follow, oldest first, from {_e(bates)}."
        if place.count > 1
        else ""
    )
    lines = f'<p class="context">{context}{versions}</p>\n' if context or versions else ""
    return (
        f'<article class="{" ".join(classes)}" id="{_e(_anchor(record.kind, record.remote_id))}">'
        f"\n<h2>{heading}</h2>\n{lines}"
    )


_STATE_WORDS = {
    "hidden": (
        "Hidden",
        "this version was hidden from public view on the platform; it stays in the archive.",
    ),
    "deleted": (
        "Deleted",
        "this version records that the item was deleted from the platform; the text shown "
        "is the last text archived.",
    ),
}
_CHANGE_WORDS = {
    "new": "first archived",
    "edited": "edited",
    "hidden": "hidden",
    "unhidden": "shown again",
    "deleted": "deleted",
    "restored": "restored",
}


def _history(record: Record, place: Place) -> str:
    if place.count <= 1 and record.change in ("new", ""):
        return ""
    change = _CHANGE_WORDS.get(record.change, record.change)
    parts = [f"Version {place.index} of {place.count}, {_e(change)}"]
    if place.previous:
        parts.append(f'earlier version: <a href="#{_e(place.previous)}">{_e(place.previous)}</a>')
    if place.next:
        parts.append(f'later version: <a href="#{_e(place.next)}">{_e(place.next)}</a>')
    return f'<p class="history">{"; ".join(parts)}.</p>\n'


def text_html(
    text: str, pieces: Sequence[tuple[str, str | None]] | None = None, *, counsel: bool = False
) -> str:
    """A record's text as HTML (escaped); with ``pieces``, withheld pieces become boxes.

    A piece ``(text, code)`` with a code is withheld: in a public rendering only a box naming
    the code is written, as the text files say it (``WITHHELD: code``; its text is never
    read, whatever it holds); with ``counsel`` the text is shown highlighted after the code.
    """
    if pieces is None:
        return _e(text)
    out = []
    for piece, code in pieces:
        if code is None:
            out.append(_e(piece))
        elif counsel:
            out.append(
                f'<span class="exemption">[withheld from the public copy: {_e(code)}]</span> '
                f'<mark class="redacted">{_e(piece)}</mark>'
            )
        else:
            out.append(
                '<span class="withheld"><span aria-hidden="true">█</span> WITHHELD: '
                f'{_e(code)} <span aria-hidden="true">█</span></span>'
            )
    return "".join(out)


def _media_html(media: Sequence[Mapping[str, Any]], bates: str) -> str:
    out = []
    for number, item in enumerate(media, start=1):
        path = str(item.get("path") or "")
        if not path:
            continue
        alt = item.get("alt_text")
        described = isinstance(alt, str) and alt.strip() != ""
        extension = path.rsplit(".", 1)[-1].lower()
        file_name = path.rsplit("/", 1)[-1]
        link = f'<a href="../{_e(path)}">open the file {_e(file_name)}</a>'
        if described:
            words = f'Description by the author: <span dir="auto">{_e(alt)}</span>'
        else:
            words = "No description provided by the author."
        if extension in _IMAGES:
            alt_attr = (
                _e(alt)
                if described
                else f"Image {number} of {_e(bates)}: no description provided by the author"
            )
            out.append(
                f'<figure>\n<img src="../{_e(path)}" alt="{alt_attr}">\n'
                f"<figcaption>Image {number}. {words} ({link})</figcaption>\n</figure>\n"
            )
        else:
            out.append(f"<p>Attachment {number} ({link}). {words}</p>\n")
    return "".join(out)


def thread_item(
    record: Record,
    bates: str,
    posted: str,
    captured: str,
    native: str,
    *,
    zone: str = "UTC",
    place: Place | None = None,
    media: Sequence[Mapping[str, Any]] = (),
    pieces: Sequence[tuple[str, str | None]] | None = None,
    counsel: bool = False,
) -> str:
    """One record of a thread page.

    ``posted`` and ``captured`` are UTC ISO 8601 ("" when unknown); ``native`` is the
    snapshot's path under ``data/``; ``media`` the attached files (``path`` under ``data/``,
    ``alt_text`` or None). ``pieces`` is the text split for redaction (see
    :func:`text_html`); None renders ``record.text`` whole. The first version of an item
    (``place.index == 1``) opens its ``<article>``, the last closes it.
    """
    place = place or Place()
    state = record.state if record.state in _STATE_WORDS else ""
    out = [_item_open(record, place, bates)] if place.index == 1 else []
    out.append(
        f'<section class="record {_e(state)}" id="{_e(bates)}">\n<h3>Record {_e(bates)}</h3>\n'
        + _history(record, place)
    )
    if state:
        word, meaning = _STATE_WORDS[state]
        out.append(f'<p class="state"><strong>{word}:</strong> {meaning}</p>\n')
    if pieces is not None and any(code is not None for _, code in pieces):
        note = (
            "Passages withheld from the public copy are highlighted below with their exemption."
            if counsel
            else "Part of this text is withheld; each box names the exemption that withholds "
            "it, and the redaction log lists who withheld it, when and why."
        )
        out.append(f'<p class="withheld-note">{note}</p>\n')
    if record.text or pieces:
        text = text_html(record.text, pieces, counsel=counsel)
        out.append(f'<div class="text" dir="auto">{text}</div>\n')
    else:
        out.append('<p class="empty">This version has no text.</p>\n')
    out.append(_media_html(media, bates))
    facts = [
        ("Author", f"<bdi>{_e(record.author or 'unknown')}</bdi>"),
        ("Posted", time_html(posted, zone)),
        ("Captured", time_html(captured, zone)),
        ("State", _e(record.state)),
        ("Item", f"{_e(record.kind)} <bdi>{_e(record.remote_id)}</bdi>"),
        (
            "Archived copy",
            f'<a href="../{_e(native)}">snapshot of {_e(bates)} (JSON)</a>'
            if native
            else "withheld from this public copy (it holds the redacted text)",
        ),
    ]
    if record.url and record.url.startswith(("https://", "http://")):
        facts.append(("On the platform", f'<a href="{_e(record.url)}">{_e(record.url)}</a>'))
    out.append(
        '<dl class="meta">\n'
        + "".join(f"<div><dt>{term}</dt><dd>{value}</dd></div>\n" for term, value in facts)
        + "</dl>\n"
    )
    out.append("</section>\n")
    if place.index >= place.count:
        out.append("</article>\n")
    return "".join(out)


def index_head(
    agency: str,
    identifier: str,
    *,
    zone: str = "UTC",
    records: int | None = None,
    counsel: bool = False,
) -> str:
    """The top of ``threads/index.html``, up to the opening of its list of threads."""
    if records == 0:
        contents = (
            "<p><strong>This production is empty: no archived record matched its scope.</strong>"
            "</p>\n"
        )
    else:
        count = f"{records} records" if records is not None else "The records"
        contents = (
            f"<p>{count} of social-media posts and comments, one page per thread. Each thread "
            "page shows every archived version of every item, including hidden, edited and "
            "deleted ones, with its Bates number. Times are given in the agency's time zone "
            f"({_e(zone)}).</p>\n"
        )
    return (
        page_head(
            f"{agency}: production {identifier}",
            agency=agency,
            production=identifier,
            here="index",
            counsel=counsel,
        )
        + contents
        + '<h2 id="threads">Threads</h2>\n<ol class="threads" aria-labelledby="threads">\n'
    )


def index_item(
    path: str, first: str, last: str, record: Record, count: int, *, zone: str = "UTC"
) -> str:
    """One thread in the index; ``record`` is the thread's first."""
    _, heading = _thread_title(record, zone)
    records = "1 record" if count == 1 else f"{count} records"
    return (
        f'<li><a href="{_e(path.removeprefix("threads/"))}">{heading}</a>\n'
        f'<span class="meta">{_e(first)} to {_e(last)} ({records}); account '
        f"<bdi>{_e(record.account)}</bdi> on {_e(_platform(record))}, thread "
        f"<bdi>{_e(record.thread_id or record.remote_id)}</bdi></span></li>\n"
    )


# -- the redaction log ---------------------------------------------------------------------------

REDACTION_COLUMNS = (
    ("bates", "Bates"),
    ("record_id", "Record"),
    ("characters", "Characters"),
    ("exemption_label", "Exemption"),
    ("reason", "Reason"),
    ("redacted_by", "Redacted by"),
    ("redacted_at", "Redacted at"),
)


def redaction_log_table(rows: Iterable[Mapping[str, Any]], *, zone: str = "UTC") -> str:
    """The redaction log as a table with a caption, one row per withheld range, never the
    withheld text; each row a mapping with the redaction log's columns (``bates``,
    ``record_id``, ``version``, ``characters``, ``exemption_label`` or ``exemption``,
    ``reason``, ``redacted_by``, ``redacted_at`` as a datetime or ISO 8601 text)."""
    out = [
        '<div class="scroll" role="region" aria-labelledby="redaction-log" tabindex="0">\n'
        '<table>\n<caption id="redaction-log">Withheld text by record: each range withheld '
        "from the public copy</caption>\n<thead><tr>"
        + "".join(f'<th scope="col">{label}</th>' for _, label in REDACTION_COLUMNS)
        + "</tr></thead>\n<tbody>\n"
    ]
    for row in rows:
        cells = []
        for key, _ in REDACTION_COLUMNS:
            value = row.get(key)
            if key == "redacted_at":
                cells.append(f"<td>{time_html(value, zone)}</td>")
            elif key == "record_id":
                version = row.get("version")
                suffix = f", version {_e(version)}" if version not in (None, "") else ""
                cells.append(f"<td>{_e(value)}{suffix}</td>")
            elif key == "exemption_label":
                cells.append(f'<td dir="auto">{_e(value or row.get("exemption"))}</td>')
            else:
                cells.append(f'<td dir="auto">{_e(value)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>\n")
    out.append("</tbody>\n</table>\n</div>\n")
    return "".join(out)


def redaction_log_html(
    rows: Sequence[Mapping[str, Any]],
    production: str,
    *,
    agency: str = "",
    identifier: str = "",
    zone: str = "UTC",
    threads: bool = True,
) -> str:
    """The redaction log of a ``public`` or ``counsel`` production as a whole page (see
    :func:`redaction_log_table` for ``rows``)."""
    counsel = production == "counsel"
    if counsel:
        about = (
            "<p>This is the counsel copy: it holds every record in full; the text withheld from "
            "the public copy is marked in the thread pages.</p>\n"
        )
    else:
        about = (
            "<p>Text withheld from this production is shown in its place as WITHHELD: and the "
            "exemption. The archived originals are unchanged; the snapshots of redacted records "
            "are not part of this copy.</p>\n"
        )
    if rows:
        body = (
            "<p>Each row is one range of text withheld from the public copy: the record's Bates "
            "number, the characters withheld, the exemption, the reason given, who withheld it "
            f"and when (in the agency's time zone, {_e(zone)}).</p>\n"
            + redaction_log_table(rows, zone=zone)
        )
    else:
        body = "<p>No text is withheld in this production.</p>\n"
    title = f"Redaction log: {agency} production {identifier}" if agency else "Redaction log"
    return (
        page_head(
            title,
            agency=agency,
            production=identifier,
            here="redactions",
            counsel=counsel,
            threads=threads,
        )
        + about
        + body
        + PAGE_FOOT
    )


# -- the chain of custody ------------------------------------------------------------------------


def custody_markdown(facts: Mapping[str, Any]) -> str:
    """The chain-of-custody report as Markdown (reads as plain text too)."""
    lines = [
        f"# Chain of custody: {facts['agency']} production {facts['identifier']}",
        "",
    ]
    if facts["records"] == 0:
        lines += [
            "**This production is empty: no archived record matched its scope.**",
            "",
        ]
    lines += [
        f"- Produced by: {facts['actor']}",
        f"- Export started: {facts['started_at']}",
        f"- Export completed: {facts['completed_at']}",
    ]
    if facts["resumed"]:
        lines.append(f"- Resumed after interruption at: {', '.join(facts['resumed'])}")
    lines += [
        f"- Produced with: Bulletin {facts['version']} on {facts['host']}",
        f"- Archive store: {facts['store']}",
        "",
        "## Scope",
        "",
    ]
    if facts["request_id"] is not None:
        lines.append(f"- Records request {facts['request_id']} ({facts['request_label']})")
    lines += [
        f"- Query, exactly: `{facts['query']}`",
        f"- Query as stored (JSON): `{facts['query_json']}`",
        "- Every version of every matching item is produced, including hidden, edited and "
        "deleted ones.",
        f"- Matching records destroyed earlier under the retention schedule (not produced): "
        f"{facts['disposed']}",
        "",
        "## Contents",
        "",
        f"- Records produced: {facts['records']}",
        f"- Production: {facts['production']}"
        + (
            f"; {facts['redactions']} ranges of text in {facts['redacted_records']} records "
            "withheld, each with its exemption (see `redactions/`)"
            + (
                "; the natives of those records are left out of this copy"
                if facts["production"] == "public"
                else "; shown here in full and marked"
            )
            if facts["redactions"]
            else "; no text withheld"
        ),
        f"- Bates numbers: {facts['first_bates'] or 'none'} to {facts['last_bates'] or 'none'}",
        "",
        "| record type | state | records |",
        "|---|---|---|",
    ]
    for (kind, state), count in sorted(facts["by_kind_state"].items()):
        lines.append(f"| {kind} | {state} | {count} |")
    if not facts["by_kind_state"]:
        lines.append("| (none) | | 0 |")
    lines += [
        "",
        "## Integrity",
        "",
        f"- Ledger head when the export began: entry {facts['head_seq']}, "
        f"hash `{facts['head_hash']}`",
        "- Every record's snapshot was read from the write-once store and checked against its "
        "sha256 before it was written here; `manifest/records.jsonl` gives each record's "
        "sha256 and its position in the ledger.",
        "- Every file in this bag is listed with its sha256 in `manifest-sha256.txt`; "
        "`tagmanifest-sha256.txt` covers the tag files.",
        "",
        "## How to check this bundle",
        "",
        "- With Bulletin: `bulletin export verify PATH` (add the agency's configuration to also "
        "compare every record with the archive and its ledger).",
        "- With any BagIt tool, e.g. `bagit.py --validate PATH` (Library of Congress "
        "bagit-python), or `sha256sum -c manifest-sha256.txt` inside the bag.",
        "",
    ]
    return "\n".join(lines)


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
    out = [
        page_head(
            title,
            agency=agency,
            production=production,
            here="custody",
            counsel=counsel,
            threads=threads,
        )
    ]
    in_list = in_table = False
    for line in markdown.splitlines()[1:]:
        if in_list and not line.startswith("- "):
            out.append("</ul>\n")
            in_list = False
        if in_table and not line.startswith("|"):
            out.append("</tbody>\n</table>\n</div>\n")
            in_table = False
        if line.startswith("## "):
            out.append(f"<h2>{_e(line[3:])}</h2>\n")
        elif line.startswith("- "):
            if not in_list:
                out.append("<ul>\n")
                in_list = True
            out.append(f"<li>{_inline(line[2:])}</li>\n")
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            if not in_table:
                out.append(
                    '<div class="scroll">\n<table>\n<caption>Records by type and state'
                    "</caption>\n<thead><tr>"
                    + "".join(f'<th scope="col">{_e(c)}</th>' for c in cells)
                    + "</tr></thead>\n<tbody>\n"
                )
                in_table = True
            else:
                out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>\n")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>\n")
    if in_list:
        out.append("</ul>\n")
    if in_table:
        out.append("</tbody>\n</table>\n</div>\n")
    out.append(PAGE_FOOT)
    return "".join(out)


def _inline(text: str) -> str:
    parts = _e(text).split("`")
    rendered = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    bold = rendered.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(bold))


PRODUCTION_NOTE = {
    "public": (
        "This is a PUBLIC production: text withheld under an exemption reads\n"
        "[WITHHELD: exemption] in the text files, load files and thread pages\n"
        "({redacted} records); the natives of those records are not part of it."
    ),
    "counsel": (
        "This is a COUNSEL production: every record in full, natives included; the\n"
        "text withheld from the public copy is marked in the thread pages and listed in\n"
        "redactions/ ({redacted} records). Do not release it to the public."
    ),
}

THREADS_LINE = {
    True: (
        "  threads/index.html        start here: every thread, rendered for reading in a "
        "browser\n                            (no scripts, nothing fetched from the network; "
        "prints too)"
    ),
    False: "  threads/                  (left out: this production was made without renderings)",
}

README = """This is a production of archived social-media records by {agency}.

Production: {identifier}
Records: {records}{empty}
Bates numbers: {first} to {last}

What is here (paths under data/):
{threads}
  custody/                  the chain-of-custody report (who, when, what, integrity)
  natives/                  each record's archived snapshot (.json) and the platform's own
                            response (.raw.*), byte for byte as archived, and its images
  text/                     each record's text, UTF-8
  loadfile/production.dat   Concordance load file for review platforms (UTF-8 with BOM;
                            text qualifier U+00FE, field separator U+0014, newline U+00AE)
  loadfile/production.csv   the same rows as CSV (UTF-8 with BOM)
  manifest/                 each record's sha256 and ledger position; production.json
  redactions/               the redaction log (CSV and a page): every withheld range of
                            text, with its exemption, reason, who and when

{production}

Every file name carries the record's Bates number. To check that nothing was altered, run
`bulletin export verify <this bundle>` or any BagIt validator; see custody/.

Spreadsheets: visitor comments are reproduced exactly, so a comment that starts with = + - or @
may be read as a formula by a spreadsheet program; import the CSV as text.
"""


def readme(facts: Mapping[str, Any], *, threads: bool = True) -> str:
    """``README.txt`` of a production, from its facts (see the chain of custody)."""
    empty = "  (EMPTY: no archived record matched the scope)" if not facts["records"] else ""
    return README.format(
        agency=facts["agency"],
        identifier=facts["identifier"],
        records=facts["records"],
        empty=empty,
        first=facts["first_bates"] or "none",
        last=facts["last_bates"] or "none",
        threads=THREADS_LINE[threads],
        production=PRODUCTION_NOTE[facts["production"]].format(
            redacted=facts["redacted_records"]
        ),
    )
