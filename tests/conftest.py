"""Shared fixtures. Real backends only: SQLite, PostgreSQL, the local store, SeaweedFS, the
sandbox platform server, headless Chromium. PostgreSQL, SeaweedFS and browser tests skip on a
laptop without them and fail under CI=true."""

from __future__ import annotations

pytest_plugins = [
    "tests.plugins.environment",
    "tests.plugins.database",
    "tests.plugins.bulletin_app",
    "tests.plugins.daemon_process",
    "tests.plugins.sandbox",
    "tests.plugins.capture",
    "tests.plugins.seaweedfs",
    "tests.plugins.browser",
    "tests.plugins.tsa",
]
