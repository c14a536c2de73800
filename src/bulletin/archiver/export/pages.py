"""The plain data the production's pages are rendered from (see :mod:`.render` and the
templates in ``templates/``): frozen dataclasses of strings, numbers and booleans, never a
model object, built from a record and its place in the production.

Nothing here writes HTML: text stays text (the templates escape it), and a time is a
:class:`~.times.Time`, both a machine value (UTC) and words in the agency's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulletin.archiver.export.times import Time, human_time, parse, time
from bulletin.models import Record

_PLATFORMS = {"x": "X", "facebook": "Facebook", "feed": "the agency's Atom feed"}
_IMAGES = {"jpg", "jpeg", "png", "gif", "webp"}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
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
REDACTION_COLUMNS = (
    ("bates", "Bates"),
    ("record_id", "Record"),
    ("characters", "Characters"),
    ("exemption_label", "Exemption"),
    ("reason", "Reason"),
    ("redacted_by", "Redacted by"),
    ("redacted_at", "Redacted at"),
)

# -- the frame of every page ---------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """An entry of the navigation between a production's pages."""

    href: str
    label: str
    current: bool


@dataclass(frozen=True)
class Title:
    """A thread's name (from its first record, never its text: the text may be withheld):
    ``Post by <author>, <day>`` for a post, else ``plain``."""

    plain: str
    post: bool = False
    author: str = ""
    when: Time | None = None


@dataclass(frozen=True)
class Head:
    """The top of a page, up to its ``h1``: ``heading`` when given, else ``title``."""

    title: str
    site: str
    counsel: bool
    nav: tuple[Link, ...]
    heading: Title | None = None


def head(
    title: str,
    *,
    heading: Title | None = None,
    agency: str = "",
    production: str = "",
    here: str = "",
    counsel: bool = False,
    threads: bool = True,
) -> Head:
    """``here`` (``index``, ``custody``, ``redactions``) marks the current page in the
    navigation; without ``threads`` (a production made without renderings) it has no thread
    index."""
    site = f"{agency}: production {production}" if agency else f"Production {production}"
    pages = [
        ("threads/index.html", "All threads", "index"),
        ("custody/chain-of-custody.html", "Chain of custody", "custody"),
        ("redactions/redaction-log.html", "Redaction log", "redactions"),
        ("README.txt", "About this production (README)", "readme"),
    ]
    nav = tuple(
        Link(f"../{target}", label, here == name)
        for target, label, name in pages
        if threads or name != "index"
    )
    return Head(title, site, counsel, nav, heading)


def platform(record: Record) -> str:
    """The platform's name in words."""
    return _PLATFORMS.get(record.platform, record.platform)


def thread_title(record: Record, zone: str) -> Title:
    """The name of the thread whose first record is ``record``."""
    when = parse(record.posted_at) or parse(record.captured_at)
    day = human_time(when, zone, seconds=False) if when else ""
    author = record.author or "an unknown author"
    if record.kind == "post":
        return Title(
            f"Post by {author}{', ' if day else ''}{day}",
            post=True,
            author=author,
            when=time(when, zone, seconds=False),
        )
    thread = record.thread_id or record.remote_id
    return Title(f"Comments on post {thread} (the post itself is not in this production)")


# -- thread pages --------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Thread:
    """The top of a thread's page."""

    head: Head
    first: str
    last: str
    account: str
    platform: str
    thread: str
    zone: str


def anchor(kind: str, remote_id: str) -> str:
    """An element id for an item; ``.`` never occurs in a Bates number, so none collide."""
    safe = _UNSAFE_ID.sub(lambda m: "~" + m.group().encode("utf-8").hex(), remote_id)
    return f"item.{kind}.{safe}"


@dataclass(frozen=True)
class Also:
    """The same notice's post in another language: ``name`` is the language's name in
    itself; ``href`` where its page is in this production (else None)."""

    lang: str
    name: str
    account: str
    href: str | None


@dataclass(frozen=True)
class Opening:
    """The opening of an item's ``<article>`` (before its first version).

    ``context`` says what the item answers: ``about`` (a moderation action on a comment),
    ``reply`` (to a comment), ``on`` (the post), or "" (nothing); ``target`` is that comment's
    remote id, ``href`` the anchor it is linked by.
    """

    classes: str
    id: str
    heading: str  # "Post", "Comment", "Reply", "Moderation action"
    author: str
    context: str
    target: str
    href: str
    versions: int  # how many versions follow, when more than one; else 0
    first: str
    also: tuple[Also, ...] = ()  # a post of a notice in several languages: the others


