"""The S3 bucket's own settings, re-checked: Object Lock and lifecycle rules.

Whoever holds the bucket's administrative credentials cannot shorten the lock of a version
already written in COMPLIANCE mode, but can change the bucket's default lock (mode, period)
or add a lifecycle rule that expires or moves objects as soon as their lock lets it. The
daemon reads both at start and daily (see :func:`check`); the first reading is kept in the
bucket itself, write-once and held (``bucket/settings.json``), and every later reading is
compared with it and with ``[archive.s3] mode``. ``status --check`` reads them again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bulletin.archiver.canonical import canonical_plain
from bulletin.archiver.retention import PERMANENT
from bulletin.archiver.store.base import WormStore
from bulletin.archiver.store.s3 import S3Store
from bulletin.archiver.store.spool import SpooledStore
from bulletin.errors import NotFound

BASELINE_KEY = "bucket/settings.json"


def s3_backend(store: WormStore) -> S3Store | None:
    """The S3 store behind ``store`` (through its spool), or None for another backend.

    :raises StoreUnavailable: S3 cannot be reached.
    """
    if isinstance(store, SpooledStore):
        store = store.backend()
    return store if isinstance(store, S3Store) else None


def check(store: WormStore, mode: str, now: datetime | None = None) -> list[str]:
    """What changed in the bucket's settings, one line each (empty: nothing, or not S3).

    With ``now``, the first reading that shows nothing wrong is stored as the baseline (the
    daemon does this); without, the store is only read (``status --check``).

    :raises StoreUnavailable: S3 cannot be reached.
    """
    s3 = s3_backend(store)
    if s3 is None:
        return []
    seen = s3.bucket_settings()
    try:
        baseline: dict[str, Any] | None = json.loads(s3.get(BASELINE_KEY))
    except NotFound:
        baseline = None
    name = f"S3 bucket {s3.bucket}"
    lines = []
    if seen["object_lock"] != "Enabled":
        lines.append(f"{name}: Object Lock is no longer enabled")
    if seen["mode"] is not None and seen["mode"] != mode:
        lines.append(
            f"{name}: its default Object Lock mode is {seen['mode']}, not the configured {mode}"
        )
    if baseline is not None and _period(seen) != _period(baseline):
        lines.append(
            f"{name}: its default Object Lock retention changed from {_period(baseline)} "
            f"to {_period(seen)}"
        )
    known = [canonical_plain(r) for r in (baseline or {}).get("lifecycle", [])]
    for rule in seen["lifecycle"]:
        if canonical_plain(rule) not in known:
            lines.append(
                f"{name}: lifecycle rule {rule.get('ID') or '(unnamed)'} appeared; it can expire "
                "or move archived objects once their lock ends"
            )
    if baseline is None and not lines and now is not None:
        s3.put(BASELINE_KEY, canonical_plain(seen), retain_until=now + PERMANENT, legal_hold=True)
    return lines


def _period(settings: dict[str, Any]) -> str:
    mode, days, years = settings.get("mode"), settings.get("days"), settings.get("years")
    if mode is None:
        return "none"
    count, unit = (years, "year") if years else (days, "day")
    return f"{mode} {count} {unit}{'' if count == 1 else 's'}"
