"""Tampering with what was archived, as an attacker with the data directory (or the bucket)
would: each attack is made directly on files, rows or objects, and ``archive verify`` must
exit 1 naming what was done."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver import disposition, ledger
from bulletin.archiver.store.base import object_key
from bulletin.archiver.store.local import LocalStore
from bulletin.models import LedgerEntry, Record
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import cancel_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke
from tests.plugins.environment import free_port
from tests.plugins.seaweedfs import ACCESS_KEY, SECRET_KEY, s3_client
from tests.test_delivery_platforms import drain, worker
from tests.test_media import draft, png
from tests.test_retention import comment

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
    result = invoke(inst, "archive", "verify")
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


def dispose_all(inst: Instance, records: int) -> disposition.ApproveResult:
    """List what is due for destruction (``records`` records) and approve the batch."""
    batch = disposition.build_disposition_batch(
        inst.app.engine, inst.app.store, inst.settings, inst.clock.now(), "admin1"
    )
    assert batch is not None and batch.id is not None and batch.record_count == records
    now = inst.clock.now()
    return disposition.approve_batch(
        inst.app.engine, inst.app.store, inst.settings, batch.id, actor="chief", now=now
    )


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
    result = dispose_all(inst, 2)
    store = inst.app.store
    assert own_key in result.destroyed and store.head(own_key) is None
    assert shared_key in result.kept_shared and store.head(shared_key) is not None
    assert result.images == sorted([own_key, shared_key])
    certificate = json.loads(store.get(result.certificate_key))
    assert certificate["media_destroyed"] == [own_key]
    assert certificate["media_kept_shared"] == [shared_key]
    assert own_key in certificate["objects_destroyed"]
    assert sorted(m for r in certificate["records"] for m in r["media_sha256"]) == sorted(
        k.removeprefix("sha256/") for k in (own_key, shared_key)
    )
    assert disposition.verify_certificate(inst.app.engine, store, result.batch.id or 0) == []
    assert run_verify(inst)[0] == 0


def test_an_image_a_later_notice_pinned_longer_is_kept_not_a_refusal(
    inst: Instance, tmp_path: Path
) -> None:
    """An image pinned again by a notice drafted later and cancelled is retained by the
    store past the post's retention: the batch still destroys the post, keeps the image."""
    data = png("reused")
    key = object_key(hashlib.sha256(data).hexdigest())
    publish(inst, pin(inst, tmp_path, "reused.png", data))
    inst.clock.advance(timedelta(days=60))
    later = pin(inst, tmp_path, "reused-again.png", data)
    cancel_notice(inst.app.engine, inst.clock, later, "dispatcher", "not needed")

    inst.clock.advance(timedelta(days=2 * 366 - 30))  # past the post's, not the later pin's
    result = dispose_all(inst, 1)
    assert result.kept_shared == [key] and inst.app.store.head(key) is not None
    certificate = json.loads(inst.app.store.get(result.certificate_key))
    assert certificate["media_kept_shared"] == [key]


# -- truncation and checkpoints: witnesses outside the store -------------------------------


class WitnessServer:
    """The records officer's system: keeps every point POSTed, answers GET with them all."""

    def __init__(self) -> None:
        self.points: list[dict[str, object]] = []
        points = self.points

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                points.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def do_GET(self) -> None:
                body = json.dumps(points).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/witness"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def officer() -> Iterator[WitnessServer]:
    """A small HTTP server standing for the records officer's system."""
    server = WitnessServer()
    yield server
    server.stop()


@pytest.fixture
def syslog() -> Iterator[socket.socket]:
    """A UDP socket standing for a remote syslog server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        yield sock


@pytest.fixture
def witnessed(
    tmp_path: Path, db_url: str, officer: WitnessServer, syslog: socket.socket
) -> Iterator[Instance]:
    """A Bulletin whose checkpoints are witnessed by a file on "another mount", the records
    officer's webhook and a remote syslog."""
    other_mount = tmp_path / "records-officer"
    other_mount.mkdir()
    port = syslog.getsockname()[1]
    made = make_instance(
        tmp_path,
        db_url,
        f"""
[archive.witness]
file = "{other_mount / "witness.jsonl"}"
webhook = "{officer.url}"
webhook_read_url = "{officer.url}"
syslog = true
syslog_address = "127.0.0.1:{port}"
""",
    )
    yield made
    made.app.close()


