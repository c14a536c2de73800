"""Canonical JSON (RFC 8785): the same value always gives the same bytes, hence the same hash."""

from __future__ import annotations

import json
from typing import Any

import rfc8785


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (dicts, lists, str, int, float, bool, None)."""
    return bytes(rfc8785.dumps(value))


def canonical_plain(value: dict[str, str | int | bool | None]) -> bytes:
    """RFC 8785 bytes of a flat object with ASCII keys and no floats, computed fast.

    For such values the standard library's sorted, compact, non-ASCII-preserving output is
    byte-identical to RFC 8785 (a test compares the two); anything else takes the full path.
    """
    for key, item in value.items():
        if isinstance(item, float) or not key.isascii() or isinstance(item, (dict, list)):
            return canonical(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
