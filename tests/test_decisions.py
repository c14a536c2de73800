"""Legal holds and redactions survive a lost database: mirrored into the store, checked by
``archive verify``, restored by ``archive rebuild-index``."""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.archiver import decisions, holds, requests
from bulletin.archiver.rebuild import rebuild_index
from bulletin.archiver.store.local import LocalStore
from bulletin.archiver.verify import verify
from bulletin.errors import Refused
from bulletin.models import Hold, HoldRecord, RecordsRequest, Redaction
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.test_export import comment, export, post
from tests.test_redaction import PHONE_TEXT, SECRET, every_byte, record_of
from tests.test_retention import hold_on, release


def _seed(inst: Instance) -> dict[str, int]:
    """A thread, a hold still open, a released one, a redaction in force and a removed one."""
    archiver = inst.app.archiver
    archiver.archive([post("p1", "Missing: Tom, 82, last seen near the common")])
    archiver.archive([comment("c1", "p1", 5, text=PHONE_TEXT), comment("c2", "p1", 6)])
    open_hold = hold_on(inst, "thread:p1", name="Doe v. Town")
    released = hold_on(inst, "author:nobody", name="Roe inquiry", allow_empty=True)
    release(inst, released)
    c1 = record_of(inst, "c1")
    start = PHONE_TEXT.index(SECRET)
    run(inst, "redact", "add", str(c1.id), "--span", f"{start}:{start + len(SECRET)}",
        "--exemption", "26c", "--reason", "resident's phone", "--as", "clerk1")  # fmt: skip
    run(inst, "redact", "add", str(c1.id), "--match", "Call", "--exemption", "26c",
        "--reason", "mistake", "--as", "clerk1")  # fmt: skip
    with Session(inst.app.engine) as session:
        ids = sorted(r.id or 0 for r in session.exec(select(Redaction)))
    run(inst, "redact", "remove", str(ids[1]), "--reason", "not exempt", "--as", "clerk1")
    return {"open": open_hold, "released": released, "kept": ids[0], "removed": ids[1]}


def _lose_decisions(inst: Instance) -> None:
    """What a lost database loses: the holds, their members and the redactions."""
    with inst.app.engine.begin() as conn:
        for table in (HoldRecord, Redaction, Hold):
            conn.execute(sa.delete(table))


def test_every_hold_and_redaction_event_is_in_the_store(instance: Instance) -> None:
    """Opening and releasing a hold, adding and removing a redaction: each is an object of
    its own under decisions/, and the archive verifies."""
    ids = _seed(instance)
    keys = list(instance.app.store.keys(decisions.PREFIX))
    assert keys == sorted(
        [
            f"decisions/holds/{ids['open']:012d}-opened.json",
            f"decisions/holds/{ids['released']:012d}-opened.json",
            f"decisions/holds/{ids['released']:012d}-released.json",
            f"decisions/redactions/{ids['kept']:012d}-added.json",
            f"decisions/redactions/{ids['removed']:012d}-added.json",
            f"decisions/redactions/{ids['removed']:012d}-removed.json",
        ]
    )
    info = instance.app.store.head(keys[0])
    assert info is not None and info.legal_hold
    assert verify(instance.app.engine, instance.app.store).ok


