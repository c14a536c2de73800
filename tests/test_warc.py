"""What the platform said on the wire, kept as WARC: linked request/response/metadata records
beside each capture, no credential in any of them, retained with their records, produced in
data/warc/ and checked by ``export verify``."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import zipfile
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bulletin.archiver import holds, redaction
from bulletin.archiver.export import export_bundle, verify_bundle
from bulletin.archiver.export.scope import resolve
from bulletin.archiver.export.wacz import surt
from bulletin.archiver.rebuild import rebuild_index
from bulletin.archiver.retention import apply_schedule
from bulletin.archiver.store.base import object_key
from bulletin.archiver.verify import verify
from bulletin.archiver.warc import MIME_TYPE, members, records_in, warc_file
from bulletin.clock import ManualClock
from bulletin.config.archive import RetentionSettings
from bulletin.connectors.http import platform_session
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, DEFAULT_X_ACCOUNT, SandboxServer
from bulletin.connectors.wire import recording
from bulletin.errors import RetentionViolation
from bulletin.models import RecordMedia
from tests.plugins.bulletin_app import Instance
from tests.plugins.capture import comments, fb_post, records, replies, run, x_post
from tests.plugins.sandbox import Control
from tests.test_delivery_platforms import approve, drain, worker
from tests.test_identities import lose_database

#: every credential value that goes on the wire to the sandbox
SECRETS = [
    DEFAULT_X_ACCOUNT["consumer_key"],
    DEFAULT_X_ACCOUNT["consumer_secret"],
    DEFAULT_X_ACCOUNT["access_token"],
    DEFAULT_X_ACCOUNT["access_token_secret"],
    DEFAULT_FB_PAGE["page_token"],
    DEFAULT_FB_PAGE["user_token"],
]


def warc_rows(inst: Instance) -> list[RecordMedia]:
    with Session(inst.app.engine) as session:
        return list(
            session.exec(
                select(RecordMedia)
                .where(col(RecordMedia.mime_type) == MIME_TYPE)
                .order_by(col(RecordMedia.id))
            )
        )


def readable(data: bytes) -> bytes:
    """``data`` and, when it is gzip (one member or many), its inflated bytes too."""
    out = data
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            out += gzip.decompress(data)
    return out


def assert_no_secret(data: bytes, where: str, extra: tuple[str, ...] = ()) -> None:
    text = readable(data)
    for secret in (*SECRETS, *extra):
        assert secret.encode() not in text, f"{secret!r} found in {where}"


def every_object(inst: Instance) -> list[bytes]:
    root = Path(inst.app.settings.archive_path)
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()]


def test_a_sweep_keeps_linked_request_response_and_metadata_records(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A Page sweep stores one WARC object its new records refer to: each request and
    metadata record is concurrent to its response, the metadata names the Bulletin records,
    and the response carries the platform's bytes."""
    post = fb_post(sandbox)
    ids = comments(control, post, count=3)
    result = run(site, "facebook")
    assert (result.result, result.archived) == ("ok", 4)
    by_remote = {r.remote_id: r for r in records(site)}
    rows = warc_rows(site)
    assert {r.record_id for r in rows} == {by_remote[i].id for i in [post, *ids]}
    digests = {r.sha256 for r in rows}
    assert digests and all(d for d in digests)
    named: set[int] = set()
    for digest in digests:
        assert digest is not None
        data = site.app.store.get(object_key(digest))
        assert data[:2] == b"\x1f\x8b"  # gzip per record
        warc = records_in(data)
        assert warc[0]["type"] == "warcinfo"
        responses = {r["id"]: r for r in warc if r["type"] == "response"}
        requests_ = [r for r in warc if r["type"] == "request"]
        metadata = [r for r in warc if r["type"] == "metadata"]
        assert responses and len(requests_) == len(responses)
        assert {r["concurrent_to"] for r in requests_} == set(responses)
        for meta in metadata:
            response = responses[meta["concurrent_to"]]
            assert response["status"] == "200"
            for line in meta["payload"].decode().splitlines():
                _, record_id, _kind, remote_id = line.split()
                named.add(int(record_id))
                assert remote_id.encode() in response["payload"]
    assert named == {by_remote[i].id for i in [post, *ids]}
    assert verify(site.app.engine, site.app.store).ok


