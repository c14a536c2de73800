"""The agency's own Atom 1.0 feed (RFC 4287), written atomically to a file.

Its entries are its posts; it has no comments. Publishing is idempotent by the post's key:
the entry id is ``urn:bulletin:<account>:<key>``, and an entry already in the file is returned
instead of being added again.

A post's images are written beside the feed, ``media/<sha256>.<ext>``, before the entry that
links them (``link rel="enclosure"`` with their type and length, the alt text as its title);
the link is relative, so it resolves against wherever the feed is served from.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import html
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from defusedxml import ElementTree as SafeET

from bulletin.clock import Clock, SystemClock
from bulletin.config.accounts import FeedAccountSettings
from bulletin.config.settings import Settings
from bulletin.connectors.base import (
    IMAGE_EXTENSIONS,
    Connector,
    Limits,
    Media,
    OutgoingPost,
    Page,
    PublishResult,
    RemoteItem,
)
from bulletin.errors import MalformedResponse, Rejected, Retryable
from bulletin.files import write_atomically
from bulletin.names import text_problem
from bulletin.timeparse import iso_utc, parse_iso

ATOM = "http://www.w3.org/2005/Atom"
TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
ET.register_namespace("", ATOM)
THREADING = "http://purl.org/syndication/thread/1.0"  # RFC 4685
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"  # xml:lang, per entry
ET.register_namespace("at", TOMBSTONES)
ET.register_namespace("thr", THREADING)
MEDIA_DIR = "media"  # beside the feed file


def _q(tag: str) -> str:
    return f"{{{ATOM}}}{tag}"


def _atom_xml(element: ET.Element) -> bytes:
    """``element`` as XML with Atom as the default namespace (``<feed xmlns="...">``).

    ElementTree's prefixes are one registry for the whole process, and a prefix names one
    namespace: another library's registration of the empty prefix (WeasyPrint's, when an
    export renders a PDF) would otherwise turn every later feed into ``<ns0:feed>``. So the
    Atom default is registered again at each serialisation."""
    ET.register_namespace("", ATOM)
    data: bytes = ET.tostring(element, encoding="utf-8")
    return data


class FeedConnector(Connector):
    """An Atom feed file the agency's website serves."""

    platform = "feed"
    keeps_keys = True

    def __init__(
        self,
        name: str,
        path: Path,
        title: str,
        link: str,
        max_entries: int = 500,
        clock: Clock | None = None,
        feed_url: str = "",
    ) -> None:
        super().__init__(name)
        self.path = path
        self.title = title or name
        self.link = link
        self.max_entries = max_entries
        self.clock = clock or SystemClock()
        # where readers fetch the feed (rel="self"): given, else beside the link's page
        self.feed_url = feed_url or (f"{link.rstrip('/')}/{path.name}" if link else "")

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: Settings,
        environ: Mapping[str, str],
        clock: Clock | None = None,
        **_network: Any,
    ) -> FeedConnector:
        """The feed of account ``name``; ``clock`` stamps its entries (the app's clock, so
        the entry and its archived record agree); network options (retry, timeout) are
        ignored: a file has none."""
        account = settings.account(name, FeedAccountSettings)
        return cls(
            name,
            settings.feed_path(name),
            account.title or f"{settings.agency.name}: notices",
            account.link or settings.agency.website,
            account.max_entries,
            clock=clock,
            feed_url=account.feed_url,
        )

    def limits(self) -> Limits:
        return Limits(max_length=20_000, max_media=20)

    def entry_id(self, key: str) -> str:
        """The entry id of ``key``; an entry id (a reply's target) is returned as it is."""
        if key.startswith("urn:"):
            return key
        return f"urn:bulletin:{self.name}:{key}"

    def _check_writable(self, post: OutgoingPost) -> None:
        """:raises Rejected: the post holds a character XML 1.0 forbids (a notice stored before
        drafts were checked): written, it would make the whole feed unreadable."""
        texts = [post.text, post.title or "", post.link or "", *(m.alt_text for m in post.media)]
        for text in texts:
            problem = text_problem(text)
            if problem is not None:
                raise Rejected(
                    f"account {self.name}: the post {problem}, which a feed cannot carry"
                )

    def entry_page(self, key: str) -> str:
        """The page a reader opens for the entry of ``key`` when its notice gives no link:
        the account's page at the entry's anchor (``…/notices#notice-12``); empty without
        a page."""
        return f"{self.link}#{key}" if self.link else ""

    def publish(self, post: OutgoingPost) -> PublishResult:
        with self._locked():
            return self._publish(post)

    def _publish(self, post: OutgoingPost) -> PublishResult:
        root = self._load()
        existing = self._find(root, self.entry_id(post.key))
        if existing is not None:
            return self._result(existing)
        self._check_writable(post)
        now = self.clock.now()
        entry = ET.Element(_q("entry"))
        if post.lang:
            entry.set(_XML_LANG, post.lang)
        ET.SubElement(entry, _q("id")).text = self.entry_id(post.key)
        ET.SubElement(entry, _q("title")).text = post.title or _title_from(post.text)
        ET.SubElement(entry, _q("updated")).text = iso_utc(now, "seconds")
        ET.SubElement(entry, _q("published")).text = iso_utc(now, "seconds")
        ET.SubElement(entry, _q("category"), term=post.category)
        ET.SubElement(entry, _q("content"), type="text").text = post.text
        alternate = post.link or self.entry_page(post.key)
        if alternate:
            ET.SubElement(entry, _q("link"), rel="alternate", href=alternate)
        for media in post.media:
            link = ET.SubElement(
                entry,
                _q("link"),
                rel="enclosure",
                href=self._write_media(media),
                type=media.mime_type,
                length=str(len(media.data)),
            )
            if media.alt_text:
                link.set("title", media.alt_text)
        if post.reply_to:
            # a follow-up, correction or retraction: a new entry linking the first
            related = self.entry_id(post.reply_to)
            first = self._find(root, related)
            first_link = first.find(_q("link")) if first is not None else None
            href = first_link.get("href") if first_link is not None else None
            ET.SubElement(entry, _q("link"), rel="related", href=href or related)
            ET.SubElement(entry, f"{{{THREADING}}}in-reply-to", ref=related)
        entries = root.findall(_q("entry"))
        for old in entries[self.max_entries - 1 :]:
            root.remove(old)
        index = list(root).index(entries[0]) if entries else len(root)
        root.insert(index, entry)
        updated = root.find(_q("updated"))
        assert updated is not None
        updated.text = iso_utc(now, "seconds")
        self._write(root)
        return self._result(entry)

    def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        entry = self._find(self._load(), self.entry_id(post.key))
        return self._result(entry) if entry is not None else None

    def published_keys(self) -> list[str]:
        root = self._load()
        ids = [entry.findtext(_q("id")) or "" for entry in root.findall(_q("entry"))]
        ids += [gone.get("ref", "") for gone in root.findall(f"{{{TOMBSTONES}}}deleted-entry")]
        prefix = self.entry_id("")
        return [i.removeprefix(prefix) for i in ids if i.startswith(prefix)]

    def fetch_post(self, remote_id: str, reply_to: str | None = None) -> RemoteItem | None:
        """The entry as written in the file, parsed as :meth:`list_posts` parses it."""
        entry = self._find(self._load(), self.entry_id(remote_id))
        return self._item(entry) if entry is not None else None

    def delete_post(self, post_id: str) -> None:
        """Remove the entry and leave an RFC 6721 tombstone (``at:deleted-entry``) so that
        readers drop their copy; an entry already gone counts as deleted."""
        with self._locked():
            self._delete_post(post_id)

    def _delete_post(self, post_id: str) -> None:
        root = self._load()
        entry_id = self.entry_id(post_id)
        entry = self._find(root, entry_id)
        if entry is None:
            return
        now = self.clock.now()
        index = list(root).index(entry)
        root.remove(entry)
        tombstone = ET.Element(
            f"{{{TOMBSTONES}}}deleted-entry", ref=entry_id, when=iso_utc(now, "seconds")
        )
        ET.SubElement(tombstone, f"{{{TOMBSTONES}}}comment").text = "withdrawn"
        root.insert(index, tombstone)
        updated = root.find(_q("updated"))
        if updated is not None:
            updated.text = iso_utc(now, "seconds")
        self._write(root)

    def list_posts(self, since_id: str | None = None, cursor: str | None = None) -> Page:
        items = []
        for entry in self._load().findall(_q("entry")):
            item = self._item(entry)
            if since_id is not None and item.remote_id == since_id:
                break
            items.append(item)
        return Page(items=items, next_cursor=None)

    # -- file handling -------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold ``<feed>.lock`` (beside the feed) while the file is read, changed and replaced:
        one writer at a time, in any process or thread, so no writer loses another's entry."""
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            _public_dir(lock.parent)
            handle = open(lock, "ab")  # noqa: SIM115 - closed below, which releases the lock
        except OSError as e:
            raise Retryable(f"feed {self.path}: cannot write: {e.strerror}", code="io-error") from e
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _load(self) -> ET.Element:
        if not self.path.exists():
            return self._empty()
        try:
            data = self.path.read_bytes()
            root: ET.Element = SafeET.fromstring(data)
        except OSError as e:
            raise Retryable(f"feed {self.path}: cannot read: {e.strerror}", code="io-error") from e
        except SafeET.ParseError as e:
            raise MalformedResponse(f"feed {self.path}: not valid XML: {e}", raw=data) from e
        if root.tag != _q("feed"):
            raise MalformedResponse(f"feed {self.path}: not an Atom feed", raw=data)
        return root

    def _empty(self) -> ET.Element:
        root = ET.Element(_q("feed"))
        ET.SubElement(root, _q("id")).text = f"urn:bulletin:{self.name}"
        ET.SubElement(root, _q("title")).text = self.title
        ET.SubElement(root, _q("updated")).text = iso_utc(self.clock.now(), "seconds")
        ET.SubElement(root, _q("author")).append(_named(self.title))
        ET.SubElement(root, _q("generator")).text = "Bulletin"
        return root

    def _write(self, root: ET.Element) -> None:
        self._feed_links(root)
        data = b'<?xml version="1.0" encoding="utf-8"?>\n' + _atom_xml(root)
        try:
            _public_dir(self.path.parent)
            write_atomically(self.path, data, mode=0o644)
        except OSError as e:
            raise Retryable(f"feed {self.path}: cannot write: {e.strerror}", code="io-error") from e

    def _write_media(self, media: Media) -> str:
        """Write ``media`` beside the feed (once: its name is its hash); its relative URL."""
        digest = hashlib.sha256(media.data).hexdigest()
        name = f"{MEDIA_DIR}/{digest}.{IMAGE_EXTENSIONS.get(media.mime_type, 'bin')}"
        path = self.path.parent / name
        try:
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                return name
            _public_dir(path.parent)
            write_atomically(path, media.data, mode=0o644)
        except OSError as e:
            raise Retryable(
                f"feed {self.path}: cannot write {name}: {e.strerror}", code="io-error"
            ) from e
        return name

    def _feed_links(self, root: ET.Element) -> None:
        """The feed's own links as configured now: ``self`` (where it is served, RFC 4287
        4.2.7.2) and ``alternate`` (the agency's page), before the first entry."""
        for old in root.findall(_q("link")):
            if old.get("rel", "alternate") in ("self", "alternate"):
                root.remove(old)
        links = [("self", self.feed_url, "application/atom+xml"), ("alternate", self.link, "")]
        at = next((i for i, e in enumerate(root) if e.tag == _q("author")), len(root))
        for rel, href, kind in reversed(links):
            if href:
                link = ET.Element(_q("link"), rel=rel, href=href)
                if kind:
                    link.set("type", kind)
                root.insert(at, link)

    def _find(self, root: ET.Element, entry_id: str) -> ET.Element | None:
        for entry in root.findall(_q("entry")):
            if entry.findtext(_q("id")) == entry_id:
                return entry
        return None

    def _item(self, entry: ET.Element) -> RemoteItem:
        published = entry.findtext(_q("published"))
        link = next(
            (x for x in entry.findall(_q("link")) if x.get("rel", "alternate") == "alternate"),
            None,
        )
        # a follow-up, correction or retraction names the entry it answers (RFC 4685)
        reply = entry.find(f"{{{THREADING}}}in-reply-to")
        parent = reply.get("ref") if reply is not None else None
        remote_id = entry.findtext(_q("id")) or ""
        return RemoteItem(
            kind="post",
            remote_id=remote_id,
            text=entry.findtext(_q("content")) or "",
            author=self.name,
            posted_at=parse_iso(published) if published else None,
            url=link.get("href") if link is not None else None,
            parent_id=parent,
            thread_id=parent or remote_id,
            extra={"title": entry.findtext(_q("title")) or ""},
            raw=_atom_xml(entry),
        )

    def _result(self, entry: ET.Element) -> PublishResult:
        item = self._item(entry)
        return PublishResult(
            remote_id=item.remote_id, url=item.url, posted_at=item.posted_at, raw=item.raw
        )


def _public_dir(directory: Path) -> None:
    """Create ``directory`` and its missing parents readable by a web server (0755, whatever
    the umask: the feed is public); a directory that exists keeps its mode."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        os.chmod(path, 0o755)  # noqa: S103 - public by design, like the feed itself


def _named(name: str) -> ET.Element:
    element = ET.Element(_q("name"))
    element.text = name
    return element


def _title_from(text: str, limit: int = 80) -> str:
    first = html.unescape(text).strip().splitlines()[0] if text.strip() else "Notice"
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
