"""Paths and addresses from outside: an export never lands in the WORM store, and a CAP feed
cannot make Bulletin read local files or internal addresses."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bulletin.cap.feed import poll_feeds
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke

CAP_DATA = Path(__file__).parent.parent / "data" / "cap"


@pytest.mark.parametrize("via_link", [False, True], ids=["path", "symbolic link"])
def test_export_into_the_archive_store_is_refused(
    sqlite_instance: Instance, tmp_path: Path, via_link: bool
) -> None:
    """`export --out` inside the local WORM store (directly or through a symbolic link) is
    refused in one line and writes nothing there."""
    config = str(sqlite_instance.config)
    assert invoke(config, "init").exit_code == 0
    archive = sqlite_instance.settings.archive_path
    assert archive.is_dir()
    before = sorted(p.name for p in archive.iterdir())
    parent = archive
    if via_link:
        parent = tmp_path / "exports"
        parent.symlink_to(archive)
    result = invoke(
        config,
        *("export", "--query", "road", "--out", str(parent / "bundle")),
        *("--as", "clerk", "--quiet"),
    )
    assert result.exit_code == 1, result.output
    errors = [e for e in result.stderr.splitlines() if not e.startswith("bulletin: warning:")]
    assert errors == [
        f"bulletin: error: {parent / 'bundle'} is inside the archive store {archive.resolve()}; "
        "write the export outside it"
    ]
    assert sorted(p.name for p in archive.iterdir()) == before


class _Recording(SimpleHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A directory served over HTTP on 127.0.0.1: its URL, the directory, the paths asked."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []
    handler = functools.partial(type("Handler", (_Recording,), {"seen": seen}), directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, seen
    finally:
        server.shutdown()
        server.server_close()


def _entry(n: int, href: str) -> str:
    return (
        f"<entry><id>urn:example:hostile:{n}</id><title>alert {n}</title>"
        f"<updated>2026-11-25T09:58:00-05:00</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{href}"/></entry>'
    )


@pytest.mark.parametrize("allowed", [False, True], ids=["default", "allowed_hosts"])
def test_cap_feed_cannot_lead_to_files_or_internal_hosts(
    tmp_path: Path, feed_server: tuple[str, Path, list[str]], allowed: bool
) -> None:
    """A polled feed whose entries link to a local file, another host and a cloud metadata
    address gets each refused and nothing fetched; an alert beside the feed on its own host
    (127.0.0.1, as configured) is imported, and a host named in [cap] allowed_hosts is
    fetched from."""
    url, root, seen = feed_server
    port = url.rsplit(":", 1)[1]
    (root / "alert.xml").write_bytes((CAP_DATA / "nws_tornado_warning.xml").read_bytes())
    (root / "secret.xml").write_bytes((CAP_DATA / "nws_frost_advisory.xml").read_bytes())
    entries = [
        _entry(1, "file:///etc/passwd"),
        _entry(2, f"http://localhost:{port}/secret.xml"),
        _entry(3, "http://169.254.169.254/latest/meta-data/"),
        _entry(4, "gopher://127.0.0.1:70/"),
        _entry(5, "alert.xml"),
    ]
    (root / "feed.atom").write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>hostile</title>'
        "<id>urn:example:hostile</id><updated>2026-11-25T09:58:00-05:00</updated>"
        + "".join(entries)
        + "</feed>"
    )
    extra = '\nallowed_hosts = ["localhost"]' if allowed else ""
    config = f'\n[cap]\ntargets = ["feed"]\nfeeds = ["{url}/feed.atom"]{extra}\n'
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", config)
    try:
        results = poll_feeds(inst.app.engine, inst.settings, inst.clock)
    finally:
        inst.app.close()
    by_alert = {r.alert: r for r in results}
    assert by_alert["urn:example:hostile:1"].reason == (
        "file:///etc/passwd: a linked alert is fetched over http or https only; not fetched"
    )
    assert by_alert["urn:example:hostile:3"].reason == (
        "http://169.254.169.254/latest/meta-data/: host 169.254.169.254 is neither the "
        "feed's nor in [cap] allowed_hosts; not fetched"
    )
    assert "http or https only" in (by_alert["urn:example:hostile:4"].reason or "")
    assert [r.outcome for r in results].count("drafted") == (2 if allowed else 1)
    if allowed:
        assert seen == ["/feed.atom", "/secret.xml", "/alert.xml"]
    else:
        assert by_alert["urn:example:hostile:2"].reason == (
            f"http://localhost:{port}/secret.xml: host localhost is neither the feed's nor in "
            "[cap] allowed_hosts; not fetched"
        )
        assert seen == ["/feed.atom", "/alert.xml"]
