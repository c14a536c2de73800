"""``bulletin export verify``: check a bundle anywhere, with or without the archive.

Without the archive: the bag is valid (bagit-python's full validation), every payload and tag
file matches its sha256, nothing was added or removed, and every record's snapshot, raw
response, images and WARC match the hashes the records manifest gives, and every WARC record
under data/warc/ matches its WARC-Block-Digest and WARC-Payload-Digest, and every thread PDF
is listed in data/manifest/pdfs.csv with the sha256 it has. With the archive (the
agency's configuration at hand): every record is in the index with the same object sha256,
the ledger entry at the recorded position names that record and object with the recorded
entry hash, the stored object is intact, and the ledger head at export time is still in the
chain. Each discrepancy is one line naming the file or record.

The payload manifest's RFC 3161 time stamp, when the bag has one, is checked against the CA
roots given (only the bag and the roots are needed) and its time reported; a token that
does not verify is a problem, a bag without one is a note.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit
from cryptography import x509
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bulletin.archiver import warc
from bulletin.archiver.export.bagwriter import MANIFEST, TAG_MANIFEST, hash_file
from bulletin.archiver.export.stamp import STAMP_FILE, check_bundle_stamp
from bulletin.archiver.store.base import WormStore, object_key
from bulletin.errors import IntegrityError, NotFound, UsageError
from bulletin.models import LedgerEntry, Record

RECORDS = "data/manifest/records.jsonl"
PRODUCTION = "data/manifest/production.json"
PDFS = "data/manifest/pdfs.csv"


@dataclass
class BundleReport:
    """What :func:`verify_bundle` found."""

    path: str
    files: int = 0
    records: int = 0
    archive_checked: bool = False
    identifier: str = ""
    problems: list[str] = field(default_factory=list)
    timestamps: list[str] = field(default_factory=list)  # each verified token, one line
    notes: list[str] = field(default_factory=list)  # not failures: no token, or unchecked

    @property
    def ok(self) -> bool:
        return not self.problems


def _manifest(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            digest, _, name = line.rstrip("\n").partition(" ")
            yield name.strip().lstrip("*"), digest.strip()


def _bag_root(path: Path, work: Path) -> Path:
    """The bag directory of ``path`` (a bag directory, or a zip of one)."""
    if path.is_dir():
        return path
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is neither a bag directory nor a zip")
    with zipfile.ZipFile(path) as archive:
        inside = work.resolve()
        for member in archive.namelist():
            # a path comparison, not a string one: /tmp/w-evil starts with /tmp/w
            if not (inside / member).resolve().is_relative_to(inside):
                raise UsageError(f"{path} holds an unsafe path {member!r}")
        archive.extractall(work)
    if (work / "bagit.txt").exists():
        return work
    tops = [p for p in work.iterdir() if p.is_dir()]
    if len(tops) == 1 and (tops[0] / "bagit.txt").exists():
        return tops[0]
    raise UsageError(f"{path} does not unpack to one bag")


def verify_bundle(
    path: Path,
    engine: Engine | None = None,
    store: WormStore | None = None,
    roots: list[x509.Certificate] | None = None,
) -> BundleReport:
    """Check the bundle at ``path``; against the archive too when ``engine`` and ``store`` are
    given; its time stamp against ``roots``. Never raises for what it finds; only a path that
    is no bundle raises.

    :raises UsageError: ``path`` does not exist or is not a bag or a zip of one.
    """
    if not path.exists():
        raise UsageError(f"no bundle at {path}")
    report = BundleReport(str(path))
    with tempfile.TemporaryDirectory(prefix="bulletin-verify-") as temp:
        root = _bag_root(path, Path(temp))
        if not (root / "bagit.txt").exists():
            raise UsageError(f"{path} is not a bag (no bagit.txt)")
        _check_files(root, report)
        _check_bagit(root, report)
        _check_warcs(root, report)
        _check_pdfs(root, report)
        _check_records(root, report, engine, store)
        _check_stamp(root, report, roots or [])
    return report


def _check_stamp(root: Path, report: BundleReport, roots: list[x509.Certificate]) -> None:
    found = check_bundle_stamp(root, roots)
    if found.info is not None:
        report.timestamps.append(f"{MANIFEST}: {found.info.line()}")
    elif found.problem is not None:
        report.problems.append(found.problem)
    elif found.unchecked is not None:
        report.notes.append(found.unchecked)
    else:
        report.notes.append(f"{MANIFEST}: not time-stamped (no {STAMP_FILE} in the bag)")


def _check_files(root: Path, report: BundleReport) -> None:
    listed: set[str] = set()
    for manifest in (MANIFEST, TAG_MANIFEST):
        if not (root / manifest).exists():
            report.problems.append(f"{manifest}: missing")
            continue
        for name, digest in _manifest(root / manifest):
            listed.add(name)
            target = root / name
            if not target.is_file():
                report.problems.append(f"{name}: missing (listed in {manifest})")
                continue
            found, _ = hash_file(target)
            report.files += 1
            if found != digest:
                report.problems.append(
                    f"{name}: altered (sha256 {found}, {manifest} says {digest})"
                )
    for file in sorted((root / "data").rglob("*")):
        if file.is_file():
            name = file.relative_to(root).as_posix()
            if name not in listed:
                report.problems.append(f"{name}: not in {MANIFEST} (added after export)")


def _check_bagit(root: Path, report: BundleReport) -> None:
    """bagit-python's own verdict (structure, bag-info, Payload-Oxum, every checksum)."""
    try:
        bagit.Bag(str(root)).validate()
    except bagit.BagError as e:
        if not report.problems:  # the file checks already named what bagit complains about
            report.problems.append(f"bag: invalid BagIt bag: {_first_line(str(e))}")