def test_nothing_new_keeps_no_warc(site: Instance, sandbox: SandboxServer) -> None:
    """A sweep that finds nothing new adds no WARC object."""
    fb_post(sandbox)
    run(site, "facebook")
    before = len(warc_rows(site))
    site.clock.advance(timedelta(hours=7))
    assert run(site, "facebook").archived == 0
    assert len(warc_rows(site)) == before


def test_no_credential_reaches_a_warc_or_any_object(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """OAuth 1.0a headers (X), access_token query parameters (Graph, echoed back in
    paging.next) and a bearer header never reach a stored object."""
    tweet = x_post(sandbox)
    replies(control, tweet, count=3)
    post = fb_post(sandbox)
    comments(control, post, count=120)  # more than one page: paging.next repeats the token
    assert run(site, "x").result == "ok"
    assert run(site, "facebook").result == "ok"
    assert warc_rows(site)
    objects = every_object(site)
    for data in objects:
        assert_no_secret(data, "a stored object")
    # the answers did carry it (paging.next): kept, with the value redacted
    assert any(b"access_token=REDACTED" in readable(data) for data in objects)
    # a bearer header and a cookie, through the same adapters
    session = platform_session(sandbox.url)
    bearer = "bearer-secret-" + "q" * 20
    with recording(ManualClock(site.clock.now())) as tape:
        session.get(
            f"https://graph.facebook.com/v26.0/{DEFAULT_FB_PAGE['id']}/feed",
            headers={"Authorization": f"Bearer {bearer}", "Cookie": f"sid={bearer}x"},
            params={"oauth_token": bearer + "y", "pagination_token": "keep-me"},
        )
    data = warc_file(tape.drain(), [], site.clock.now())
    assert_no_secret(data, "the bearer WARC", (bearer,))
    assert b"pagination_token=keep-me" in readable(data)
    assert b"Authorization" not in readable(data) and b"Cookie" not in readable(data)


def produce(inst: Instance, query: str, out: Path, **options: Any) -> None:
    scope = resolve(inst.app.engine, inst.settings, None, query)
    export_bundle(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        scope,
        out=out,
        actor="clerk1",
        now=inst.clock.now,
        **options,
    )


def lines(bag: Path) -> list[dict[str, Any]]:
    text = (bag / "data/manifest/records.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_a_production_has_data_warc_that_verifies_and_holds_no_secret(
    site: Instance, sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """Every produced record names its exchange's WARC file under data/warc/; the bag and
    every WARC record verify; no credential is anywhere in the bag."""
    post = fb_post(sandbox)
    ids = comments(control, post, count=120)
    assert run(site, "facebook").result == "ok"
    out = tmp_path / "prod"
    produce(site, "account:facebook", out)
    produced = lines(out)
    assert len(produced) == 121
    for line in produced:
        assert line["warc"] and line["warc"].startswith("warc/")
        data = (out / "data" / line["warc"]).read_bytes()
        types = [r["type"] for r in records_in(data)]
        assert types == ["warcinfo", "request", "response", "metadata"]
        meta = records_in(data)[-1]["payload"].decode()
        assert f"bulletin-record: {line['record_id']} " in meta
    assert {line["remote_id"] for line in produced} == {post, *ids}
    report = verify_bundle(out, site.app.engine, site.app.store)
    assert report.ok, report.problems
    for file in out.rglob("*"):
        if file.is_file():
            assert_no_secret(file.read_bytes(), str(file))


def test_a_tampered_warc_record_is_named_by_export_verify(
    site: Instance, sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A WARC whose response body was changed (and re-gzipped, manifests rewritten to
    match) is still named, one line per record, with its WARC-Record-ID."""
    post = fb_post(sandbox)
    ids = comments(control, post, count=2, message="Detour via Elm")
    assert run(site, "facebook").result == "ok"
    out = tmp_path / "prod"
    produce(site, "account:facebook", out)
    rel = "data/" + next(line["warc"] for line in lines(out) if line["remote_id"] == ids[0])
    target = out / rel
    parts = []
    for raw, plain in members(target.read_bytes()):
        if b"Detour via Elm" in plain:
            plain = plain.replace(b"Detour via Elm", b"Detour via Oak")
            raw = gzip.compress(plain)
        parts.append(raw)
    target.write_bytes(b"".join(parts))
    # a consistent forgery: the bag's manifest and the records manifest rewritten too
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest = out / "manifest-sha256.txt"
    manifest.write_text(
        "".join(
            f"{digest}  {rel}\n" if line.endswith(f"  {rel}") else line + "\n"
            for line in manifest.read_text().splitlines()
        )
    )
    report = verify_bundle(out)
    named = [p for p in report.problems if p.startswith(rel + ": WARC record <urn:uuid:")]
    assert named and all("(response)" in p and "digest" in p for p in named)
    assert all("\n" not in p for p in report.problems)


def add_redaction(inst: Instance, record_id: int | None, match: str) -> None:
    assert record_id is not None
    redaction.add(
        inst.app.engine,
        inst.settings,
        record_id,
        match=match,
        code="26c",
        reason="private phone number of a resident",
        actor="clerk1",
        now=inst.clock.now(),
        store=inst.app.store,
    )


def test_a_redacted_comment_keeps_its_exchange_out_of_a_public_production(
    site: Instance, sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """The answer that carried a comment with text withheld holds that text: a public
    production leaves that exchange's WARC out; the counsel production keeps it."""
    post = fb_post(sandbox)
    [secret] = comments(control, post, message="my phone is 555-0100")
    assert run(site, "facebook").result == "ok"
    [record] = records(site, remote_id=secret)
    add_redaction(site, record.id, "555-0100")
    public, counsel = tmp_path / "public", tmp_path / "counsel"
    produce(site, "account:facebook", public)
    produce(site, "account:facebook", counsel, production="counsel")
    by_remote = {line["remote_id"]: line for line in lines(public)}
    assert by_remote[secret]["warc"] is None and by_remote[post]["warc"]
    for file in public.rglob("*"):
        if file.is_file():
            assert b"555-0100" not in readable(file.read_bytes())
    assert any(line["warc"] for line in lines(counsel))
    assert verify_bundle(public).ok and verify_bundle(counsel).ok


def test_the_warc_object_is_retained_and_held_with_its_records(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """The WARC object is retained as long as the longest of its records (deleting it before
    then is refused), the retention schedule extends it with them, and a legal hold on the
    records holds it past retention; releasing the hold releases it."""
    post = fb_post(sandbox)
    comments(control, post, count=2)
    assert run(site, "facebook").result == "ok"
    store = site.app.store
    rows = warc_rows(site)
    digest = rows[-1].sha256  # the comments' exchanges
    assert digest is not None
    holders = [
        r for r in records(site) if r.id in {w.record_id for w in rows if w.sha256 == digest}
    ]
    key = object_key(digest)
    info = store.head(key)
    assert info is not None and not info.legal_hold
    assert all(r.retain_until is not None and info.retain_until >= r.retain_until for r in holders)
    with pytest.raises(RetentionViolation, match="retained until"):
        store.delete(key, now=site.clock.now())

    longer = site.settings.model_copy(update={"retention": RetentionSettings(default_period="12y")})
    apply_schedule(site.app.engine, store, longer, site.clock.now(), "admin1")
    extended = store.head(key)
    assert extended is not None and extended.retain_until > info.retain_until

    now, zone = site.clock.now(), site.settings.agency.time_zone
    hold, _ = holds.create_hold(
        site.app.engine,
        store,
        name="crash on Elm",
        query=holds.parse_query("account:facebook"),
        reason="litigation expected",
        actor="clerk1",
        now=now,
        time_zone=zone,
    )
    held = store.head(key)
    assert held is not None and held.legal_hold
    with pytest.raises(RetentionViolation, match="legal hold"):
        store.delete(key, now=extended.retain_until + timedelta(days=1))
    holds.release_hold(
        site.app.engine,
        store,
        hold.id or 0,
        reason="settled",
        actor="clerk1",
        now=now,
        settings=site.settings,
    )
    released = store.head(key)
    assert released is not None and not released.legal_hold
    assert verify(site.app.engine, store).ok


def test_a_wacz_package_lists_every_file_with_its_sha256(
    site: Instance, sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """``wacz`` adds data/warc/production.wacz: the WARC files under archive/, a sorted CDXJ
    index of every response, pages, and a datapackage.json whose hashes match; the bag
    still verifies."""
    post = fb_post(sandbox)
    comments(control, post, count=3)
    assert run(site, "facebook").result == "ok"
    out = tmp_path / "prod"
    produce(site, "account:facebook", out, wacz=True)
    package = out / "data/warc/production.wacz"
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        assert {"indexes/index.cdx", "pages/pages.jsonl", "datapackage.json"} <= names
        described = json.loads(archive.read("datapackage.json"))
        for resource in described["resources"]:
            body = archive.read(resource["path"])
            assert resource["hash"] == "sha256:" + hashlib.sha256(body).hexdigest()
        warcs = sorted(n for n in names if n.startswith("archive/"))
        assert len(warcs) == 4
        index = archive.read("indexes/index.cdx").decode().splitlines()
        assert index == sorted(index) and len(index) == 4
        key, _ts, fields = index[0].split(" ", 2)
        entry = json.loads(fields)
        assert key == surt(entry["url"])
        member = archive.read("archive/" + entry["filename"])
        start, length = entry["offset"], entry["length"]
        [record] = records_in(member[start : start + length])
        assert record["type"] == "response" and record["uri"] == entry["url"]
        digest = json.loads(archive.read("datapackage-digest.json"))
        assert (
            digest["hash"]
            == "sha256:" + hashlib.sha256(archive.read("datapackage.json")).hexdigest()
        )
    assert verify_bundle(out, site.app.engine, site.app.store).ok


def test_the_snapshot_at_publish_keeps_the_read_back_as_warc(
    site: Instance, control: Control
) -> None:
    """A published notice's snapshot (the platform's answer read back by id) refers to the
    WARC of that read-back, with no credential in it."""
    approve(site, "Route 2 eastbound closed at exit 53 until 4 pm.", "x", "facebook")
    drain(site, worker(site))
    published = records(site)
    assert sorted(r.platform for r in published) == ["facebook", "x"]
    rows = warc_rows(site)
    assert {r.record_id for r in rows} == {r.id for r in published}
    for row in rows:
        assert row.sha256 is not None
        data = site.app.store.get(object_key(row.sha256))
        assert_no_secret(data, "a read-back WARC")
        kinds = [r["type"] for r in records_in(data)]
        assert kinds.count("metadata") == 1 and "response" in kinds


def test_rebuilding_the_index_keeps_each_record_s_warc(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """``archive rebuild-index --replace`` brings every record back with its WARC object."""
    post = fb_post(sandbox)
    comments(control, post, count=2)
    assert run(site, "facebook").result == "ok"
    before = {(r.record_id, r.sha256, r.url) for r in warc_rows(site)}
    assert before
    rebuild_index(site.app.engine, site.app.store, site.clock.now(), replace=True)
    assert {(r.record_id, r.sha256, r.url) for r in warc_rows(site)} == before
    assert verify(site.app.engine, site.app.store).ok


def test_an_index_rebuilt_after_the_database_was_lost_links_each_warc_again(
    site: Instance, sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """Capture with WARC; the database is lost; ``rebuild-index`` on the empty one finds each
    WARC object in the store and links it to the records its metadata names; a production
    made then carries data/warc/ and `export verify` passes, WARC digests included."""
    post = fb_post(sandbox)
    comments(control, post, count=2)
    assert run(site, "facebook").result == "ok"
    before = {(r.record_id, r.sha256, r.url) for r in warc_rows(site)}
    assert len(before) == 3
    lose_database(site)
    assert warc_rows(site) == []
    report = rebuild_index(site.app.engine, site.app.store, site.clock.now())
    assert report.problems == [] and report.warcs == len({sha for _, sha, _ in before})
    assert {(r.record_id, r.sha256, r.url) for r in warc_rows(site)} == before
    assert verify(site.app.engine, site.app.store).ok
    again = rebuild_index(site.app.engine, site.app.store, site.clock.now(), replace=True)
    assert again.warcs == 0 and len(warc_rows(site)) == 3  # kept aside, not linked twice
    out = tmp_path / "production"
    scope = resolve(site.app.engine, site.settings, None, "account:facebook")
    export_bundle(
        site.app.engine, site.app.store, site.settings, scope, out=out, actor="clerk1",
        now=site.clock.now, pdf=False,
    )  # fmt: skip
    assert len(list((out / "data/warc").rglob("*.warc.gz"))) == 3
    report_bundle = verify_bundle(out, site.app.engine, site.app.store)
    assert report_bundle.ok, report_bundle.problems
