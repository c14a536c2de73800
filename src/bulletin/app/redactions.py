"""Redactions, as a records clerk adds, propagates, lists and removes them.

Changing redactions needs the clerk role; anyone may read them. The archive itself never
changes: a redaction shapes what a public production shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.app.records import get_record
from bulletin.archiver import redaction
from bulletin.config.archive import ExemptionCode
from bulletin.errors import Refused, UsageError
from bulletin.identity import require_role
from bulletin.models import Record, Redaction


@dataclass(frozen=True)
class Sheet:
    """A record's text as a clerk redacts it: its words with their offsets, its redactions in
    force with their labels, and the text as a public production shows it."""

    record: Record
    words: list[tuple[int, int, str]]
    redactions: list[tuple[Redaction, str]]
    public_text: str


def label_of(app: App, code: str) -> str:
    """How exemption ``code`` is cited (its label, else the code)."""
    return redaction.label_of(app.settings, code)


@acts
def add_redaction(
    app: App,
    actor: Actor,
    record_id: int,
    *,
    code: str,
    reason: str,
    spans: Sequence[tuple[int, int]] = (),
    match: str | None = None,
    all_versions: bool = False,
) -> redaction.Added:
    """Withhold ``spans`` (or every occurrence of ``match``) of a record's text under exemption
    ``code``; with ``all_versions`` in the item's other archived versions too.

    :raises Refused: ``actor`` is not a clerk; a span overlaps one in force; the record was
        destroyed.
    :raises UsageError: nothing to withhold (remedy ``span-or-match``), a span outside the text,
        an unknown code, no reason.
    :raises NotFound: no such record.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    return redaction.add(
        app.checked_engine(),
        app.settings,
        record_id,
        spans=spans,
        match=match,
        code=code,
        reason=reason,
        actor=actor.name,
        now=app.clock.now(),
        all_versions=all_versions,
        store=app.store,
    )


@acts
def propagate_redaction(app: App, actor: Actor, redaction_id: int) -> redaction.Added:
    """Withhold a redaction's text in every other archived version of its item too.

    :raises Refused: ``actor`` is not a clerk; the redaction was removed.
    :raises NotFound: no such redaction.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    engine, now = app.checked_engine(), app.clock.now()
    return redaction.propagate(
        engine, app.settings, redaction_id, actor=actor.name, now=now, store=app.store
    )


@acts
def list_redactions(
    app: App, actor: Actor, *, record_id: int | None = None, include_removed: bool = False
) -> list[Redaction]:
    """Redactions in force (with ``include_removed``, all), oldest first."""
    return redaction.listing(
        app.checked_engine(), record_id=record_id, include_removed=include_removed
    )


@acts
def remove_redaction(app: App, actor: Actor, redaction_id: int, *, reason: str) -> Redaction:
    """Take a redaction out of force (it stays on record, marked removed).

    :raises Refused: ``actor`` is not a clerk; removed already.
    :raises NotFound: no such redaction.
    :raises UsageError: no reason.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    engine, now = app.checked_engine(), app.clock.now()
    return redaction.remove(
        engine, redaction_id, actor=actor.name, reason=reason, now=now, store=app.store
    )


@acts
def exemption_codes(app: App, actor: Actor) -> dict[str, ExemptionCode]:
    """The exemption codes a redaction may cite, by code, sorted."""
    return dict(sorted(app.settings.redaction.codes().items()))


@acts
def redaction_sheet(app: App, actor: Actor, record_id: int) -> Sheet:
    """A record's words, redactions in force and public text.

    :raises NotFound: no such record.
    """
    engine = app.checked_engine()
    record = get_record(engine, record_id)
    rows = redaction.listing(engine, record_id=record_id)
    labelled = [(r, label_of(app, r.exemption)) for r in rows]
    spans = [redaction.Span(r.start, r.end, label) for r, label in labelled]
    return Sheet(
        record,
        redaction.words(record.text),
        labelled,
        redaction.redacted_text(record.text, spans),
    )


@dataclass(frozen=True)
class Proposal:
    """A redaction not yet saved, as the public would see it: the spans it would withhold
    (grown to whole characters), the label its exemption shows, and the record's text cut
    into ``(text, label)`` pieces with it and the redactions in force applied (a withheld
    piece's text is ``""``, exactly as the portal and a public production show it)."""

    record: Record
    spans: list[tuple[int, int]]
    label: str
    public: list[tuple[str, str | None]]


def phrase_spans(text: str, phrase: str, occurrence: int | None) -> list[tuple[int, int]]:
    """Where ``phrase`` stands in ``text``: its ``occurrence``-th place (from 1), or with
    None every place.

    :raises UsageError: no phrase; the text does not contain it that many times.
    """
    if not phrase:
        raise UsageError(
            "say what to withhold: select words in the text or type them", remedy="span-or-match"
        )
    found = redaction.occurrences(text, phrase)
    if not found:
        raise UsageError(f"the record's text does not contain {phrase!r}")
    if occurrence is None:
        return found
    if not 1 <= occurrence <= len(found):
        raise UsageError(
            f"the text contains {phrase!r} {len(found)} time(s); choose an occurrence from 1 "
            f"to {len(found)}"
        )
    return [found[occurrence - 1]]


@acts
def preview_redaction(
    app: App, actor: Actor, record_id: int, *, code: str, spans: Sequence[tuple[int, int]]
) -> Proposal:
    """What withholding ``spans`` of record ``record_id`` under exemption ``code`` would
    show the public; nothing is saved. Checks what :func:`add_redaction` checks, except the
    reason.

    :raises Refused: ``actor`` is not a clerk; a span overlaps a redaction in force; the
        record was destroyed.
    :raises UsageError: no span, a span outside the text, an unknown code.
    :raises NotFound: no such record.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "clerk", engine)
    code, _ = redaction.exemption(app.settings, code)
    record = get_record(engine, record_id)
    if record.disposed_at is not None:
        raise Refused(f"record {record_id} was destroyed under the retention schedule")
    if not spans:
        raise UsageError("say what to withhold: a span or a text to match", remedy="span-or-match")
    text = record.text
    in_force = redaction.listing(engine, record_id=record_id)
    wide: list[tuple[int, int]] = []
    for start, end in spans:
        if not 0 <= start < end <= len(text):
            raise UsageError(
                f"span {start}:{end} is outside record {record_id}'s text (0:{len(text)})"
            )
        start, end = redaction.widen(text, start, end)
        for other in in_force:
            if other.start < end and start < other.end:
                raise Refused(
                    f"the text chosen overlaps redaction {other.id} ({other.start}:{other.end}); "
                    "remove that one first or choose text that does not overlap"
                )
        wide.append((start, end))
    label = label_of(app, code)
    cut = [redaction.Span(r.start, r.end, label_of(app, r.exemption)) for r in in_force]
    cut += [redaction.Span(s, e, label) for s, e in wide]
    return Proposal(record, wide, label, redaction.pieces(text, cut, withhold=True))
