"""CAP documents fetched and imported: one alert, or an Atom feed whose entries embed a CAP
``<alert>`` (IPAWS) or link to one (api.weather.gov: the entry's ``<id>`` / ``<link>`` answers
``application/cap+xml``); and the polled ``[cap] feeds``.

An entry that links to an alert already recorded (by its Atom ``<id>``) is not fetched again.
One bad entry is reported and skipped; it never stops the rest of the feed.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname
from xml.etree.ElementTree import Element, tostring

import requests
from sqlmodel import Session, select

from bulletin import __version__
from bulletin.cap.document import ATOM_NS, CAP_NS, CapError, local, parse_xml
from bulletin.cap.importer import Importer, ImportResult
from bulletin.cap.mapping import check_settings
from bulletin.cap.models import CapAlert
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.errors import BulletinError, ConfigError, Refused, Retryable, UsageError
from bulletin.fetch import read_capped
from bulletin.identity import require_role
from bulletin.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = get_logger("bulletin.cap")

ACCEPT = "application/cap+xml, application/atom+xml;q=0.9, application/xml;q=0.8"


def fetch(url: str, settings: Settings, guard: Callable[[str], None] | None = None) -> bytes:
    """The bytes at ``url`` (http, https or file), at most ``[cap] max_bytes``. With ``guard``
    (see :func:`entry_guard`) every address, the first and each redirect, passes it first.

    :raises Retryable: the server or the network failed (try again at the next poll).
    :raises CapError: the document is too large, or ``guard`` refused an address.
    :raises UsageError: not an http(s) or file URL, or a file that cannot be read.
    """
    if guard is not None:
        guard(url)
    limit = settings.cap.max_bytes
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(url2pathname(parts.path))
        try:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror}") from None
    elif parts.scheme in ("http", "https"):
        contact = settings.agency.contact or settings.agency.website or "no contact configured"
        headers = {"Accept": ACCEPT, "User-Agent": f"Bulletin/{__version__} ({contact})"}
        try:
            with _get(url, headers, settings.cap.fetch_timeout, guard) as response:
                if response.status_code >= 400:
                    raise Retryable(f"{url}: HTTP {response.status_code}")
                data = read_capped(response, limit)
        except requests.RequestException as e:
            raise Retryable(f"{url}: {type(e).__name__}: {e}") from None
    else:
        raise UsageError(f"{url}: not an http(s) or file URL")
    if len(data) > limit:
        raise CapError(f"{url}: more than {limit} bytes ([cap] max_bytes)")
    return data


MAX_REDIRECTS = 5


def _get(
    url: str, headers: dict[str, str], timeout: float, guard: Callable[[str], None] | None
) -> requests.Response:
    """GET ``url``, streamed; with ``guard``, each redirect is checked before it is followed."""
    if guard is None:
        return requests.get(url, headers=headers, timeout=timeout, stream=True)
    for _ in range(MAX_REDIRECTS + 1):
        response = requests.get(
            url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
        )
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            return response
        response.close()
        url = urljoin(url, location)
        guard(url)
    raise Retryable(f"{url}: more than {MAX_REDIRECTS} redirects")


def _host_of(url: str) -> str | None:
    parts = urlsplit(url)
    return parts.hostname.lower() if parts.scheme in ("http", "https") and parts.hostname else None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def entry_guard(settings: Settings, source: str) -> Callable[[str], None]:
    """What an alert linked from the feed at ``source`` may be fetched from.

    A feed read from a local file may link to files (its relative links resolve beside it).
    Otherwise only http(s) to the feed's own host, the host of a configured ``[cap] feeds``
    or one of ``[cap] allowed_hosts``; and a host name that resolves to a loopback,
    link-local or private address is refused unless it is in ``allowed_hosts`` (a feed
    given by its address, such as 127.0.0.1, stays allowed).

    The guard raises :class:`CapError` naming the address and the reason.
    """
    configured = {h for h in map(_host_of, settings.cap.feeds) if h}
    listed = {h.lower() for h in settings.cap.allowed_hosts}
    own = _host_of(source)
    allowed = configured | listed | ({own} if own else set())
    typed = configured | ({own} if own else set())  # written by a person: config or command
    from_file = urlsplit(source).scheme == "file"

    def guard(url: str) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file" and from_file:
            return
        host = _host_of(url)
        if scheme not in ("http", "https") or host is None:
            raise CapError(f"{url}: a linked alert is fetched over http or https only; not fetched")
        if host not in allowed:
            raise CapError(
                f"{url}: host {host} is neither the feed's nor in [cap] allowed_hosts; not fetched"
            )
        if host in listed or (host in typed and _is_address(host)):
            return
        try:
            found = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError as e:
            raise Retryable(f"{url}: cannot resolve {host}: {e}") from None
        inside = sorted(a for a in found if _internal(str(a)))
        if inside:
            raise CapError(
                f"{url}: host {host} resolves to the internal address {inside[0]}; "
                "list it in [cap] allowed_hosts to allow it; not fetched"
            )

    return guard


def source_of(target: str) -> str:
    """A file path as a ``file://`` URL; a URL as it is."""
    if urlsplit(target).scheme in ("http", "https", "file"):
        return target
    return Path(target).resolve().as_uri()


