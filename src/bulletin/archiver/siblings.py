"""The sibling posts of a post of a notice in several languages: the same notice's posts in
the other languages, for productions, the records console and the portal to link together.

The publisher archives each language's post with its language, the notice's primary and its
siblings (``item.extra``: ``lang``, ``primary_lang``, ``siblings`` as ``{lang, account,
key}``: the same occurrence's posts in the other languages); every later version of a post
carries its language and notice (see :func:`bulletin.archiver.archive.carried`). A sibling
named by the snapshot is found among the records of the same notice by account and language;
when the notice was posted more than once (a recurring notice), the sibling is the one
posted nearest in time, as the posts of one occurrence go out together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.models import Record


@dataclass(frozen=True)
class Named:
    """What a snapshot says of a post's language: its own, the notice's primary and the
    siblings as (language, account)."""

    lang: str
    primary: str
    siblings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sibling:
    """A post of the same notice in another language: its first archived version
    (``record_id`` None when none is archived or it is not to be shown)."""

    lang: str
    account: str
    record_id: int | None = None
    remote_id: str | None = None
    url: str | None = None

    @property
    def name(self) -> str:
        """The language's name in itself (``Español``)."""
        return language_name(self.lang)

    def as_json(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "name": self.name,
            "account": self.account,
            "record_id": self.record_id,
            "remote_id": self.remote_id,
            "url": self.url,
        }


def named(snapshot: Mapping[str, Any]) -> Named | None:
    """The language and siblings a post's snapshot names; None when it names no siblings."""
    item = snapshot.get("item")
    extra = item.get("extra") if isinstance(item, Mapping) else None
    if not isinstance(extra, Mapping):
        return None
    lang, listed = extra.get("lang"), extra.get("siblings")
    if not isinstance(lang, str) or not isinstance(listed, list):
        return None
    pairs = tuple(
        (str(s["lang"]), str(s["account"]))
        for s in listed
        if isinstance(s, Mapping) and isinstance(s.get("lang"), str) and s.get("account")
    )
    primary = extra.get("primary_lang")
    return Named(lang, primary if isinstance(primary, str) else lang, pairs)


def _when(record: Record) -> datetime | None:
    when = record.posted_at or record.captured_at
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def siblings(
    session: Session,
    record: Record,
    snapshot: Named | None = None,
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> list[Sibling]:
    """The posts of ``record``'s notice in the other languages, by language then account:
    those ``snapshot`` names when given (a named one not found has no record), else every
    one archived. ``where``: further conditions a sibling's record must meet (the portal's
    rules of what the public sees); one that does not is left out. Empty for anything but a
    post of a notice with a language."""
    if record.kind != "post" or record.notice_id is None or not record.lang:
        return []
    rows = session.exec(
        select(Record)
        .where(col(Record.notice_id) == record.notice_id)
        .where(col(Record.kind) == "post")
        .where(col(Record.lang).is_not(None), col(Record.lang) != record.lang)
        .where(*where)
        .order_by(col(Record.version), col(Record.id))
    ).all()
    first: dict[tuple[str, str], Record] = {}  # each item's first version among them
    for row in rows:
        first.setdefault((row.account, row.remote_id), row)
    here = _when(record)
    nearest: dict[tuple[str, str], Record] = {}
    for row in first.values():
        assert row.lang is not None
        key = (row.lang, row.account)
        known = nearest.get(key)
        if known is None or _distance(row, here) < _distance(known, here):
            nearest[key] = row
    wanted = list(snapshot.siblings) if snapshot is not None else sorted(nearest)
    out = []
    for lang, account in sorted(dict.fromkeys(wanted)):
        found = nearest.get((lang, account))
        out.append(
            Sibling(lang, account, found.id, found.remote_id, found.url)
            if found is not None
            else Sibling(lang, account)
        )
    return out


def _distance(record: Record, here: datetime | None) -> float:
    when = _when(record)
    if when is None or here is None:
        return float("inf")
    return abs((when - here).total_seconds())


def language_name(tag: str) -> str:
    """The language's name in itself, capitalised as a heading (``Español``), from Babel;
    the tag when Babel does not know it."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(tag, sep="-").get_display_name()
    except (UnknownLocaleError, ValueError):
        return tag
    return (name[:1].upper() + name[1:]) if name else tag
