"""What ``archive verify`` finds, and the checks every part of it shares: an object read
back and re-hashed, an object kept permanently on hold."""

from __future__ import annotations

from dataclasses import dataclass, field

from bulletin.archiver import ledger
from bulletin.archiver.store.base import ObjectInfo, WormStore, object_key
from bulletin.archiver.store.local import FOREVER
from bulletin.errors import IntegrityError, NotFound


@dataclass(frozen=True)
class Problem:
    """One discrepancy, named by what it concerns."""

    kind: str  # object-altered | object-missing | chain-broken | mirror-* | row-* | ...
    subject: str  # "record 12", "ledger 40", "object sha256/…"
    detail: str

    def line(self) -> str:
        return f"{self.subject}: {self.kind}: {self.detail}"


@dataclass
class Report:
    """What one run counted and found: ``problems`` fail it, ``notes`` and ``warnings`` do not."""

    records: int = 0
    entries: int = 0
    objects: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # not failures, but look
    head_hash: str = ledger.GENESIS

    @property
    def ok(self) -> bool:
        return not self.problems


def side(store: WormStore) -> str:
    """What holds an object's retention, in words."""
    return "the store's catalog" if store.kind == "local" else "the store"


def keeping(info: ObjectInfo) -> str:
    if info.retain_until == FOREVER:
        return "has no row for it (read as kept indefinitely, not held)"
    held = "on legal hold" if info.legal_hold else "not held"
    return f"says retain until {info.retain_until:%Y-%m-%d %H:%M:%S} UTC, {held}"


def check_held(store: WormStore, key: str, report: Report) -> None:
    """``key`` is kept permanently (ledger, checkpoint, decision, certificate): on hold."""
    info = store.head(key)
    if info is not None and not info.legal_hold:
        report.problems.append(
            Problem(
                "hold-disagrees",
                key,
                f"kept permanently on legal hold, but {side(store)} {keeping(info)}",
            )
        )


def check_kept_for_good(store: WormStore, prefix: str, report: Report) -> None:
    for key in store.keys(prefix):
        check_held(store, key, report)


def fetch_object(store: WormStore, subject: str, digest: str, report: Report) -> bytes | None:
    try:
        data = store.get(object_key(digest), verify=True)
    except IntegrityError:
        report.problems.append(
            Problem("object-altered", subject, f"sha256/{digest} does not match its hash")
        )
        return None
    except NotFound:
        report.problems.append(
            Problem("object-missing", subject, f"sha256/{digest} is not in the store")
        )
        return None
    report.objects += 1
    return data


def rehash(store: WormStore, report: Report, subject: str, what: str, digest: str) -> None:
    """Read ``digest`` back and re-hash it; name ``what`` when it is altered or missing."""
    try:
        store.get(object_key(digest), verify=True)
        report.objects += 1
    except IntegrityError:
        report.problems.append(
            Problem("object-altered", subject, f"{what} does not match its hash")
        )
    except NotFound:
        report.problems.append(Problem("object-missing", subject, f"{what} is not in the store"))
