"""Canonical JSON: the fast path gives exactly RFC 8785's bytes."""

from __future__ import annotations

import random
from typing import Any, TypeAlias

import pytest
import rfc8785

from bulletin.archiver.canonical import canonical, canonical_checked, canonical_plain

Json: TypeAlias = "str | int | bool | list[Json] | dict[str, Json] | None"

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
    assert canonical_plain({"x": 1.5}) == canonical({"x": 1.5})  # type: ignore[dict-item]
    nested = {"a": {"b": [1, "two"]}}
    assert canonical_plain(nested) == canonical(nested)  # type: ignore[arg-type]


def test_nested_fast_path_matches_rfc8785() -> None:
    """Nested snapshots (objects in lists in objects) without floats give RFC 8785's bytes."""
    rng = random.Random(5)

    def value(depth: int) -> Json:
        pick = rng.randint(0, 6 if depth < 3 else 3)
        if pick == 0:
            return rng.choice(TRICKY)
        if pick == 1:
            return rng.randint(-(2**53) + 1, 2**53 - 1)
        if pick == 2:
            return rng.choice([True, False, None])
        if pick == 3:
            return rng.choice(TRICKY) + str(rng.random())
        if pick in (4, 5):
            return {rng.choice(["id", "Z", "a_b", "text", "é"[:0] + "k"]): value(depth + 1)}
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    for _ in range(2000):
        data: dict[str, Json] = {
            "item": value(0),
            "list": [value(0), value(0)],
            "n": rng.randint(0, 9),
        }
        assert canonical(data) == bytes(rfc8785.dumps(data)), data
    assert canonical({"x": [1.5]}) == bytes(rfc8785.dumps({"x": [1.5]}))


def test_checked_parts_give_rfc8785_bytes() -> None:
    """canonical_checked walks only the parts it is told may hold anything: floats, big
    integers or non-ASCII keys there still give RFC 8785's bytes."""
    rng = random.Random(7)
    extras: list[Any] = [
        None,
        {"likes": 3, "lang": "en"},
        {"score": 0.1},
        {"é": "non-ASCII key"},
        [1e21, -0.0, 5e-324],
        {"nested": [{"x": 1.0}]},
    ]
    for _ in range(200):
        extra = rng.choice(extras)
        media = [{"url": rng.choice(TRICKY), "size": rng.randint(0, 10**6)}]
        value: dict[str, Any] = {
            "schema": "bulletin.snapshot/1",
            "text": rng.choice(TRICKY),
            "training": rng.choice([True, False]),
            "notice_id": rng.choice([None, rng.randint(1, 10**9)]),
            "item": {"extra": extra, "state": "visible"},
            "media": media,
        }
        want = bytes(rfc8785.dumps(value))
        assert canonical_checked(value, unchecked=(extra, media)) == want, value
        assert canonical(value) == want
    big = {"big": 2**60}  # past what a double holds: refused either way
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_checked({"extra": big}, unchecked=(big,))
    lone = {"text": "\udc00"}  # a lone surrogate: rfc8785 decides
    try:
        want = bytes(rfc8785.dumps(lone))
    except Exception as e:
        with pytest.raises(type(e)):
            canonical_checked(lone, unchecked=())
    else:
        assert canonical_checked(lone, unchecked=()) == want
