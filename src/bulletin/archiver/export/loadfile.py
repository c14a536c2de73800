"""Load files for review platforms: a Concordance DAT and the same rows as CSV.

DAT (the Concordance convention that Relativity, Everlaw, Reveal and others read):

- every field is wrapped in the text qualifier þ (U+00FE) and fields are separated by U+0014
  (DC4); each line ends with CRLF; the first line names the fields;
- a newline inside a field (CRLF, CR or LF) becomes ® (U+00AE), the Concordance newline
  marker, so one record is always one line;
- a þ inside a field is doubled (þþ), as a quote is in CSV;
- the file is UTF-8 with a byte-order mark (the platforms detect UTF-8 from it; without it
  several of them assume Windows-1252 and mangle names in other scripts).

Because ® stands for a newline, a literal ® in a field reads back as a newline; the extracted
text files (TEXTPATH) and the CSV hold the exact text.

CSV: RFC 4180 (every field quoted, CRLF line ends, quotes doubled, newlines kept inside the
quotes), UTF-8 with a byte-order mark so spreadsheet programs open it as UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

QUALIFIER = "\u00fe"
SEPARATOR = "\u0014"
NEWLINE = "\u00ae"
BOM = "\ufeff"

FIELDS: tuple[str, ...] = (
    "BEGBATES",
    "ENDBATES",
    "BEGATTACH",
    "ENDATTACH",
    "PLATFORM",
    "ACCOUNT",
    "KIND",
    "REMOTEID",
    "PARENTID",
    "THREADID",
    "AUTHOR",
    "POSTED",
    "CAPTURED",
    "STATE",
    "VERSION",
    "SHA256",
    "RAWSHA256",
    "LEDGERSEQ",
    "URL",
    "NATIVEPATH",
    "RAWPATH",
    "TEXTPATH",
    "MEDIAPATHS",
    "TEXT",
    "REDACTED",
    "EXEMPTIONS",
)


def _dat_field(value: str) -> str:
    flat = value.replace("\r\n", NEWLINE).replace("\r", NEWLINE).replace("\n", NEWLINE)
    return QUALIFIER + flat.replace(QUALIFIER, QUALIFIER * 2) + QUALIFIER


_JOINT = QUALIFIER + SEPARATOR + QUALIFIER


def dat_line(values: Sequence[str]) -> str:
    """One DAT line (with its CRLF)."""
    joined = SEPARATOR.join(values)
    if joined.count(SEPARATOR) != len(values) - 1:  # a separator inside a field: field by field
        return SEPARATOR.join(_dat_field(v) for v in values) + "\r\n"
    # the separator, the qualifier and the newlines are distinct characters, so the line can
    # be escaped whole: the same result as field by field, at a fraction of the calls
    if QUALIFIER in joined:
        joined = joined.replace(QUALIFIER, QUALIFIER * 2)
    if "\r" in joined or "\n" in joined:
        joined = joined.replace("\r\n", NEWLINE).replace("\r", NEWLINE).replace("\n", NEWLINE)
    return QUALIFIER + joined.replace(SEPARATOR, _JOINT) + QUALIFIER + "\r\n"


_BUFFER = io.StringIO()
_WRITER = csv.writer(_BUFFER, quoting=csv.QUOTE_ALL, lineterminator="\r\n")


def csv_line(values: Sequence[str]) -> str:
    """One CSV line (with its CRLF). Not thread-safe (one shared buffer)."""
    _BUFFER.seek(0)
    _BUFFER.truncate()
    _WRITER.writerow(values)
    return _BUFFER.getvalue()


def parse_dat(text: str) -> list[list[str]]:
    """Read a DAT written by :func:`dat_line` back into rows (the header row first).

    ® comes back as LF. For tests and for ``export verify``; not a general DAT reader.
    """
    rows: list[list[str]] = []
    for line in text.removeprefix(BOM).split("\r\n"):
        if not line:
            continue
        fields = []
        for raw in _split_fields(line):
            if not (raw.startswith(QUALIFIER) and raw.endswith(QUALIFIER) and len(raw) >= 2):
                raise ValueError(f"unqualified DAT field {raw[:40]!r}")
            fields.append(raw[1:-1].replace(QUALIFIER * 2, QUALIFIER).replace(NEWLINE, "\n"))
        rows.append(fields)
    return rows


def _split_fields(line: str) -> list[str]:
    """Split on separators outside qualifiers (a doubled qualifier stays inside)."""
    out: list[str] = []
    start = 0
    inside = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == QUALIFIER:
            if inside and i + 1 < len(line) and line[i + 1] == QUALIFIER:
                i += 2
                continue
            inside = not inside
        elif ch == SEPARATOR and not inside:
            out.append(line[start:i])
            start = i + 1
        i += 1
    out.append(line[start:])
    return out
