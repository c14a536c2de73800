"""E-discovery and public-records productions: `bulletin export` and `export verify`."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TypedDict, Unpack

import bagit
import pytest
from sqlmodel import Session, col, select

from bulletin.archiver import requests
from bulletin.archiver.archive import Capture
from bulletin.archiver.export import (
    ExportResult,
    export_bundle,
    partial_dir,
    resolve,
    verify_bundle,
)
from bulletin.archiver.export.job import Production
from bulletin.archiver.export.loadfile import FIELDS, parse_dat
from bulletin.archiver.holds import parse_query
from bulletin.archiver.store import files as store_files
from bulletin.archiver.store.base import object_key
from bulletin.archiver.store.local import LocalStore
from bulletin.cli import error_line
from bulletin.connectors.base import ItemState, RemoteItem
from bulletin.connectors.wire import Exchange
from bulletin.errors import ArchiveError, IntegrityError, Refused, UsageError
from bulletin.models import AuditEvent, BatesRange, Record
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run
from tests.test_identities import lose_database

POSTED = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
UNICODE_TEXT = "Road closed مرحبا بكم — שלום 🚓👮🏽‍♀️ naïve\ncafé, second line\r\nthird þ line"
UNICODE_AUTHOR = "زائر 🦉 Þóra"


def post(remote_id: str, text: str = "Water main break on Mass Ave", minutes: int = 0) -> Capture:
    item = RemoteItem(
        kind="post",
        remote_id=remote_id,
        text=text,
        author="Lexington PD",
        posted_at=POSTED + timedelta(minutes=minutes),
        thread_id=remote_id,
        raw=f'{{"id":"{remote_id}","text":{json.dumps(text)}}}'.encode(),
    )
    return Capture("feed", "feed", item)


def comment(
    remote_id: str,
    thread: str,
    minutes: int,
    text: str | None = None,
    author: str = "visitor",
    state: ItemState = "visible",
) -> Capture:
    item = RemoteItem(
        kind="comment",
        remote_id=remote_id,
        text=text if text is not None else f"comment {remote_id} on {thread}",
        author=author,
        posted_at=POSTED + timedelta(minutes=minutes),
        parent_id=thread,
        thread_id=thread,
        state=state,
        raw=f'{{"id":"{remote_id}","state":"{state}","m":{minutes}}}'.encode(),
    )
    return Capture("feed", "feed", item)


def seed(inst: Instance) -> None:
    """Two threads; one comment edited, then hidden; one deleted; posted out of id order."""
    archiver = inst.app.archiver
    archiver.archive([post("p2", "Parade route", minutes=60), post("p1")])
    archiver.archive([comment("c3", "p1", 30), comment("c1", "p1", 10), comment("c9", "p2", 70)])
    archiver.archive([comment("c1", "p1", 10, text="comment c1 on p1, edited")])
    archiver.archive([comment("c1", "p1", 10, text="comment c1 on p1, edited", state="hidden")])
    archiver.archive([comment("c3", "p1", 30, state="deleted")])


class ExportOptions(TypedDict, total=False):
    """The options of :func:`export_bundle` the tests set."""

    as_zip: bool
    resume: bool
    bates_start: int
    chunk: int
    progress: Callable[[int, int], None]
    production: Production
    pdf: bool


def export(inst: Instance, query: str, out: Path, **options: Unpack[ExportOptions]) -> ExportResult:
    scope = resolve(inst.app.engine, inst.settings, None, query)
    return export_bundle(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        scope,
        out=out,
        actor="clerk1",
        now=inst.clock.now,
        **options,
    )


def records_of(bag: Path) -> list[dict[str, object]]:
    lines = (bag / "data/manifest/records.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def dat_rows(bag: Path) -> list[dict[str, str]]:
    raw = (bag / "data/loadfile/production.dat").read_bytes()
    assert raw.startswith("\ufeff".encode())
    header, *rows = parse_dat(raw.decode("utf-8"))
    assert header == list(FIELDS)
    return [dict(zip(header, row, strict=True)) for row in rows]


def csv_rows(bag: Path) -> list[dict[str, str]]:
    text = (bag / "data/loadfile/production.csv").read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def seeded(instance: Instance) -> Instance:
    seed(instance)
    return instance


# -- the bundle ------------------------------------------------------------------------------


def test_bundle_is_a_valid_bag_with_every_version_in_bates_order(
    seeded: Instance, tmp_path: Path
) -> None:
    """Thread by thread, post then comments in posted order, versions in order, one Bates run;
    bagit-python validates the bag fully."""
    out = tmp_path / "prod"
    result = export(seeded, "account:feed", out)
    bagit.Bag(str(out)).validate()
    lines = records_of(out)
    order = [(r["remote_id"], r["version"], r["state"]) for r in lines]
    assert order == [
        ("p1", 1, "visible"),
        ("c1", 1, "visible"),
        ("c1", 2, "visible"),
        ("c1", 3, "hidden"),
        ("c3", 1, "visible"),
        ("c3", 2, "deleted"),
        ("p2", 1, "visible"),
        ("c9", 1, "visible"),
    ]
    assert [r["bates"] for r in lines] == [f"BUL{n:07d}" for n in range(1, 9)]
    assert [r["family"] for r in lines] == [["BUL0000001", "BUL0000006"]] * 6 + [
        ["BUL0000007", "BUL0000008"]
    ] * 2
    rows = dat_rows(out)
    assert [(r["BEGBATES"], r["BEGATTACH"], r["ENDATTACH"]) for r in rows][5:] == [
        ("BUL0000006", "BUL0000001", "BUL0000006"),
        ("BUL0000007", "BUL0000007", "BUL0000008"),
        ("BUL0000008", "BUL0000007", "BUL0000008"),
    ]
    assert csv_rows(out) == rows
    assert result.records == 8


def test_natives_are_byte_exact_and_manifest_names_ledger(seeded: Instance, tmp_path: Path) -> None:
    """Snapshots and raw responses are the store's bytes; the manifest gives sha256 and ledger
    position; the text files hold the text."""
    out = tmp_path / "prod"
    export(seeded, "account:feed", out)
    store = seeded.app.store
    with Session(seeded.app.engine) as session:
        rows = {r.id: r for r in session.exec(select(Record))}
    for line in records_of(out):
        record = rows[int(str(line["record_id"]))]
        assert line["object_sha256"] == record.object_sha256
        assert line["ledger_seq"] == record.ledger_seq
        native = (out / "data" / str(line["native"])).read_bytes()
        assert native == store.get(object_key(record.object_sha256))
        raw = (out / "data" / str(line["raw"])).read_bytes()
        assert raw == store.get(object_key(record.raw_sha256 or ""))
        assert (out / "data" / str(line["text"])).read_text(encoding="utf-8") == record.text


def test_bag_info_custody_and_audit(seeded: Instance, tmp_path: Path) -> None:
    """bag-info names the agency and the request; the custody report gives who, the query,
    counts by type and state, the ledger head and the version; an audit event is written."""
    opened, _ = requests.open_request(
        seeded.app.engine,
        seeded.app.store,
        seeded.settings,
        requester="Boston Globe",
        received=date(2026, 11, 25),
        description="the water main thread",
        query=parse_query("thread:p1"),
        litigation=False,
        actor="clerk1",
        now=seeded.clock.now(),
    )
    scope = resolve(seeded.app.engine, seeded.settings, opened.id, None)
    out = tmp_path / "req"
    result = export_bundle(
        seeded.app.engine,
        seeded.app.store,
        seeded.settings,
        scope,
        out=out,
        actor="clerk1",
        now=seeded.clock.now,
    )
    info = bagit.Bag(str(out)).info
    assert info["Source-Organization"] == "Lexington Police Department"
    assert info["External-Identifier"] == f"request-{opened.id}"
    assert info["Payload-Oxum"].endswith(f".{len(list((out / 'data').rglob('*.*')))}")
    custody = (out / "data/custody/chain-of-custody.md").read_text(encoding="utf-8")
    assert "clerk1" in custody and "`thread:p1`" in custody
    assert "| comment | deleted | 1 |" in custody and "| comment | hidden | 1 |" in custody
    assert result.head_hash in custody and "Bulletin 0.1.0" in custody
    assert (out / "data/custody/chain-of-custody.html").exists()
    with Session(seeded.app.engine) as session:
        event = session.exec(select(AuditEvent).where(col(AuditEvent.action) == "exported")).one()
    detail = json.loads(event.detail or "{}")
    assert event.object_id == str(opened.id) and event.actor == "clerk1"
    assert detail["records"] == 6
    assert detail["payload_manifest_sha256"] == result.payload_sha256


def test_zip_bundle_verifies(seeded: Instance, tmp_path: Path) -> None:
    """--zip writes one file with one top folder; export verify checks it like a directory."""
    out = tmp_path / "prod.zip"
    export(seeded, "thread:p2", out, as_zip=True)
    with zipfile.ZipFile(out) as archive:
        assert {n.split("/")[0] for n in archive.namelist()} == {"prod"}
    report = verify_bundle(out, seeded.app.engine, seeded.app.store)
    assert report.ok, report.problems
    assert report.records == 2 and report.archive_checked


def test_verify_against_the_archive(seeded: Instance, tmp_path: Path) -> None:
    """With the archive at hand, every record matches the index, the ledger and the store."""
    out = tmp_path / "prod"
    export(seeded, "account:feed", out)
    report = verify_bundle(out, seeded.app.engine, seeded.app.store)
    assert report.ok, report.problems
    assert report.records == 8


# -- bad input -------------------------------------------------------------------------------


def test_empty_result_is_a_labelled_empty_bundle(seeded: Instance, tmp_path: Path) -> None:
    """A query matching nothing gives a valid bag that says it is empty."""
    out = tmp_path / "empty"
    result = export(seeded, '"no such words anywhere"', out)
    assert result.records == 0
    bagit.Bag(str(out)).validate()
    assert "EMPTY" in bagit.Bag(str(out)).info["External-Description"]
    assert "This production is empty" in (out / "data/custody/chain-of-custody.md").read_text()
    assert dat_rows(out) == [] and records_of(out) == []
    assert verify_bundle(out).ok


def test_unknown_account_is_refused(seeded: Instance, tmp_path: Path) -> None:
    """An account neither configured nor archived is a clear usage error."""
    with pytest.raises(UsageError, match=r"unknown account 'nosuch'.*known: feed"):
        export(seeded, "account:nosuch", tmp_path / "x")
    output = run(
        seeded,
        "export",
        "--query",
        "account:nosuch",
        "--out",
        str(tmp_path / "y"),
        "--as",
        "clerk1",
        code=2,
    )
    assert output.count("\n") == 2 and "unknown account 'nosuch'" in output


def test_output_that_exists_or_cannot_be_written(seeded: Instance, tmp_path: Path) -> None:
    """An existing output is never replaced; a path under a regular file is a one-line error."""
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(Refused, match="already exists"):
        export(seeded, "account:feed", taken)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UsageError, match="cannot write the export"):
        export(seeded, "account:feed", afile / "prod")
    output = run(
        seeded,
        "export",
        "--query",
        "account:feed",
        "--out",
        str(afile / "p"),
        "--as",
        "clerk1",
        code=2,
    )
    assert "Traceback" not in output and "cannot write the export" in output


def test_unicode_rtl_and_emoji_round_trip(instance: Instance, tmp_path: Path) -> None:
    """Arabic, Hebrew, emoji with modifiers, þ and line breaks come back from DAT, CSV and text."""
    instance.app.archiver.archive(
        [post("p1"), comment("c1", "p1", 5, text=UNICODE_TEXT, author=UNICODE_AUTHOR)]
    )
    out = tmp_path / "prod"
    export(instance, "thread:p1", out)
    dat = dat_rows(out)[1]
    assert dat["AUTHOR"] == UNICODE_AUTHOR
    assert dat["TEXT"] == UNICODE_TEXT.replace("\r\n", "\n")  # ® stands for any line break
    row = csv_rows(out)[1]
    assert row["AUTHOR"] == UNICODE_AUTHOR and row["TEXT"] == UNICODE_TEXT
    assert (out / "data" / row["TEXTPATH"]).read_bytes() == UNICODE_TEXT.encode("utf-8")
    page = (out / "data/threads/BUL0000001.html").read_text(encoding="utf-8")
    assert UNICODE_AUTHOR in page and 'dir="auto"' in page


def test_altered_object_stops_the_export_and_names_it(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """A stored object that fails its hash stops the export, which names record and object."""
    inst = sqlite_instance
    inst.app.archiver.archive([post("p1"), comment("c1", "p1", 1), comment("c2", "p1", 2)])
    with Session(inst.app.engine) as session:
        victim = session.exec(select(Record).where(col(Record.remote_id) == "c1")).one()
    store = inst.app.store
    assert isinstance(store, LocalStore)
    path = store.path_of(object_key(victim.object_sha256))
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    out = tmp_path / "prod"
    with pytest.raises(IntegrityError, match=f"record {victim.id} .*{victim.object_sha256}"):
        export(inst, "thread:p1", out)
    assert not out.exists() and partial_dir(out).exists()


def test_tampered_bundle_file_is_named(seeded: Instance, tmp_path: Path) -> None:
    """Changing a native, deleting a text file or adding a file: verify names each, exit 1."""
    out = tmp_path / "prod"
    export(seeded, "account:feed", out)
    native = out / "data/natives/0001/BUL0000002.json"
    native.write_bytes(native.read_bytes().replace(b"comment", b"COMMENT"))
    (out / "data/text/0001/BUL0000005.txt").unlink()
    (out / "data/natives/0001/extra.txt").write_text("planted")
    report = verify_bundle(out)
    text = "\n".join(report.problems)
    assert "data/natives/0001/BUL0000002.json: altered" in text
    assert "BUL0000002: data/natives/0001/BUL0000002.json does not match" in text
    assert "data/text/0001/BUL0000005.txt: missing" in text
    assert "data/natives/0001/extra.txt: not in manifest-sha256.txt" in text
    output = run(seeded, "export", "verify", str(out), code=1)
    assert "problem: data/natives/0001/BUL0000002.json: altered" in output
    assert output.strip().splitlines()[-1].startswith("FAILED")


def test_verify_detects_a_consistently_rewritten_bundle(seeded: Instance, tmp_path: Path) -> None:
    """A native replaced and every manifest recomputed passes the bag check, but not the archive
    check: the record's sha256 no longer matches the index and the ledger."""
    out = tmp_path / "prod"
    export(seeded, "thread:p2", out)
    lines = records_of(out)
    forged = b'{"forged":true}'
    import hashlib

    digest = hashlib.sha256(forged).hexdigest()
    (out / "data" / str(lines[0]["native"])).write_bytes(forged)
    lines[0]["object_sha256"] = digest
    (out / "data/manifest/records.jsonl").write_text(
        "".join(json.dumps(x, ensure_ascii=False, sort_keys=True) + "\n" for x in lines),
        encoding="utf-8",
    )
    bag = bagit.Bag(str(out))
    bag.save(manifests=True)
    assert verify_bundle(out).ok  # without the archive nothing contradicts it
    problems = verify_bundle(out, seeded.app.engine, seeded.app.store).problems
    assert any("BUL0000001: record" in p and "in the archive" in p for p in problems)
    assert any("ledger entry" in p for p in problems)