def _check_warcs(root: Path, report: BundleReport) -> None:
    """Every WARC record of every file under data/warc/: its block and payload digests."""
    for file in sorted((root / "data" / "warc").rglob("*.warc.gz")):
        name = file.relative_to(root).as_posix()
        report.problems.extend(warc.problems(file.read_bytes(), name))


def _check_pdfs(root: Path, report: BundleReport) -> None:
    """Each thread PDF listed in data/manifest/pdfs.csv with its sha256, and no other."""
    listing = root / PDFS
    found = {p.relative_to(root / "data").as_posix() for p in (root / "data").glob("threads/*.pdf")}
    if not listing.exists():
        if found:
            report.problems.append(f"{PDFS}: missing, yet the bag holds {len(found)} PDFs")
        return
    with open(listing, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        rel = row.get("pdf") or "?"
        if _sha(root / "data" / rel) != row.get("sha256"):
            report.problems.append(f"data/{rel}: missing or not the sha256 {PDFS} gives")
        found.discard(rel)
    report.problems.extend(f"data/{rel}: not listed in {PDFS}" for rel in sorted(found))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid"


def _sha(path: Path) -> str | None:
    try:
        return hash_file(path)[0]
    except FileNotFoundError:
        return None


def _check_records(
    root: Path, report: BundleReport, engine: Engine | None, store: WormStore | None
) -> None:
    records_path = root / RECORDS
    production_path = root / PRODUCTION
    try:
        production: dict[str, Any] = json.loads(production_path.read_bytes())
    except (OSError, ValueError) as e:
        report.problems.append(f"{PRODUCTION}: unreadable ({e})")
        return
    report.identifier = str(production.get("identifier", ""))
    data = root / "data"
    session = Session(engine) if engine is not None else None
    report.archive_checked = session is not None
    try:
        if not records_path.exists():
            report.problems.append(f"{RECORDS}: missing")
            return
        with open(records_path, encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                try:
                    line: dict[str, Any] = json.loads(text)
                except ValueError:
                    report.problems.append(f"{RECORDS} line {number}: not JSON")
                    continue
                report.records += 1
                _check_line(data, line, report)
                if session is not None and store is not None:
                    _check_archive(session, store, line, report)
                    if number % 500 == 0:
                        session.expunge_all()
        if report.records != production.get("records"):
            report.problems.append(
                f"{RECORDS}: {report.records} records, production.json says "
                f"{production.get('records')}"
            )
        if session is not None:
            _check_head(session, production, report)
    finally:
        if session is not None:
            session.close()


def _check_line(data: Path, line: dict[str, Any], report: BundleReport) -> None:
    bates = line.get("bates", "?")
    if line.get("natives_withheld"):
        # a public copy of a redacted record: no natives and no hashes of them by design
        if line.get("native") or line.get("object_sha256"):
            report.problems.append(f"{bates}: natives withheld, yet named in the manifest")
        return
    wanted = [("native", line.get("object_sha256"))]
    if line.get("raw"):
        wanted.append(("raw", line.get("raw_sha256")))
    for kind, digest in wanted:
        rel = line.get(kind)
        if not rel:
            report.problems.append(f"{bates}: no {kind} file named")
            continue
        found = _sha(data / rel)
        if found is None:
            report.problems.append(f"{bates}: data/{rel} missing")
        elif found != digest:
            report.problems.append(
                f"{bates}: data/{rel} does not match the record's sha256 {digest}"
            )
    if line.get("warc"):
        rel = str(line["warc"])
        if _sha(data / rel) != line.get("warc_sha256"):
            report.problems.append(f"{bates}: data/{rel} does not match its WARC sha256")
    for item in line.get("media") or []:
        rel = item.get("path", "")
        found = _sha(data / rel)
        if found != item.get("sha256"):
            report.problems.append(f"{bates}: data/{rel} does not match its image sha256")


def _check_archive(
    session: Session, store: WormStore, line: dict[str, Any], report: BundleReport
) -> None:
    bates = line.get("bates", "?")
    record_id = line.get("record_id")
    withheld = bool(line.get("natives_withheld"))
    record = session.get(Record, record_id)
    if record is None:
        report.problems.append(f"{bates}: record {record_id} is not in the archive")
        return
    # a redacted record's public copy names no hash: compare the archive with itself
    digest = record.object_sha256 if withheld else str(line.get("object_sha256"))
    if record.object_sha256 != digest:
        report.problems.append(
            f"{bates}: record {record_id} has sha256 {record.object_sha256} in the archive, "
            f"the bundle says {digest}"
        )
    seq = line.get("ledger_seq")
    entry = session.get(LedgerEntry, seq) if isinstance(seq, int) else None
    if entry is None:
        report.problems.append(f"{bates}: ledger entry {seq} does not exist")
    elif entry.record_id != record_id or entry.object_sha256 != digest:
        report.problems.append(
            f"{bates}: ledger entry {seq} names record {entry.record_id} and object "
            f"{entry.object_sha256}, not record {record_id} and {digest}"
        )
    elif not withheld and entry.entry_hash != line.get("ledger_entry_hash"):
        report.problems.append(f"{bates}: ledger entry {seq} has another hash now")
    if record.disposed_at is not None:
        return  # destroyed since the export under the retention schedule: nothing to compare
    raw = record.raw_sha256 if withheld else line.get("raw_sha256")
    for what, value in (("snapshot", digest), ("raw response", raw)):
        if not value:
            continue
        try:
            store.get(object_key(str(value)), verify=True)
        except IntegrityError:
            report.problems.append(f"{bates}: the archive's {what} sha256/{value} is altered")
        except NotFound:
            report.problems.append(f"{bates}: the archive's {what} sha256/{value} is missing")


def _check_head(session: Session, production: dict[str, Any], report: BundleReport) -> None:
    seq, digest = production.get("head_seq"), production.get("head_hash")
    if not isinstance(seq, int) or seq == 0:
        return
    entry = session.get(LedgerEntry, seq)
    if entry is None:
        report.problems.append(f"ledger: entry {seq}, the head at export time, is gone")
    elif entry.entry_hash != digest:
        report.problems.append(f"ledger: entry {seq} no longer has the head hash of the export")


def payload_sha256(path: Path) -> str:
    """sha256 of a bag's payload manifest (what the ``exported`` audit event records)."""
    return hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest()
