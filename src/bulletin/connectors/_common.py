"""Small helpers shared by the platform connectors."""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bulletin.timeparse import parse_iso

_URL = re.compile(r"https?://\S+")


def comparable_text(text: str) -> str:
    """Text as two platforms' copies of one post compare equal: NFC, entities decoded,
    URLs reduced to a placeholder (X shortens them to t.co), whitespace collapsed."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _URL.sub("<url>", text)
    return " ".join(text.split())


def parse_platform_time(value: str | None) -> datetime | None:
    """``2026-11-25T15:00:00.000Z`` (X) or ``2026-11-25T15:00:00+0000`` (Graph), as aware UTC."""
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


#: how long Meta's Graph APIs are waited for when a rate limit says nothing of when it ends
META_DEFAULT_WAIT = timedelta(minutes=5)


def meta_usage_wait(headers: Mapping[str, str], names: tuple[str, ...]) -> timedelta:
    """How long until a Meta Graph API (Facebook, Threads, Instagram) gives access back: the
    largest ``estimated_time_to_regain_access`` (minutes) of the first of the usage headers
    ``names`` that states one; :data:`META_DEFAULT_WAIT` when none does."""
    for header in names:
        try:
            usage = json.loads(headers.get(header, "") or "null")
        except ValueError:
            continue
        entries: list[Any] = []
        if isinstance(usage, dict):
            for value in usage.values():
                entries.extend(value if isinstance(value, list) else [])
            entries.append(usage)
        minutes = [
            float(e["estimated_time_to_regain_access"])
            for e in entries
            if isinstance(e, dict) and "estimated_time_to_regain_access" in e
        ]
        if minutes:
            return timedelta(minutes=max(minutes))
    return META_DEFAULT_WAIT
