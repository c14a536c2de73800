"""Redaction: text of archived records withheld from public productions, with the legal ground.

A redaction names one archived record (one version of a post or comment) and a half-open range
``[start, end)`` of code points in its archived text. The range is widened so that it never
splits a user-perceived character (a base letter and its combining marks, an emoji sequence,
a flag), so no part of a withheld character leaks at an edge. Redactions never change the
archive; they shape what a public production shows (see :mod:`bulletin.archiver.export`).
Adding and removing one are audited; a removed redaction stays in the table, marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import regex
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.archiver import decisions
from bulletin.archiver.store.base import WormStore
from bulletin.config.archive import ExemptionCode
from bulletin.config.settings import Settings
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.models import Record, Redaction

_GRAPHEME = regex.compile(r"\X")

#: what a withheld piece becomes in the plain-text copies of a public production
WITHHELD = "[WITHHELD: {label}]"


@dataclass(frozen=True)
class Span:
    """One withheld range of a record's text and the label of its legal ground."""

    start: int
    end: int
    label: str


def boundaries(text: str) -> list[int]:
    """The offsets where a user-perceived character (extended grapheme cluster) begins, and
    ``len(text)``."""
    edges = [m.start() for m in _GRAPHEME.finditer(text)]
    edges.append(len(text))
    return edges


