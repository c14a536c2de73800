"""The Atom feed connector: valid Atom 1.0, atomic writes, idempotent by key."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET

from bulletin.clock import ManualClock
from bulletin.connectors.base import OutgoingPost
from bulletin.connectors.feed import ATOM, FeedConnector
from bulletin.errors import MalformedResponse, Retryable
from tests.plugins.bulletin_app import Instance

A = f"{{{ATOM}}}"


def feed(tmp_path: Path, max_entries: int = 500) -> FeedConnector:
    clock = ManualClock(datetime(2026, 11, 25, 15, tzinfo=UTC))
    return FeedConnector(
        "feed", tmp_path / "feed.xml", "Police notices", "https://pd.example", max_entries, clock
    )


def test_valid_atom_with_required_elements(tmp_path: Path) -> None:
    """Feed and entries carry id, title, updated and an author, as RFC 4287 requires."""
    connector = feed(tmp_path)
    connector.publish(
        OutgoingPost(
            key="notice-1",
            text="Road closed 🚧 <Main & 1st>",
            category="road-closure",
            link="https://pd.example/n/1",
        )
    )
    root = SafeET.parse(tmp_path / "feed.xml").getroot()
    assert root.tag == f"{A}feed"
    for tag in ("id", "title", "updated", "author"):
        assert root.find(f"{A}{tag}") is not None, tag
    [entry] = root.findall(f"{A}entry")
    for tag in ("id", "title", "updated", "published", "content"):
        assert entry.find(f"{A}{tag}") is not None, tag
    assert entry.findtext(f"{A}content") == "Road closed 🚧 <Main & 1st>"
    # no temp file left behind; the writers' lock file stays beside the feed
    assert sorted(tmp_path.iterdir()) == [tmp_path / "feed.xml", tmp_path / "feed.xml.lock"]


def test_the_feed_keeps_atom_as_its_default_namespace_after_a_pdf_export(
    tmp_path: Path,
) -> None:
    """WeasyPrint (an export's PDF pages) gives ElementTree's empty prefix to another
    namespace when it is imported, in the daemon's process too: the feed written after it,
    and each entry's raw XML, still read ``<feed xmlns="...Atom">``, never ``<ns0:feed>``."""
    import xml.etree.ElementTree as ET

    import weasyprint.pdf.metadata  # noqa: F401  (what an export's PDF imports)

    ET.register_namespace("", "")  # as that import does, whether or not it ran before
    connector = feed(tmp_path)
    connector.publish(OutgoingPost(key="notice-1", text="Road closed", link="https://pd.example"))
    written = (tmp_path / "feed.xml").read_text(encoding="utf-8")
    assert f'<feed xmlns="{ATOM}"' in written and "ns0" not in written
    [item] = connector.list_posts().items
    assert item.raw.startswith(f'<entry xmlns="{ATOM}"'.encode()) and b"ns0" not in item.raw


def test_publish_is_idempotent_by_key(tmp_path: Path) -> None:
    """Publishing the same key twice returns the first entry and adds nothing."""
    connector = feed(tmp_path)
    first = connector.publish(OutgoingPost(key="notice-7", text="Parade at noon"))
    again = connector.publish(OutgoingPost(key="notice-7", text="Parade at noon"))
    assert first.remote_id == again.remote_id
    assert len(connector.list_posts().items) == 1
    found = connector.find_published(OutgoingPost(key="notice-7", text="x"), datetime.now(UTC))
    assert found is not None and found.remote_id == first.remote_id
    assert (
        connector.find_published(OutgoingPost(key="notice-8", text="x"), datetime.now(UTC)) is None
    )


def test_newest_first_since_id_and_cap(tmp_path: Path) -> None:
    """Entries are newest first, since_id stops at the known one, and the cap drops the oldest."""
    connector = feed(tmp_path, max_entries=3)
    for i in range(5):
        connector.publish(OutgoingPost(key=f"n{i}", text=f"Notice {i}"))
    ids = [p.remote_id for p in connector.list_posts().items]
    assert ids == [connector.entry_id(f"n{i}") for i in (4, 3, 2)]
    newer = connector.list_posts(since_id=connector.entry_id("n3")).items
    assert [p.remote_id for p in newer] == [connector.entry_id("n4")]


def test_corrupt_feed_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    """A feed file that is not XML is kept as it is and reported with its raw bytes."""
    (tmp_path / "feed.xml").write_bytes(b"<feed><oops")
    with pytest.raises(MalformedResponse) as caught:
        feed(tmp_path).publish(OutgoingPost(key="k", text="t"))
    assert caught.value.raw == b"<feed><oops"
    assert (tmp_path / "feed.xml").read_bytes() == b"<feed><oops"


def test_unwritable_location_is_retryable(tmp_path: Path) -> None:
    """A feed path under a regular file: a retryable error naming the path."""
    (tmp_path / "file").write_text("x")
    connector = FeedConnector("feed", tmp_path / "file" / "feed.xml", "t", "")
    with pytest.raises(Retryable, match="cannot write"):
        connector.publish(OutgoingPost(key="k", text="t"))


def _publish_many(path: str, prefix: str, count: int, start: object) -> None:
    """One writer process: wait for the start signal, then publish ``count`` entries."""
    start.wait(30)  # type: ignore[attr-defined]
    connector = FeedConnector("feed", Path(path), "Police notices", "", max_entries=1000)
    for i in range(count):
        connector.publish(OutgoingPost(key=f"{prefix}-{i}", text=f"Notice {prefix} {i}"))


def test_concurrent_writers_in_two_processes_lose_no_entry(tmp_path: Path) -> None:
    """Two processes publishing many entries at once to one feed file: every entry is in it."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    path = str(tmp_path / "feed.xml")
    writers = [
        context.Process(target=_publish_many, args=(path, name, 150, start)) for name in "ab"
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    ids = {p.remote_id for p in feed(tmp_path, max_entries=1000).list_posts().items}
    expected = {f"urn:bulletin:feed:{name}-{i}" for name in "ab" for i in range(150)}
    assert ids == expected


def _links(element: object) -> dict[str, str]:
    return {x.get("rel", "alternate"): x.get("href", "") for x in element.findall(f"{A}link")}  # type: ignore[attr-defined]


def test_feed_and_entries_carry_links_a_reader_can_follow(tmp_path: Path) -> None:
    """The feed names where it is served (rel=self, derived beside the agency's page) and
    its page; every entry opens a page: its notice's link, else the page at its anchor."""
    connector = feed(tmp_path)
    connector.publish(
        OutgoingPost(key="notice-1", text="Road closed", link="https://pd.example/n/1")
    )
    connector.publish(OutgoingPost(key="notice-2", text="Parade at noon"))
    root = SafeET.parse(tmp_path / "feed.xml").getroot()
    assert _links(root) == {
        "self": "https://pd.example/feed.xml",
        "alternate": "https://pd.example",
    }
    [self_link] = [x for x in root.findall(f"{A}link") if x.get("rel") == "self"]
    assert self_link.get("type") == "application/atom+xml"
    entries = {e.findtext(f"{A}id"): _links(e) for e in root.findall(f"{A}entry")}
    assert entries == {
        "urn:bulletin:feed:notice-2": {"alternate": "https://pd.example#notice-2"},
        "urn:bulletin:feed:notice-1": {"alternate": "https://pd.example/n/1"},
    }
    assert [p.url for p in connector.list_posts().items] == [
        "https://pd.example#notice-2",
        "https://pd.example/n/1",
    ]


def test_configured_feed_url_reaches_a_feed_written_before(sqlite_instance: Instance) -> None:
    """[accounts.NAME] feed_url is the rel=self link, also of a feed file written before it
    was set (the links are renewed at every write)."""
    instance = sqlite_instance
    path = instance.settings.feed_path("feed")
    path.parent.mkdir(parents=True, exist_ok=True)
    FeedConnector("feed", path, "t", "").publish(OutgoingPost(key="notice-1", text="Old"))
    assert _links(SafeET.parse(path).getroot()) == {}
    account = instance.settings.accounts["feed"].model_copy(
        update={"feed_url": "https://cdn.example/pd/notices.atom"}
    )
    settings = instance.settings.model_copy(update={"accounts": {"feed": account}})
    connector = FeedConnector.from_settings("feed", settings, {})
    connector.publish(OutgoingPost(key="notice-2", text="New"))
    root = SafeET.parse(path).getroot()
    assert _links(root) == {
        "self": "https://cdn.example/pd/notices.atom",
        "alternate": "https://lexingtonma.gov/police",
    }
    assert [_links(e) for e in root.findall(f"{A}entry")] == [
        {"alternate": "https://lexingtonma.gov/police#notice-2"},
        {},
    ]
