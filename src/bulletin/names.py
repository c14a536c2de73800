"""What a name must be to stand in an audit line: one word of one line, printable."""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 64


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be recorded as someone's name, or None when it can.

    A name is at most :data:`MAX_NAME_LENGTH` characters, not blank, with no control, format
    (bidi overrides, zero-width) or separator characters other than a plain space, so that no
    name can forge or hide an audit line.
    """
    if not name.strip():
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    for position, char in enumerate(name, start=1):
        if char != " " and unicodedata.category(char)[0] in "CZ":
            label = unicodedata.name(char, "control character").lower()
            return (
                f"has a {label} (U+{ord(char):04X}) at position {position}; "
                "a name is one line of printable characters"
            )
    return None


def printable(name: str) -> str:
    """``name`` as it is safe to print: control and format characters escaped."""
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if char != " " and unicodedata.category(char)[0] in "CZ"
        else char
        for char in name
    )