def archive_and_checkpoint(inst: Instance, numbers: range) -> str:
    """Archive comments ``numbers``, half an hour later checkpoint; the checkpoint's key."""
    inst.app.archiver.archive([comment(n) for n in numbers])
    inst.clock.advance(timedelta(minutes=30))
    key = Daemon(inst.app).maintenance.checkpoint()
    assert key is not None
    inst.clock.advance(timedelta(minutes=30))
    return key


def truncate_after(inst: Instance, seq: int) -> None:
    """Remove, as someone with the data directory, every ledger entry after ``seq``, the
    records they name, their mirror segments and objects, and the checkpoints that saw them."""
    store = local_store(inst)
    with Session(inst.app.engine) as session:
        gone = session.exec(select(Record).where(col(Record.ledger_seq) > seq)).all()
        digests = {d for r in gone for d in (r.object_sha256, r.raw_sha256) if d}
        ids = [r.id for r in gone]
    with inst.app.engine.begin() as conn:
        conn.execute(sa.delete(Record).where(col(Record.id).in_(ids)))
        conn.execute(sa.delete(LedgerEntry).where(col(LedgerEntry.seq) > seq))
    for digest in digests:
        store.path_of(object_key(digest)).unlink()
    for key in list(store.keys(ledger.SEGMENT_PREFIX)):
        found = ledger.segment_range(key)
        if found and found[1] > seq:
            kept = store.get(key).splitlines(keepends=True)[: max(0, seq - found[0] + 1)]
            info = store.head(key)
            store.path_of(key).unlink()
            if kept and info:  # the first part, as the store itself would have written it
                store.put(
                    ledger.segment_key(found[0], seq),
                    b"".join(kept),
                    retain_until=info.retain_until,
                    legal_hold=True,
                )
    for key in list(store.keys(ledger.CHECKPOINT_PREFIX)):
        if int(key.removesuffix(".json").rpartition("-")[2]) > seq:
            store.path_of(key).unlink()


def test_checkpoints_are_witnessed_outside_the_store(
    witnessed: Instance, officer: WitnessServer, syslog: socket.socket
) -> None:
    """Each checkpoint's head reaches the file, the webhook and syslog as {seq, head, at,
    hash}; verify reads the file and the webhook back and passes."""
    inst = witnessed
    key = archive_and_checkpoint(inst, range(1, 4))
    with Session(inst.app.engine) as session:
        head = ledger.head(session)
    assert head is not None
    point = {
        "seq": head.seq,
        "head": head.entry_hash,
        "at": json.loads(inst.app.store.get(key))["at"],
        "hash": hashlib.sha256(inst.app.store.get(key)).hexdigest(),
    }
    assert officer.points == [point]
    assert inst.settings.archive.witness.file is not None
    lines = inst.settings.archive.witness.file.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [point]
    message = syslog.recv(4096).decode()
    assert message.startswith("<14>bulletin: ledger checkpoint {")
    assert json.loads(message.partition("checkpoint ")[2]) == point
    code, output = run_verify(inst)
    assert code == 0, output


def test_truncation_below_a_witnessed_head_is_named(witnessed: Instance) -> None:
    """Deleting the last hour's entries, records, mirror segments, objects and checkpoint
    leaves a consistent store; verify still names the head the witnesses saw as truncated."""
    inst = witnessed
    archive_and_checkpoint(inst, range(1, 4))
    archive_and_checkpoint(inst, range(4, 6))
    with Session(inst.app.engine) as session:
        first_head, last_head = 3, ledger.head_seq(session)
    assert run_verify(inst)[0] == 0

    truncate_after(inst, first_head)
    code, output = run_verify(inst)
    assert code == 1
    for source in ("witness file", "witness http://"):
        assert f"problem: ledger {last_head}: ledger-truncated: witnessed as the head at" in output
        assert f"by {source}" in output
    assert f"problem: checkpoint of ledger {last_head}: checkpoint-missing:" in output
    assert f"problem: ledger {first_head}:" not in output


