"""The daemon as a real subprocess: start it, wait for it, signal it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.plugins.environment import free_port


class DaemonProcess:
    """``bulletin daemon`` running against a config file; logs go to a file."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> DaemonProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bulletin", "daemon", *extra],
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        self.wait_for_log("started", timeout=120)  # seconds on a loaded machine
        return self

    def wait_for_log(self, needle: str, timeout: float = 60.0, count: int = 1) -> None:
        """Until ``needle`` is logged ``count`` times; fails at once when the daemon exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and self.log.read_text().count(needle) >= count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not logged within {timeout}s:\n{self.log.read_text()}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def daemon_process() -> Iterator[Callable[[dict[str, str], Path], DaemonProcess]]:
    """Make daemon subprocesses; every one still running is killed at the end."""
    made: list[DaemonProcess] = []

    def make(env: dict[str, str], cwd: Path) -> DaemonProcess:
        if "BULLETIN_CONFIG" not in env:  # the embedded defaults serve the console: not on 8080
            env = {"BULLETIN_WEB__ADDRESS": f"127.0.0.1:{free_port()}", **env}
        process = DaemonProcess(env, cwd, cwd / f"daemon-{len(made)}.log")
        made.append(process)
        return process

    yield make
    for process in made:
        if process.proc is not None and process.proc.poll() is None:
            os.kill(process.proc.pid, signal.SIGKILL)
            process.proc.wait(timeout=10)