def test_rebuild_restores_holds_and_redactions_a_lost_database_had(
    instance: Instance, tmp_path: Path
) -> None:
    """The database loses every hold and redaction; rebuilding the index from the store
    brings them back with their ids, states and reasons. The open hold catches a new
    capture again, and a public production still withholds the redacted text."""
    ids = _seed(instance)
    engine, store = instance.app.engine, instance.app.store
    _lose_decisions(instance)
    kinds = {p.kind for p in verify(engine, store).problems}
    assert kinds == {"decision-missing-from-index"}
    report = rebuild_index(engine, store, instance.clock.now(), replace=True)
    assert (report.holds, report.redactions, report.problems) == (2, 2, [])
    holds.refresh_holds(engine, store, instance.clock.now(), instance.settings.agency.time_zone)
    with Session(engine) as session:
        restored = {h.id: h for h in session.exec(select(Hold))}
        kept = session.get(Redaction, ids["kept"])
        removed = session.get(Redaction, ids["removed"])
    assert restored[ids["open"]].state == "open"
    assert restored[ids["open"]].name == "Doe v. Town"
    gone = restored[ids["released"]]
    assert (gone.state, gone.release_reason, gone.released_by) == (
        "released",
        "case settled",
        "clerk1",
    )
    assert kept is not None and kept.removed_at is None and kept.reason == "resident's phone"
    assert removed is not None and removed.removal_reason == "not exempt"
    assert verify(engine, store).ok
    members = holds.members(engine, ids["open"])
    assert {m.remote_id for m in members} == {"p1", "c1", "c2"}
    instance.app.archiver.archive([comment("c9", "p1", 9, text="any news?")])
    assert record_of(instance, "c9").legal_hold  # the restored hold covers later captures
    bag = tmp_path / "public"
    export(instance, "thread:p1", bag)
    assert SECRET.encode() not in every_byte(bag)
    next_hold = hold_on(instance, "author:someone", allow_empty=True)  # ids go on after restored
    assert next_hold > max(ids["open"], ids["released"])


def test_unmirrored_and_altered_decisions_are_found_and_mended(instance: Instance) -> None:
    """An event the store lacks (a crash before it was mirrored) is reported by verify and
    written by the daemon's start-up repair; an altered one is reported as altered."""
    ids = _seed(instance)
    store, engine = instance.app.store, instance.app.engine
    assert isinstance(store, LocalStore)
    key = f"decisions/holds/{ids['released']:012d}-released.json"
    store.path_of(key).unlink()
    problems = verify(engine, store).problems
    assert [(p.kind, p.subject) for p in problems] == [("decision-unmirrored", key)]
    Daemon(instance.app).recover()  # what a daemon does when it starts
    assert verify(engine, store).ok
    assert decisions.mirror_all(engine, store, instance.clock.now()) == 0
    altered = store.path_of(f"decisions/redactions/{ids['kept']:012d}-added.json")
    os.chmod(altered, 0o644)
    altered.write_bytes(altered.read_bytes().replace(b"resident", b"residenT"))
    problems = verify(engine, store).problems
    assert [p.kind for p in problems] == ["object-altered"]


def _request(inst: Instance) -> RecordsRequest:
    inst.app.archiver.archive([post("p1", "Water main break on Elm")])
    request, count = requests.open_request(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        requester="Boston Globe",
        received=date(2026, 11, 25),
        description="the water main post",
        query=holds.parse_query("thread:p1"),
        litigation=False,
        actor="clerk1",
        now=inst.clock.now(),
    )
    assert count == 1 and request.id is not None and request.hold_id is not None
    return request


def _lose_requests(inst: Instance) -> None:
    _lose_decisions(inst)
    with inst.app.engine.begin() as conn:
        conn.execute(sa.delete(RecordsRequest))


def test_records_requests_come_back_with_their_deadlines(instance: Instance) -> None:
    """An open request, extended once, and its hold: after a lost database the request is
    back as it stood (deadline, extension, requester), its earlier state kept as history in
    the store; closing it releases its hold and is mirrored in turn."""
    engine, store, settings = instance.app.engine, instance.app.store, instance.settings
    request = _request(instance)
    assert request.id is not None
    extended = requests.extend_request(
        engine, store, settings, request.id, days=5, reason="volume", actor="clerk1",
        now=instance.clock.now(),
    )  # fmt: skip
    assert sorted(store.keys(decisions.REQUESTS)) == [
        f"decisions/requests/{request.id:012d}-open-0000.json",
        f"decisions/requests/{request.id:012d}-open-0005.json",
    ]
    assert verify(engine, store).ok
    _lose_requests(instance)
    report = rebuild_index(engine, store, instance.clock.now(), replace=True)
    assert (report.holds, report.requests, report.problems) == (1, 1, [])
    back = requests.get_request(engine, request.id)
    assert (back.requester, back.due_on, back.extension_days, back.state) == (
        "Boston Globe",
        extended.due_on,
        5,
        "open",
    )
    assert back.hold_id == request.hold_id
    assert verify(engine, store).ok
    with pytest.raises(Refused, match="close the request"):
        release(instance, request.hold_id or 0)
    requests.close_request(
        engine, store, settings, request.id, reason="answered", actor="clerk1",
        now=instance.clock.now(),
    )  # fmt: skip
    assert holds.get_hold(engine, request.hold_id or 0).state == "released"
    assert f"decisions/requests/{request.id:012d}-closed.json" in set(store.keys(decisions.PREFIX))
    assert verify(engine, store).ok


