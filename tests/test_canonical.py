"""Canonical JSON: the fast path gives exactly RFC 8785's bytes."""

from __future__ import annotations

import random

import pytest
import rfc8785

from bulletin.archiver.canonical import canonical, canonical_plain

TRICKY = [
    "plain",
    "",
    'quote " backslash \\ slash /',
    "tab\tnew\nline\rcr\bbs\fff",
    "\x00\x01\x1f\x7f",
    "emoji 🚧🙂",
    "עברית right-to-left",
    "e\u0301 combining",
    "\u2028\u2029 separators",
    "CJK 中文",
    "<script>&amp;</script>",
]


def test_fast_path_matches_rfc8785() -> None:
    """For flat objects of strings, ints, bools and None the bytes are identical."""
    rng = random.Random(3)
    for _ in range(2000):
        value: dict[str, str | int | bool | None] = {}
        for i in range(rng.randint(0, 8)):
            key = rng.choice(["seq", "kind", "a", "B", "z_1", "prev_hash", f"k{i}"])
            value[key] = rng.choice(
                [rng.choice(TRICKY), rng.randint(-(2**53) + 1, 2**53 - 1), True, False, None]
            )
        assert canonical_plain(value) == bytes(rfc8785.dumps(value)), value


def test_floats_and_nesting_take_the_full_path() -> None:
    """Values the fast path cannot promise go through rfc8785."""
    assert canonical_plain({"x": 1.5}) == canonical({"x": 1.5})
    nested = {"a": {"b": [1, "two"]}}
    assert canonical_plain(nested) == canonical(nested)  # type: ignore[arg-type]


def random_value(rng: random.Random, depth: int = 0) -> object:
    """A JSON value: nested objects and lists of the kinds Bulletin archives, now and then
    something only the full path handles (floats, non-ASCII keys, tuples)."""
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        keys = ["id", "text", "a", "B", "z_1", "extra", "ü", "\U0001f600", "\ue000"]
        return {
            rng.choice(keys[:6] if rng.random() < 0.9 else keys): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 5))
        }
    if depth < 3 and roll < 0.4:
        items = [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        return tuple(items) if rng.random() < 0.1 else items
    return rng.choice(
        [
            rng.choice(TRICKY),
            rng.randint(-(2**53) + 1, 2**53 - 1),
            True,
            False,
            None,
            rng.choice([0.5, 1e21, -0.0, 3.0]),
        ]
    )


def test_nested_values_match_rfc8785() -> None:
    """Nested objects and lists give rfc8785's bytes, whichever path they take."""
    rng = random.Random(7)
    for _ in range(3000):
        value = random_value(rng)
        assert canonical(value) == bytes(rfc8785.dumps(value)), value


def test_what_rfc8785_refuses_is_refused() -> None:
    """Integers beyond 2**53 and lone surrogates raise as rfc8785 does."""
    for bad in ({"n": 2**53}, {"s": "\ud800"}, [-(2**53)]):
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(bad)
