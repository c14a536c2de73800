"""The write-once (WORM) store interface.

Keys are slash-separated strings. Content-addressed objects live under ``sha256/<hex>``
(see :func:`object_key`); other namespaces (``ledger/``, ``checkpoints/``) hold objects whose
key is fixed by their meaning. Every object carries a retain-until time and a legal-hold flag.

Contract, for every backend:

- :meth:`WormStore.put` writes a key once. Putting the same bytes again is a no-op that returns
  ``created=False`` (and never adds a version); putting different bytes under an existing key
  raises :class:`~bulletin.errors.IntegrityError`.
- Nothing is altered or removed before its retain-until, or while on legal hold:
  :meth:`WormStore.delete` raises :class:`~bulletin.errors.RetentionViolation`.
- Retention is only ever extended: a shorter retain-until raises ``RetentionViolation``.
- :meth:`WormStore.put_objects` is :meth:`WormStore.put_object` for each of several objects;
  a backend may overlap the requests (S3 does), never changing what each put promises.
- :meth:`WormStore.get` returns the bytes as written; ``verify=True`` re-hashes content-addressed
  objects and raises ``IntegrityError`` on a mismatch. :meth:`WormStore.read_object` is the
  bulk reader's ``get`` of a content-addressed object: always checked, maybe faster.
- :meth:`WormStore.flush` is the durability barrier: when it returns, every put before it
  survives a power cut (group commit). A backend may make each put durable on its own.
- A backend that cannot be reached raises :class:`~bulletin.errors.StoreUnavailable`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import ClassVar

from bulletin.errors import ArchiveError

OBJECT_PREFIX = "sha256/"


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def object_key(digest: str) -> str:
    """The key of the content-addressed object whose sha256 is ``digest``."""
    return OBJECT_PREFIX + digest


def digest_of_key(key: str) -> str | None:
    """The sha256 a content-addressed key promises, or None for other namespaces."""
    return key[len(OBJECT_PREFIX) :] if key.startswith(OBJECT_PREFIX) else None


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object."""

    key: str
    size: int
    retain_until: datetime
    legal_hold: bool
    version_id: str | None = None


@dataclass(frozen=True)
class Shadow:
    """Something on top of an archived object that a plain reader of the backend sees instead
    of it: a newer ``"version"`` written by someone else, or a ``"delete-marker"``."""

    key: str
    kind: str
    version_id: str
    at: datetime


@dataclass(frozen=True)
class PutResult:
    """The outcome of a put: ``created`` is False when the key already held these bytes."""

    key: str
    created: bool
    version_id: str | None = None


@dataclass(frozen=True)
class NewObject:
    """One content-addressed object to put, with its retention."""

    data: bytes
    retain_until: datetime
    legal_hold: bool = False

    @cached_property
    def sha256(self) -> str:
        """The object's hash, hence its key (computed once)."""
        return sha256_hex(self.data)


class WormStore(ABC):
    """A write-once object store with per-object retention and legal hold."""

    kind: str
    #: A batch's puts cost about what its index transaction does (a local disk): the archive
    #: writes the index rows while they run and commits once they are durable. Where each put
    #: is a network round trip the index waits for the puts instead, so that no database lock
    #: is held for their length.
    quick_puts: ClassVar[bool] = False

    @abstractmethod
    def put(
        self, key: str, data: bytes, *, retain_until: datetime, legal_hold: bool = False
    ) -> PutResult:
        """Write ``data`` under ``key`` once; see the module contract.

        :raises IntegrityError: the key exists with other bytes, or a content-addressed key
            does not match the sha256 of ``data``.
        :raises StoreUnavailable: the backend cannot be written.
        """

    def put_object(
        self, data: bytes, *, retain_until: datetime, legal_hold: bool = False
    ) -> tuple[str, PutResult]:
        """Store ``data`` content-addressed; returns its sha256 and the put result."""
        digest = sha256_hex(data)
        return digest, self.put(
            object_key(digest), data, retain_until=retain_until, legal_hold=legal_hold
        )

    def put_objects(self, objects: Sequence[NewObject]) -> list[tuple[str, PutResult]]:
        """:meth:`put_object` for each of ``objects``; results in the same order.

        The same object twice is stored once (the second result says ``created=False``).
        On an error the first one is raised once every request has ended; the objects
        already stored stay, and putting them again is a no-op.
        """
        return [
            (
                o.sha256,
                self.put(
                    object_key(o.sha256),
                    o.data,
                    retain_until=o.retain_until,
                    legal_hold=o.legal_hold,
                ),
            )
            for o in objects
        ]

    @abstractmethod
    def get(self, key: str, *, verify: bool = True) -> bytes:
        """The bytes stored under ``key``.

        :raises NotFound: no such key.
        :raises IntegrityError: ``verify`` and the bytes do not match a content-addressed key.
        """

    def read_object(self, key: str) -> bytes:
        """The bytes of the content-addressed object ``key`` (``sha256/<hex>``), always checked
        against that sha256: :meth:`get` for a reader of many objects that needs no metadata
        (an export). Safe to call from several threads at once; a backend may take a faster
        path than :meth:`get` (the local store reads the file directly).

        :raises ArchiveError: ``key`` is not a content-addressed key.
        :raises NotFound: no such object.
        :raises IntegrityError: the bytes do not match the key.
        """
        if digest_of_key(key) is None:
            raise ArchiveError(f"invalid key {key!r}: not a content-addressed object")
        return self.get(key, verify=True)

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``, or None when it does not exist."""

    def heads(self, keys: Sequence[str]) -> dict[str, ObjectInfo | None]:
        """:meth:`head` of each of ``keys``, by key; a backend may answer them together."""
        return {key: self.head(key) for key in keys}

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self.head(key) is not None

    @abstractmethod
    def extend_retention(self, key: str, retain_until: datetime) -> ObjectInfo:
        """Set retain-until to ``retain_until`` if that is later; equal is a no-op.

        :raises RetentionViolation: ``retain_until`` is earlier than the current value.
        """

    @abstractmethod
    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        """Place or release a legal hold on ``key``."""

    @abstractmethod
    def delete(self, key: str, *, now: datetime) -> None:
        """Remove ``key`` for good (disposition).

        :raises RetentionViolation: retain-until is after ``now`` or a legal hold is on.
        """

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix``, in lexical order."""

    def backlog(self) -> int:
        """Objects accepted but not yet in the backend (a spool during an outage)."""
        return 0

    def shadowed(self, prefix: str = "") -> Iterator[Shadow]:
        """Every :class:`Shadow` over a key starting with ``prefix``, in key order. Only a
        versioned backend (S3) can have any: :meth:`get` reads the first version whatever
        lies on top, so only this shows what a reader of the backend itself would see."""
        return iter(())

    def flush(self) -> None:  # noqa: B027 - backends that are durable per put need nothing
        """Durability barrier: every earlier put survives a crash once this returns."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
