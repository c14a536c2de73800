"""The public record, as residents read it through the portal: search, browse by account and
month, threads, the agency's notices, one record and its proof.

The public reads without an actor (the portal has no sign-in), so every rule of what it may
see lives here, once, as conditions on ``records`` (:func:`rules`) that every query carries:
the agency's posts always, visitor comments only with ``[portal] show_comments``; never a
version that is not visible, never any version of an item that was ever hidden or deleted,
never a training (sandbox) record, a disposed one, a moderation record or one of a series in
``[portal] withheld_series``. Text is always shown with the redactions in force applied
exactly as a public production applies them (:func:`bulletin.archiver.redaction.pieces`,
withholding). A record that is not public is "not found", whatever the reason. A post of a
notice in several languages carries its language (``lang``, kept on its record at archive
time) so that pages can mark it for screen readers.

Every read is bounded: pages of at most ``max_page_size``, no deeper than ``max_results``,
and a search reads at most ``max_scan`` candidate rows.
"""

from __future__ import annotations

import calendar
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.app.context import App
from bulletin.archiver import proof as proofs
from bulletin.archiver import redaction
from bulletin.archiver.search import Query, Scan, parse_query, search
from bulletin.archiver.siblings import siblings
from bulletin.config.settings import Settings
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.models import Record

#: what the public search takes: words, "phrases", word*, from:, to:, account:, lang:
PUBLIC_KEYS = ("since", "until", "account", "lang", "text")
MAX_MONTHS = 240


def rules(settings: Settings) -> list[sa.ColumnElement[bool]]:
    """The conditions every record the public sees meets (see the module doc)."""
    portal = settings.portal
    kinds = ["post", "comment"] if portal.show_comments else ["post"]
    where: list[sa.ColumnElement[bool]] = [
        col(Record.kind).in_(kinds),
        col(Record.state) == "visible",
        col(Record.training).is_(False),
        col(Record.disposed_at).is_(None),
    ]
    for state in ("hidden", "deleted"):
        # written with a literal, as the partial index's own (ix_records_hidden, …), so that
        # the planner looks among the few such versions, never through the whole table
        gone = Record.__table__.alias(f"ever_{state}")  # type: ignore[attr-defined]
        where.append(
            ~sa.exists().where(
                gone.c.state == sa.literal_column(f"'{state}'"),
                gone.c.account == col(Record.account),
                gone.c.kind == col(Record.kind),
                gone.c.remote_id == col(Record.remote_id),
            )
        )
    if portal.withheld_series:
        where.append(col(Record.series).not_in(portal.withheld_series))
    return where


@dataclass(frozen=True)
class PublicRecord:
    """One version of a post or comment as the public sees it: ``pieces`` is its text cut
    for redaction (``(text, label)``, the text ``""`` where withheld), ``text`` the same as
    plain text with ``[WITHHELD: label]`` boxes; ``lang`` its language (a BCP 47 tag) where
    it is a post of a notice in several languages, else None (the agency's first language)."""

    id: int
    account: str
    platform: str
    kind: str
    remote_id: str
    thread_id: str
    parent_id: str | None
    version: int
    author: str
    posted: str | None  # UTC, ISO 8601
    posted_local: str | None  # in the agency's zone, for people
    captured: str
    url: str | None
    text: str
    withheld: bool
    pieces: list[tuple[str, str | None]] = field(repr=False)
    lang: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as JSON: ``text`` with boxes; ``pieces`` as ``[text, label]`` pairs."""
        body = asdict(self)
        body["pieces"] = [list(p) for p in self.pieces]
        return body


@dataclass(frozen=True)
class Listing:
    """One page of records: what was asked, the page, its size and whether more follow;
    ``capped`` when the search stopped at ``[portal] max_scan`` rows before it had found a
    full page (older matches were not looked at)."""

    query: str
    items: list[PublicRecord]
    page: int
    size: int
    more: bool
    capped: bool = False


@dataclass(frozen=True)
class PublicSibling:
    """The same notice's post in another language, public: its language (``name`` in
    itself) and its first public version's record, whose thread page shows it."""

    lang: str
    name: str
    account: str
    record_id: int


@dataclass(frozen=True)
class PublicThread:
    """One page of a thread: the record asked for, then the thread's posts and comments
    (post first, then by posted time, each item's versions together, oldest first); for the
    post of a notice in several languages, its public posts in the other languages."""

    record: PublicRecord
    items: list[PublicRecord]
    page: int
    size: int
    more: bool
    siblings: list[PublicSibling] = field(default_factory=list)


def _local(when: datetime | None, zone: str) -> str | None:
    if when is None:
        return None
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when else None


