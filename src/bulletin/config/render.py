"""Settings written back as TOML (``bulletin config check --toml``): tomllib reads it again.

Only what JSON-mode ``model_dump`` gives is handled: tables, arrays, strings, numbers,
booleans; ``None`` (unset) is left out, as TOML has no null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# (dotted path of the key, its value) -> a comment for the end of its line, or None
Note = Callable[[tuple[str, ...], Any], str | None]


def to_toml(data: Mapping[str, Any], note: Note | None = None) -> str:
    """``data`` as a TOML document: scalars first, then arrays of tables, then tables."""
    lines: list[str] = []
    _table(data, (), lines, note)
    return "\n".join(lines).strip("\n") + "\n"


def _table(
    data: Mapping[str, Any],
    path: tuple[str, ...],
    lines: list[str],
    note: Note | None,
    array_item: bool = False,
) -> None:
    plain = {k: v for k, v in data.items() if v is not None and not _is_table(v)}
    plain = {k: v for k, v in plain.items() if not _is_table_array(v)}
    arrays = {k: v for k, v in data.items() if _is_table_array(v)}
    tables = {k: v for k, v in data.items() if _is_table(v) and v}
    if array_item:
        lines += ["", f"[[{_dotted(path)}]]"]
    elif plain and path:
        lines += ["", f"[{_dotted(path)}]"]
    for key, value in plain.items():
        comment = note((*path, key), value) if note else None
        lines.append(f"{_key(key)} = {_value(value)}" + (f"  # {comment}" if comment else ""))
    for key, items in arrays.items():
        for item in items:
            _table(item, (*path, key), lines, note, array_item=True)
    for key, value in tables.items():
        _table(value, (*path, key), lines, note)


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(p) for p in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(pairs) + "}"
    return _string(str(value))


def _string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
