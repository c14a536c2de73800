"""The WORM store contract: one set of test bodies run against every backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bulletin.archiver.store.base import NewObject, WormStore, object_key, sha256_hex
from bulletin.archiver.store.local import LocalStore
from bulletin.errors import ArchiveError, IntegrityError, NotFound, RetentionViolation

DATA = b'{"id":"1","text":"Road closed: Main St between 1st and 2nd until 6 pm"}'


def later(**delta: float) -> datetime:
    """Now plus ``delta``, aware UTC."""
    return datetime.now(UTC) + timedelta(**delta)


def wait_past(store: WormStore, when: datetime) -> None:
    """On a backend that enforces retention by the real clock, wait until ``when`` has passed."""
    if store.kind != "local":
        time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 1.0)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WormStore]:
    """Each backend, empty."""
    if request.param == "local":
        backend: WormStore = LocalStore(tmp_path / "archive")
    else:
        backend = request.getfixturevalue("s3_store")
    yield backend
    backend.close()


def test_round_trip(store: WormStore) -> None:
    """Bytes put under their sha256 come back unchanged, with their retention and hold."""
    until = later(days=30)
    digest, result = store.put_object(DATA, retain_until=until, legal_hold=True)
    store.flush()
    assert digest == sha256_hex(DATA)
    assert result.created
    assert store.get(object_key(digest)) == DATA
    info = store.head(object_key(digest))
    assert info is not None
    assert info.size == len(DATA)
    assert abs((info.retain_until - until).total_seconds()) < 1
    assert info.legal_hold
    assert store.exists(object_key(digest))


def test_same_bytes_again_is_a_no_op(store: WormStore) -> None:
    """Putting the same bytes again returns created=False and adds no version."""
    _, first = store.put_object(DATA, retain_until=later(days=1))
    _, again = store.put_object(DATA, retain_until=later(days=1))
    store.flush()
    _, after_flush = store.put_object(DATA, retain_until=later(days=1))
    assert (first.created, again.created, after_flush.created) == (True, False, False)
    if store.kind == "s3":
        assert len(s3_versions(store, object_key(sha256_hex(DATA)))) == 1


def test_many_objects_at_once_each_stored_once(store: WormStore) -> None:
    """put_objects (several requests at a time on S3): results in the order given, each object
    stored once with its retention and hold, a repeat in the same call not created again, and
    on S3 one version per key."""
    datas = [DATA + b" %d" % i for i in range(24)]
    objects = [NewObject(d, later(days=2), legal_hold=i % 2 == 0) for i, d in enumerate(datas)]
    results = store.put_objects([*objects, objects[3]])
    store.flush()
    assert [d for d, _ in results] == [sha256_hex(d) for d in [*datas, datas[3]]]
    assert [r.created for _, r in results] == [True] * len(datas) + [False]
    for i, data in enumerate(datas):
        key = object_key(sha256_hex(data))
        assert store.get(key) == data
        info = store.head(key)
        assert info is not None and info.legal_hold == (i % 2 == 0)
        if store.kind == "s3":
            assert len(s3_versions(store, key)) == 1
    assert not any(r.created for _, r in store.put_objects(objects[:6]))


def test_other_bytes_under_an_existing_key_are_refused(store: WormStore) -> None:
    """A key holds one content forever: other bytes raise IntegrityError, before and after flush."""
    store.put("ledger/000001", b"first", retain_until=later(days=1))
    with pytest.raises(IntegrityError):
        store.put("ledger/000001", b"second", retain_until=later(days=1))
    store.flush()
    with pytest.raises(IntegrityError):
        store.put("ledger/000001", b"second", retain_until=later(days=1))
    assert store.get("ledger/000001") == b"first"


def test_content_key_must_match_the_bytes(store: WormStore) -> None:
    """A sha256/ key that is not the hash of the bytes is refused."""
    with pytest.raises(IntegrityError):
        store.put(object_key(sha256_hex(b"other")), DATA, retain_until=later(days=1))
    assert not store.exists(object_key(sha256_hex(b"other")))


def test_missing_key(store: WormStore) -> None:
    """A key never written reads as NotFound and heads as None."""
    with pytest.raises(NotFound):
        store.get("ledger/missing")
    assert store.head("ledger/missing") is None


def test_delete_before_retain_until_is_refused(store: WormStore) -> None:
    """Deleting before retain-until raises RetentionViolation saying until when; after, it works."""
    until = later(seconds=2)
    digest, _ = store.put_object(DATA, retain_until=until)
    store.flush()
    key = object_key(digest)
    with pytest.raises(RetentionViolation, match="retained until"):
        store.delete(key, now=datetime.now(UTC))
    wait_past(store, until)
    store.delete(key, now=until + timedelta(seconds=1))
    assert store.head(key) is None


def test_delete_under_hold_is_refused_after_retention(store: WormStore) -> None:
    """A legal hold blocks deletion even when retain-until has passed; releasing it allows it."""
    until = later(seconds=2)
    digest, _ = store.put_object(DATA, retain_until=until, legal_hold=True)
    store.flush()
    key = object_key(digest)
    wait_past(store, until)
    with pytest.raises(RetentionViolation, match="legal hold"):
        store.delete(key, now=until + timedelta(hours=1))
    store.set_legal_hold(key, False)
    store.delete(key, now=until + timedelta(hours=1))
    assert not store.exists(key)


def test_retention_only_extends(store: WormStore) -> None:
    """A shorter retain-until raises RetentionViolation; a longer one is kept; equal is a no-op."""
    until = later(days=10)
    digest, _ = store.put_object(DATA, retain_until=until)
    store.flush()
    key = object_key(digest)
    with pytest.raises(RetentionViolation):
        store.extend_retention(key, until - timedelta(days=1))
    longer = until + timedelta(days=365)
    info = store.extend_retention(key, longer)
    assert abs((info.retain_until - longer).total_seconds()) < 1
    head = store.head(key)
    assert head is not None
    assert abs((head.retain_until - longer).total_seconds()) < 1
    assert store.extend_retention(key, head.retain_until).retain_until == head.retain_until


def test_legal_hold_on_and_off(store: WormStore) -> None:
    """A hold can be placed and released, and head reports it."""
    digest, _ = store.put_object(DATA, retain_until=later(days=1))
    store.flush()
    key = object_key(digest)
    assert store.set_legal_hold(key, True).legal_hold
    assert store.head(key).legal_hold  # type: ignore[union-attr]
    assert not store.set_legal_hold(key, False).legal_hold
    assert not store.head(key).legal_hold  # type: ignore[union-attr]


def test_keys_by_prefix_in_lexical_order(store: WormStore) -> None:
    """keys(prefix) yields logical keys in lexical order, staged and flushed alike."""
    until = later(days=1)
    blobs = [f"record {i}".encode() for i in range(5)]
    for blob in blobs:
        store.put_object(blob, retain_until=until)
    for name in ("ledger/b", "ledger/a/2", "ledger/a-1", "ledger-x", "checkpoints/1"):
        store.put(name, name.encode(), retain_until=until)
    store.flush()
    store.put("ledger/c", b"staged", retain_until=until)
    objects = sorted(object_key(sha256_hex(b)) for b in blobs)
    assert list(store.keys("sha256/")) == objects
    assert list(store.keys("ledger/")) == ["ledger/a-1", "ledger/a/2", "ledger/b", "ledger/c"]
    everything = list(store.keys())
    assert everything == sorted(everything)
    assert len(everything) == 11
    first = objects[0][: len("sha256/") + 3]
    assert list(store.keys(first)) == [k for k in objects if k.startswith(first)]


def s3_versions(store: WormStore, key: str) -> list[dict[str, object]]:
    """Every version S3 keeps of ``key`` (through boto3, not through the store)."""
    client = store.client  # type: ignore[attr-defined]
    answer = client.list_object_versions(Bucket=store.bucket, Prefix=key)  # type: ignore[attr-defined]
    return [v for v in answer.get("Versions", []) if v["Key"] == key]


def test_heads_answer_as_head_does(store: WormStore) -> None:
    """Several keys' metadata at once equals each one's head, a missing key and a staged put
    included."""
    held, _ = store.put_object(DATA, retain_until=later(days=2), legal_hold=True)
    store.flush()
    staged, _ = store.put_object(DATA + b" ", retain_until=later(days=3))
    keys = [object_key(held), object_key(staged), object_key("0" * 64)]
    assert store.heads(keys) == {key: store.head(key) for key in keys}
    store.flush()


def test_read_object_is_a_checked_get_of_an_object(store: WormStore) -> None:
    """read_object gives an object's bytes, flushed or only staged; a missing object is
    NotFound, and a key outside sha256/ is refused."""
    flushed, _ = store.put_object(DATA, retain_until=later(days=1))
    store.flush()
    staged, _ = store.put_object(DATA + b" staged", retain_until=later(days=1))
    assert store.read_object(object_key(flushed)) == DATA
    assert store.read_object(object_key(staged)) == DATA + b" staged"
    with pytest.raises(NotFound):
        store.read_object(object_key("0" * 64))
    store.put("ledger/000001", b"entry", retain_until=later(days=1))
    with pytest.raises(ArchiveError):
        store.read_object("ledger/000001")
    store.flush()
