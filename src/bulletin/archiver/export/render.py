"""Readable renderings: each thread as a web page, and the chain-of-custody report.

Pages are plain HTML with no scripts and no external resources, so they open offline in any
browser; text keeps its direction (``dir="auto"``) and line breaks.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from bulletin.models import Record

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}article{border:1px solid #999;border-radius:6px;padding:.6rem 1rem;"
    "margin:.8rem 0}article.comment{margin-left:2rem}article.hidden,article.deleted"
    "{background:#f4f0e6}.meta{font-size:.9rem;color:#333}.bates{font-weight:bold}"
    ".text{white-space:pre-wrap;overflow-wrap:anywhere}.withheld{background:#000;color:#fff;"
    "padding:0 .3rem}mark.redacted{background:#ffe08a;color:#000}table{border-collapse:collapse}"
    "td,th{border:1px solid #999;padding:.2rem .5rem;text-align:left}"
)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def page_head(title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n"
    )


PAGE_FOOT = "</body>\n</html>\n"


def thread_head(record: Record, first: str, last: str) -> str:
    thread = record.thread_id or record.remote_id
    return page_head(f"Thread {thread} on {record.account} ({record.platform})") + (
        f'<p class="meta">Bates {_e(first)} to {_e(last)}. Every archived version of every '
        "item is shown, including hidden, edited and deleted ones, oldest version first.</p>\n"
    )


def _text_html(pieces: Sequence[tuple[str, str | None]], counsel: bool) -> str:
    """Text pieces as HTML: a withheld piece is a box naming its exemption (public), or the
    original text marked with its exemption (counsel)."""
    out = []
    for text, label in pieces:
        if label is None:
            out.append(_e(text))
        elif counsel:
            out.append(
                f'<mark class="redacted">{_e(text)}</mark>'
                f'<span class="exemption"> [withheld from the public copy: {_e(label)}]</span>'
            )
        else:
            out.append(f'<span class="withheld">[WITHHELD: {_e(label)}]</span>')
    return "".join(out)


def thread_item(
    record: Record,
    bates: str,
    posted: str,
    captured: str,
    native: str,
    *,
    pieces: Sequence[tuple[str, str | None]] | None = None,
    counsel: bool = False,
) -> str:
    state = record.state if record.state in ("hidden", "deleted") else ""
    text = _e(record.text) if pieces is None else _text_html(pieces, counsel)
    reply = (
        f" in reply to {_e(record.parent_id)}"
        if record.kind == "comment" and record.parent_id
        else ""
    )
    return (
        f'<article class="{_e(record.kind)} {_e(state)}" id="{_e(bates)}">\n'
        f'<p class="meta"><span class="bates">{_e(bates)}</span> · {_e(record.kind)} '
        f"{_e(record.remote_id)}{reply} · version {record.version} · "
        f"<strong>{_e(record.state)}</strong><br>by {_e(record.author or 'unknown')} · "
        f"posted {_e(posted or 'unknown')} · captured {_e(captured)} · "
        + (
            f'<a href="../{_e(native)}">snapshot</a>'
            if native
            else "snapshot withheld from this public copy (text redacted)"
        )
        + "</p>\n"
        + f'<div class="text" dir="auto">{text}</div>\n</article>\n'
    )


def index_head(agency: str, identifier: str) -> str:
    return page_head(f"{agency}: production {identifier}") + "<ul>\n"


def index_item(path: str, first: str, last: str, record: Record, count: int) -> str:
    thread = record.thread_id or record.remote_id
    return (
        f'<li><a href="{_e(path.removeprefix("threads/"))}">{_e(first)} to {_e(last)}</a> '
        f"{_e(record.account)} thread {_e(thread)}: {count} records</li>\n"
    )


INDEX_FOOT = "</ul>\n" + PAGE_FOOT

REDACTION_LOG_FIELDS = (
    ("bates", "Bates"),
    ("record_id", "Record"),
    ("version", "Version"),
    ("characters", "Characters"),
    ("exemption_label", "Exemption"),
    ("reason", "Reason"),
    ("redacted_by", "Redacted by"),
    ("redacted_at", "Redacted at (UTC)"),
)


def redaction_log_html(rows: Sequence[Mapping[str, str]], production: str) -> str:
    """The redaction log as a page: one row per withheld range (never the withheld text)."""
    out = [page_head("Redaction log")]
    if production == "public":
        out.append(
            "<p>Text withheld from this production is shown in its place as "
            "[WITHHELD: exemption]. The archived originals are unchanged; the snapshots of "
            "redacted records are not part of this copy.</p>\n"
        )
    else:
        out.append(
            "<p>This is the counsel copy: it holds every record in full; the text withheld "
            "from the public copy is marked.</p>\n"
        )
    if not rows:
        out.append("<p>No text is withheld in this production.</p>\n")
        return "".join(out) + PAGE_FOOT
    out.append("<table>\n<caption>Withheld text by record</caption>\n<tr>")
    out += [f'<th scope="col">{_e(title)}</th>' for _, title in REDACTION_LOG_FIELDS]
    out.append("</tr>\n")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(row.get(k))}</td>" for k, _ in REDACTION_LOG_FIELDS))
        out.append("</tr>\n")
    out.append("</table>\n")
    return "".join(out) + PAGE_FOOT


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


def custody_html(markdown: str, title: str) -> str:
    """A faithful HTML rendering of :func:`custody_markdown`'s output (its small subset)."""
    out = [page_head(title)]
    in_list = in_table = False
    for line in markdown.splitlines()[1:]:
        if in_list and not line.startswith("- "):
            out.append("</ul>\n")
            in_list = False
        if in_table and not line.startswith("|"):
            out.append("</table>\n")
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
                out.append("<table>\n")
                in_table = True
                out.append("<tr>" + "".join(f"<th>{_e(c)}</th>" for c in cells) + "</tr>\n")
            else:
                out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>\n")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>\n")
    if in_list:
        out.append("</ul>\n")
    if in_table:
        out.append("</table>\n")
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
    True: "  threads/index.html        start here: every thread, rendered for reading in a browser",
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