def shown(app: App, session: Session, records: list[Record]) -> list[PublicRecord]:
    """``records`` as the public sees them, the redactions in force applied."""
    spans: dict[int, list[redaction.Span]] = {}
    for r in redaction.active(session, [x.id for x in records if x.id is not None]):
        label = redaction.label_of(app.settings, r.exemption)
        spans.setdefault(r.record_id, []).append(redaction.Span(r.start, r.end, label))
    zone = app.settings.agency.time_zone
    out = []
    for record in records:
        cut = spans.get(record.id or -1, [])
        pieces = redaction.pieces(record.text, cut, withhold=True)
        url = record.url if record.url and record.url.startswith(("https://", "http://")) else None
        out.append(
            PublicRecord(
                id=record.id or 0,
                account=record.account,
                platform=record.platform,
                kind=record.kind,
                remote_id=record.remote_id,
                thread_id=record.thread_id or record.remote_id,
                parent_id=record.parent_id,
                version=record.version,
                author=record.author or "unknown",
                posted=_iso(record.posted_at),
                posted_local=_local(record.posted_at, zone),
                captured=_iso(record.captured_at) or "",
                url=url,
                text=redaction.redacted_text(record.text, cut),
                withheld=bool(cut),
                pieces=pieces,
                lang=record.lang,
            )
        )
    return out


def checked_page(app: App, page: int, size: int | None) -> tuple[int, int]:
    """``(page, size)`` within the portal's caps.

    :raises UsageError: a page below 1, a size out of range, or a page past ``max_results``.
    """
    portal = app.settings.portal
    size = min(portal.page_size, portal.max_page_size) if size is None else size
    if not 1 <= size <= portal.max_page_size:
        raise UsageError(f"a page holds 1 to {portal.max_page_size} results")
    if page < 1:
        raise UsageError("pages are numbered from 1")
    if page * size > portal.max_results:
        raise UsageError(
            f"results past the first {portal.max_results} are not shown; narrow the search "
            "(a date range, an account, more words)"
        )
    return page, size


def public_query(text: str) -> Query:
    """The public subset of the query language: words, ``"phrases"``, ``word*``, ``from:``,
    ``to:``, ``account:`` and ``lang:``; an empty text matches every public record.

    :raises UsageError: another key (``state:``, ``author:``, …), or a query out of bounds.
    """
    query = parse_query(text, empty_ok=True)
    other = [k for k, v in asdict(query).items() if k not in PUBLIC_KEYS and v not in (None, ())]
    if other:
        raise UsageError(
            'the public search takes words, "phrases", word*, from:DATE, to:DATE, '
            f"account:NAME and lang:TAG (not {', '.join(sorted(other))}:)"
        )
    return query


def _listing(app: App, query: Query, page: int, size: int | None, extra: list[Any]) -> Listing:
    page, size = checked_page(app, page, size)
    offset = (page - 1) * size
    engine = app.checked_engine()
    scan = Scan(app.settings.portal.max_scan)
    hits = search(
        engine,
        query,
        time_zone=app.settings.agency.time_zone,
        limit=offset + size + 1,
        extra=[*rules(app.settings), *extra],
        scan=scan,
    )
    records = [h.record for h in hits[offset : offset + size]]
    with Session(engine) as session:
        items = shown(app, session, records)
    more = len(hits) > offset + size
    return Listing(query.describe(), items, page, size, more, scan.capped)


def search_public(app: App, text: str, page: int = 1, size: int | None = None) -> Listing:
    """Public records matching ``text`` (:func:`public_query`), newest first, one page.

    :raises UsageError: the query or the page is out of bounds.
    """
    return _listing(app, public_query(text), page, size, [])


def notices(app: App, size: int) -> list[PublicRecord]:
    """The agency's newest posts (its notices), at most ``size``."""
    size = min(size, app.settings.portal.max_page_size)
    return _listing(app, Query(), 1, size, [col(Record.kind) == "post"]).items


def accounts(app: App) -> list[str]:
    """The accounts the portal offers to browse (those configured, by name)."""
    return sorted(app.settings.accounts)


