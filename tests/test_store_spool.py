"""An S3 outage: captures keep going into a durable local spool and reach S3 later, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bulletin.archiver.store.base import NewObject, WormStore, object_key, sha256_hex
from bulletin.archiver.store.s3 import S3Store
from bulletin.archiver.store.spool import SpooledStore
from bulletin.archiver.verify import verify
from bulletin.errors import StoreUnavailable
from bulletin.models import Record
from tests.plugins.bulletin_app import Instance
from tests.plugins.environment import free_port, require
from tests.plugins.seaweedfs import find_weed, run_seaweedfs, s3_client
from tests.test_archive import archive_some, comment

pytestmark = pytest.mark.s3


class Backend:
    """Builds an S3Store on whatever endpoint is current (the server moves when restarted)."""

    def __init__(self, bucket: str) -> None:
        self.endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens yet
        self.bucket = bucket
        self.built = 0

    def __call__(self) -> WormStore:
        self.built += 1
        return S3Store(
            s3_client(self.endpoint, timeout=1.0, retries=0), self.bucket, create_bucket=True
        )


def test_outage_spools_then_drains_in_order(
    sqlite_instance: Instance, tmp_path: Path, s3_bucket: str
) -> None:
    """S3 down at start and during captures: records are archived into the spool, verify
    passes, and when S3 answers the backlog drains in order; nothing lost."""
    weed = find_weed()
    require(weed is not None, "SeaweedFS (weed)")
    assert weed is not None
    backend = Backend(s3_bucket)
    store = SpooledStore(backend, tmp_path / "spool")
    inst = sqlite_instance
    inst.app._store = store
    archive_some(inst, 5)  # S3 unreachable: all spooled
    assert store.backlog() > 0
    spooled = store.backlog()
    with Session(inst.app.engine) as session:
        first = session.exec(select(Record)).first()
    assert first is not None and store.read_object(object_key(first.object_sha256))
    with pytest.raises(StoreUnavailable):
        list(store.keys())  # a listing needs the backend; the spool alone is not the archive
    reopened = SpooledStore(backend, tmp_path / "spool")  # survives a restart
    assert reopened.backlog() == spooled
    with run_seaweedfs(tmp_path / "weed", weed) as endpoint:
        backend.endpoint = endpoint
        store._backend = None  # reconnect on next use
        assert store.drain() == spooled
        assert store.backlog() == 0
        assert sorted(store.spool_dir.iterdir()) == []
        inst.app.archiver.archive([comment(99)])  # S3 is back: straight through
        report = verify(inst.app.engine, store)
        assert report.ok, report.problems
        remote = S3Store(s3_client(endpoint), s3_bucket)
        with Session(inst.app.engine) as session:
            for record in session.exec(select(Record)):
                key = object_key(record.object_sha256)
                assert remote.get(key) == store.read_object(key)


def test_outage_in_the_middle_of_a_batch_spools_the_whole_batch(
    seaweedfs: str, s3_bucket: str, tmp_path: Path
) -> None:
    """The connection drops after some puts of a batch sent several at a time: the whole batch
    is spooled, and the drain finds the objects that did go already stored (one version each)."""
    from botocore.exceptions import EndpointConnectionError

    failing = {"after": 5, "puts": 0}

    def drop(**_: Any) -> None:
        failing["puts"] += 1
        if failing["after"] >= 0 and failing["puts"] > failing["after"]:
            raise EndpointConnectionError(endpoint_url=seaweedfs)

    def backend() -> WormStore:
        client = s3_client(seaweedfs, retries=1)
        client.meta.events.register("before-send.s3.PutObject", drop)
        return S3Store(client, s3_bucket, create_bucket=True)

    store = SpooledStore(backend, tmp_path / "spool")
    until = datetime.now(UTC) + timedelta(days=1)
    datas = [b"comment %d" % i for i in range(30)]
    results = store.put_objects([NewObject(d, until) for d in datas])
    assert [d for d, _ in results] == [sha256_hex(d) for d in datas]
    assert store.backlog() == len(datas)
    remote = S3Store(s3_client(seaweedfs), s3_bucket)
    assert len(list(remote.keys())) == 5  # part of the batch went before the drop
    store.flush()  # durable; its drain stops at the first put that fails
    failing["after"] = -1  # the network is back
    store.drain()
    assert store.backlog() == 0
    for data in datas:
        key = object_key(sha256_hex(data))
        assert remote.get(key) == data
        answer = remote.client.list_object_versions(Bucket=s3_bucket, Prefix=key)
        assert len([v for v in answer.get("Versions", []) if v["Key"] == key]) == 1