def opening(record: Record, place: Place, bates: str, also: Sequence[Also] = ()) -> Opening:
    """What :class:`Opening` says of ``record``'s item."""
    thread = record.thread_id or record.remote_id
    parent = record.parent_id
    classes = ["item", record.kind]
    context, target, href = "", "", ""
    if record.kind == "post":
        heading = "Post"
    elif record.kind == "moderation":
        heading = "Moderation action"
        if parent:
            context, target, href = "about", parent, anchor("comment", parent)
    elif record.kind == "webhook":
        heading = "Platform notification (webhook)"
        context, href = "on", anchor("post", thread)
    elif parent and parent != thread:
        classes.append("reply")
        heading = "Reply"
        context, target, href = "reply", parent, anchor("comment", parent)
    else:
        heading = "Comment"
        context, href = "on", anchor("post", thread)
    return Opening(
        classes=" ".join(classes),
        id=anchor(record.kind, record.remote_id),
        heading=heading,
        author=record.author or "an unknown author",
        context=context,
        target=target,
        href=href,
        versions=place.count if place.count > 1 else 0,
        first=bates,
        also=tuple(also),
    )


@dataclass(frozen=True)
class History:
    """A version's place among its item's versions, with the change it records."""

    index: int
    count: int
    change: str
    previous: str | None
    next: str | None


@dataclass(frozen=True)
class Piece:
    """A stretch of a record's text; ``code`` names the exemption when it is withheld."""

    text: str
    code: str | None = None


@dataclass(frozen=True)
class Media:
    """An attached file: ``number`` counts every file the record names, from 1."""

    number: int
    path: str
    file_name: str
    image: bool
    alt: str | None  # the author's description, when there is one


@dataclass(frozen=True)
class Item:
    """One record (one version of an item) on its thread's page.

    ``text`` is None when the version has no text; ``withheld`` says whether some of it is
    withheld (then shown as boxes, or highlighted in the counsel copy).
    """

    bates: str
    state: str  # "hidden", "deleted" or ""
    opening: Opening | None
    closes: bool
    history: History | None
    state_words: tuple[str, str] | None
    withheld: bool
    counsel: bool
    text: tuple[Piece, ...] | None
    media: tuple[Media, ...]
    author: str
    posted: Time | None
    captured: Time | None
    record_state: str
    kind: str
    remote_id: str
    native: str
    url: str | None
    lang: str | None = None  # the language of a post of a notice in several languages


def _media(media: Sequence[Mapping[str, Any]]) -> tuple[Media, ...]:
    out = []
    for number, entry in enumerate(media, start=1):
        path = str(entry.get("path") or "")
        if not path:
            continue
        alt = entry.get("alt_text")
        described = isinstance(alt, str) and alt.strip() != ""
        image = path.rsplit(".", 1)[-1].lower() in _IMAGES
        out.append(Media(number, path, path.rsplit("/", 1)[-1], image, alt if described else None))
    return tuple(out)


def item(
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
    also: Sequence[Also] = (),
) -> Item:
    """One record of a thread page.

    ``posted`` and ``captured`` are UTC ISO 8601 ("" when unknown); ``native`` is the
    snapshot's path under ``data/``; ``media`` the attached files (``path`` under ``data/``,
    ``alt_text`` or None). ``pieces`` is the text split for redaction, ``(text, code)`` with
    the exemption's code when withheld: a public rendering writes only a box naming the code
    (as the text files say it, ``WITHHELD: code``; its text is never read), the counsel
    rendering the text highlighted after the code; None renders ``record.text`` whole.
    ``also``: the same notice's posts in the other languages (said at the item's opening);
    the text and the images' descriptions are marked with the record's language.
    """
    place = place or Place()
    state = record.state if record.state in _STATE_WORDS else ""
    history = None
    if not (place.count <= 1 and record.change in ("new", "")):
        change = _CHANGE_WORDS.get(record.change, record.change)
        history = History(place.index, place.count, change, place.previous, place.next)
    text: tuple[Piece, ...] | None = None
    if pieces is not None:
        text = tuple(Piece(piece, code) for piece, code in pieces)
        if not (record.text or text):
            text = None
    elif record.text:
        text = (Piece(record.text),)
    url = record.url if record.url and record.url.startswith(("https://", "http://")) else None
    return Item(
        bates=bates,
        state=state,
        opening=opening(record, place, bates, also) if place.index == 1 else None,
        closes=place.index >= place.count,
        history=history,
        state_words=_STATE_WORDS.get(state),
        withheld=pieces is not None and any(code is not None for _, code in pieces),
        counsel=counsel,
        text=text,
        media=_media(media),
        author=record.author or "unknown",
        posted=time(posted, zone),
        captured=time(captured, zone),
        record_state=record.state,
        kind=record.kind,
        remote_id=record.remote_id,
        native=native,
        url=url,
        lang=record.lang,
    )


