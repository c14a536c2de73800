"""Each archive verify is recorded (``verify_runs``): the command's and the nightly job's; the
last runs and what the last one found show in ``bulletin status`` and on the console's status
page; ``status --check`` names a failed, unfinished or overdue verify; a problem tells the
administrators."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from bulletin.archiver import verify_runs as runs
from bulletin.archiver.store.base import object_key
from bulletin.archiver.store.local import LocalStore
from bulletin.models import VerifyRun
from bulletin.notify.outbox import Notification
from bulletin.service.maintenance import Maintenance
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke, run
from tests.test_archive import archive_some
from tests.test_console import signed_in
from tests.test_web import PEOPLE, add_with_password, serving


def verify_rows(inst: Instance) -> list[VerifyRun]:
    with Session(inst.app.engine) as session:
        return list(session.exec(select(VerifyRun).order_by(VerifyRun.id)).all())  # type: ignore[arg-type]


def admin_messages(inst: Instance) -> list[Notification]:
    with Session(inst.app.engine) as session:
        return list(session.exec(select(Notification).where(Notification.kind == "admin")).all())


def test_a_command_run_is_recorded_and_a_problem_reaches_status_and_the_admins(
    instance: Instance,
) -> None:
    """A clean ``archive verify`` is one ok run; after a byte flips in an object, the next
    run records the problem and its line, ``status --check`` names it, and one message waits
    for the administrators."""
    records = archive_some(instance, 3)
    run(instance, "archive", "verify", clock=instance.clock)
    (first,) = verify_rows(instance)
    assert (first.trigger, first.records, first.problems, first.first_problems) == (
        "command",
        3,
        0,
        None,
    )
    assert first.finished_at is not None
    shown = run(instance, "status", "--check", code=1, clock=instance.clock)
    assert "archive verify: last runs" in shown and "(command): OK, 3 records" in shown
    assert "CHECK: archive verify" not in shown
    assert admin_messages(instance) == []

    store = instance.app.store
    assert isinstance(store, LocalStore)
    path = store.path_of(object_key(records[1].object_sha256))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    instance.clock.advance(timedelta(minutes=5))
    run(instance, "archive", "verify", code=1, clock=instance.clock)
    second = verify_rows(instance)[-1]
    assert second.problems == 1
    assert second.first_problems == f"record {records[1].id}: object-altered: " + (
        f"sha256/{records[1].object_sha256} does not match its hash"
    )
    shown = run(instance, "status", "--check", code=1, clock=instance.clock)
    assert f"problem: record {records[1].id}: object-altered" in shown
    assert (
        "CHECK: archive verify of "
        f"{second.started_at:%Y-%m-%d %H:%M} UTC found 1 problem; first: record "
        f"{records[1].id}: object-altered"
    ) in shown
    payload = json.loads(run(instance, "status", "--json", "--check", code=1, stdout=True,
                             clock=instance.clock))  # fmt: skip
    assert [r["result"] for r in payload["verify_runs"]] == ["failed", "ok"]
    assert any(p.startswith("archive verify of ") for p in payload["problems"])
    (message,) = admin_messages(instance)
    assert message.subject == runs.SUBJECT
    assert "object-altered" in message.facts["lines"][0]


def test_the_nightly_run_is_recorded_and_an_old_run_is_overdue(instance: Instance) -> None:
    """The daemon's nightly job records a run by ``nightly``; two days and more later with no
    run since, ``status --check`` says verify is overdue; a new run clears it."""
    archive_some(instance, 2)
    Maintenance(instance.app).nightly()
    (row,) = verify_rows(instance)
    assert (row.trigger, row.records, row.problems) == ("nightly", 2, 0)
    assert runs.problems(instance.app.engine, instance.clock.now()) == []
    instance.clock.advance(runs.OVERDUE_AFTER + timedelta(minutes=1))
    (line,) = runs.problems(instance.app.engine, instance.clock.now())
    assert line.startswith("archive verify overdue: the last run finished ")
    shown = run(instance, "status", "--check", code=1, clock=instance.clock)
    assert "CHECK: archive verify overdue" in shown
    Maintenance(instance.app).nightly()
    assert runs.problems(instance.app.engine, instance.clock.now()) == []


def test_an_archive_never_verified_and_a_run_that_never_finished(instance: Instance) -> None:
    """A new archive is not overdue; one older than the overdue span with no run is; a run
    started and never finished (the process died) is named once it is old."""
    archive_some(instance, 1)
    assert runs.problems(instance.app.engine, instance.clock.now()) == []
    instance.clock.advance(runs.OVERDUE_AFTER + timedelta(minutes=1))
    assert runs.problems(instance.app.engine, instance.clock.now()) == [
        "archive verify overdue: no run has finished since the archive began"
    ]
    started = instance.clock.now()
    runs.start(instance.app.engine, "nightly", started)
    (view,) = runs.recent(instance.app.engine)
    assert view.result == "running" and view.line().endswith("not finished")
    instance.clock.advance(runs.DEAD_AFTER + timedelta(minutes=1))
    found = runs.problems(instance.app.engine, instance.clock.now())
    assert f"archive verify started {started:%Y-%m-%d %H:%M} UTC (nightly) never finished" in found
    result = invoke(instance, "status", "--check", clock=instance.clock)
    assert "never finished" in result.output


def test_the_status_page_shows_the_last_runs_and_the_problem(tmp_path: Path, db_url: str) -> None:
    """The page's verify table lists the runs newest first; the last run's problem lines are
    shown and in the list of what needs a person."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    try:
        add_with_password(inst.app, "ivy", "admin")
        records = archive_some(inst, 2)
        Maintenance(inst.app).nightly()
        store = inst.app.store
        assert isinstance(store, LocalStore)
        store.path_of(object_key(records[0].raw_sha256 or "")).unlink()
        inst.clock.advance(timedelta(minutes=1))
        run(inst, "archive", "verify", code=1, clock=inst.clock)
        with serving(inst.app) as url, signed_in(url, "ivy") as ivy:
            page = ivy.get("/status")
            assert page.status_code == 200, page.text
            text = page.text
            table = text[
                text.index('id="verify-table"') : text.index(
                    "</table>", text.index('id="verify-table"')
                )
            ]
            assert table.index("<td>command</td><td>failed</td>") < table.index(
                "<td>nightly</td><td>ok</td>"
            )
            assert "What the last verify found" in text
            assert f"record {records[0].id}: object-missing" in text
            assert "archive verify of " in text
    finally:
        inst.app.close()


def test_upgrade_from_0028_adds_an_empty_verify_runs_table(db_url: str) -> None:
    """A database at 0028 upgrades to one with no verify run recorded, which status then
    reports as an archive never verified rather than failing on a missing table."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine, migrate

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0028")
        assert "verify_runs" not in sa.inspect(engine).get_table_names()
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        with Session(engine) as session:
            assert list(session.exec(select(VerifyRun))) == []
    finally:
        engine.dispose()