def test_deleting_every_checkpoint_is_named(witnessed: Instance) -> None:
    """With every checkpoint deleted from the store, verify names each one a witness saw,
    and warns that the store holds none."""
    inst = witnessed
    archive_and_checkpoint(inst, range(1, 3))
    archive_and_checkpoint(inst, range(3, 5))
    store = local_store(inst)
    for key in list(store.keys(ledger.CHECKPOINT_PREFIX)):
        store.path_of(key).unlink()
    code, output = run_verify(inst)
    assert code == 1
    for seq in (2, 4):
        assert f"problem: checkpoint of ledger {seq}: checkpoint-missing: witnessed at" in output
    assert "warning: checkpoints: checkpoints-missing: the store holds none" in output


def test_without_witnesses_a_head_no_checkpoint_covers_is_a_warning(inst: Instance) -> None:
    """With no witness, truncating between two checkpoints and deleting the newer one leaves
    an entry older than the checkpoint interval that no checkpoint covers: verify warns."""
    archive_and_checkpoint(inst, range(1, 3))
    archive_and_checkpoint(inst, range(3, 5))
    truncate_after(inst, 3)
    _, output = run_verify(inst)  # other checks may name a clumsy truncation; this warns
    assert "warning: ledger 3: checkpoint-overdue: recorded at" in output
    assert "no checkpoint covers it (the newest covers ledger 2;" in output


# -- S3: what a reader of the bucket sees, and the bucket's own settings -------------------


@pytest.fixture
def on_s3(
    tmp_path: Path, seaweedfs: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Instance]:
    """A Bulletin on SQLite archiving into a fresh Object Lock bucket on SeaweedFS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    extra = f"""
[archive]
store = "s3"

[archive.s3]
bucket = "{s3_bucket}"
endpoint_url = "{seaweedfs}"
create_bucket = true
"""
    made = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", extra)
    yield made
    made.app.close()


@pytest.mark.s3
def test_a_forged_version_or_delete_marker_on_top_is_named(
    on_s3: Instance, seaweedfs: str, s3_bucket: str
) -> None:
    """Verify reads the pinned version, yet names a forged newer version and a delete marker
    written over archived objects through boto3: they are what a reader of the bucket gets."""
    inst = on_s3
    forged, hidden = inst.app.archiver.archive([comment(1), comment(2)])
    assert run_verify(inst)[0] == 0
    client = s3_client(seaweedfs)
    forged_key, hidden_key = object_key(forged.object_sha256), object_key(hidden.object_sha256)
    client.put_object(Bucket=s3_bucket, Key=forged_key, Body=b'{"text":"nothing to see"}')
    client.delete_object(Bucket=s3_bucket, Key=hidden_key)

    code, output = run_verify(inst)
    assert code == 1, output
    assert f"problem: {forged_key}: version-on-top: a newer version" in output
    assert f"problem: {hidden_key}: delete-marker: a delete marker (version" in output
    assert output.count("problem:") == 2


@pytest.mark.s3
def test_a_rewritten_lock_configuration_or_lifecycle_rule_is_a_check_line(
    on_s3: Instance, seaweedfs: str, s3_bucket: str
) -> None:
    """The daemon's bucket check keeps the first reading; a default lock rewritten to
    GOVERNANCE for a day and a new expiring lifecycle rule are then CHECK lines."""
    inst = on_s3
    daemon = Daemon(inst.app)
    assert daemon.maintenance.check_bucket() == []  # at start: the baseline
    assert "S3 bucket" not in run_status_check(inst)

    client = s3_client(seaweedfs)
    client.put_object_lock_configuration(
        Bucket=s3_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    client.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-all",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 1},
                }
            ]
        },
    )
    name = f"S3 bucket {s3_bucket}"
    expected = [
        f"{name}: its default Object Lock mode is GOVERNANCE, not the configured COMPLIANCE",
        f"{name}: its default Object Lock retention changed from none to GOVERNANCE 1 day",
        f"{name}: lifecycle rule expire-all appeared; it can expire or move archived objects "
        "once their lock ends",
    ]
    assert daemon.maintenance.check_bucket() == expected  # daily
    output = run_status_check(inst)
    for line in expected:
        assert f"CHECK: {line}" in output


def run_status_check(inst: Instance) -> str:
    """``bulletin status --check``: its output (it exits 1 here anyway: no daemon runs)."""
    result = invoke(inst, "status", "--check")
    assert result.exit_code == 1, result.output
    return result.output
