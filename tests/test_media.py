"""The agency's own images: pinned in the archive at drafting, and exactly those bytes reach
every platform, the feed, the record of the post and productions."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from sqlmodel import Session, select

from bulletin.archiver import holds
from bulletin.archiver.retention import apply_schedule
from bulletin.archiver.store.base import object_key
from bulletin.archiver.store.local import LocalStore
from bulletin.archiver.verify import verify
from bulletin.config.archive import RetentionSettings, SeriesSettings
from bulletin.errors import UsageError
from bulletin.models import Delivery, Notice, Record, RecordMedia
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.plugins.sandbox import Control
from tests.test_delivery_platforms import drain, worker
from tests.test_delivery_platforms import platforms as platforms  # a fixture
from tests.test_export import export

ATOM = "{http://www.w3.org/2005/Atom}"
ALT = "Photo of Jane Doe, 34, last seen wearing a red coat"


def png(comment: str) -> bytes:
    """A valid one-pixel PNG whose text chunk holds ``comment`` (distinct bytes per text)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\x00" + comment.encode())
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def draft(
    inst: Instance,
    image: Path,
    alt: str = ALT,
    category: str = "missing-person",
    targets: tuple[str, ...] = ("feed", "x", "facebook"),
) -> int:
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft(
            category=category,
            text="Missing: Jane Doe, 34, last seen on Mass Ave. Call 781-862-1212.",
            targets=targets,
            images=[(str(image), alt)],
        ),
        "dispatcher",
        inst.app.store,
    )
    assert notice.id is not None
    return notice.id


def cli_json(inst: Instance, *args: str) -> dict[str, object]:
    result = invoke(inst, *args, "--json")
    assert result.exit_code == 0, result.output
    value: dict[str, object] = json.loads(result.output)
    return value


def test_published_image_is_the_one_drafted(
    platforms: Instance, control: Control, tmp_path: Path
) -> None:
    """The file is removed and another put in its place after drafting: every platform, the
    feed, the archive and a production get the bytes drafted, and notice show lists them."""
    inst = platforms
    original = png("jane doe")
    digest = hashlib.sha256(original).hexdigest()
    image = tmp_path / "jane.png"
    image.write_bytes(original)
    notice_id = draft(inst, image)
    image.unlink()
    image.write_bytes(png("someone else"))  # changed after drafting: never approved
    assert inst.app.store.get(object_key(digest)) == original

    shown = cli_json(inst, "notice", "show", str(notice_id))
    assert shown["media"] == [
        {
            "sha256": digest,
            "size": len(original),
            "mime_type": "image/png",
            "alt": ALT,
            "name": "jane.png",
        }
    ]
    text = invoke(inst, "notice", "show", str(notice_id))
    assert f"sha256 {digest}" in text.output and f"{len(original):,} bytes" in text.output

    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    image.unlink()
    drain(inst, worker(inst))
    with Session(inst.app.engine) as session:
        states = {d.account: d.state for d in session.exec(select(Delivery))}
        records = list(session.exec(select(Record)))
        media_rows = [  # the images (the read-backs' WARC objects are rows too)
            m for m in session.exec(select(RecordMedia)) if m.mime_type != "application/warc"
        ]
    assert states == {"feed": "published", "x": "published", "facebook": "published"}

    state = control.get("state")
    assert [m["sha256"] for m in state["x"]["media"].values()] == [digest]
    assert [m.get("alt_text") for m in state["x"]["media"].values()] == [ALT]
    assert [p["photo"]["sha256"] for p in state["fb"]["posts"].values()] == [digest]

    feed = inst.settings.feed_path("feed")
    enclosures = [
        link
        for link in SafeET.fromstring(feed.read_bytes()).iter(f"{ATOM}link")
        if link.get("rel") == "enclosure"
    ]
    found = [(e.get("href"), e.get("type"), e.get("length"), e.get("title")) for e in enclosures]
    assert found == [(f"media/{digest}.png", "image/png", str(len(original)), ALT)]
    assert (feed.parent / "media" / f"{digest}.png").read_bytes() == original

    assert len(records) == 3 and len(media_rows) == 3
    assert {(m.sha256, m.mime_type, m.size) for m in media_rows} == {
        (digest, "image/png", len(original))
    }
    for record in records:
        snapshot = json.loads(inst.app.store.get(object_key(record.object_sha256)))
        assert snapshot["media"][0]["sha256"] == digest
        assert snapshot["media"][0]["alt_text"] == ALT

    out = tmp_path / "production"
    export(inst, "account:x", out)
    natives = list((out / "data/natives").rglob("*.media-1.png"))
    assert [p.read_bytes() for p in natives] == [original]
    manifest = [
        json.loads(line)
        for line in (out / "data/manifest/records.jsonl").read_text("utf-8").splitlines()
    ]
    assert [m["sha256"] for line in manifest for m in line["media"]] == [digest]
    page = next((out / "data/threads").glob("BUL*.html")).read_text("utf-8")
    assert ALT in page and natives[0].name in page


def test_a_file_that_is_not_an_image_is_refused(platforms: Instance, tmp_path: Path) -> None:
    """A text file named .jpg is refused at drafting with one line naming it; nothing is
    stored and no notice is made."""
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a photo at all\n")
    with pytest.raises(UsageError, match=r"^image .*photo\.jpg is not a JPEG, PNG, GIF or WebP"):
        draft(platforms, fake)
    result = invoke(
        platforms,
        "notice",
        "add",
        "--category",
        "general",
        "--text",
        "Open house Saturday.",
        "--target",
        "feed",
        "--image",
        str(fake),
        "--alt",
        "the station",
        "--as",
        "dispatcher",
    )
    assert result.exit_code == 2  # bad input
    assert (
        result.output.strip()
        .splitlines()[-1]
        .endswith("photo.jpg is not a JPEG, PNG, GIF or WebP image")
    )
    with Session(platforms.app.engine) as session:
        assert session.exec(select(Delivery)).first() is None


