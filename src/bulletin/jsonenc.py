"""A JSON encoder's ``encode`` with the standard library's C encoder made once.

``json.JSONEncoder.encode`` builds its C encoder at every call: a third to half of the cost of
encoding a small object. The archive encodes several small objects per record (the content
that is hashed, the snapshot, the ledger entry, the audit detail).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any


def reused(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` of an encoder made without ``indent``: the same text, with the C
    encoder made once (the encoder's settings are read now). No check for circular
    references: a value with one fails with RecursionError, not ValueError. Thread-safe (it
    keeps no state)."""
    try:
        from _json import make_encoder
    except ImportError:  # pragma: no cover - CPython without its C accelerator
        return encoder.encode
    c_encode = make_encoder(
        None,
        encoder.default,
        encode_basestring_ascii if encoder.ensure_ascii else encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        if isinstance(value, str):  # as JSONEncoder.encode: a string at the top
            return encoder.encode(value)
        return "".join(c_encode(value, 0))

    return encode