def months(app: App, account: str) -> list[str]:
    """The months (``YYYY-MM``, newest first) from the account's newest public record back to
    its oldest, at most ``MAX_MONTHS``.

    :raises NotFound: no such account.
    """
    if account not in app.settings.accounts:
        raise NotFound(f"no account {account!r}")
    zone = ZoneInfo(app.settings.agency.time_zone)
    ends = []
    with Session(app.checked_engine()) as session:
        for order in (col(Record.posted_at).desc(), col(Record.posted_at).asc()):
            ends.append(
                session.exec(
                    select(col(Record.posted_at))
                    .where(col(Record.account) == account, col(Record.posted_at).is_not(None))
                    .where(*rules(app.settings))
                    .order_by(order)
                    .limit(1)
                ).first()
            )
    newest, oldest = ends
    if newest is None or oldest is None:
        return []
    year, month = newest.astimezone(zone).year, newest.astimezone(zone).month
    first = oldest.astimezone(zone)
    out: list[str] = []
    while (year, month) >= (first.year, first.month) and len(out) < MAX_MONTHS:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def browse_month(
    app: App, account: str, month: str, page: int = 1, size: int | None = None
) -> Listing:
    """The account's public records posted in ``month`` (``YYYY-MM``, the agency's zone).

    :raises NotFound: no such account.
    :raises UsageError: not a month, or the page out of bounds.
    """
    if account not in app.settings.accounts:
        raise NotFound(f"no account {account!r}")
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise UsageError(f"{month!r} is not a month (YYYY-MM)") from None
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    query = Query(account=account, since=first, until=last)
    return _listing(app, query, page, size, [])


def _record(app: App, session: Session, record_id: int) -> Record:
    if not 0 < record_id < 2**31:
        raise NotFound(f"no public record {record_id}")
    found = session.exec(
        select(Record).where(col(Record.id) == record_id).where(*rules(app.settings))
    ).first()
    if found is None:
        raise NotFound(f"no public record {record_id}")
    return found


def record(app: App, record_id: int) -> PublicRecord:
    """Public record ``record_id``.

    :raises NotFound: no such record, or not public (the same answer either way).
    """
    with Session(app.checked_engine()) as session:
        return shown(app, session, [_record(app, session, record_id)])[0]


def thread(app: App, record_id: int, page: int = 1, size: int | None = None) -> PublicThread:
    """One page of the public part of the thread holding public record ``record_id``.

    :raises NotFound: no such public record.
    :raises UsageError: the page is out of bounds.
    """
    page, size = checked_page(app, page, size)
    with Session(app.checked_engine()) as session:
        anchor = _record(app, session, record_id)
        if anchor.thread_id is None:  # an item outside any thread is its own thread
            rows = [anchor] if page == 1 else []
        else:
            rows = _thread_rows(app, session, anchor.account, anchor.thread_id, page, size)
        items = shown(app, session, list(rows[:size]))
        first = shown(app, session, [anchor])[0]
        others = _siblings(app, session, anchor, rows)
    return PublicThread(first, items, page, size, len(rows) > size, others)


def _siblings(
    app: App, session: Session, anchor: Record, rows: list[Record]
) -> list[PublicSibling]:
    """The public posts in other languages of ``anchor``'s notice when it is a post, else
    of the post that leads its thread (read from the records alone: a page reads no stored
    object)."""
    post = anchor
    if anchor.kind != "post":
        found = next(
            (r for r in rows if r.kind == "post" and r.remote_id == anchor.thread_id), None
        )
        if found is None and anchor.thread_id is not None:
            found = session.exec(
                select(Record)
                .where(col(Record.account) == anchor.account)
                .where(col(Record.kind) == "post", col(Record.remote_id) == anchor.thread_id)
                .where(*rules(app.settings))
                .order_by(col(Record.version))
            ).first()
        post = found or anchor
    return [
        PublicSibling(s.lang, s.name, s.account, s.record_id)
        for s in siblings(session, post, where=rules(app.settings))
        if s.record_id is not None
    ]


def _thread_rows(
    app: App, session: Session, account: str, tid: str, page: int, size: int
) -> list[Record]:
    """One page (and one more row) of a thread's public records, read through
    ``ix_records_thread``."""
    return list(
        session.exec(
            select(Record)
            .where(col(Record.account) == account, col(Record.thread_id) == tid)
            .where(*rules(app.settings))
            .order_by(
                sa.case((col(Record.kind) == "post", 0), else_=1),
                sa.func.coalesce(col(Record.posted_at), col(Record.captured_at)),
                col(Record.remote_id),
                col(Record.version),
            )
            .offset((page - 1) * size)
            .limit(size + 1)
        ).all()
    )


def proof(app: App, record_id: int, verify_command: str) -> bytes:
    """The proof of public record ``record_id`` (see :mod:`bulletin.archiver.proof`).

    :raises NotFound: no such public record.
    :raises Refused: text of the record is withheld: its snapshot and hashes would let anyone
        confirm a guess at that text, so (as in a public production) there is no proof.
    """
    engine = app.checked_engine()
    with Session(engine, expire_on_commit=False) as session:
        found = _record(app, session, record_id)
        if redaction.active(session, [record_id]):
            raise Refused(
                f"record {record_id} has text withheld, so its proof is not public (its "
                "hashes would confirm a guess at the withheld text)"
            )
        session.expunge(found)
    return proofs.record_proof(engine, app.store, found, verify_command)
