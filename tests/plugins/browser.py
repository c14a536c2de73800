"""Headless Chromium for the rendering tests: Debian's ``chromium`` driven by Playwright.

Playwright launches the system browser through ``executable_path`` (never its own download).
One browser per test session; each test opens its own pages. Without ``/usr/bin/chromium``
or Playwright the tests skip, and fail under CI=true.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.environment import require

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``)."""
    have = all(importlib.util.find_spec(m) for m in ("playwright", "axe_playwright_python"))
    require(have and CHROMIUM.is_file(), f"Chromium ({CHROMIUM}) with Playwright and axe")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of the WCAG 2.1 A and AA rules on ``page``, as axe reports them."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    results = Axe().run(page, options=options)
    return list(results.response["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and node, for an assertion message."""
    lines = []
    for violation in violations:
        for node in violation["nodes"]:
            lines.append(f"{violation['id']}: {violation['help']} at {node['target']}")
    return "\n".join(lines)


#: the README's screenshots of the console, rewritten by the tests that take them
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


def screenshot(page: Any, name: str, whole: bool = True) -> None:
    """Save ``page`` (the whole of it, or what the window shows) as ``docs/img/<name>.png``
    for the README (taken by a test after its page passed axe, so the README shows the page
    as it is)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=whole)
