"""A durable local spool in front of a remote WORM store (S3), for outages.

When the backend cannot be reached, a put is written to the spool directory instead: the bytes
and their retention, each as a write-once file, made durable at :meth:`flush` (group commit) like
the local store. Nothing is lost and the archive keeps working; :meth:`drain` (called at every
flush, and by the daemon) uploads the backlog to the backend in the order it was written and
removes each spooled object only after the backend holds it. Reads and ``keys`` see spooled
objects too, so the index and ``verify`` work during an outage.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from heapq import merge
from pathlib import Path

from bulletin.archiver.store.base import (
    NewObject,
    ObjectInfo,
    PutResult,
    Shadow,
    WormStore,
    digest_of_key,
    object_key,
    sha256_hex,
)
from bulletin.clock import utc
from bulletin.errors import IntegrityError, RetentionViolation, StoreUnavailable
from bulletin.files import fsync_dir, fsync_file
from bulletin.logs import get_logger

log = get_logger("bulletin.spool")


@dataclass
class _Spooled:
    seq: int
    key: str
    sha256: str
    size: int
    retain_until: datetime
    legal_hold: bool

    @property
    def stem(self) -> str:
        return f"{self.seq:012d}"


class SpooledStore(WormStore):
    """Wraps ``backend_factory()``'s store; spools to ``spool_dir`` while it is unavailable.

    :param backend_factory: builds the backend; called again after a failure to build it.
    """

    def __init__(self, backend_factory: Callable[[], WormStore], spool_dir: Path) -> None:
        self.kind = "s3"
        self._factory = backend_factory
        self._backend: WormStore | None = None
        self.spool_dir = spool_dir
        self._lock = threading.RLock()
        self._pending_sync: list[Path] = []
        try:
            spool_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"spool {spool_dir} cannot be created: {e.strerror}") from e
        self._spooled: dict[str, _Spooled] = {}
        self._next = 1
        for meta in sorted(spool_dir.glob("*.json")):
            item = self._read_meta(meta)
            if item is not None:
                self._spooled[item.key] = item
                self._next = max(self._next, item.seq + 1)
        with contextlib.suppress(StoreUnavailable):
            self._connect()

    # -- backend ---------------------------------------------------------------------------

    def _connect(self) -> WormStore:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    def backlog(self) -> int:
        """How many objects wait in the spool for the backend."""
        return len(self._spooled)

    # -- WormStore -------------------------------------------------------------------------

    def put(
        self, key: str, data: bytes, *, retain_until: datetime, legal_hold: bool = False
    ) -> PutResult:
        digest = sha256_hex(data)
        promised = digest_of_key(key)
        if promised is not None and promised != digest:
            raise IntegrityError(f"key {key} does not match the sha256 of its bytes ({digest})")
        with self._lock:
            spooled = self._spooled.get(key)
            if spooled is not None:
                if spooled.sha256 != digest:
                    raise IntegrityError(f"key {key} already holds other bytes")
                return PutResult(key, created=False)
            if not self._spooled:  # keep order: nothing may overtake the backlog
                try:
                    return self._connect().put(
                        key, data, retain_until=retain_until, legal_hold=legal_hold
                    )
                except StoreUnavailable as e:
                    log.error("archive store unavailable; spooling locally", error=str(e))
            return self._spool(key, data, digest, retain_until, legal_hold)

    def put_objects(self, objects: Sequence[NewObject]) -> list[tuple[str, PutResult]]:
        """The backend's :meth:`WormStore.put_objects` when nothing is spooled; when it is
        unavailable (part of the batch may have gone), the whole batch is spooled, in order,
        and the drain later finds the objects that did go already stored."""
        with self._lock:
            if not self._spooled:
                try:
                    return self._connect().put_objects(objects)
                except StoreUnavailable as e:
                    log.error("archive store unavailable; spooling locally", error=str(e))
            out = []
            for o in objects:
                digest = o.sha256
                key = object_key(digest)
                spooled = self._spooled.get(key)
                if spooled is not None:
                    out.append((digest, PutResult(key, created=False)))
                else:
                    result = self._spool(key, o.data, digest, o.retain_until, o.legal_hold)
                    out.append((digest, result))
            return out

    def _spool(
        self, key: str, data: bytes, digest: str, retain_until: datetime, legal_hold: bool
    ) -> PutResult:
        item = _Spooled(self._next, key, digest, len(data), utc(retain_until), legal_hold)
        self._next += 1
        body = self.spool_dir / f"{item.stem}.obj"
        try:
            with open(body, "xb") as f:
                f.write(data)
            self._write_meta(item)
        except OSError as e:
            with contextlib.suppress(OSError):
                body.unlink()
            raise StoreUnavailable(f"spool {self.spool_dir} cannot be written: {e.strerror}") from e
        self._spooled[key] = item
        self._pending_sync.append(body)
        return PutResult(key, created=True)

    def get(self, key: str, *, verify: bool = True) -> bytes:
        with self._lock:
            spooled = self._spooled.get(key)
            if spooled is not None:
                data = (self.spool_dir / f"{spooled.stem}.obj").read_bytes()
                if verify and sha256_hex(data) != spooled.sha256:
                    raise IntegrityError(f"spooled object {key} does not match its hash")
                return data
        return self._connect().get(key, verify=verify)

    def read_object(self, key: str) -> bytes:
        """A spooled object from the spool, any other by the backend's own :meth:`read_object`."""
        with self._lock:
            spooled = key in self._spooled
        return self.get(key, verify=True) if spooled else self._connect().read_object(key)

    def head(self, key: str) -> ObjectInfo | None:
        with self._lock:
            spooled = self._spooled.get(key)
            if spooled is not None:
                return ObjectInfo(key, spooled.size, spooled.retain_until, spooled.legal_hold)
        return self._connect().head(key)

    def extend_retention(self, key: str, retain_until: datetime) -> ObjectInfo:
        with self._lock:
            spooled = self._spooled.get(key)
            if spooled is None:
                return self._connect().extend_retention(key, retain_until)
            if utc(retain_until) < spooled.retain_until:
                raise RetentionViolation(
                    f"{key}: retention may only be extended (now until {spooled.retain_until})"
                )
            spooled.retain_until = utc(retain_until)
            self._write_meta(spooled)
            return ObjectInfo(key, spooled.size, spooled.retain_until, spooled.legal_hold)

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        with self._lock:
            spooled = self._spooled.get(key)
            if spooled is None:
                return self._connect().set_legal_hold(key, on)
            spooled.legal_hold = on
            self._write_meta(spooled)
            return ObjectInfo(key, spooled.size, spooled.retain_until, spooled.legal_hold)

    def delete(self, key: str, *, now: datetime) -> None:
        with self._lock:
            if key in self._spooled:
                raise RetentionViolation(f"{key} is still in the spool; it is retained")
        self._connect().delete(key, now=now)

    def keys(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            spooled = sorted(k for k in self._spooled if k.startswith(prefix))
        remote = (k for k in self._connect().keys(prefix) if k not in self._spooled)
        yield from merge(remote, spooled)

    def shadowed(self, prefix: str = "") -> Iterator[Shadow]:
        return self._connect().shadowed(prefix)

    def backend(self) -> WormStore:
        """The store behind the spool.

        :raises StoreUnavailable: it cannot be reached.
        """
        return self._connect()

    def flush(self) -> None:
        """Make the spool durable, then try to drain it."""
        with self._lock:
            if self._pending_sync:
                for path in self._pending_sync:
                    fsync_file(path)
                fsync_dir(self.spool_dir)
                self._pending_sync.clear()
            if self._backend is not None:
                self._backend.flush()
        self.drain()

    def drain(self) -> int:
        """Upload the backlog in order; stop at the first failure. Returns how many went."""
        sent = 0
        with self._lock:
            for item in sorted(self._spooled.values(), key=lambda s: s.seq):
                body = self.spool_dir / f"{item.stem}.obj"
                try:
                    self._connect().put(
                        item.key,
                        body.read_bytes(),
                        retain_until=item.retain_until,
                        legal_hold=item.legal_hold,
                    )
                    self._connect().flush()
                except StoreUnavailable:
                    break
                del self._spooled[item.key]
                body.unlink()
                (self.spool_dir / f"{item.stem}.json").unlink()
                sent += 1
        if sent:
            log.info("spool drained", sent=sent, left=len(self._spooled))
        return sent

    def close(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            self.flush()
        if self._backend is not None:
            self._backend.close()

    # -- spool files -----------------------------------------------------------------------

    def _write_meta(self, item: _Spooled) -> None:
        meta = self.spool_dir / f"{item.stem}.json"
        temp = meta.with_suffix(".json.tmp")
        temp.write_text(
            json.dumps(
                {
                    "seq": item.seq,
                    "key": item.key,
                    "sha256": item.sha256,
                    "size": item.size,
                    "retain_until": item.retain_until.isoformat(),
                    "legal_hold": item.legal_hold,
                }
            )
        )
        fsync_file(temp)
        os.replace(temp, meta)
        self._pending_sync.append(meta)

    def _read_meta(self, path: Path) -> _Spooled | None:
        try:
            raw = json.loads(path.read_text())
            return _Spooled(
                int(raw["seq"]),
                str(raw["key"]),
                str(raw["sha256"]),
                int(raw["size"]),
                datetime.fromisoformat(raw["retain_until"]),
                bool(raw["legal_hold"]),
            )
        except (OSError, ValueError, KeyError) as e:
            log.error("unreadable spool entry left in place", path=str(path), error=str(e))
            return None


def spooled_count(spool_dir: Path) -> int:
    """How many entries wait in ``spool_dir``, read without opening the spool (which creates
    the directory and may send them): for a read-only look such as ``bulletin status``."""
    try:
        return sum(1 for _ in spool_dir.glob("*.json"))
    except OSError:
        return 0
