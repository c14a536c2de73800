"""Canonical JSON (RFC 8785): the same value always gives the same bytes, hence the same hash.

For the values Bulletin archives (objects with ASCII keys, strings, safe integers, booleans,
null, lists; no floats) the standard library's sorted, compact, non-ASCII-preserving output is
byte-identical to RFC 8785: same key order (ASCII keys sort the same by code point and by
UTF-16 unit), same string escapes, same integers. Such values take that fast path (a test
compares the two on many values); anything else goes through ``rfc8785``.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_INT_MIN = -(2**53) + 1  # RFC 8785 numbers are IEEE 754 doubles: beyond this, rfc8785 refuses
_INT_MAX = 2**53 - 1
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
).encode


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (dicts, lists, str, int, float, bool, None)."""
    if _plain(value):
        try:
            return _ENCODE(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it its own way
            pass
    return bytes(rfc8785.dumps(value))


def canonical_plain(value: dict[str, str | int | bool | None]) -> bytes:
    """RFC 8785 bytes of a flat object; the same as :func:`canonical` (kept for callers)."""
    return canonical(value)


_SCALARS = frozenset({str, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether the standard library encodes ``value`` exactly as RFC 8785 does.

    Exact types only: subclasses (enums, bools posing as ints) take the full path.
    """
    kind = type(value)
    if kind is dict:
        items = value.values()
        for key in value:
            if type(key) is not str or not key.isascii():
                return False
    elif kind is list:
        items = value
    else:
        return _plain_scalar(value)
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is int:
            if not _INT_MIN <= item <= _INT_MAX:
                return False
        elif not _plain(item):
            return False
    return True


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    return kind in _SCALARS
