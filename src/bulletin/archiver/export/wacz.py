"""A WACZ package (Web Archive Collection Zipped, 1.1.1) of a production's WARC files, for
ReplayWeb.page: ``data/warc/production.wacz``.

Layout (a stored, uncompressed zip, so that a reader can seek into the WARCs)::

    archive/<BATES>.warc.gz    each WARC file of data/warc/, byte for byte
    indexes/index.cdx          CDXJ: one line per response, sorted (SURT key, timestamp)
    pages/pages.jsonl          one page per response
    datapackage.json           every file above with its sha256 and size
    datapackage-digest.json    the sha256 of datapackage.json

Built by hand from the WARC files (warcio only), not with the ``wacz`` package, which would
bring pywb and its dependencies for the index alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bulletin import __version__
from bulletin.archiver import warc
from bulletin.timeparse import iso_utc

WACZ = "warc/production.wacz"
_STAMP = datetime(1980, 1, 1).timetuple()[:6]  # fixed zip times: same input, same bytes


def surt(url: str) -> str:
    """The SURT form of ``url`` that CDXJ indexes sort by (host reversed, lower case)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    labels = host if host.replace(".", "").isdigit() else ",".join(reversed(host.split(".")))
    if parts.port and parts.port not in (80, 443):
        labels += f":{parts.port}"
    key = f"{labels})" + (parts.path or "/").lower()
    if parts.query:
        key += "?" + "&".join(sorted(parts.query.lower().split("&")))
    return key


def _stamp(date: str) -> str:
    """A WARC-Date as the 14-digit CDX timestamp."""
    return "".join(ch for ch in date if ch.isdigit())[:14]


def package(warc_dir: Path, created: datetime) -> bytes:
    """The WACZ bytes for every ``*.warc.gz`` under ``warc_dir``."""
    files = sorted(warc_dir.rglob("*.warc.gz"))
    index: list[str] = []
    pages: list[dict[str, Any]] = []
    entries: list[tuple[str, bytes]] = []
    for file in files:
        name = file.name
        data = file.read_bytes()
        entries.append((f"archive/{name}", data))
        offset = 0
        for raw, _plain in warc.members(data):
            [record] = warc.records_in(raw)
            if record["type"] == "response" and record["uri"]:
                ts = _stamp(record["date"] or "")
                fields = {
                    "url": record["uri"],
                    "mime": (record["mime"] or "").split(";")[0],
                    "status": record["status"],
                    "digest": "sha256:" + hashlib.sha256(record["payload"]).hexdigest(),
                    "length": len(raw),
                    "offset": offset,
                    "filename": name,
                }
                index.append(f"{surt(record['uri'])} {ts} {json.dumps(fields, sort_keys=True)}")
                pages.append(
                    {"id": record["id"].strip("<>"), "url": record["uri"], "ts": record["date"]}
                )
            offset += len(raw)
    index.sort()
    pages_text = json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "Records"})
    pages_text += "\n" + "".join(json.dumps(p, sort_keys=True) + "\n" for p in pages)
    entries.append(("indexes/index.cdx", "".join(line + "\n" for line in index).encode()))
    entries.append(("pages/pages.jsonl", pages_text.encode()))
    datapackage = {
        "profile": "data-package",
        "wacz_version": "1.1.1",
        "title": "Bulletin production",
        "created": iso_utc(created),
        "software": f"Bulletin {__version__}",
        "mainPageURL": pages[0]["url"] if pages else None,
        "resources": [
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "hash": "sha256:" + hashlib.sha256(body).hexdigest(),
                "bytes": len(body),
            }
            for path, body in entries
        ],
    }
    package_json = json.dumps(datapackage, indent=2).encode()
    digest = {
        "path": "datapackage.json",
        "hash": "sha256:" + hashlib.sha256(package_json).hexdigest(),
    }
    entries.append(("datapackage.json", package_json))
    entries.append(("datapackage-digest.json", json.dumps(digest, indent=2).encode()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for path, body in entries:
            info = zipfile.ZipInfo(path, date_time=_STAMP)
            archive.writestr(info, body)
    return out.getvalue()
