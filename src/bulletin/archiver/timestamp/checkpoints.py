"""Time stamps on the ledger's checkpoints, kept in the WORM store beside each checkpoint
(``checkpoints/<time>-<seq>.json.tsr``: the TimeStampResp as the authority sent it, DER,
over the sha256 of the checkpoint object as stored), permanently and on legal hold like the
checkpoint itself.

A checkpoint is stamped as soon as it is written. When no authority answers, it stays
unstamped and :func:`stamp_backlog` (a daemon job) stamps it later: the store itself is the
list of what waits (a checkpoint without its ``.tsr``), so nothing else is needed to track it.
The gap is visible: the token's time is later than the checkpoint's, ``verify`` warns of a
checkpoint still unstamped, and ``status --check`` counts them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bulletin.archiver import ledger
from bulletin.archiver.retention import PERMANENT
from bulletin.archiver.store.base import WormStore
from bulletin.archiver.timestamp.client import Stamp, TimestampUnavailable, stamp_digest
from bulletin.config.timestamp import TimestampSettings

TOKEN_SUFFIX = ".tsr"  # noqa: S105 (a file name suffix, not a credential)
#: at most this many checkpoints are stamped per backlog run (a long outage drains over runs)
BACKLOG_BATCH = 50


def token_key(checkpoint: str) -> str:
    """Where the time stamp of checkpoint ``checkpoint`` is kept."""
    return checkpoint + TOKEN_SUFFIX


def checkpoint_time(key: str) -> datetime | None:
    """When checkpoint ``key`` was taken, from its name (None for a name not of that form)."""
    name = key.removeprefix(ledger.CHECKPOINT_PREFIX)
    try:
        return datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def unstamped(store: WormStore) -> list[str]:
    """The checkpoints with no time stamp beside them, oldest first.

    One pass over the store's listing, in lexical order, where a checkpoint's time stamp
    (its key and a suffix) comes after it and before any key that does not start with it:
    only the checkpoints whose time stamp may still come are held, not every checkpoint the
    ledger has had (one an hour, for as long as the archive is kept)."""
    waiting: list[str] = []
    open_: list[str] = []  # checkpoints whose time stamp may still come (each a prefix of the next)
    for key in store.keys(ledger.CHECKPOINT_PREFIX):
        while open_ and not key.startswith(open_[-1]):
            waiting.append(open_.pop())  # passed its time stamp's place: none
        if open_ and key == token_key(open_[-1]):
            open_.pop()
        if key.endswith(ledger.CHECKPOINT_SUFFIX):
            open_.append(key)
    waiting += open_
    return sorted(waiting)


def stamp_checkpoint(
    store: WormStore, settings: TimestampSettings, key: str, now: datetime
) -> Stamp:
    """Time-stamp checkpoint ``key`` and keep the checked token beside it.

    :raises TimestampUnavailable: no authority gave a token that passed the checks.
    :raises StoreUnavailable: the store cannot be read or written.
    """
    digest = hashlib.sha256(store.get(key, verify=False)).digest()
    stamp = stamp_digest(settings, digest)
    store.put(token_key(key), stamp.token, retain_until=now + PERMANENT, legal_hold=True)
    store.flush()
    return stamp


@dataclass
class Backlog:
    """One run of :func:`stamp_backlog`: what it stamped, what still waits, and why the last
    try failed (None when nothing failed)."""

    stamped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def oldest_waiting(self) -> datetime | None:
        times = [t for t in map(checkpoint_time, self.waiting) if t is not None]
        return min(times, default=None)


def stamp_backlog(
    store: WormStore, settings: TimestampSettings, now: datetime, batch: int = BACKLOG_BATCH
) -> Backlog:
    """Stamp the checkpoints that have no time stamp yet, oldest first, up to ``batch``;
    stops at the first failure (the authorities are down: the rest would fail too). Never
    raises for an authority's failure."""
    result = Backlog(waiting=unstamped(store))
    if not settings.enabled:
        return result
    for key in list(result.waiting[:batch]):
        try:
            stamp_checkpoint(store, settings, key, now)
        except TimestampUnavailable as e:
            result.error = str(e)
            break
        result.stamped.append(key)
        result.waiting.remove(key)
    return result
