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


# Bidi embeddings, overrides and isolates: they reorder what a reader sees.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def _unshown(char: str, keep: str) -> str | None:
    """What ``char`` is when no platform displays it (None when it is shown, or in ``keep``)."""
    if char in keep:
        return None
    code = ord(char)
    category = unicodedata.category(char)
    if category == "Cc":
        return "control character"
    if category == "Cs":
        return "lone surrogate"
    if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
        return "noncharacter"
    if char in _BIDI_CONTROLS:
        return unicodedata.name(char).lower()
    return None


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be published, or None when it can: it holds a character that no
    platform displays and a feed cannot carry (a C0/C1 control other than newline and tab, a
    noncharacter such as U+FFFE, a lone surrogate, a bidi embedding, override or isolate).
    The answer names the character and its position (from 1), e.g. ``has a control character
    (U+001B) at position 5``."""
    for position, char in enumerate(text, start=1):
        label = _unshown(char, "\n\t")
        if label is not None:
            return f"has a {label} (U+{ord(char):04X}) at position {position}"
    return None


def printable_text(text: str, multiline: bool = False) -> str:
    """``text`` as it is safe to print on a terminal: controls (ESC and the rest), lone
    surrogates, noncharacters and bidi controls escaped; newlines kept when ``multiline``,
    escaped otherwise; tabs kept."""
    keep = "\n\t" if multiline else "\t"
    return "".join(
        char.encode("unicode_escape").decode("ascii") if _unshown(char, keep) else char
        for char in text
    )
