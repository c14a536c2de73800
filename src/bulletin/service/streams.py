"""The daemon's stream listeners: one thread per X account with ``stream = true`` (see
:mod:`bulletin.archiver.capture.xstream`), started with the daemon and stopped with it. A
listener that fails unexpectedly is logged and restarted after ``RESTART_SECONDS``; the
regular sweeps go on meanwhile. Stream settings are read at start (a reload does not
restart the listeners)."""

from __future__ import annotations

import threading

from bulletin.app import App
from bulletin.archiver.capture.xstream import ReplyStream
from bulletin.config.accounts import XAccountSettings
from bulletin.connectors.x import XConnector
from bulletin.logs import get_logger

log = get_logger("bulletin.capture")

RESTART_SECONDS = 30.0


def streamed_accounts(app: App) -> dict[str, XAccountSettings]:
    """The enabled X accounts that follow their threads on the stream, by name."""
    return {
        name: a
        for name, a in app.settings.accounts.items()
        if isinstance(a, XAccountSettings) and a.enabled and a.stream
    }


class Streams:
    """Start, then stop, the listeners of one daemon."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, account in streamed_accounts(self.app).items():
            thread = threading.Thread(
                target=self._run, args=(name, account), name=f"x-stream-{name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _run(self, name: str, account: XAccountSettings) -> None:
        while not self.stop_event.is_set():
            try:
                connector = self.app.connector(name)  # this thread's own
                assert isinstance(connector, XConnector)
                ReplyStream(
                    self.app.archiver,
                    connector,
                    name,
                    self.app.clock,
                    stall_seconds=account.stall_seconds,
                    stop=self.stop_event,
                ).run()
            except Exception as e:  # a listener never takes the daemon down
                log.error("X stream listener failed; restarting", account=name, error=str(e))
                self.stop_event.wait(RESTART_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every listener to stop and wait a little (a read in progress ends at the next
        line or keep-alive; the threads are daemons)."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
        self.threads = []