# -- interruption, resumption, full disk -------------------------------------------------------


def test_interrupted_export_resumes_to_the_same_bundle(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """Killed after a checkpoint, an export leaves only OUT.partial; --resume finishes it with the
    same natives and load file as an uninterrupted run (of the same archive elsewhere: here its
    numbers are taken)."""
    inst = sqlite_instance
    captures = [post(f"p{t}", minutes=t * 100) for t in range(5)]
    captures += [comment(f"c{t}-{n}", f"p{t}", t * 100 + n + 1) for t in range(5) for n in range(9)]
    inst.app.archiver.archive(captures)
    twin = make_instance(tmp_path / "twin", f"sqlite:///{tmp_path / 'twin' / 'b.db'}")
    twin.app.archiver.archive(captures)

    def stop(done: int, total: int) -> None:
        if done >= 20:
            raise KeyboardInterrupt

    out = tmp_path / "prod"
    with pytest.raises(KeyboardInterrupt):
        export(inst, "account:feed", out, chunk=7, progress=stop)
    assert not out.exists() and partial_dir(out).is_dir()
    with pytest.raises(Refused, match="interrupted export") as refused:
        export(inst, "account:feed", out)
    assert "--resume" in error_line(refused.value)
    result = export(inst, "account:feed", out, chunk=7, resume=True)
    assert result.resumed and not partial_dir(out).exists()
    bagit.Bag(str(out)).validate()
    clean = tmp_path / "clean"
    export(twin, "account:feed", clean)
    twin.app.close()
    for rel in (
        "loadfile/production.dat",
        "manifest/records.jsonl",
        "threads/index.html",
        "threads/BUL0000021.html",  # the thread the interruption cut in two
    ):
        assert (out / "data" / rel).read_bytes() == (clean / "data" / rel).read_bytes(), rel
    assert (out / "manifest-sha256.txt").read_text().count("\n") == (
        clean / "manifest-sha256.txt"
    ).read_text().count("\n")
    assert "Resumed after interruption" in (out / "data/custody/chain-of-custody.md").read_text()


def _thread_with_wire(t: int, size: int) -> tuple[list[Capture], Exchange]:
    """A post and its comments, and the platform's answer that listed them (kept as WARC)."""
    captures = [post(f"w{t}", minutes=t * 100)] + [
        comment(f"w{t}c{n}", f"w{t}", t * 100 + n) for n in range(1, size)
    ]
    body = b'{"data":[' + b",".join(c.item.raw for c in captures) + b"]}"
    exchange = Exchange(
        at=POSTED + timedelta(minutes=t * 100),
        method="GET",
        url=f"https://graph.facebook.com/v26.0/w{t}/comments",
        request_headers=(("Accept", "*/*"),),
        status=200,
        reason="OK",
        response_headers=(("Content-Type", "application/json"),),
        body=body,
    )
    return captures, exchange


def _manifest_names(bag: Path) -> list[str]:
    lines = (bag / "manifest-sha256.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("  ", 1)[1] for line in lines]


def _payload_lines(bag: Path) -> set[str]:
    """The manifest lines of what two archives of the same captures must produce alike (a
    WARC file by name only: each archive's WARC records have their own ids and dates)."""
    same = ("data/natives/", "data/text/", "data/loadfile/", "data/threads/")
    lines = (bag / "manifest-sha256.txt").read_text(encoding="utf-8").splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    return {x for x, name in zip(lines, names, strict=True) if name.startswith(same)} | {
        name for name in names if name.startswith("data/warc/")
    }


def test_an_export_stopped_between_checkpoints_resumes_with_nothing_twice_or_missing(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """Given an export that stops in the middle of a chunk (files of records after its last
    checkpoint already written, a thread page half written), when it is resumed, then the bag
    verifies, every file on disk is in the manifest exactly once, every record is there once,
    and its payload is the payload of an uninterrupted export of the same archive."""
    inst = sqlite_instance
    twin = make_instance(tmp_path / "twin", f"sqlite:///{tmp_path / 'twin' / 'b.db'}")
    for t in range(3):
        captures, exchange = _thread_with_wire(t, 12)
        inst.app.archiver.archive(captures, wire=[exchange])
        twin.app.archiver.archive(captures, wire=[exchange])
    with Session(inst.app.engine) as session:
        victim = session.exec(select(Record).where(col(Record.remote_id) == "w1c6")).one()
    store = inst.app.store
    assert isinstance(store, LocalStore)
    path = store.path_of(object_key(victim.object_sha256))
    intact = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(intact.replace(b"comment", b"COMMENT"))
    out = tmp_path / "prod"
    with pytest.raises(IntegrityError, match=f"record {victim.id} "):
        export(inst, "account:feed", out, chunk=5)  # the victim is the 18th: chunk 16-20
    partial = partial_dir(out)
    journal = json.loads((partial / "journal.json").read_text())
    assert journal["done"] == 15
    # written after the checkpoint, named by no journal: written again on resume
    assert (partial / "bag/data/natives/0001/BUL0000016.json").exists()
    path.write_bytes(intact)
    result = export(inst, "account:feed", out, chunk=5, resume=True)
    assert result.resumed and result.records == 36
    bagit.Bag(str(out)).validate()
    report = verify_bundle(out, inst.app.engine, inst.app.store)
    assert report.ok, report.problems
    names = _manifest_names(out)
    assert len(names) == len(set(names))
    on_disk = {p.relative_to(out).as_posix() for p in (out / "data").rglob("*") if p.is_file()}
    assert set(names) == on_disk
    assert [r["bates"] for r in records_of(out)] == [f"BUL{n:07d}" for n in range(1, 37)]
    assert len(dat_rows(out)) == 36
    assert len(list((out / "data/warc").rglob("*.warc.gz"))) == 36
    clean = tmp_path / "clean"
    export(twin, "account:feed", clean, chunk=5)
    twin.app.close()
    assert _payload_lines(out) == _payload_lines(clean)
    unwired = [{k: v for k, v in r.items() if k != "warc_sha256"} for r in records_of(out)]
    assert unwired == [
        {k: v for k, v in r.items() if k != "warc_sha256"} for r in records_of(clean)
    ]


def test_a_file_hashed_as_it_was_written_is_named_when_altered(
    seeded: Instance, tmp_path: Path
) -> None:
    """The load file, a thread page and the records manifest are hashed while they are
    appended, never read back: a byte changed in any of them afterwards fails verify."""
    out = tmp_path / "prod"
    export(seeded, "account:feed", out)
    assert verify_bundle(out).ok
    for rel in ("loadfile/production.dat", "threads/BUL0000001.html"):
        target = out / "data" / rel
        data = bytearray(target.read_bytes())
        data[-2] ^= 0x01
        target.write_bytes(bytes(data))
    problems = "\n".join(verify_bundle(out).problems)
    assert "data/loadfile/production.dat: altered" in problems
    assert "data/threads/BUL0000001.html: altered" in problems
    manifest = out / "manifest-sha256.txt"
    manifest.write_text(manifest.read_text().replace("data/text/", "data/TEXT/", 1))
    assert "manifest-sha256.txt" in "\n".join(verify_bundle(out).problems)


def test_without_syncfs_an_export_syncs_file_by_file(
    seeded: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the system has no syncfs, each batch's files and new folders are fsynced one by
    one (the slow path), and the bag is the same."""
    monkeypatch.setattr(store_files, "_SYNCFS", None)
    out = tmp_path / "prod"
    result = export(seeded, "account:feed", out, chunk=3)
    assert result.records == 8
    bagit.Bag(str(out)).validate()
    assert verify_bundle(out).ok


def test_the_journal_names_a_chunk_only_after_a_barrier_begun_after_its_files(
    sqlite_instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk's barrier runs while the next chunk is written; still, the journal on disk
    at any barrier names no record whose files were not already there at the barrier
    before it, and the bag is whole."""
    inst = sqlite_instance
    captures = [post(f"p{t}", minutes=t * 100) for t in range(3)]
    captures += [comment(f"c{t}-{n}", f"p{t}", t * 100 + n + 1) for t in range(3) for n in range(6)]
    inst.app.archiver.archive(captures)
    out = tmp_path / "prod"
    partial = partial_dir(out)
    real = store_files._SYNCFS
    assert real is not None
    seen: list[tuple[int, int]] = []  # (records the journal names, natives on disk) per barrier

    def syncfs(fd: int) -> int:
        journal = partial / "journal.json"
        named = json.loads(journal.read_text())["done"] if journal.exists() else 0
        natives = partial / "bag/data/natives"
        on_disk = sum(1 for p in natives.rglob("*.json") if ".raw." not in p.name)
        seen.append((named, on_disk))
        return int(real(fd))

    monkeypatch.setattr(store_files, "_SYNCFS", syncfs)
    result = export(inst, "account:feed", out, chunk=4)
    assert result.records == 21
    checkpoints = [named for named, _ in seen]
    assert checkpoints[-1] == 21 and len(seen) >= 7  # one barrier per chunk, then the end
    for (_, before), (named, _) in pairwise(seen):
        assert named <= before
    bagit.Bag(str(out)).validate()
    assert verify_bundle(out).ok


def test_resume_reads_a_plan_written_without_item_ranges(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """An interrupted export whose plan predates item ranges (three columns) resumes to a valid
    bag; its remaining records are rendered as single versions."""
    inst = sqlite_instance
    inst.app.archiver.archive([post("p1")] + [comment(f"c{n}", "p1", n) for n in range(1, 9)])

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "prod"
    with pytest.raises(KeyboardInterrupt):
        export(inst, "thread:p1", out, chunk=4, progress=stop)
    plan = partial_dir(out) / "plan.tsv"
    lines = plan.read_text(encoding="ascii").splitlines()
    assert all(line.count("\t") == 4 for line in lines)
    plan.write_text("".join("\t".join(line.split("\t")[:3]) + "\n" for line in lines))
    result = export(inst, "thread:p1", out, chunk=4, resume=True)
    assert result.records == 9
    bagit.Bag(str(out)).validate()
    page = (out / "data/threads/BUL0000001.html").read_text(encoding="utf-8")
    assert page.count("<article") == page.count("</article>") == 9


def test_resume_refuses_another_scope(seeded: Instance, tmp_path: Path) -> None:
    """A partial export of one query is not continued as another."""
    out = tmp_path / "prod"
    with pytest.raises(KeyboardInterrupt):
        export(seeded, "account:feed", out, chunk=2, progress=_interrupt)
    with pytest.raises(Refused, match="another scope"):
        export(seeded, "thread:p1", out, resume=True)


def _interrupt(done: int, total: int) -> None:
    raise KeyboardInterrupt


def test_full_disk_is_one_line_and_resumable(sqlite_instance: Instance, small_disk: Path) -> None:
    """The disk fills mid-export: a one-line error, nothing that looks complete, and the export
    finishes with --resume once there is room."""
    inst = sqlite_instance
    inst.app.archiver.archive(
        [post("p1")] + [comment(f"c{n}", "p1", n, text="x" * 3000) for n in range(400)]
    )
    out = small_disk / "prod"
    # without PDFs: a page of 400 comments of 3,000 characters renders slowly, beside the point
    with pytest.raises(ArchiveError, match="no space left") as caught:
        export(inst, "thread:p1", out, chunk=50, pdf=False)
    assert "\n" not in str(caught.value) and "--resume" in error_line(caught.value)
    assert not out.exists() and partial_dir(out).exists()
    output = run(
        inst,
        "export",
        "--query",
        "thread:p1",
        "--out",
        str(out),
        "--resume",
        "--no-pdf",
        "--as",
        "clerk1",
        "--quiet",
        code=1,
    )
    assert output.count("\n") == 2 and "no space left" in output  # warning line + error line
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    result = export(inst, "thread:p1", out, chunk=50, resume=True, pdf=False)
    assert result.records == 401
    bagit.Bag(str(out)).validate()
    assert not partial_dir(out).exists()


# -- scale -----------------------------------------------------------------------------------


def test_ten_thousand_comment_thread(sqlite_instance: Instance, tmp_path: Path) -> None:
    """One thread of 10,000 comments: one attachment range, posted order, a valid bag."""
    inst = sqlite_instance
    archiver = inst.app.archiver
    archiver.archive_batch(
        [post("big")] + [comment(f"c{n:05d}", "big", n) for n in range(9_999, -1, -1)]
    )
    began = time.monotonic()
    out = tmp_path / "big"
    result = export(inst, "thread:big", out, pdf=False)  # the HTML's streaming is tested here
    elapsed = time.monotonic() - began
    assert result.records == 10_001
    rows = dat_rows(out)
    assert {(r["BEGATTACH"], r["ENDATTACH"]) for r in rows} == {("BUL0000001", "BUL0010001")}
    assert [r["REMOTEID"] for r in rows[1:4]] == ["c00000", "c00001", "c00002"]
    bagit.Bag(str(out)).validate()
    print(f"10,001 records exported in {elapsed:.1f} s")


# -- the command line ----------------------------------------------------------------------------


def test_cli_export_and_verify(seeded: Instance, tmp_path: Path) -> None:
    """export --query --out --json prints one object with an id; export verify says OK."""
    out = tmp_path / "prod"
    data = json.loads(
        run(
            seeded,
            "export",
            "--query",
            "account:feed",
            "--out",
            str(out),
            "--as",
            "clerk1",
            "--json",
        )
        .strip()
        .splitlines()[-1]
    )
    assert data["id"] == "ad-hoc-query" and data["records"] == 8
    assert data["first_bates"] == "BUL0000001" and data["last_bates"] == "BUL0000008"
    output = run(seeded, "export", "verify", str(out))
    assert output.strip().splitlines()[-1].startswith("OK:") and "against the archive" in output
    plain = run(seeded, "export", "verify", str(out), "--no-archive", "--json")
    assert json.loads(plain)["archive_checked"] is False


def test_bates_prefix_and_start_from_settings(tmp_path: Path) -> None:
    """[agency] bates_prefix and --bates-start shape every number."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'b.db'}", "")
    try:
        inst.config.write_text(
            inst.config.read_text().replace("[agency]\n", '[agency]\nbates_prefix = "LPD-2026-"\n')
        )
        inst.app.archiver.archive([post("p1"), comment("c1", "p1", 1)])
        out = tmp_path / "prod"
        run(
            inst,
            "export",
            "--query",
            "thread:p1",
            "--out",
            str(out),
            "--bates-start",
            "501",
            "--as",
            "clerk1",
            "--quiet",
        )
        assert [r["BEGBATES"] for r in dat_rows(out)] == ["LPD-2026-0000501", "LPD-2026-0000502"]
        assert (out / "data/natives/0001/LPD-2026-0000501.json").exists()
    finally:
        inst.app.close()


def test_export_needs_a_clerk_when_users_are_configured(tmp_path: Path) -> None:
    """With [users], only a clerk may export."""
    inst = make_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'b.db'}",
        '\n[users.clerk1]\nroles = ["clerk"]\n'
        '[users.disp]\nroles = ["dispatcher"]\nos_user = "disp"\n',
    )
    try:
        output = run(
            inst,
            "export",
            "--query",
            "account:feed",
            "--out",
            str(tmp_path / "o"),
            code=1,
            login="disp",
        )
        assert "does not hold the clerk role" in output
    finally:
        inst.app.close()


def test_shutil_copy_of_bundle_still_verifies(seeded: Instance, tmp_path: Path) -> None:
    """A bundle copied to another place (another machine) verifies without a database."""
    out = tmp_path / "prod"
    export(seeded, "account:feed", out)
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(out, moved)
    assert verify_bundle(moved).ok


def test_dat_line_matches_field_by_field_escaping() -> None:
    """The whole-line escaping gives what escaping each field gives, separators inside fields
    included, and parses back."""
    import random

    from bulletin.archiver.export import loadfile

    rng = random.Random(8)
    alphabet = ["a", "þ", "þþ", "\r", "\n", "\r\n", "\x14", "®", "é", " ", "🚓", ""]
    for _ in range(5000):
        values = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(1, 5))
        ]
        line = loadfile.dat_line(values)
        assert line == loadfile.SEPARATOR.join(loadfile._dat_field(v) for v in values) + "\r\n"
        if not any(c in v for v in values for c in "\r\n®"):
            assert parse_dat(line) == [values]


def test_lines_of_a_chunk_are_the_lines_of_its_records_one_by_one() -> None:
    """The CSV rows a chunk writes in one piece are what writing each row alone gives (quotes,
    separators and newlines in fields included), and the times the records manifest gives are
    those of ``iso_utc``, whatever the zone and precision."""
    from zoneinfo import ZoneInfo

    from bulletin.archiver.export import loadfile, records
    from bulletin.timeparse import iso_utc

    rows = [["a", 'say "hi"', "x,y", "line\r\nbreak", "", "é 🚓"], ["", "\n"], ["þ\x14"]]
    assert records._csv_rows(rows) == "".join(loadfile.csv_line(r) for r in rows)
    moments = [
        datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 12, 0, 5, 123456, tzinfo=UTC),
        datetime(2026, 3, 2, 12, 0, 5, 1000, tzinfo=UTC),
        datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),
        datetime(2026, 3, 2, 12, 0),
    ]
    for when in moments:
        assert records._iso(when) == iso_utc(when)
    assert records._iso(None) == ""


def test_production_without_renderings(seeded: Instance, tmp_path: Path) -> None:
    """--no-renderings leaves the thread pages out and says so; the rest is the same bag."""
    out = tmp_path / "review"
    output = run(
        seeded, "export", "--query", "account:feed", "--out", str(out), "--no-renderings",
        "--quiet", "--as", "clerk1",
    )  # fmt: skip
    assert "exported 8 records" in output
    bagit.Bag(str(out)).validate()
    assert not (out / "data/threads").exists()
    assert "made without renderings" in (out / "data/README.txt").read_text()
    assert len(dat_rows(out)) == 8 and verify_bundle(out, None, None).ok
    for page in ("custody/chain-of-custody.html", "redactions/redaction-log.html"):
        assert "threads/index.html" not in (out / "data" / page).read_text(), page


def test_zip_member_beside_the_work_directory_is_unsafe(tmp_path: Path) -> None:
    """A member that resolves to a sibling sharing the work directory's name as a prefix
    (work-evil beside work) is refused before anything is extracted."""
    from bulletin.archiver.export.verify import _bag_root

    bundle = tmp_path / "bad.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("bag/bagit.txt", "BagIt-Version: 1.0\n")
        archive.writestr("../work-evil/x.txt", "outside")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UsageError, match=re.escape("unsafe path '../work-evil/x.txt'")):
        _bag_root(bundle, work)
    assert list(work.iterdir()) == []


# -- the register of Bates numbers -----------------------------------------------------------


def issued(inst: Instance) -> list[tuple[int, int]]:
    """The Bates ranges in the register, in order."""
    with Session(inst.app.engine) as session:
        rows = session.exec(select(BatesRange).order_by(col(BatesRange.first))).all()
    return [(r.first, r.last) for r in rows]


def test_each_production_continues_the_bates_numbers_and_an_overlap_is_refused(
    seeded: Instance, tmp_path: Path
) -> None:
    """A second production starts after the first; --bates-start into an issued range is
    refused with one line and leaves nothing behind; one past the end is taken, and the next
    production continues after it."""
    first = export(seeded, "thread:p1", tmp_path / "a")
    second = export(seeded, "thread:p2", tmp_path / "b")
    assert (first.first_bates, first.last_bates) == ("BUL0000001", "BUL0000006")
    assert (second.first_bates, second.last_bates) == ("BUL0000007", "BUL0000008")
    assert [r["BEGBATES"] for r in dat_rows(tmp_path / "b")] == ["BUL0000007", "BUL0000008"]
    out = tmp_path / "c"
    args = ("export", "--query", "account:feed", "--out", str(out), "--as", "clerk1", "--quiet")
    refused = run(seeded, *args, "--bates-start", "3", code=1)
    assert len([line for line in refused.splitlines() if "error" in line]) == 1
    assert "BUL0000003" in refused and "overlap BUL0000001 to BUL0000006" in refused
    assert not out.exists() and not partial_dir(out).exists()
    run(seeded, *args, "--bates-start", "101")
    assert dat_rows(out)[0]["BEGBATES"] == "BUL0000101"
    late = ("export", "--query", "account:feed", "--out", str(tmp_path / "e"), "--as", "clerk1")
    refused = run(seeded, *late, "--bates-start", "95", code=1)  # its end would overlap
    assert "BUL0000095 to BUL0000102 overlap BUL0000101 to BUL0000108" in refused
    assert not (tmp_path / "e").exists() and not partial_dir(tmp_path / "e").exists()
    assert export(seeded, "thread:p2", tmp_path / "d").first_bates == "BUL0000109"
    assert issued(seeded) == [(1, 6), (7, 8), (101, 108), (109, 110)]
    assert "OK:" in run(seeded, "archive", "verify")


def test_a_resumed_export_keeps_the_range_it_took(seeded: Instance, tmp_path: Path) -> None:
    """An interrupted export holds its numbers while another production is made; resumed, it
    finishes with them; another first number for it is refused."""
    out = tmp_path / "prod"
    with pytest.raises(KeyboardInterrupt):
        export(seeded, "account:feed", out, chunk=2, progress=_interrupt)
    meanwhile = export(seeded, "thread:p2", tmp_path / "other")
    assert meanwhile.first_bates == "BUL0000009"
    with pytest.raises(Refused, match="numbered from BUL0000001"):
        export(seeded, "account:feed", out, resume=True, bates_start=20)
    result = export(seeded, "account:feed", out, chunk=2, resume=True)
    assert (result.first_bates, result.last_bates) == ("BUL0000001", "BUL0000008")
    assert issued(seeded) == [(1, 8), (9, 10)]


def test_the_register_of_bates_numbers_comes_back_from_the_store(
    seeded: Instance, tmp_path: Path
) -> None:
    """The database is lost: rebuild-index brings the issued ranges back from the store, and
    the next production goes on after them."""
    export(seeded, "account:feed", tmp_path / "a")
    lose_database(seeded)
    run(seeded, "archive", "rebuild-index")
    assert issued(seeded) == [(1, 8)]
    assert export(seeded, "thread:p1", tmp_path / "b").first_bates == "BUL0000009"
    assert "OK:" in run(seeded, "archive", "verify")
