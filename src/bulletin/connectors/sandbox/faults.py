"""Faults injected through the control API: the next N requests matching a path misbehave.

Kinds:

- ``rate_limit``: the platform's rate-limit answer; ``seconds`` until the limit resets.
- ``error``: a server error with ``status`` (500, 502, 503...).
- ``delay``: answer normally after ``seconds``.
- ``timeout``: do the work (a post is committed), then stall ``seconds`` before answering, so
  the client times out not knowing whether it worked: the ambiguous case.
- ``duplicate``: the platform's duplicate-content refusal.
- ``expired_token``: the platform's expired-credentials answer.
- ``malformed``: a 200 whose body is not JSON.
- ``malformed_item``: a normal answer whose first listed item is malformed (its text is an
  object), the way one bad element arrives in an otherwise good page.
- ``invalid_parameter``: the platform's refusal of a bad parameter (Graph: code 100 without
  a subcode; X: 400 Invalid Request), which says nothing about whether the object exists.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

FaultKind = Literal[
    "rate_limit",
    "error",
    "delay",
    "timeout",
    "duplicate",
    "expired_token",
    "malformed",
    "malformed_item",
    "invalid_parameter",
]
KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class Fault:
    """One injected fault; ``path`` is a regular expression searched in the request path."""

    kind: FaultKind
    path: str = ""
    method: str | None = None
    count: int = 1
    status: int = 503
    seconds: float = 1.0
    code: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Fault:
        """Build from the control API's JSON; ValueError on a bad kind or field."""
        kind = value.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        re.compile(str(value.get("path", "")))
        return cls(
            kind=kind,
            path=str(value.get("path", "")),
            method=value.get("method"),
            count=int(value.get("count", 1)),
            status=int(value.get("status", 503)),
            seconds=float(value.get("seconds", 1.0)),
            code=int(value["code"]) if value.get("code") is not None else None,
        )


class Faults:
    """The pending faults, first added first used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counted down; None when none applies."""
        with self._lock:
            for fault in self._pending:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self._pending.remove(fault)
                    return Fault(**asdict(fault))
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._pending]
