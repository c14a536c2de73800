"""Canonical JSON (RFC 8785): the same value always gives the same bytes, hence the same hash."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from bulletin.jsonenc import reused

_SAFE_INT = 2**53
# the standard library's sorted, compact, non-ASCII-preserving output, made once (json.dumps
# with arguments builds an encoder per call)
_STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_ENCODE = reused(_STDLIB)  # the same text, its C encoder made once
# member types whose standard library output is RFC 8785's in a flat object (int: as before,
# not range-checked here; bool is its own type)
_FLAT = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether the standard library's sorted compact output is RFC 8785 for ``value``: no
    floats, ASCII keys, integers a double holds exactly."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        return -_SAFE_INT < value < _SAFE_INT
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (dicts, lists, str, int, float, bool, None).

    Values without floats (the usual snapshot) take the standard library's path, which gives
    the same bytes far faster (a test compares the two); the rest goes through ``rfc8785``.
    """
    if _plain(value):
        try:
            return _STDLIB.encode(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 judge it
            pass
    return bytes(rfc8785.dumps(value))


def canonical_plain(value: dict[str, str | int | bool | None]) -> bytes:
    """RFC 8785 bytes of a flat object with ASCII keys and no floats, computed fast.

    For such values the standard library's sorted, compact, non-ASCII-preserving output is
    byte-identical to RFC 8785 (a test compares the two); anything else takes the full path.
    """
    for key, item in value.items():
        if (type(item) not in _FLAT and isinstance(item, (float, dict, list))) or (
            not key.isascii()
        ):
            return canonical(value)
    return _ENCODE(value).encode()


def canonical_checked(value: dict[str, Any], *, unchecked: tuple[Any, ...]) -> bytes:
    """:func:`canonical` of ``value``, checking only the parts named in ``unchecked`` for what
    RFC 8785 writes differently from the standard library (floats, non-ASCII keys, integers
    past 2**53): the caller vouches that the rest has ASCII keys and holds only str, bool,
    None and integers a double holds exactly. Byte-identical to :func:`canonical` then (a test
    compares the two); the snapshot of every capture goes through here, its walk of the whole
    value was a tenth of the archive's CPU time.
    """
    if all(_plain(part) for part in unchecked):
        try:
            return _ENCODE(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 judge it
            pass
    return canonical(value)