def test_verify_retention_and_holds_see_the_records_images(
    instance: Instance, tmp_path: Path
) -> None:
    """A pinned image is no orphan; once published, a longer schedule extends the image with
    the record, a legal hold holds it until released, and verify names a record whose image
    is gone."""
    inst = instance
    data = png("station")
    digest = hashlib.sha256(data).hexdigest()
    image = tmp_path / "station.png"
    image.write_bytes(data)
    notice_id = draft(inst, image, "The station's front door", "community-outreach", ("feed",))
    store = inst.app.store
    assert verify(inst.app.engine, store).notes == []  # pinned, not an orphan
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    drain(inst, worker(inst))
    with Session(inst.app.engine) as session:
        [record] = session.exec(select(Record)).all()
    before = store.head(object_key(digest))
    assert before is not None and before.retain_until == record.retain_until

    series = dict(inst.settings.retention.series)
    series[record.series] = SeriesSettings(period="12y", anchor="posted")
    longer = inst.settings.model_copy(
        update={"retention": RetentionSettings(default_period="7y", series=series)}
    )
    apply_schedule(inst.app.engine, store, longer, inst.clock.now(), "admin1")
    after = store.head(object_key(digest))
    assert after is not None and after.retain_until > before.retain_until

    def image_held() -> bool:
        info = store.head(object_key(digest))
        return info is not None and info.legal_hold

    now, zone = inst.clock.now(), inst.settings.agency.time_zone
    hold, _ = holds.create_hold(
        inst.app.engine,
        store,
        name="open house",
        query=holds.parse_query("account:feed"),
        reason="litigation expected",
        actor="clerk1",
        now=now,
        time_zone=zone,
    )
    assert image_held()
    holds.release_hold(
        inst.app.engine,
        store,
        hold.id or 0,
        reason="settled",
        actor="clerk1",
        now=now,
        settings=inst.settings,
    )
    assert not image_held()

    assert isinstance(store, LocalStore)
    store.path_of(object_key(digest)).unlink()
    report = verify(inst.app.engine, store)
    assert [(p.kind, p.subject) for p in report.problems] == [
        ("object-missing", f"record {record.id}")
    ]


def test_an_image_never_pinned_is_not_read_from_its_path(
    instance: Instance, tmp_path: Path
) -> None:
    """A notice drafted before images were pinned names only a path: delivery fails with
    the reason instead of sending a file nobody's approval covers."""
    inst = instance
    image = tmp_path / "old.png"
    image.write_bytes(png("old"))
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft(category="general", text="Open house Saturday.", targets=["feed"]),
        "dispatcher",
    )
    with Session(inst.app.engine) as session:
        row = session.get(Notice, notice.id)
        assert row is not None
        row.images = [{"path": str(image), "alt": "the station"}]
        session.add(row)
        session.commit()
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
    drain(inst, worker(inst))
    with Session(inst.app.engine) as session:
        [delivery] = session.exec(select(Delivery)).all()
    assert delivery.state == "failed"
    assert delivery.last_error == (
        f"image {image} was not archived when the notice was drafted; draft the notice again"
    )
    assert not inst.settings.feed_path("feed").exists()


def test_more_images_than_a_platform_takes_are_refused(platforms: Instance, tmp_path: Path) -> None:
    """Facebook takes one image per post: two are refused at drafting, never dropped."""
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png("a"))
    second.write_bytes(png("b"))
    draft_of_two = NoticeDraft(
        category="general",
        text="Open house Saturday.",
        targets=["feed", "facebook"],
        images=[(str(first), "front"), (str(second), "back")],
    )
    inst = platforms
    with pytest.raises(UsageError, match=r"'facebook' \(facebook\) takes at most 1 image in"):
        create_notice(
            inst.app.engine, inst.settings, inst.clock, draft_of_two, "dana", inst.app.store
        )


def test_a_template_notice_pins_its_image(instance: Instance, tmp_path: Path) -> None:
    """`notice add --template ... --image` pins the image like any draft: the feed links the
    drafted bytes although the file is gone before publishing."""
    inst = instance
    data = png("template")
    digest = hashlib.sha256(data).hexdigest()
    image = tmp_path / "jane.png"
    image.write_bytes(data)

    def run(*args: str) -> None:
        result = invoke(inst, *args)
        assert result.exit_code == 0, result.output

    run(
        "template",
        "add",
        "missing",
        "--category",
        "missing-person",
        "--text",
        "Missing person: {name}. Call 781-862-1212.",
        "--var",
        "name:str",
        "--as",
        "lt",
    )
    run("template", "approve", "missing", "--by", "chief")
    run(
        "notice",
        "add",
        "--template",
        "missing",
        "--var",
        "name=Jane Doe",
        "--target",
        "feed",
        "--image",
        str(image),
        "--alt",
        ALT,
        "--as",
        "dana",
    )
    image.unlink()
    inst.clock.set(datetime.now(UTC))  # the command line stamped it with the real time
    drain(inst, worker(inst))
    feed = inst.settings.feed_path("feed")
    assert f'href="media/{digest}.png"' in feed.read_text("utf-8")
    assert (feed.parent / "media" / f"{digest}.png").read_bytes() == data
