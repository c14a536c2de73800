"""The sandbox as a child of the daemon (embedded defaults: ``[sandbox] start_with_daemon``)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

from bulletin.config.settings import Settings
from bulletin.logs import get_logger

log = get_logger("bulletin.sandbox")


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class SandboxChild:
    """Starts ``bulletin sandbox`` unless one already answers on the configured port."""

    def __init__(self, settings: Settings, config_path: str | None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        host, port = self.settings.sandbox.host, self.settings.sandbox.port
        if _answers(host, port):
            log.info("sandbox already running", url=f"http://{host}:{port}")
            return
        args = [sys.executable, "-m", "bulletin"]
        if self.config_path:
            args += ["--config", self.config_path]
        self.proc = subprocess.Popen([*args, "sandbox"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(host, port):
                log.info("sandbox started", url=f"http://{host}:{port}", pid=self.proc.pid)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log.error("sandbox did not start; sandbox accounts will retry", port=port)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
