"""The README's pictures of the console exist and each is taken by a test (the one that checks
its page with axe), so a change to a page changes its picture on the next full run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_console_picture_in_the_readme_exists_and_a_test_takes_it() -> None:
    """Each ``docs/img/console-*.png`` the README shows is a PNG in the tree and is named by a
    ``screenshot(page, NAME)`` call in the tests; none is taken that the README leaves out."""
    shown = set(re.findall(r"\(docs/img/(console-[\w-]+)\.png\)", (ROOT / "README.md").read_text()))
    taken = {
        name
        for path in (ROOT / "tests").glob("test_*.py")
        for name in re.findall(r'screenshot\(page, "([\w-]+)"[,)]', path.read_text())
    }
    assert shown == taken, (shown, taken)
    for name in shown:
        assert (ROOT / "docs" / "img" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
