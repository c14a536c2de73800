"""Where things go in a bundle, and how Bates numbers look.

A bag (RFC 8493) with this payload::

    data/README.txt                      what is here and how to check it
    data/natives/0001/BUL0000001.json    the archived snapshot (canonical JSON), byte-exact
    data/natives/0001/BUL0000001.raw.json  the platform's own response, byte-exact
    data/natives/0001/BUL0000001.media-1.jpg  images attached to the item
    data/warc/0001/BUL0000001.warc.gz    what the platform said on the wire (WARC/1.1)
    data/text/0001/BUL0000001.txt        the item's text, UTF-8
    data/threads/BUL0000001.html         each thread rendered for reading, every version
    data/threads/index.html              the list of threads
    data/loadfile/production.dat         Concordance load file
    data/loadfile/production.csv         the same rows as CSV
    data/manifest/records.jsonl          one line per record: Bates, hashes, ledger position
    data/manifest/records.csv            the same as CSV
    data/manifest/production.json        the production: scope, counts, ledger head, version
    data/custody/chain-of-custody.md     the chain-of-custody report
    data/custody/chain-of-custody.html   the same, as a web page

Files are grouped 1,000 Bates numbers to a folder (``0001`` holds numbers 1-1000), so no
folder grows past what every file system and zip tool handles well.
"""

from __future__ import annotations

import re

BATES_WIDTH = 7
# The widest Bates number a production may hold: ten digits, what load files and review
# platforms take (numbers are padded to BATES_WIDTH and grow past it up to this).
MAX_BATES = 10**10 - 1
BLOCK = 1000
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{0,20}$")


def check_prefix(prefix: str) -> str:
    """A Bates prefix fit for file names (letters, digits, ``-``, ``_``; at most 20).

    :raises ValueError: anything else.
    """
    if not _PREFIX.match(prefix):
        raise ValueError(
            f"Bates prefix {prefix!r} must be letters, digits, '-' or '_' (at most 20)"
        )
    return prefix


def bates(prefix: str, number: int) -> str:
    """``BUL0000042``: the prefix and the number, zero-padded to at least 7 digits."""
    return f"{prefix}{number:0{BATES_WIDTH}d}"


def block(number: int) -> str:
    """The folder of Bates number ``number``."""
    return f"{(number - 1) // BLOCK + 1:04d}"


def native_path(prefix: str, number: int) -> str:
    return f"natives/{block(number)}/{bates(prefix, number)}.json"


def raw_path(prefix: str, number: int, raw: bytes) -> str:
    return f"natives/{block(number)}/{bates(prefix, number)}.raw.{sniff_extension(raw)}"


def media_path(prefix: str, number: int, index: int, mime_type: str | None) -> str:
    return (
        f"natives/{block(number)}/{bates(prefix, number)}.media-{index}."
        f"{MEDIA_EXTENSIONS.get(mime_type or '', 'bin')}"
    )


def text_path(prefix: str, number: int) -> str:
    return f"text/{block(number)}/{bates(prefix, number)}.txt"


def thread_path(prefix: str, first: int) -> str:
    return f"threads/{bates(prefix, first)}.html"


MEDIA_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
}


def sniff_extension(raw: bytes) -> str:
    """``json``, ``xml`` or ``bin`` from the first non-blank byte of a platform response."""
    head = raw.lstrip()[:1]
    if head in (b"{", b"["):
        return "json"
    if head == b"<":
        return "xml"
    return "bin"
