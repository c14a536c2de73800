"""The end of an export: the redaction log page, the chain-of-custody report, the production
summary, the README and ``bag-info.txt``, then the bag's manifests; and the finished bag made
private (and zipped when asked) before it is moved into place.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulletin import __version__
from bulletin.archiver.export import loadfile, render, threads, wacz
from bulletin.archiver.export.job import CSV, DAT, PDFS, REDACTION_LOG, Job
from bulletin.archiver.export.stamp import STAMP_FILE, ManifestStamp, stamp_manifest
from bulletin.files import fsync_file
from bulletin.timeparse import iso_utc

REDACTION_LOG_HTML = "redactions/redaction-log.html"
PRIVATE_FILE = 0o600  # a production's modes, whatever the umask
PRIVATE_DIR = 0o700


def facts(job: Job, completed_at: str) -> dict[str, Any]:
    """What the custody report, the summary and the audit event say of the production."""
    total = job.journal.total
    by_kind_state: dict[tuple[str, str], int] = {}
    for key, count in job.counts.items():
        if key.startswith("~"):
            continue
        kind, _, state = key.partition("/")
        by_kind_state[(kind, state)] = count
    return {
        "agency": job.settings.agency.name,
        "identifier": job.scope.identifier,
        "request_id": job.scope.request_id,
        "request_label": job.scope.request_label,
        "query": job.scope.query.describe(),
        "query_json": job.scope.query.to_json(),
        "actor": job.journal.actor,
        "started_at": job.journal.started_at,
        "completed_at": completed_at,
        "resumed": job.journal.resumed,
        "version": __version__,
        "host": socket.gethostname(),
        "store": job.store.kind,
        "records": total,
        "disposed": job.journal.disposed,
        "first_bates": job.bates(1) if total else None,
        "last_bates": job.bates(total) if total else None,
        "by_kind_state": by_kind_state,
        "head_seq": job.journal.head_seq,
        "head_hash": job.journal.head_hash,
        "bates_prefix": job.prefix,
        "bates_start": job.start,
        "production": job.production,
        "redactions": job.counts["~redactions"],
        "redacted_records": job.counts["~redacted_records"],
        "pdf": job.pdf,
    }


def finish(job: Job, completed: datetime) -> tuple[str, dict[str, Any], ManifestStamp]:
    """Write the tag and report files and complete the bag, its payload manifest time-stamped
    (:mod:`.stamp`) when an authority answers; returns the sha256 of the payload manifest, the
    production's :func:`facts` and the time stamp's outcome."""
    writer = job.writer
    told = facts(job, iso_utc(completed))
    if job.renderings:
        threads.write_index_foot(job)
    if job.wacz and (writer.data / "warc").is_dir():
        writer.write(wacz.WACZ, wacz.package(writer.data / "warc", completed))
    writer.close_append(REDACTION_LOG)
    with open(writer.data / REDACTION_LOG, encoding="utf-8-sig", newline="") as handle:
        log = list(csv.DictReader(handle))
    writer.write(
        REDACTION_LOG_HTML,
        render.redaction_log_html(
            log,
            job.production,
            agency=told["agency"],
            identifier=told["identifier"],
            zone=job.settings.agency.time_zone,
            threads=job.renderings,
        ).encode("utf-8"),
    )
    markdown = render.custody_markdown(told)
    writer.write("custody/chain-of-custody.md", markdown.encode("utf-8"))
    title = f"Chain of custody: {told['agency']} production {told['identifier']}"
    writer.write(
        "custody/chain-of-custody.html",
        render.custody_html(
            markdown,
            title,
            agency=told["agency"],
            production=told["identifier"],
            counsel=job.counsel,
            threads=job.renderings,
        ).encode("utf-8"),
    )
    summary = {
        **{k: v for k, v in told.items() if k not in ("by_kind_state", "pdf")},
        "by_kind_state": [
            {"kind": k, "state": s, "records": n}
            for (k, s), n in sorted(told["by_kind_state"].items())
        ],
        "format": "bulletin.production/1",
        "load_file": {"dat": DAT, "csv": CSV, "fields": list(loadfile.FIELDS)},
        "redaction_log": {"csv": REDACTION_LOG, "html": REDACTION_LOG_HTML},
        **({"pdf": {"variant": "PDF/A-2b", "listing": PDFS}} if job.pdf else {}),
    }
    writer.write(
        "manifest/production.json",
        json.dumps(summary, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8"),
    )
    writer.write("README.txt", render.readme(told, threads=job.renderings).encode("utf-8"))
    stamped: list[ManifestStamp] = []

    def tags(manifest_sha256: str) -> list[tuple[str, bytes]]:
        outcome = stamp_manifest(job.settings.timestamp, manifest_sha256)
        stamped.append(outcome)
        return [] if outcome.stamp is None else [(STAMP_FILE, outcome.stamp.token)]

    manifest_sha = writer.finish(_bag_info(job, told, completed), tags)
    return manifest_sha, told, stamped[0]


def _bag_info(job: Job, told: dict[str, Any], completed: datetime) -> list[tuple[str, str]]:
    """The lines of ``bag-info.txt``."""
    agency = job.settings.agency
    info: list[tuple[str, str]] = [("Source-Organization", agency.name)]
    if agency.website:
        info.append(("Organization-Address", agency.website))
    info.append(("Contact-Name", f"{agency.name} records office"))
    if agency.contact:
        kind = "Contact-Email" if "@" in agency.contact else "Contact-Phone"
        info.append((kind, agency.contact))
    description = (
        f"Production of archived social-media records: {told['records']} records"
        + (", EMPTY: no archived record matched the scope" if not told["records"] else "")
        + f"; scope: {told['query']}"
    )
    info += [
        ("External-Description", description),
        ("Bagging-Date", completed.astimezone(UTC).date().isoformat()),
        ("External-Identifier", job.scope.identifier),
        ("Bag-Count", "1 of 1"),
        ("Internal-Sender-Identifier", f"bulletin-export {job.scope.identifier}"),
        ("Internal-Sender-Description", f"exported by {job.journal.actor}"),
        ("Bulletin-Version", __version__),
        ("Bulletin-Production", job.production),
        ("Bulletin-Records", str(told["records"])),
        (
            "Bulletin-Bates-Range",
            f"{told['first_bates']}-{told['last_bates']}" if told["records"] else "none",
        ),
        ("Bulletin-Ledger-Head", f"{told['head_seq']} {told['head_hash']}"),
    ]
    return info


def umask_keeps_owner_bits() -> bool:
    """Whether this process's umask leaves the owner's bits alone, so that what the bag writer
    creates 0600/0700 is exactly that (Linux tells; elsewhere: not known, False)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8) & 0o700 == 0
    return False


def make_private(path: Path, *, walk: bool = True) -> None:
    """``path`` (a file, or a directory and all it holds) readable by its owner only, whatever
    the umask: a production goes to counsel by hand, never to another account of the host.

    Without ``walk`` only ``path`` itself: for a bag whose every file and folder this run's
    bag writer created 0600/0700 under a umask that kept those bits (walking a large bag
    costs as much as a tenth of the export)."""
    os.chmod(path, PRIVATE_FILE if path.is_file() else PRIVATE_DIR)
    if not walk:
        return
    for directory, subdirs, files in os.walk(path):
        for name in subdirs:
            os.chmod(os.path.join(directory, name), PRIVATE_DIR)
        for name in files:
            os.chmod(os.path.join(directory, name), PRIVATE_FILE)


def zip_bag(bag: Path, target: Path, name: str) -> None:
    """The bag as one zip whose single top folder is ``name`` (RFC 8493, section 4.4)."""
    temp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for directory, subdirs, files in os.walk(bag):
            subdirs.sort()
            for file_name in sorted(files):
                path = Path(directory) / file_name
                archive.write(path, f"{name}/{path.relative_to(bag).as_posix()}")
    fsync_file(temp)
    os.replace(temp, target)
