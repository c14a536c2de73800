"""The S3 Object Lock WORM store (AWS S3, or an on-prem S3 such as SeaweedFS).

The bucket must have Object Lock enabled (which implies versioning): the store refuses to start
otherwise. Every put carries the object's retain-until and lock mode (COMPLIANCE by default,
GOVERNANCE if configured), its legal-hold status and its SHA-256 checksum, which S3 checks on
receipt. The backend enforces retention on its own; Bulletin checks retention and holds itself
as well before it asks for anything to be removed, whatever the backend would allow.

A key is written once. Before a single put the store lists the key's versions, so an existing
object is never written again (no extra version), even when a delete marker hides it; the put
itself is conditional (``If-None-Match: *``). The store reads, locks and deletes the *first*
version of a key by its version id; later versions written by anyone else are never taken for
it, and :meth:`S3Store.shadowed` names them and any delete marker (``archive verify``). Each put
is durable when S3 answers, so :meth:`S3Store.flush` has nothing to do.
:meth:`S3Store.put_objects` sends up to ``max_concurrency`` puts at once (a batch of captures is
a thousand or more objects), each without the look-up: the conditional put alone, one request
per new object (see there for the one case where that differs from :meth:`S3Store.put`).
"""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

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
from bulletin.config.archive import S3StoreSettings
from bulletin.errors import (
    ArchiveError,
    ConfigError,
    IntegrityError,
    NotFound,
    RetentionViolation,
    StoreUnavailable,
)
from bulletin.timeparse import iso_utc, parse_iso

Mode = Literal["COMPLIANCE", "GOVERNANCE"]
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "403",
}
_UNAVAILABLE = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "503", "500"}
_MISSING = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}
_VERSION_CACHE = 100_000


def _ceil_second(when: datetime) -> datetime:
    """``when`` rounded up to a whole second (S3 keeps seconds; rounding up never shortens)."""
    when = utc(when)
    return datetime.fromtimestamp(math.ceil(when.timestamp()), UTC)


