"""Tampering with what was archived, as an attacker with the data directory (or the bucket)
would: each attack is made directly on files, rows or objects, and ``archive verify`` must
exit 1 naming what was done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from bulletin.archiver import disposition
from bulletin.archiver.store.base import object_key
from bulletin.archiver.store.local import LocalStore
from bulletin.cli import cli
from bulletin.models import Record
from bulletin.publisher.notices import approve_notice
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_delivery_platforms import drain, worker
from tests.test_media import draft, png

POSTS_DESTROYED = """
[retention.series.agency-posts]
period = "2y"
anchor = "posted"
disposition = "destroy-after-approval"
"""


@pytest.fixture
def inst(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database whose agency posts are destroyed two years on."""
    made = make_instance(tmp_path, db_url, POSTS_DESTROYED)
    yield made
    made.app.close()


def run_verify(inst: Instance) -> tuple[int, str]:
    """``bulletin archive verify``: its exit code and output."""
    result = CliRunner().invoke(
        cli, ["--config", str(inst.config), "archive", "verify"], env={"BULLETIN_USER": ""}
    )
    return result.exit_code, result.output


def local_store(inst: Instance) -> LocalStore:
    store = inst.app.store
    assert isinstance(store, LocalStore)
    return store


def overwrite(store: LocalStore, key: str, data: bytes) -> None:
    """Replace a stored file's bytes, as anyone who can write the data directory can."""
    path = store.path_of(key)
    path.chmod(0o644)
    path.write_bytes(data)


def pin(inst: Instance, tmp_path: Path, name: str, data: bytes) -> int:
    image = tmp_path / name
    image.write_bytes(data)
    return draft(inst, image, f"Photo {name}", "community-outreach", ("feed",))


def publish(inst: Instance, notice_id: int) -> None:
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    drain(inst, worker(inst))


# -- media: images pinned at drafting ------------------------------------------------------


def test_an_altered_image_of_a_notice_not_yet_published_is_named(
    inst: Instance, tmp_path: Path
) -> None:
    """An approved notice's pinned image swapped in the store is named by verify (notice and
    image) before the notice goes out."""
    data = png("lost dog")
    digest = hashlib.sha256(data).hexdigest()
    notice_id = pin(inst, tmp_path, "dog.png", data)
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    assert run_verify(inst)[0] == 0

    overwrite(local_store(inst), object_key(digest), png("another dog"))
    code, output = run_verify(inst)
    assert code == 1
    assert (
        f"problem: notice {notice_id}: object-altered: image dog.png sha256/{digest} "
        "does not match its hash"
    ) in output


def test_disposition_destroys_images_no_retained_record_or_live_notice_needs(
    inst: Instance, tmp_path: Path
) -> None:
    """Destroying two posts destroys the image only they used and keeps the one a draft
    still pins; the certificate names both, and verify passes afterwards."""
    own, shared = png("own"), png("shared")
    own_key = object_key(hashlib.sha256(own).hexdigest())
    shared_key = object_key(hashlib.sha256(shared).hexdigest())
    publish(inst, pin(inst, tmp_path, "own.png", own))
    publish(inst, pin(inst, tmp_path, "shared.png", shared))
    pin(inst, tmp_path, "again.png", shared)  # a draft pinning the same bytes: live
    with Session(inst.app.engine) as session:
        assert len(session.exec(select(Record)).all()) == 2

    inst.clock.advance(timedelta(days=2 * 366 + 30))
    batch = disposition.build_disposition_batch(
        inst.app.engine, inst.app.store, inst.settings, inst.clock.now(), "admin1"
    )
    assert batch is not None and batch.id is not None and batch.record_count == 2
    result = disposition.approve_batch(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        batch.id,
        actor="chief",
        now=inst.clock.now(),
    )
    store = inst.app.store
    assert own_key in result.destroyed and store.head(own_key) is None
    assert shared_key in result.kept_shared and store.head(shared_key) is not None
    certificate = json.loads(store.get(result.certificate_key))
    assert certificate["media_destroyed"] == [own_key]
    assert certificate["media_kept_shared"] == [shared_key]
    assert own_key in certificate["objects_destroyed"]
    assert sorted(m for r in certificate["records"] for m in r["media_sha256"]) == sorted(
        k.removeprefix("sha256/") for k in (own_key, shared_key)
    )
    assert disposition.verify_certificate(inst.app.engine, store, batch.id) == []
    assert run_verify(inst)[0] == 0
