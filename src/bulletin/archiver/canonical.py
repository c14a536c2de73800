"""Canonical JSON (RFC 8785): the same value always gives the same bytes, hence the same hash."""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (dicts, lists, str, int, bool, None)."""
    return bytes(rfc8785.dumps(value))
