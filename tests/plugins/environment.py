"""Facts about the machine the tests run on."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a developer machine; fail under CI=true."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available here")


def free_port(limit: int = 55535) -> int:
    """A free TCP port on 127.0.0.1 at or below ``limit``."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port <= limit:
            return port
    raise RuntimeError(f"no free port at or below {limit}")