# -- the index of threads ------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """The top of ``threads/index.html``; ``records`` None when the count is not known."""

    head: Head
    records: int | None
    zone: str


@dataclass(frozen=True)
class Entry:
    """One thread in the index."""

    href: str
    title: Title
    first: str
    last: str
    records: int
    account: str
    platform: str
    thread: str
    lang: str | None = None  # a post of a notice in several languages: its language
    language: str = ""  # and that language's name in itself


# -- the redaction log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRow:
    """One withheld range of text in the redaction log (never the text itself)."""

    bates: str
    record: str
    version: str
    characters: str
    exemption: str
    reason: str
    redacted_by: str
    redacted_at: Time | None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def log_rows(rows: Iterable[Mapping[str, Any]], zone: str) -> tuple[LogRow, ...]:
    """The redaction log's rows, each a mapping with its columns (``bates``, ``record_id``,
    ``version``, ``characters``, ``exemption_label`` or ``exemption``, ``reason``,
    ``redacted_by``, ``redacted_at`` as a datetime or ISO 8601 text)."""
    return tuple(
        LogRow(
            bates=_text(row.get("bates")),
            record=_text(row.get("record_id")),
            version=_text(row.get("version")),
            characters=_text(row.get("characters")),
            exemption=_text(row.get("exemption_label") or row.get("exemption")),
            reason=_text(row.get("reason")),
            redacted_by=_text(row.get("redacted_by")),
            redacted_at=time(row.get("redacted_at"), zone),
        )
        for row in rows
    )


# -- the chain of custody ------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A block of the chain-of-custody report: ``kind`` is ``h2`` or ``p`` (``lines[0]``),
    ``ul`` (an item per line) or ``table`` (``rows``, the first the header). Inline text is
    a sequence of (``kind``, ``text``): ``text``, or a ``code``/``strong`` toggle."""

    kind: str
    lines: tuple[tuple[tuple[str, str], ...], ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    text: str = ""


def inline(text: str) -> tuple[tuple[str, str], ...]:
    """Markdown's ``code`` and **strong** spans of ``text``, as toggles between text; one
    left open is closed at the end (code first)."""
    out: list[tuple[str, str]] = []
    open_code = open_strong = False
    plain: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "`" or text.startswith("**", i):
            if plain:
                out.append(("text", "".join(plain)))
                plain = []
            if text[i] == "`":
                out.append(("code" if not open_code else "/code", ""))
                open_code = not open_code
                i += 1
            else:
                out.append(("strong" if not open_strong else "/strong", ""))
                open_strong = not open_strong
                i += 2
            continue
        plain.append(text[i])
        i += 1
    if plain:
        out.append(("text", "".join(plain)))
    if open_code:
        out.append(("/code", ""))
    if open_strong:
        out.append(("/strong", ""))
    return tuple(out)


def blocks(markdown: str) -> tuple[Block, ...]:
    """The blocks of the report's Markdown after its title (its small subset: ``##``
    headings, ``-`` lists, one ``|`` table, paragraphs)."""
    out: list[Block] = []
    items: list[tuple[tuple[str, str], ...]] = []
    rows: list[tuple[str, ...]] = []
    for line in markdown.splitlines()[1:]:
        if items and not line.startswith("- "):
            out.append(Block("ul", lines=tuple(items)))
            items = []
        if rows and not line.startswith("|"):
            out.append(Block("table", rows=tuple(rows)))
            rows = []
        if line.startswith("## "):
            out.append(Block("h2", text=line[3:]))
        elif line.startswith("- "):
            items.append(inline(line[2:]))
        elif line.startswith("|"):
            cells = tuple(c.strip() for c in line.strip("|").split("|"))
            if set("".join(cells)) <= {"-"}:
                continue
            rows.append(cells)
        elif line.strip():
            out.append(Block("p", lines=(inline(line),)))
    if items:
        out.append(Block("ul", lines=tuple(items)))
    if rows:
        out.append(Block("table", rows=tuple(rows)))
    return tuple(out)
