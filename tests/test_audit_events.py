"""Audit events written for many objects at once hold what one event each would."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bulletin import audit


@dataclass(frozen=True)
class _Origin:
    name: str
    via: str = "session"
    host: str = "10.0.0.7"
    by: str = ""
    reason: str = ""


TRICKY = ["", "plain", 'quo"te', "back\\slash", "tab\there", "new\nline", "é", "🚧", "\u2028"]


def test_detail_json_is_json_dumps_sorted() -> None:
    """Flat details of strings, integers, flags and nulls, and anything else, are written
    exactly as ``json.dumps(detail, sort_keys=True, default=str)``."""
    rng = random.Random(7)
    for _ in range(2000):
        detail: dict[str, Any] = {}
        for _i in range(rng.randint(1, 6)):
            key = rng.choice(["series", "sha256", "remote_id", "version", "change", "é", "a b"])
            detail[key] = rng.choice(
                [rng.choice(TRICKY), rng.randint(-(2**70), 2**70), True, False, None]
            )
        assert audit.detail_json(detail) == json.dumps(detail, sort_keys=True, default=str)
    odd = {"when": datetime(2026, 12, 7, tzinfo=UTC), "n": 1.5, "list": [1, "x"]}
    assert audit.detail_json(odd) == json.dumps(odd, sort_keys=True, default=str)


def test_events_of_are_what_event_gives_for_each() -> None:
    """For a name, a name acting under an origin, and an admin acting on someone's behalf,
    the rows are those of one :func:`audit.event` call per object."""
    at = datetime(2026, 12, 7, 6, tzinfo=UTC)
    objects: list[tuple[str | int, dict[str, Any]]] = [
        (1, {"series": "s", "version": 2, "change": "new"}),
        ("x", {}),
        (3, {"remote_id": 'r"1', "sha256": "ab"}),
    ]

    def each(actor: Any) -> list[dict[str, Any]]:
        return [
            audit.event(
                at=at, actor=actor, action="captured", object_type="record", object_id=o, **d
            )
            for o, d in objects
        ]

    def batch(actor: Any) -> list[dict[str, Any]]:
        return audit.events_of(
            at=at, actor=actor, action="captured", object_type="record", objects=objects
        )

    assert batch("bulletin") == each("bulletin")
    clerk = _Origin("clerk")
    with audit.acting(clerk):
        assert batch("clerk") == each("clerk")
        assert batch("clerk")[0]["via"] == "session"
    admin = _Origin("clerk", by="admin", reason="cover")
    assert batch(admin) == each(admin)
    assert batch(admin)[0]["actor"] == "admin"
