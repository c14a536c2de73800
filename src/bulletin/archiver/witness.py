"""Witnesses of the ledger's head outside the store (``[archive.witness]``).

A checkpoint (see :func:`bulletin.archiver.ledger.write_checkpoint`) lives in the store, so
whoever can rewrite the data directory can delete it along with the entries it vouches for.
Each checkpoint's head is therefore also sent to the places configured here, which belong to
another trust domain: the system log (``syslog``, local journald or a remote syslog server),
an HTTP endpoint (``webhook``, e.g. the records officer's system) and an append-only file on
another mount (``file``). ``verify`` reads back the file and, when ``webhook_read_url`` is
set, the webhook's list, and checks that the chain still holds every witnessed head.

A witnessed point is ``{"seq", "head", "at", "hash"}``: the sequence number and entry hash of
the ledger's newest entry, when the checkpoint was taken, and the sha256 of the checkpoint
object as stored.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Any

from bulletin.archiver.canonical import canonical_plain
from bulletin.archiver.ledger import CHECKPOINT_PREFIX
from bulletin.archiver.store.base import WormStore, sha256_hex
from bulletin.config.archive import WitnessSettings

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Point:
    """One witnessed ledger head."""

    seq: int
    head: str
    at: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {"seq": self.seq, "head": self.head, "at": self.at, "hash": self.hash}

    def line(self) -> bytes:
        """The point as one canonical JSON line (what the file and syslog targets hold)."""
        return canonical_plain(self.body())


def parse_point(value: object) -> Point:
    """A point from its JSON form.

    :raises ValueError: not an object with an integer ``seq``, hex ``head`` and ``hash``
        and a string ``at``.
    """
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    seq, head, at, digest = (value.get(k) for k in ("seq", "head", "at", "hash"))
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("seq is not a positive integer")
    if not isinstance(head, str) or not _HEX64.match(head):
        raise ValueError("head is not a sha256")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise ValueError("hash is not a sha256")
    if not isinstance(at, str):
        raise ValueError("at is not a time")
    return Point(seq, head, at, digest)


def point_of(store: WormStore, key: str) -> Point:
    """The point a checkpoint object (``key``) states."""
    data = store.get(key, verify=False)
    body = json.loads(data)
    return Point(int(body["head_seq"]), str(body["head_hash"]), str(body["at"]), sha256_hex(data))


def configured(settings: WitnessSettings) -> list[str]:
    """The names of the targets ``settings`` turns on (empty: no witness)."""
    return [
        name
        for name, on in (
            ("syslog", settings.syslog),
            ("webhook", bool(settings.webhook)),
            ("file", settings.file is not None),
        )
        if on
    ]


def send(settings: WitnessSettings, point: Point) -> list[str]:
    """Write ``point`` to every configured target; returns one line per target that failed
    (empty: all took it). Never raises for a target's failure."""
    import requests

    failed: list[str] = []
    for name in configured(settings):
        try:
            _SENDERS[name](settings, point)
        except (OSError, requests.RequestException) as e:
            failed.append(f"witness {name}: {e}")
    return failed


class _Syslog(SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        raise  # called inside emit's except block: let send() see the error


def _syslog_address(value: str) -> str | tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and not value.startswith("/"):
        return host, int(port)
    return value


def _send_syslog(settings: WitnessSettings, point: Point) -> None:
    handler = _Syslog(address=_syslog_address(settings.syslog_address))
    try:
        handler.ident = "bulletin: "
        handler.append_nul = False
        message = "ledger checkpoint " + point.line().decode()
        handler.emit(logging.LogRecord("bulletin", logging.INFO, "", 0, message, None, None))
    finally:
        handler.close()


def _send_webhook(settings: WitnessSettings, point: Point) -> None:
    import requests

    answer = requests.post(settings.webhook, json=point.body(), timeout=settings.webhook_timeout)
    answer.raise_for_status()


def _send_file(settings: WitnessSettings, point: Point) -> None:
    assert settings.file is not None
    fd = os.open(settings.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, point.line() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


_SENDERS = {"syslog": _send_syslog, "webhook": _send_webhook, "file": _send_file}


@dataclass
class Readback:
    """What the readable witnesses hold: ``(source, point)`` pairs, and what could not be
    read (``errors``: the witness is damaged or unreachable; ``absent``: not written yet)."""

    points: list[tuple[str, Point]]
    errors: list[tuple[str, str]]
    absent: list[str]


def read_back(settings: WitnessSettings) -> Readback:
    """Every point the file and the webhook's read URL hold (those configured)."""
    found = Readback([], [], [])
    if settings.file is not None:
        _read_file(settings.file, found)
    if settings.webhook_read_url:
        _read_webhook(settings, found)
    return found


def _read_file(path: Path, found: Readback) -> None:
    source = f"witness file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        found.absent.append(source)
        return
    except (OSError, UnicodeDecodeError) as e:
        found.errors.append((source, f"cannot be read: {e}"))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.points.append((source, parse_point(json.loads(line))))
        except ValueError as e:
            found.errors.append((source, f"line {number} is not a witnessed point: {e}"))


def _read_webhook(settings: WitnessSettings, found: Readback) -> None:
    import requests

    source = f"witness {settings.webhook_read_url}"
    try:
        answer = requests.get(settings.webhook_read_url, timeout=settings.webhook_timeout)
        answer.raise_for_status()
        body = answer.json()
    except (requests.RequestException, ValueError) as e:
        found.errors.append((source, f"cannot be read: {e}"))
        return
    if not isinstance(body, list):
        found.errors.append((source, "the answer is not a JSON array of points"))
        return
    for number, value in enumerate(body, 1):
        try:
            found.points.append((source, parse_point(value)))
        except ValueError as e:
            found.errors.append((source, f"point {number} is not a witnessed point: {e}"))


def checkpoint_seqs(keys: list[str]) -> dict[int, list[str]]:
    """The checkpoint keys by the ledger sequence number their name carries."""
    by_seq: dict[int, list[str]] = {}
    for key in keys:
        name = key[len(CHECKPOINT_PREFIX) :].removesuffix(".json")
        _, sep, seq = name.rpartition("-")
        if sep and seq.isdigit():
            by_seq.setdefault(int(seq), []).append(key)
    return by_seq