def test_a_restored_hold_whose_request_is_gone_can_be_released(instance: Instance) -> None:
    """An archive whose store lacks a request (written before requests were mirrored): its
    hold comes back naming the request, and the clerk can release it."""
    request = _request(instance)
    store = instance.app.store
    assert isinstance(store, LocalStore)
    for key in store.keys(decisions.REQUESTS):
        store.path_of(key).unlink()
    _lose_requests(instance)
    report = rebuild_index(
        instance.app.engine, instance.app.store, instance.clock.now(), replace=True
    )
    assert (report.holds, report.requests) == (1, 0)
    hold_id = request.hold_id or 0
    assert holds.get_hold(instance.app.engine, hold_id).request_id == request.id
    release(instance, hold_id)
    assert holds.get_hold(instance.app.engine, hold_id).state == "released"


def test_rebuild_index_command_says_what_it_restored(instance: Instance) -> None:
    """``archive rebuild-index`` names the holds and redactions it brought back, attaches the
    open hold's records again, and ``hold list`` and ``redact list`` show them."""
    ids = _seed(instance)
    _lose_decisions(instance)
    out = run(instance, "archive", "rebuild-index", "--replace")
    assert "restored 2 legal holds, 2 redactions and 0 records requests from the store" in out
    listing = run(instance, "hold", "list", "--all")
    assert "Doe v. Town" in listing and "Roe inquiry" in listing
    assert {m.remote_id for m in holds.members(instance.app.engine, ids["open"])} == {
        "p1",
        "c1",
        "c2",
    }
    assert "resident's phone" in run(instance, "redact", "list")


def test_a_redaction_stands_when_the_store_refuses_its_copy(instance: Instance) -> None:
    """The store refuses writes (its folder made immutable) when a redaction is added: the
    redaction is in force, verify names the missing copy, and the daemon's hourly job writes
    it once the store takes writes again."""
    store, engine = instance.app.store, instance.app.engine
    assert isinstance(store, LocalStore)
    instance.app.archiver.archive([comment("c1", "p1", 5, text=PHONE_TEXT)])
    folder = store.root / "decisions" / "redactions"
    folder.mkdir(parents=True)
    locked = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if locked.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot make a folder immutable under CI: {locked.stderr.decode()}")
        pytest.skip("chattr +i needs root on ext4")
    try:
        start = PHONE_TEXT.index(SECRET)
        out = run(instance, "redact", "add", str(record_of(instance, "c1").id), "--span",
                  f"{start}:{start + len(SECRET)}", "--exemption", "26c", "--reason", "phone",
                  "--as", "clerk1")  # fmt: skip
        assert "redaction 1: record" in out
        problems = verify(engine, store).problems
        assert [p.kind for p in problems] == ["decision-unmirrored"]
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert Daemon(instance.app).maintenance.mirror_decisions() == 1  # the hourly job, store back
    assert verify(engine, store).ok


def test_a_hold_rewritten_in_the_database_is_caught(instance: Instance) -> None:
    """Someone changes an open hold's reason, and deletes a redaction, straight in the
    database: verify names the hold's object as contradicted and the redaction's objects
    as missing from the index."""
    ids = _seed(instance)
    engine, store = instance.app.engine, instance.app.store
    with engine.begin() as conn:
        conn.execute(sa.update(Hold).where(col(Hold.id) == ids["open"]).values(reason="never mind"))
        conn.execute(sa.delete(Redaction).where(col(Redaction.id) == ids["kept"]))
    found = [(p.kind, p.subject) for p in verify(engine, store).problems]
    assert found == [
        ("decision-contradicted", f"decisions/holds/{ids['open']:012d}-opened.json"),
        ("decision-missing-from-index", f"decisions/redactions/{ids['kept']:012d}-added.json"),
    ]
