"""The S3 Object Lock store beyond the contract: what S3 itself refuses, checked through boto3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from bulletin.archiver.store import open_store
from bulletin.archiver.store.base import NewObject, object_key, sha256_hex
from bulletin.archiver.store.s3 import S3Store
from bulletin.config.archive import ArchiveSettings, S3StoreSettings
from bulletin.config.settings import Settings
from bulletin.errors import ArchiveError, ConfigError, StoreUnavailable
from tests.plugins.environment import free_port
from tests.plugins.seaweedfs import ACCESS_KEY, SECRET_KEY, s3_client

pytestmark = pytest.mark.s3

DATA = b'{"comment":"When does the road reopen?","id":"c-1"}'
KEY = object_key(sha256_hex(DATA))


def later(**delta: float) -> datetime:
    """Now plus ``delta``, aware UTC."""
    return datetime.now(UTC) + timedelta(**delta)


def versions(store: S3Store, key: str) -> list[dict[str, Any]]:
    """Every version of ``key`` S3 keeps, newest first."""
    answer = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)
    return [v for v in answer.get("Versions", []) if v["Key"] == key]


def test_locked_version_cannot_be_deleted_through_boto3(s3_store: S3Store) -> None:
    """S3 refuses to delete a locked version by id, even asking to bypass governance."""
    result = s3_store.put(KEY, DATA, retain_until=later(days=1))
    for bypass in (False, True):
        with pytest.raises(ClientError) as caught:
            s3_store.client.delete_object(
                Bucket=s3_store.bucket,
                Key=KEY,
                VersionId=result.version_id,
                BypassGovernanceRetention=bypass,
            )
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert s3_store.get(KEY) == DATA


def test_overwrite_and_delete_marker_leave_the_original(s3_store: S3Store) -> None:
    """A foreign overwrite adds a version and a plain delete adds a marker; the original stays."""
    result = s3_store.put(KEY, DATA, retain_until=later(days=1))
    client, bucket = s3_store.client, s3_store.bucket
    client.put_object(Bucket=bucket, Key=KEY, Body=b"forged")
    client.delete_object(Bucket=bucket, Key=KEY)
    fresh = S3Store(client, bucket)  # no cached version ids
    assert fresh.get(KEY) == DATA
    assert fresh.head(KEY).version_id == result.version_id  # type: ignore[union-attr]
    assert list(fresh.keys()) == [KEY]
    assert not fresh.put(KEY, DATA, retain_until=later(days=1)).created
    original = client.get_object(Bucket=bucket, Key=KEY, VersionId=result.version_id)
    assert original["Body"].read() == DATA
    assert len(versions(s3_store, KEY)) == 2


def test_retention_cannot_be_shortened_through_boto3(s3_store: S3Store) -> None:
    """S3 refuses a shorter retain-until on a COMPLIANCE version."""
    until = later(days=2)
    result = s3_store.put(KEY, DATA, retain_until=until)
    with pytest.raises(ClientError) as caught:
        s3_store.client.put_object_retention(
            Bucket=s3_store.bucket,
            Key=KEY,
            VersionId=result.version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(days=1)},
        )
    assert caught.value.response["Error"]["Code"] in {"InvalidRequest", "AccessDenied"}
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=KEY)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= until - timedelta(seconds=1)


def test_every_put_is_locked_with_checksum_and_hold(s3_store: S3Store) -> None:
    """Each put carries the lock mode, retain-until, legal hold and a SHA-256 checksum."""
    result = s3_store.put(KEY, DATA, retain_until=later(days=3), legal_hold=True)
    head = s3_store.client.head_object(
        Bucket=s3_store.bucket, Key=KEY, VersionId=result.version_id, ChecksumMode="ENABLED"
    )
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert head["ChecksumSHA256"]


def test_governance_mode_is_configurable(seaweedfs: str, s3_bucket: str) -> None:
    """mode=GOVERNANCE locks objects in governance mode."""
    store = S3Store(s3_client(seaweedfs), s3_bucket, create_bucket=True, mode="GOVERNANCE")
    store.put(KEY, DATA, retain_until=later(days=1))
    head = store.client.head_object(Bucket=s3_bucket, Key=KEY)
    assert head["ObjectLockMode"] == "GOVERNANCE"


def test_expired_retention_at_put_is_stored_unlocked(s3_store: S3Store) -> None:
    """A retain-until already past is recorded, not locked, and the object may be disposed of."""
    past = datetime(2020, 1, 1, tzinfo=UTC)
    s3_store.put(KEY, DATA, retain_until=past)
    assert s3_store.head(KEY).retain_until == past  # type: ignore[union-attr]
    s3_store.delete(KEY, now=datetime.now(UTC))
    assert s3_store.head(KEY) is None


def test_bucket_without_object_lock_is_refused(seaweedfs: str, s3_bucket: str) -> None:
    """An existing bucket without Object Lock stops the store from starting."""
    client = s3_client(seaweedfs)
    client.create_bucket(Bucket=s3_bucket)
    with pytest.raises(ConfigError, match="Object Lock"):
        S3Store(client, s3_bucket)


def test_missing_bucket_is_refused_unless_created(seaweedfs: str, s3_bucket: str) -> None:
    """A missing bucket is a configuration error unless create_bucket is set."""
    with pytest.raises(ConfigError, match="does not exist"):
        S3Store(s3_client(seaweedfs), s3_bucket)


def test_wrong_endpoint_is_unavailable() -> None:
    """An endpoint nobody answers on raises StoreUnavailable without leaking credentials."""
    client = s3_client(f"http://127.0.0.1:{free_port()}", timeout=1, retries=1)
    with pytest.raises(StoreUnavailable) as caught:
        S3Store(client, "bulletin-nowhere")
    assert SECRET_KEY not in str(caught.value)
    assert ACCESS_KEY not in str(caught.value)


def test_refused_credentials_are_an_archive_error() -> None:
    """InvalidAccessKeyId becomes an ArchiveError naming the call, never the key itself."""
    client = s3_client("http://127.0.0.1:1")
    with Stubber(client) as stub:
        stub.add_client_error("head_bucket", "InvalidAccessKeyId", http_status_code=403)
        with pytest.raises(ArchiveError, match="check the credentials") as caught:
            S3Store(client, "bulletin-denied")
    assert ACCESS_KEY not in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


def test_open_store_builds_the_s3_store(
    seaweedfs: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_store gives an S3Store from [archive.s3] behind the outage spool, credentials
    from boto3's default chain."""
    from pathlib import Path

    from bulletin.archiver.store.spool import SpooledStore
    from bulletin.config.site import PathsSettings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    s3 = S3StoreSettings(bucket=s3_bucket, endpoint_url=seaweedfs, create_bucket=True)
    data_dir = Path(f"/tmp/bulletin-s3-{s3_bucket}")
    store = open_store(
        Settings(archive=ArchiveSettings(store="s3", s3=s3), paths=PathsSettings(data_dir=data_dir))
    )
    assert isinstance(store, SpooledStore)
    assert isinstance(store._connect(), S3Store)
    store.put(KEY, DATA, retain_until=later(days=1))
    assert store.get(KEY) == DATA
    store.close()


def test_a_batch_sends_one_request_per_new_object(s3_store: S3Store) -> None:
    """put_objects goes straight to the conditional put: no version listing for new objects;
    an object stored before (a batch tried again after a crash) is found by the refused
    condition, compared, and not given a second version; one given twice is sent once."""
    calls: list[str] = []
    s3_store.client.meta.events.register(
        "before-call.s3", lambda model, **_: calls.append(model.name)
    )
    new = [NewObject(b"first %d" % i, later(days=1)) for i in range(3)]
    results = s3_store.put_objects(new)
    assert all(r.created for _, r in results)
    assert sorted(calls) == ["PutObject"] * 3
    fresh = S3Store(s3_store.client, s3_store.bucket)  # a restarted process: no cached ids
    calls.clear()
    again = fresh.put_objects([new[0], NewObject(b"second", later(days=1)), new[0]])
    assert [r.created for _, r in again] == [False, True, False]
    assert calls.count("PutObject") == 2
    assert "ListObjectVersions" in calls  # only for the object refused as stored already
    assert again[0][1].version_id == results[0][1].version_id
    assert len(versions(fresh, object_key(new[0].sha256))) == 1