class S3Store(WormStore):
    """A WORM store in one S3 bucket with Object Lock. Each put is durable when it returns.

    :param client: a boto3 S3 client (its credentials come from boto3's default chain).
    :param bucket: the bucket; it must have Object Lock enabled.
    :param mode: the Object Lock mode of every object.
    :param create_bucket: create the bucket, with Object Lock, when it does not exist.
    :param max_concurrency: how many puts :meth:`put_objects` sends at once.
    :raises ConfigError: the bucket is missing (and not to be created) or has no Object Lock.
    :raises StoreUnavailable: the endpoint cannot be reached.
    """

    kind = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        mode: Mode = "COMPLIANCE",
        create_bucket: bool = False,
        region: str = "us-east-1",
        max_concurrency: int = 8,
    ) -> None:
        if not bucket:
            raise ConfigError("archive.s3.bucket: a bucket name is required for the s3 store")
        self.client = client
        self.bucket = bucket
        self.mode: Mode = mode
        self._versions: OrderedDict[str, str] = OrderedDict()
        self._versions_lock = threading.Lock()
        self._max_concurrency = max(1, max_concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._check_bucket(create_bucket, region)

    @classmethod
    def from_settings(cls, settings: S3StoreSettings) -> S3Store:
        """A store built from ``[archive.s3]``; credentials from boto3's default chain."""
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            region_name=settings.region,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=max(10, settings.max_concurrency),
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        return cls(
            client,
            settings.bucket,
            mode=settings.mode,
            create_bucket=settings.create_bucket,
            region=settings.region,
            max_concurrency=settings.max_concurrency,
        )

    # -- WormStore ---------------------------------------------------------------------------

    def put(
        self, key: str, data: bytes, *, retain_until: datetime, legal_hold: bool = False
    ) -> PutResult:
        """Write ``data`` once, locked until ``retain_until``; durable on return."""
        digest = sha256_hex(data)
        promised = digest_of_key(key)
        if promised is not None and promised != digest:
            raise IntegrityError(f"key {key} does not match the sha256 of its bytes ({digest})")
        existing = self._locate(key)
        if existing is not None:
            if self._stored_sha256(key, existing) != digest:
                raise IntegrityError(f"key {key} already holds other bytes")
            return PutResult(key, created=False, version_id=existing)
        return self._send(key, data, digest, retain_until, legal_hold)

    def _send(
        self, key: str, data: bytes, digest: str, retain_until: datetime, legal_hold: bool
    ) -> PutResult:
        """The conditional put of ``data`` (sha256 ``digest``) under ``key``: S3 stores it
        only where the key has no current version; otherwise the stored bytes are compared."""
        until = _ceil_second(retain_until)
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ChecksumSHA256": checksum,
            "IfNoneMatch": "*",
            "Metadata": {"sha256": digest, "retain-until": iso_utc(until)},
            "ObjectLockLegalHoldStatus": "ON" if legal_hold else "OFF",
        }
        if until > datetime.now(UTC):  # S3 refuses a lock that has already expired
            args |= {"ObjectLockMode": self.mode, "ObjectLockRetainUntilDate": until}
        try:
            answer = self._call("put_object", f"writing {key}", **args)
        except _Missing as e:  # pragma: no cover - the bucket vanished
            raise ArchiveError(f"S3 bucket {self.bucket} does not exist") from e
        except _Precondition:  # the key is there (another writer, or an earlier try)
            self._forget(key)
            return self._put_raced(key, digest)
        version = answer.get("VersionId")
        self._remember(key, version)
        return PutResult(key, created=True, version_id=version)

    def put_objects(self, objects: Sequence[NewObject]) -> list[tuple[str, PutResult]]:
        """Up to ``max_concurrency`` puts at once; see :meth:`WormStore.put_objects`.

        An object given twice is sent once, and its repeat put after the others have ended,
        so two requests never race for one key (which would make a second version).

        No look-up comes first: each object goes straight to the conditional put
        (``If-None-Match: *``), which S3 refuses where the key is stored already (then the
        stored bytes are compared, as for :meth:`put`); one request per new object, not two.
        Unlike :meth:`put`, a key whose only version lies under a delete marker (which only a
        delete behind Bulletin's back makes, and ``verify`` reports) gets a second version
        of the same bytes, locked as the first; the first version stays what is read.
        """
        first: dict[str, int] = {}  # each object's first place in ``objects``
        for i, o in enumerate(objects):
            first.setdefault(o.sha256, i)
        done: dict[int, PutResult] = {}

        def put(i: int) -> PutResult:
            o = objects[i]
            key = object_key(o.sha256)
            with self._versions_lock:
                known = self._versions.get(key)
            if known is not None:  # stored by this store already
                return PutResult(key, created=False, version_id=known)
            return self._send(key, o.data, o.sha256, o.retain_until, o.legal_hold)

        if len(first) > 1 and self._max_concurrency > 1:
            with self._versions_lock:  # one pool, whichever thread asks first
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._max_concurrency, "bulletin-s3-put")
                pool = self._pool
            futures: dict[int, Future[PutResult]] = {i: pool.submit(put, i) for i in first.values()}
            errors = [e for f in futures.values() if (e := f.exception()) is not None]
            if errors:
                raise errors[0]
            done = {i: f.result() for i, f in futures.items()}
        return [(o.sha256, done.get(i) or put(i)) for i, o in enumerate(objects)]

    def get(self, key: str, *, verify: bool = True) -> bytes:
        """The bytes of the first version of ``key``, checked against its sha256."""
        version = self._locate(key)
        if version is None:
            raise NotFound(f"no object {key} in the archive")
        try:
            answer = self._call(
                "get_object",
                f"reading {key}",
                Bucket=self.bucket,
                Key=key,
                VersionId=version,
                ChecksumMode="ENABLED",
            )
            data: bytes = answer["Body"].read()
        except _Missing as e:
            raise NotFound(f"no object {key} in the archive") from e
        if verify:
            expected = digest_of_key(key) or answer.get("Metadata", {}).get("sha256")
            if expected is not None and sha256_hex(data) != expected:
                raise IntegrityError(f"object {key} does not match its sha256")
        return data

    def head(self, key: str) -> ObjectInfo | None:
        """Retention and hold of the first version of ``key`` as S3 reports them."""
        version = self._locate(key)
        if version is None:
            return None
        try:
            answer = self._head(key, version)
        except _Missing:
            self._forget(key)
            return None
        lock_until = answer.get("ObjectLockRetainUntilDate")
        if lock_until is not None:
            until = utc(lock_until)
        else:
            meta = answer.get("Metadata", {}).get("retain-until")
            until = parse_iso(meta) if meta else datetime.min.replace(tzinfo=UTC)
        hold = answer.get("ObjectLockLegalHoldStatus") == "ON"
        return ObjectInfo(key, int(answer.get("ContentLength", 0)), until, hold, version)

    def extend_retention(self, key: str, retain_until: datetime) -> ObjectInfo:
        """Extend the lock with PutObjectRetention if later; an earlier value is refused here."""
        info = self._require(key)
        wanted = _ceil_second(retain_until)
        if wanted < info.retain_until:
            raise RetentionViolation(
                f"{key} is retained until {iso_utc(info.retain_until)}; "
                f"retention cannot be shortened to {iso_utc(wanted)}"
            )
        if wanted == info.retain_until:
            return info
        self._call(
            "put_object_retention",
            f"extending the retention of {key}",
            Bucket=self.bucket,
            Key=key,
            VersionId=info.version_id,
            Retention={"Mode": self.mode, "RetainUntilDate": wanted},
        )
        return self._require(key)

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        """Place or release the legal hold of the first version of ``key``."""
        info = self._require(key)
        self._call(
            "put_object_legal_hold",
            f"{'placing' if on else 'releasing'} a legal hold on {key}",
            Bucket=self.bucket,
            Key=key,
            VersionId=info.version_id,
            LegalHold={"Status": "ON" if on else "OFF"},
        )
        return self._require(key)

    def delete(self, key: str, *, now: datetime) -> None:
        """Remove the first version of ``key``, by version id, once retention and holds allow."""
        info = self._require(key)
        if info.legal_hold:
            raise RetentionViolation(f"{key} is on legal hold; release the hold first")
        if info.retain_until > utc(now):
            raise RetentionViolation(
                f"{key} is retained until {iso_utc(info.retain_until)}; it cannot be deleted yet"
            )
        try:
            self._call(
                "delete_object",
                f"deleting {key}",
                Bucket=self.bucket,
                Key=key,
                VersionId=info.version_id,
            )
        except _Denied as e:
            raise RetentionViolation(f"S3 still retains {key}; it cannot be deleted yet") from e
        self._forget(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Keys with at least one version (delete markers do not hide them), in lexical order."""
        last: str | None = None
        for page in self._version_pages(prefix, "listing keys"):
            for version in page.get("Versions", []):
                if version["Key"] != last:
                    last = version["Key"]
                    yield last

    def _version_pages(self, prefix: str, what: str) -> Iterator[dict[str, Any]]:
        """The pages of ListObjectVersions under ``prefix``, fetched as they are consumed."""
        token: dict[str, str] = {}
        while True:
            page: dict[str, Any] = self._call(
                "list_object_versions", what, Bucket=self.bucket, Prefix=prefix, **token
            )
            yield page
            if not page.get("IsTruncated"):
                return
            token = {"KeyMarker": page["NextKeyMarker"]}
            if page.get("NextVersionIdMarker"):
                token["VersionIdMarker"] = page["NextVersionIdMarker"]

    def shadowed(self, prefix: str = "") -> Iterator[Shadow]:
        """Versions after the first one of each key, and delete markers: a legitimate put never
        makes a second version (see the module doc), so each was made by someone else."""
        key: str | None = None
        versions: list[tuple[datetime, str]] = []
        markers: list[tuple[datetime, str]] = []
        for entry in self._all_versions(prefix):
            if entry[0] != key:
                if key is not None:
                    yield from _shadows(key, versions, markers)
                key, versions, markers = entry[0], [], []
            (markers if entry[1] else versions).append((entry[2], entry[3]))
        if key is not None:
            yield from _shadows(key, versions, markers)

    def _all_versions(self, prefix: str) -> Iterator[tuple[str, bool, datetime, str]]:
        """``(key, is a delete marker, last modified, version id)`` of everything under
        ``prefix``, in key order (versions and markers of one key may come on two pages)."""
        for page in self._version_pages(prefix, "listing versions"):
            found = [(v, False) for v in page.get("Versions", [])]
            found += [(m, True) for m in page.get("DeleteMarkers", [])]
            found.sort(key=lambda f: str(f[0]["Key"]))
            for entry, marker in found:
                yield entry["Key"], marker, utc(entry["LastModified"]), str(entry["VersionId"])

    def bucket_settings(self) -> dict[str, Any]:
        """The bucket's Object Lock configuration and lifecycle rules, as S3 reports them:
        ``{"object_lock": "Enabled" | None, "mode", "days", "years", "lifecycle": [rules]}``
        (``mode``, ``days`` and ``years`` of the default retention; None when unset)."""
        try:
            lock = self._call(
                "get_object_lock_configuration", "reading Object Lock", Bucket=self.bucket
            ).get("ObjectLockConfiguration", {})
        except _Missing:
            lock = {}
        default = lock.get("Rule", {}).get("DefaultRetention", {})
        try:
            rules = self._call(
                "get_bucket_lifecycle_configuration", "reading lifecycle rules", Bucket=self.bucket
            ).get("Rules", [])
        except _Missing:
            rules = []
        except ArchiveError as e:  # S3 names "no lifecycle" NoSuchLifecycleConfiguration
            if "NoSuchLifecycleConfiguration" not in str(e):
                raise
            rules = []
        return {
            "object_lock": lock.get("ObjectLockEnabled"),
            "mode": default.get("Mode"),
            "days": default.get("Days"),
            "years": default.get("Years"),
            "lifecycle": rules,
        }

    def close(self) -> None:
        """Stop the put threads and close the client's connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    # -- internals ---------------------------------------------------------------------------

    def _check_bucket(self, create: bool, region: str) -> None:
        try:
            self._call("head_bucket", "opening the bucket", Bucket=self.bucket)
        except _Missing:
            if not create:
                raise ConfigError(
                    f"archive.s3.bucket: bucket {self.bucket} does not exist "
                    "(create it with Object Lock, or set archive.s3.create_bucket = true)"
                ) from None
            args: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
            if region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self._call("create_bucket", "creating the bucket", **args)
        try:
            answer = self._call(
                "get_object_lock_configuration", "checking Object Lock", Bucket=self.bucket
            )
            enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        except _Missing:
            enabled = None
        if enabled != "Enabled":
            raise ConfigError(
                f"archive.s3.bucket: bucket {self.bucket} does not have Object Lock enabled; "
                "Bulletin needs a bucket created with Object Lock"
            )

    def _require(self, key: str) -> ObjectInfo:
        info = self.head(key)
        if info is None:
            raise NotFound(f"no object {key} in the archive")
        return info

    def _head(self, key: str, version: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "head_object",
            f"reading {key}",
            Bucket=self.bucket,
            Key=key,
            VersionId=version,
            ChecksumMode="ENABLED",
        )
        return answer

    def _locate(self, key: str) -> str | None:
        """The version id of the first (oldest) version of ``key``, or None."""
        with self._versions_lock:
            cached = self._versions.get(key)
        if cached is not None:
            return cached
        found: tuple[datetime, str] | None = None
        for page in self._version_pages(key, f"looking up {key}"):
            past = False
            for version in page.get("Versions", []):
                if version["Key"] != key:
                    past = past or version["Key"] > key
                    continue
                found = _older((version["LastModified"], version["VersionId"]), found)
            if past:
                break
        if found is None:
            return None
        self._remember(key, found[1])
        return found[1]

    def _remember(self, key: str, version: str | None) -> None:
        if version is None:
            return
        with self._versions_lock:
            self._versions[key] = version
            if len(self._versions) > _VERSION_CACHE:
                self._versions.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._versions_lock:
            self._versions.pop(key, None)

    def _stored_sha256(self, key: str, version: str) -> str:
        """The sha256 S3 holds for one version: its checksum, our metadata, else its bytes."""
        answer = self._head(key, version)
        checksum = answer.get("ChecksumSHA256")
        if checksum and "-" not in checksum:
            return base64.b64decode(checksum).hex()
        meta = answer.get("Metadata", {}).get("sha256")
        if meta:
            return str(meta)
        body = self._call(
            "get_object", f"reading {key}", Bucket=self.bucket, Key=key, VersionId=version
        )["Body"].read()
        return sha256_hex(body)

    def _put_raced(self, key: str, digest: str) -> PutResult:
        existing = self._locate(key)
        if existing is None or self._stored_sha256(key, existing) != digest:
            raise IntegrityError(f"key {key} already holds other bytes")
        return PutResult(key, created=False, version_id=existing)

    def _call(self, operation: str, what: str, **kwargs: Any) -> Any:
        """Call one S3 operation, mapping botocore errors onto Bulletin's (no secrets shown)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", "S3")
        try:
            return getattr(self.client, operation)(**kwargs)
        except (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            ConnectionClosedError,
        ) as e:
            raise StoreUnavailable(f"S3 at {endpoint} cannot be reached while {what}") from e
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _MISSING or (status == 404 and code != "NoSuchBucket"):
                raise _Missing(f"S3 found nothing while {what} in bucket {self.bucket}") from e
            if code == "PreconditionFailed" or status == 412:
                raise _Precondition(f"S3 precondition failed while {what}") from e
            if code in _DENIED:
                raise _Denied(
                    f"S3 at {endpoint} refused {what} in bucket {self.bucket} ({code}); "
                    "check the credentials and the bucket policy"
                ) from e
            if code in _UNAVAILABLE or status >= 500:
                raise StoreUnavailable(f"S3 at {endpoint} failed while {what} ({code})") from e
            if code == "NoSuchBucket":
                raise ArchiveError(f"S3 bucket {self.bucket} does not exist") from e
            message = str(error.get("Message", "")).splitlines()[0:1]
            raise ArchiveError(
                f"S3 refused {what} in bucket {self.bucket}: {code} {''.join(message)}".strip()
            ) from e
        except BotoCoreError as e:
            raise StoreUnavailable(
                f"S3 at {endpoint} failed while {what}: {type(e).__name__}"
            ) from e


def _older(stamp: tuple[datetime, str], found: tuple[datetime, str] | None) -> tuple[datetime, str]:
    """The first version of a key, seen ``stamp`` after ``found`` in S3's listing order
    (newest first: of two versions made in the same second, the one listed later)."""
    return stamp if found is None or stamp[0] <= found[0] else found


def _shadows(
    key: str, versions: list[tuple[datetime, str]], markers: list[tuple[datetime, str]]
) -> Iterator[Shadow]:
    """What lies on the first (oldest) version of ``key``; nothing when it has no version."""
    first: tuple[datetime, str] | None = None
    for stamp in versions:
        first = _older(stamp, first)
    if first is None:
        return
    for at, version in sorted(versions, key=lambda v: v[0]):
        if version != first[1]:
            yield Shadow(key, "version", version, at)
    for at, version in sorted(markers):
        yield Shadow(key, "delete-marker", version, at)


class _Missing(ArchiveError):
    """The bucket, key or version does not exist (internal)."""


class _Precondition(ArchiveError):
    """A conditional request found its condition false (internal)."""


class _Denied(ArchiveError):
    """S3 refused for lack of permission or a lock; the message says which call."""
