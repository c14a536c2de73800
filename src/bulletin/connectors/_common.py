"""Small helpers shared by the platform connectors."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import datetime

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
