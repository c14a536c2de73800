"""What the records clerk's console shows of the archive: a search in the query language and
one record with every version of its item, the word changes between versions, its redactions,
hashes and ledger position.

Only the roles in :data:`CLERKS` see these pages (a dispatcher is refused here, whichever door
asks); the command line's ``archive`` commands (:mod:`bulletin.app.records`) are the
operator's and read without a role.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Literal

from sqlmodel import Session, col, select

from bulletin.app import records
from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.archiver import redaction
from bulletin.archiver.siblings import Named, Sibling, named, siblings
from bulletin.config.site import Role
from bulletin.models import LedgerEntry, Record, Redaction

#: the roles that may read the archive through the console
CLERKS: tuple[Role, ...] = ("clerk", "records-officer", "admin")
#: the most hits one search page shows (refine the query for the rest)
MAX_HITS = 200
DEFAULT_HITS = 50

Op = Literal["same", "ins", "del"]
_TOKENS = re.compile(r"\s+|\S+")


def word_diff(old: str, new: str) -> list[tuple[Op, str]]:
    """``new`` against ``old`` word by word: pieces in order, each kept (``same``), added
    (``ins``) or taken away (``del``); whitespace travels with the words around it."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out: list[tuple[Op, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("ins", "".join(b[j1:j2])))
    return out


@dataclass(frozen=True)
class Version:
    """One archived version of the item: the record, its ledger entry's hash, its text cut
    into ``(text, label)`` pieces (``label``: the exemption of a redaction in force, else
    None), its redactions in force with their labels, and what changed from the version
    before (empty for the first)."""

    record: Record
    entry_hash: str | None
    pieces: list[tuple[str, str | None]]
    redactions: list[tuple[Redaction, str]]
    changes: list[tuple[Op, str]]


@dataclass(frozen=True)
class RecordPage:
    """One record as the clerk reads it: the record asked for, every version of its item
    oldest first, and where the stored snapshot contradicts the index (``None``: the
    snapshot is disposed of, so it was not read); for a post of a notice in several
    languages, the same notice's posts in the other languages (see
    :mod:`bulletin.archiver.siblings`)."""

    record: Record
    versions: list[Version]
    contradictions: list[str] | None
    siblings: list[Sibling] = field(default_factory=list)

    @property
    def current(self) -> Version:
        """The version asked for."""
        return next(v for v in self.versions if v.record.id == self.record.id)


@acts
def find_records(
    app: App, actor: Actor, text: str = "", *, limit: int = DEFAULT_HITS
) -> records.Found:
    """Posts and comments matching ``text`` in the query language (empty: everything),
    newest first, at most ``limit`` (capped at :data:`MAX_HITS`) items.

    :raises Refused: ``actor`` holds none of :data:`CLERKS`.
    :raises UsageError: the query does not parse or is out of bounds.
    """
    require_any_role(app, actor, CLERKS)
    return records.search_records(app, actor, text, limit=max(1, min(limit, MAX_HITS)))


@acts
def record_page(app: App, actor: Actor, record_id: int) -> RecordPage:
    """Record ``record_id`` with every version of its item, each with its redactions in
    force and its word changes; the snapshot of the record asked for is read from the store
    and checked against its hash.

    :raises Refused: ``actor`` holds none of :data:`CLERKS`.
    :raises NotFound: no such record.
    :raises IntegrityError: the stored snapshot does not match its hash.
    """
    require_any_role(app, actor, CLERKS)
    engine = app.checked_engine()
    record = records.get_record(engine, record_id)
    contradictions = None
    names: Named | None = None
    if record.disposed_at is None:
        shown = records.show_record(app, actor, record_id)
        contradictions = shown.contradictions
        if b'"siblings"' in shown.snapshot:  # the publisher's archive of the post names them
            try:
                names = named(json.loads(shown.snapshot))
            except ValueError:
                names = None
    with Session(engine, expire_on_commit=False) as session:
        rows = list(
            session.exec(
                select(Record)
                .where(Record.account == record.account)
                .where(Record.kind == record.kind)
                .where(Record.remote_id == record.remote_id)
                .order_by(col(Record.version))
            ).all()
        )
        seqs = [r.ledger_seq for r in rows if r.ledger_seq is not None]
        hashes = {
            e.seq: e.entry_hash
            for e in session.exec(select(LedgerEntry).where(col(LedgerEntry.seq).in_(seqs)))
        }
        in_force = redaction.active(session, [r.id for r in rows if r.id is not None])
        others = siblings(session, record, names)
        for row in rows:
            session.expunge(row)
    versions: list[Version] = []
    previous: Record | None = None
    for row in rows:
        mine = [(r, redaction.label_of(app.settings, r.exemption)) for r in in_force]
        mine = [(r, label) for r, label in mine if r.record_id == row.id]
        spans = [redaction.Span(r.start, r.end, label) for r, label in mine]
        versions.append(
            Version(
                record=row,
                entry_hash=hashes.get(row.ledger_seq) if row.ledger_seq else None,
                pieces=redaction.pieces(row.text, spans, withhold=False),
                redactions=mine,
                changes=word_diff(previous.text, row.text) if previous is not None else [],
            )
        )
        previous = row
    return RecordPage(record, versions, contradictions, others)