def widen(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` grown to whole user-perceived characters of ``text``."""
    edges = boundaries(text)
    new_start = max(e for e in edges if e <= start)
    new_end = min(e for e in edges if e >= end)
    return new_start, new_end


def pieces(text: str, spans: Sequence[Span], *, withhold: bool) -> list[tuple[str, str | None]]:
    """``text`` cut into ``(text, label)`` pieces; ``label`` is None for ordinary text.

    With ``withhold`` a withheld piece's text is ``""``: the original never leaves here.
    ``spans`` must not overlap (:func:`add` sees to that).
    """
    out: list[tuple[str, str | None]] = []
    at = 0
    for span in sorted(spans, key=lambda s: s.start):
        start, end = max(span.start, at), min(span.end, len(text))
        if start >= end:
            continue
        if start > at:
            out.append((text[at:start], None))
        out.append(("" if withhold else text[start:end], span.label))
        at = end
    if at < len(text) or not out:
        out.append((text[at:], None))
    return out


def redacted_text(text: str, spans: Sequence[Span]) -> str:
    """``text`` with each withheld range replaced by ``[WITHHELD: label]``."""
    return "".join(
        part if label is None else WITHHELD.format(label=label)
        for part, label in pieces(text, spans, withhold=True)
    )


def exemption(settings: Settings, code: str) -> tuple[str, ExemptionCode]:
    """The configured exemption ``code`` (any case) as ``(code, its definition)``.

    :raises UsageError: an unknown code, with the known ones.
    """
    codes = settings.redaction.codes()
    found = codes.get(code.strip().lower())
    if found is None:
        known = ", ".join(sorted(codes)) or "none"
        raise UsageError(
            f"unknown exemption code {code!r} (known: {known}; add codes under "
            "[redaction.exemptions] in the configuration)"
        )
    return code.strip().lower(), found


def label_of(settings: Settings, code: str) -> str:
    """The label a production shows for ``code`` (the code itself once it is unconfigured)."""
    found = settings.redaction.codes().get(code)
    return found.label if found else code


def active(conn: Connection | Session, record_ids: Iterable[int] | None = None) -> list[Redaction]:
    """Redactions in force, oldest first; only those of ``record_ids`` when given."""
    query = select(Redaction).where(Redaction.removed_at.is_(None))  # type: ignore[union-attr]
    if record_ids is not None:
        query = query.where(Redaction.record_id.in_(list(record_ids)))  # type: ignore[attr-defined]
    query = query.order_by(Redaction.id)  # type: ignore[arg-type]
    if isinstance(conn, Session):
        return list(conn.exec(query))
    return [Redaction.model_validate(row._mapping) for row in conn.execute(query)]


@dataclass
class Added:
    """What :func:`add` did: the redactions made, and where the same text stays unredacted."""

    redactions: list[Redaction] = field(default_factory=list)
    widened: list[tuple[int, int, int, int]] = field(default_factory=list)
    unredacted_elsewhere: list[Record] = field(default_factory=list)


def _check_free(record: Record, start: int, end: int, existing: Sequence[Redaction]) -> None:
    for other in existing:
        if other.start < end and start < other.end:
            raise Refused(
                f"span {start}:{end} overlaps redaction {other.id} ({other.start}:{other.end}) "
                f"on record {record.id}; remove that one first or choose a span that does not "
                "overlap"
            )


def add(
    engine: Engine,
    settings: Settings,
    record_id: int,
    *,
    spans: Sequence[tuple[int, int]] = (),
    match: str | None = None,
    code: str,
    reason: str,
    actor: str,
    now: datetime,
    all_versions: bool = False,
    keep: int | None = None,
    store: WormStore,
) -> Added:
    """Withhold ``spans`` (or every occurrence of ``match``) of record ``record_id``'s text.

    With ``all_versions`` the same text is withheld wherever it occurs in the other archived
    versions of the item too. ``keep`` names a redaction in force that already covers the
    spans on this record (:func:`propagate`): it is kept, not doubled. Nothing is written
    unless every span is valid. The new redactions are mirrored into ``store``
    (:mod:`bulletin.archiver.decisions`) once committed.

    :raises NotFound: no such record.
    :raises UsageError: a span outside the text, an unknown code, an empty reason, no span.
    :raises Refused: a span overlaps a redaction in force, or the record was destroyed.
    """
    code, _ = exemption(settings, code)
    if not reason.strip():
        raise UsageError(
            "a redaction needs a reason saying why the text is withheld", remedy="reason"
        )
    added = Added()
    with Session(engine, expire_on_commit=False) as session:
        record = session.get(Record, record_id)
        if record is None:
            raise NotFound(f"no archived record {record_id}")
        if record.disposed_at is not None:
            raise Refused(f"record {record_id} was destroyed under the retention schedule")
        text = record.text
        wanted = list(spans)
        if match is not None:
            wanted += occurrences(text, match)
            if not wanted:
                raise UsageError(f"record {record_id}'s text does not contain {match!r}")
        if not wanted:
            raise UsageError(
                "say what to withhold: a span or a text to match", remedy="span-or-match"
            )
        plans: list[tuple[Record, int, int]] = []
        withheld: list[str] = []
        for start, end in wanted:
            if end > len(text):
                raise UsageError(
                    f"span {start}:{end} is outside record {record_id}'s text "
                    f"(0:{len(text)}, {len(text)} characters)"
                )
            wide = widen(text, start, end)
            if wide != (start, end):
                added.widened.append((start, end, *wide))
            plans.append((record, *wide))
            withheld.append(text[wide[0] : wide[1]])
        versions = list(
            session.exec(
                select(Record).where(
                    Record.account == record.account,
                    Record.kind == record.kind,
                    Record.remote_id == record.remote_id,
                    Record.id != record.id,
                    Record.disposed_at.is_(None),  # type: ignore[union-attr]
                )
            )
        )
        for other in versions:
            found = [(s, e) for piece in withheld for s, e in occurrences(other.text, piece)]
            if not found:
                continue
            if all_versions:
                plans += [(other, *widen(other.text, s, e)) for s, e in found]
            else:
                added.unredacted_elsewhere.append(other)
        by_record: dict[int, list[Redaction]] = {}
        for target, start, end in plans:
            assert target.id is not None
            existing = by_record.setdefault(target.id, active(session, [target.id]))
            overlapping = any(o.start < end and start < o.end for o in existing)
            if all_versions and target.id != record.id and overlapping:
                continue  # already withheld there
            if keep is not None and target.id == record.id:
                continue  # the redaction being propagated
            _check_free(target, start, end, existing)
            redaction = Redaction(
                record_id=target.id,
                start=start,
                end=end,
                exemption=code,
                reason=reason.strip(),
                created_by=actor,
                created_at=now,
            )
            session.add(redaction)
            session.flush()
            existing.append(redaction)
            added.redactions.append(redaction)
            _audit(session, "redaction-added", redaction, actor, now, reason)
        session.commit()
        session.expunge_all()
    if added.redactions:
        decisions.mirror_redactions(engine, store, [r.id or 0 for r in added.redactions], now)
    return added


def _audit(
    session: Session, action: str, item: Redaction, actor: str, now: datetime, reason: str
) -> None:
    """The audit event of a redaction added or removed (never the withheld text)."""
    audit.record_event(
        session,
        at=now,
        actor=actor,
        action=action,
        object_type="record",
        object_id=item.record_id,
        reason=reason.strip(),
        redaction=item.id,
        span=f"{item.start}:{item.end}",
        exemption=item.exemption,
    )


def occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Every non-overlapping ``[start, end)`` of ``needle`` in ``text``."""
    if not needle:
        return []
    found: list[tuple[int, int]] = []
    at = text.find(needle)
    while at >= 0:
        found.append((at, at + len(needle)))
        at = text.find(needle, at + len(needle))
    return found


def remove(
    engine: Engine,
    redaction_id: int,
    *,
    actor: str,
    reason: str,
    now: datetime,
    store: WormStore,
) -> Redaction:
    """Take redaction ``redaction_id`` out of force (it stays, marked, for the record); the
    removal is mirrored into ``store`` once committed.

    :raises NotFound: no such redaction.
    :raises Refused: it was removed already.
    :raises UsageError: an empty reason.
    """
    if not reason.strip():
        raise UsageError("removing a redaction needs a reason saying why", remedy="reason")
    with Session(engine) as session:
        redaction = session.get(Redaction, redaction_id)
        if redaction is None:
            raise NotFound(f"no redaction {redaction_id}")
        if redaction.removed_at is not None:
            raise Refused(
                f"redaction {redaction_id} was removed already, by {redaction.removed_by}"
            )
        redaction.removed_at, redaction.removed_by = now, actor
        redaction.removal_reason = reason.strip()
        _audit(session, "redaction-removed", redaction, actor, now, reason)
        session.commit()
        session.refresh(redaction)
        session.expunge(redaction)
    decisions.mirror_redactions(engine, store, [redaction_id], now)
    return redaction


def listing(
    engine: Engine, *, record_id: int | None = None, include_removed: bool = False
) -> list[Redaction]:
    """Redactions (in force, or all), oldest first; of one record when given."""
    with Session(engine) as session:
        query = select(Redaction)
        if record_id is not None:
            query = query.where(Redaction.record_id == record_id)
        if not include_removed:
            query = query.where(Redaction.removed_at.is_(None))  # type: ignore[union-attr]
        rows = list(session.exec(query.order_by(Redaction.id)))  # type: ignore[arg-type]
        session.expunge_all()
    return rows


def count_active(engine: Engine) -> int:
    """How many redactions are in force."""
    with engine.connect() as conn:
        table = Redaction.__table__  # type: ignore[attr-defined]
        value = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.removed_at.is_(None))
        ).scalar_one()
    return int(value)


_WORD = regex.compile(r"\S+")


def words(text: str) -> list[tuple[int, int, str]]:
    """Each run of non-space characters of ``text`` with its ``[start, end)`` offsets."""
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class Copy:
    """Text withheld by redaction ``redaction_id`` that stands unredacted in another version."""

    redaction_id: int
    record_id: int
    version: int


def unredacted_copies(conn: Connection, redactions: Sequence[Redaction]) -> list[Copy]:
    """Other versions of a redacted item that hold its withheld text where no redaction in
    force covers it (a version captured after the redaction, say)."""
    by_record: dict[int, list[Redaction]] = {}
    for item in redactions:
        by_record.setdefault(item.record_id, []).append(item)
    table = Record.__table__  # type: ignore[attr-defined]
    found: list[Copy] = []
    for record_id, items in by_record.items():
        record = conn.execute(sa.select(table).where(table.c.id == record_id)).first()
        if record is None:
            continue
        others = conn.execute(
            sa.select(table.c.id, table.c.version, table.c.text).where(
                table.c.account == record.account,
                table.c.kind == record.kind,
                table.c.remote_id == record.remote_id,
                table.c.id != record_id,
                table.c.disposed_at.is_(None),
            )
        ).all()
        for item in items:
            withheld = record.text[item.start : item.end]
            for other in others:
                covered = by_record.get(other.id, [])
                for start, end in occurrences(other.text, withheld):
                    if not any(c.start <= start and end <= c.end for c in covered):
                        found.append(Copy(item.id or 0, other.id, other.version))
                        break
    return found


def propagate(
    engine: Engine,
    settings: Settings,
    redaction_id: int,
    *,
    actor: str,
    now: datetime,
    store: WormStore,
) -> Added:
    """Withhold redaction ``redaction_id``'s text in every other archived version of its item
    (same exemption and reason), e.g. in a version captured after it was made.

    :raises NotFound: no such redaction. :raises Refused: it was removed.
    :raises UsageError: its exemption code is no longer configured.
    """
    with Session(engine) as session:
        item = session.get(Redaction, redaction_id)
        if item is None:
            raise NotFound(f"no redaction {redaction_id}")
        if item.removed_at is not None:
            raise Refused(f"redaction {redaction_id} was removed; add a new one instead")
        record_id, start, end = item.record_id, item.start, item.end
        code, reason = item.exemption, item.reason
    return add(
        engine,
        settings,
        record_id,
        spans=[(start, end)],
        code=code,
        reason=reason,
        actor=actor,
        now=now,
        all_versions=True,
        keep=redaction_id,
        store=store,
    )
