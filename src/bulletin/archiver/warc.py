"""WARC/1.1 files of what a platform said during a capture (warcio, gzip per record).

One file holds a ``warcinfo`` record, then per exchange a ``request`` and a ``response``
record, and a ``metadata`` record naming the Bulletin records captured from that response
(``bulletin-record: <id> <kind> <remote id>``); request and metadata point at their response
with ``WARC-Concurrent-To``. The exchanges come from :mod:`bulletin.connectors.wire`, so no
credential is in them. warcio computes ``WARC-Block-Digest`` and ``WARC-Payload-Digest``
(sha256); :func:`problems` checks them again.
"""

from __future__ import annotations

import io
import re
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from bulletin.connectors.wire import Exchange

MIME_TYPE = "application/warc"
SOFTWARE = "Bulletin (warcio)"


@dataclass(frozen=True)
class Captured:
    """A record captured from an exchange: what its metadata record names."""

    record_id: int
    kind: str
    remote_id: str


def _date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


_TOKEN = re.compile(rb'"([^"\\]{1,200})"|\b(\d{3,30})\b')


def sources(remote_ids: Sequence[str], exchanges: Sequence[Exchange]) -> list[int]:
    """For each of ``remote_ids``, the index of the exchange whose answer carries it (as a
    JSON string or a number; the last such; else anywhere in the body), else the last
    exchange. One pass over the answers, however many ids."""
    last: dict[bytes, int] = {}
    for index, ex in enumerate(exchanges):
        for match in _TOKEN.finditer(ex.body):
            last[match.group(1) or match.group(2)] = index
    out: list[int] = []
    for remote_id in remote_ids:
        needle = remote_id.encode()
        found = last.get(needle)
        if found is None:
            found = next(
                (i for i in range(len(exchanges) - 1, -1, -1) if needle in exchanges[i].body),
                len(exchanges) - 1,
            )
        out.append(found)
    return out