def import_feed_root(
    importer: Importer,
    root: Element,
    source: str,
    fetcher: Callable[[str], bytes] | None = None,
) -> list[ImportResult]:
    """Import every entry of an Atom feed of CAP alerts; a failed entry is reported as an
    ``error`` result and the rest go on."""
    get = fetcher or functools.partial(
        fetch, settings=importer.settings, guard=entry_guard(importer.settings, source)
    )
    results: list[ImportResult] = []
    for entry in root.findall(f"{{{ATOM_NS}}}entry"):
        entry_id = (entry.findtext(f"{{{ATOM_NS}}}id") or "").strip() or None
        try:
            result = _import_entry(importer, entry, entry_id, source, get)
        except BulletinError as e:
            log.error("CAP feed entry failed", feed=source, entry=entry_id, error=str(e))
            result = ImportResult(
                alert=entry_id or "(entry without id)", event=None, outcome="error", reason=str(e)
            )
        if result is not None:
            results.append(result)
    return results


def _import_entry(
    importer: Importer,
    entry: Element,
    entry_id: str | None,
    source: str,
    get: Callable[[str], bytes],
) -> ImportResult | None:
    embedded = entry.find(f".//{{{CAP_NS}}}alert")
    if embedded is not None:
        try:
            raw = tostring(embedded, encoding="utf-8", default_namespace=CAP_NS)
        except ValueError:  # an element outside any namespace: not CAP 1.2
            raw = tostring(embedded, encoding="utf-8")
        return importer.import_element(embedded, raw, source, entry_id)
    if entry_id is not None and _seen(importer.engine, entry_id):
        return None
    url = _alert_url(entry, entry_id, source)
    if url is None:
        raise CapError("entry neither embeds a CAP <alert> nor links to one")
    data = get(url)
    try:
        root = parse_xml(data, importer.settings.cap.max_bytes)
        return importer.import_element(root, data, url, entry_id)
    except CapError as e:
        importer.record_refusal(data, url, str(e))
        raise


def _alert_url(entry: Element, entry_id: str | None, source: str) -> str | None:
    links = entry.findall(f"{{{ATOM_NS}}}link")
    for wanted in ("application/cap+xml", None):
        for link in links:
            href = link.get("href")
            if not href:
                continue
            if wanted is not None and link.get("type") == wanted:
                return urljoin(source, href)
            if wanted is None and link.get("rel", "alternate") == "alternate":
                return urljoin(source, href)
    if entry_id and urlsplit(entry_id).scheme in ("http", "https", "file"):
        return entry_id  # api.weather.gov: the entry's id is the alert's address
    return None


def _seen(engine: Engine, entry_id: str) -> bool:
    with Session(engine) as session:
        return (
            session.exec(select(CapAlert.id).where(CapAlert.entry_id == entry_id)).first()
            is not None
        )


def import_bytes(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    data: bytes,
    source: str,
    actor: str,
    targets: Sequence[str] = (),
) -> list[ImportResult]:
    """Import a CAP alert document, or every alert of an Atom feed of CAP entries, for
    ``targets`` (none: [cap] targets).

    :raises CapError: unsafe, not XML, not CAP 1.2 (nor a feed of it), or invalid.
    :raises UsageError: a target is not a configured account.
    """
    check_settings(settings, targets)
    importer = Importer(engine, settings, clock, actor, targets)
    try:
        root = parse_xml(data, settings.cap.max_bytes)
        if local(root.tag) == (ATOM_NS, "feed"):
            return import_feed_root(importer, root, source)
        return [importer.import_element(root, data, source)]
    except CapError as e:
        importer.record_refusal(data, source, str(e))
        raise


def import_source(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    target: str,
    actor: str,
    accounts: Sequence[str] = (),
) -> list[ImportResult]:
    """Import the alert or feed at ``target`` (a path or URL) for ``accounts`` (none: [cap]
    targets)."""
    source = source_of(target)
    data = fetch(source, settings)
    return import_bytes(engine, settings, clock, data, source, actor, accounts)


def poll_feeds(engine: Engine, settings: Settings, clock: Clock) -> list[ImportResult]:
    """Import what is new in every ``[cap] feeds``; a feed that fails is logged and skipped.

    :raises ConfigError: with ``[users]``, ``[cap] actor`` is not a dispatcher.
    """
    try:
        require_role(settings, settings.cap.actor, "dispatcher", engine)
    except Refused as e:
        raise ConfigError(f"{settings.source}: cap.actor: {e}") from None
    results: list[ImportResult] = Importer(
        engine, settings, clock, settings.cap.actor
    ).repair_stale()
    for url in settings.cap.feeds:
        try:
            found = import_source(engine, settings, clock, url, settings.cap.actor)
        except BulletinError as e:
            log.error("CAP feed poll failed", feed=url, error=str(e))
            continue
        for result in found:
            if result.outcome != "duplicate":
                log.info("CAP feed entry", feed=url, result=result.line())
        results.extend(found)
    return results