def warc_file(exchanges: Sequence[Exchange], captured: Sequence[Captured], at: datetime) -> bytes:
    """The gzip-per-record WARC/1.1 bytes of ``exchanges`` and the records from them."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    info = writer.create_warcinfo_record(
        "bulletin-capture.warc.gz",
        {"software": SOFTWARE, "format": "WARC File Format 1.1", "isPartOf": "bulletin-capture"},
    )
    info.rec_headers.replace_header("WARC-Date", _date(at))
    writer.write_record(info)
    by_exchange: dict[int, list[Captured]] = {}
    for c, index in zip(captured, sources([c.remote_id for c in captured], exchanges), strict=True):
        by_exchange.setdefault(index, []).append(c)
    for index, ex in enumerate(exchanges):
        date = _date(ex.at)
        response_id = _id()
        parts = urlsplit(ex.url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        extra = {"Bulletin-Redacted": "credentials"} if ex.redacted else {}
        response = writer.create_warc_record(
            ex.url,
            "response",
            payload=io.BytesIO(ex.body),
            length=len(ex.body),
            warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date, **extra},
            http_headers=StatusAndHeaders(
                f"{ex.status} {ex.reason}".strip(),
                list(ex.response_headers),
                protocol=ex.http_version,
            ),
        )
        request = writer.create_warc_record(
            ex.url,
            "request",
            payload=io.BytesIO(b""),
            length=0,
            warc_headers_dict={
                "WARC-Record-ID": _id(),
                "WARC-Date": date,
                "WARC-Concurrent-To": response_id,
            },
            http_headers=StatusAndHeaders(
                f"{ex.method} {target} {ex.http_version}",
                list(ex.request_headers),
                is_http_request=True,
            ),
        )
        writer.write_record(request)
        writer.write_record(response)
        names = by_exchange.get(index, [])
        if names:
            fields = "".join(
                f"bulletin-record: {c.record_id} {c.kind} {c.remote_id}\r\n" for c in names
            ).encode()
            writer.write_record(
                writer.create_warc_record(
                    ex.url,
                    "metadata",
                    payload=io.BytesIO(fields),
                    length=len(fields),
                    warc_content_type="application/warc-fields",
                    warc_headers_dict={
                        "WARC-Record-ID": _id(),
                        "WARC-Date": date,
                        "WARC-Concurrent-To": response_id,
                    },
                )
            )
    return out.getvalue()


def problems(data: bytes, name: str) -> list[str]:
    """One line per record of ``data`` (a WARC file called ``name``) whose block or payload
    digest does not match, or one line saying where the file stops being readable."""
    found: list[str] = []
    stream = io.BytesIO(data)
    iterator = ArchiveIterator(stream, check_digests=True)
    try:
        for record in iterator:
            _drain(record)
            checker: Any = record.digest_checker
            if checker.passed is False:
                rid = record.rec_headers.get_header("WARC-Record-ID")
                what = "; ".join(str(p) for p in checker.problems)
                found.append(f"{name}: WARC record {rid} ({record.rec_type}): {what}")
            elif checker.passed is None and record.rec_type in ("request", "response"):
                rid = record.rec_headers.get_header("WARC-Record-ID")
                found.append(f"{name}: WARC record {rid} ({record.rec_type}) has no digest")
    except Exception as e:  # a gzip member or header cut or altered
        offset = iterator.offset if hasattr(iterator, "offset") else "?"
        found.append(f"{name}: unreadable WARC at byte {offset} ({type(e).__name__})")
    return found


def members(data: bytes) -> list[tuple[bytes, bytes]]:
    """Each gzip member of ``data`` (a gzip-per-record WARC): its bytes as stored and as
    inflated.

    :raises ValueError: ``data`` is not a sequence of whole gzip members.
    """
    out: list[tuple[bytes, bytes]] = []
    rest = data
    while rest:
        inflate = zlib.decompressobj(wbits=31)
        try:
            plain = inflate.decompress(rest) + inflate.flush()
        except zlib.error as e:
            raise ValueError(f"not a gzip-per-record WARC ({e})") from None
        if not inflate.eof:
            raise ValueError("a WARC record's gzip member is cut short")
        used = len(rest) - len(inflate.unused_data)
        out.append((rest[:used], plain))
        rest = inflate.unused_data
    return out


def _fields(plain: bytes) -> dict[str, str]:
    head = plain.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def exchange_of(data: bytes, record_id: int) -> bytes | None:
    """The stored bytes (gzip members, verbatim, so their digests still hold) of the
    ``warcinfo`` record and the request, response and metadata records of the exchange whose
    metadata names ``record_id``; None when no exchange names it."""
    return by_record(data).get(record_id)


_RECORD_LINE = re.compile(rb"^bulletin-record: (\d+) ", re.M)


def by_record(data: bytes) -> dict[int, bytes]:
    """:func:`exchange_of` for every record a WARC file's metadata names, in one pass."""
    info = b""
    groups: dict[str, list[bytes]] = {}
    named: dict[int, str] = {}
    for raw, plain in members(data):
        f = _fields(plain)
        kind = f.get("warc-type")
        if kind == "warcinfo":
            info = info or raw
            continue
        response = (
            f.get("warc-record-id", "") if kind == "response" else f.get("warc-concurrent-to", "")
        )
        groups.setdefault(response, []).append(raw)
        if kind == "metadata":
            for match in _RECORD_LINE.finditer(plain):
                named[int(match.group(1))] = response
    joined = {response: info + b"".join(raws) for response, raws in groups.items()}
    return {rid: joined[response] for rid, response in named.items()}  # shared, not copied


def targets(data: bytes) -> dict[int, str]:
    """Each record id a WARC file's metadata names, with the URI of the exchange that carried
    it (what ``archive rebuild-index`` links a record to its WARC object by).

    :raises ValueError: ``data`` is not a gzip-per-record file.
    """
    found: dict[int, str] = {}
    for _raw, plain in members(data):
        if not plain.startswith(b"WARC/"):
            return {}
        f = _fields(plain)
        if f.get("warc-type") == "metadata":
            for match in _RECORD_LINE.finditer(plain):
                found[int(match.group(1))] = f.get("warc-target-uri", "")
    return found


def _drain(record: Any) -> None:
    stream = record.content_stream()
    while stream.read(1 << 20):
        pass


def records_in(data: bytes) -> list[dict[str, Any]]:
    """Each WARC record's type, id, target URI, Concurrent-To and metadata payload (tests and
    the WACZ index read them)."""
    out: list[dict[str, Any]] = []
    for record in ArchiveIterator(io.BytesIO(data)):
        headers = record.rec_headers
        body = record.content_stream().read()
        out.append(
            {
                "type": record.rec_type,
                "id": headers.get_header("WARC-Record-ID"),
                "uri": headers.get_header("WARC-Target-URI"),
                "date": headers.get_header("WARC-Date"),
                "concurrent_to": headers.get_header("WARC-Concurrent-To"),
                "status": record.http_headers.get_statuscode() if record.http_headers else None,
                "mime": record.http_headers.get_header("Content-Type")
                if record.http_headers
                else None,
                "payload": body,
            }
        )
    return out
