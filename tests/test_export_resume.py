"""Productions the daemon takes up by itself: a worker process killed in the middle of an
export leaves a job whose lease runs out; the daemon's periodic job resumes it, acting for the
clerk who started it, to a zip that ``bulletin export verify`` accepts; a job interrupted
again after the bounded number of resumes is marked failed with a clear message. And the HTTP
API's ``POST /api/v1/exports/{id}/resume``, the console's Resume through the API."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlmodel import Session

from bulletin import audit
from bulletin.app import Actor, export_jobs, tokens, users
from bulletin.models import ExportJobRow
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run
from tests.test_api import serving
from tests.test_portal import comment, post
from tests.test_productions_console import interrupted_job, seeded

STAFF = """
[users.cleo]
os_user = "cleo"
roles = ["clerk"]

[users.rita]
roles = ["records-officer"]

[users.dana]
roles = ["dispatcher"]

[export]
pdf = false
"""
CLEO = Actor("cleo", "session", "127.0.0.1")

# A worker process: start a production as cleo, print its id, then keep working until killed.
WORKER = """
import sys, time
from pathlib import Path
from bulletin.app import Actor, App, export_jobs
from bulletin.config import load_settings

app = App(load_settings(Path(sys.argv[1]), environ={}), environ={})
job = export_jobs.start(app, Actor("cleo", "session", "127.0.0.1"), query="salt")
print(job.id, flush=True)
export_jobs.wait(job.id, 600)
print("finished", flush=True)
"""


@pytest.fixture
def staffed(tmp_path: Path) -> Iterator[Instance]:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", STAFF)
    yield inst
    inst.app.close()


def _row(inst: Instance, job_id: str) -> ExportJobRow | None:
    with Session(inst.app.engine) as session:
        return session.get(ExportJobRow, job_id)


@pytest.mark.timeout(600)  # a minute at a load of 12 on 2 cores
def test_the_daemon_resumes_an_export_whose_worker_was_killed(
    staffed: Instance, tmp_path: Path
) -> None:
    """A real worker process is killed (SIGKILL) after its first chunk of 1,000 records of
    1,500; once its lease has run out the daemon's job resumes it as cleo (audited as the
    daemon's, "resumed by daemon on behalf of cleo") to a zip ``export verify`` accepts,
    with every record; a second round finds nothing to take up."""
    inst = staffed
    for t in range(15):
        inst.app.archiver.archive(
            [post(f"p{t}", f"Salt trucks out, route {t}", minutes=t)]
            + [comment(f"p{t}c{n}", f"p{t}", f"salt report {t} {n}", 30 + n) for n in range(99)]
        )
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    worker = subprocess.Popen(
        [sys.executable, str(script), str(inst.config)],
        stdout=subprocess.PIPE,
        text=True,
        env=inst.env(),
    )
    try:
        assert worker.stdout is not None
        job_id = worker.stdout.readline().strip()
        assert job_id, "the worker printed no job"
        deadline = time.monotonic() + 300
        while (row := _row(inst, job_id)) is None or row.done == 0:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    row = _row(inst, job_id)
    assert row is not None and row.state == "running" and 0 < row.done < 1500, row
    inst.clock.set(datetime.now(UTC) + export_jobs.LEASE + timedelta(seconds=5))
    assert export_jobs.progress(inst.app, CLEO, job_id).state == "interrupted"
    assert export_jobs.resume_interrupted(inst.app) == [job_id]
    assert export_jobs.wait(job_id, 300)
    done = export_jobs.progress(inst.app, CLEO, job_id)
    assert (done.state, done.records, done.resumes) == ("done", 1500, 1), done.error
    assert done.verified and done.verified.startswith("verified:")
    checked = run(inst, "export", "verify", str(done.out), "--json", stdout=True, login="cleo")
    report = json.loads(checked.strip().splitlines()[-1])
    assert report["ok"] and report["records"] == 1500, report
    (resumed,) = audit.events(inst.app.engine, action="export.resumed", object_id=job_id)
    assert resumed.actor == "bulletin" and resumed.via == "system"
    assert resumed.reason == "resumed by daemon on behalf of cleo"
    assert json.loads(resumed.detail or "{}")["on_behalf_of"] == "cleo"
    assert export_jobs.resume_interrupted(inst.app) == []


def test_the_daemon_gives_up_after_its_resumes_and_leaves_a_clear_failure(
    tmp_path: Path, db_url: str
) -> None:
    """A job already resumed MAX_RESUMES times and interrupted again is marked failed by the
    daemon with a message saying why (audited), never taken up again by it; its journal is
    kept, so cleo can still resume it by hand; one whose owner lost the clerk role is failed
    with the refusal."""
    inst = make_instance(tmp_path, db_url, STAFF)
    try:
        seeded(inst)
        job_id = interrupted_job(inst)
        with Session(inst.app.engine) as session:
            row = session.get(ExportJobRow, job_id)
            assert row is not None
            row.resumes = export_jobs.MAX_RESUMES
            session.add(row)
            session.commit()
        assert export_jobs.resume_interrupted(inst.app) == []
        failed = export_jobs.progress(inst.app, CLEO, job_id)
        assert failed.state == "failed" and failed.resumable
        assert failed.error and failed.error.startswith("interrupted 4 times; the daemon")
        assert "resume it by hand" in failed.error
        (gave_up,) = audit.events(inst.app.engine, action="export.abandoned", object_id=job_id)
        assert gave_up.actor == "bulletin" and gave_up.reason == failed.error
        assert export_jobs.resume_interrupted(inst.app) == []  # a failed job stays failed
        export_jobs.resume(inst.app, CLEO, job_id)
        assert export_jobs.wait(job_id, 120)
        assert export_jobs.progress(inst.app, CLEO, job_id).state == "done"
    finally:
        inst.app.close()


def test_the_api_resumes_an_interrupted_export(staffed: Instance) -> None:
    """POST /api/v1/exports/{id}/resume takes up an interrupted export (202, running) to
    done, as the console's Resume; refused (403) to a token without exports:write, to
    someone else's clerk and once done; 404 for an unknown id; a records officer holds the
    clerk's role but not cleo's job."""
    inst = staffed
    users.seed(inst.app)
    seeded(inst)
    job_id = interrupted_job(inst)
    cleo = tokens.create(inst.app, CLEO, "cleo", ["exports:write", "exports:read"]).token
    reader = tokens.create(inst.app, CLEO, "cleo-r", ["exports:read"]).token
    rita = tokens.create(inst.app, Actor("rita"), "rita", ["exports:write"]).token
    path = f"/exports/{job_id}/resume"
    with serving(inst.app) as (url, _), httpx.Client(base_url=url, timeout=60) as web:

        def post_as(secret: str, where: str = path) -> httpx.Response:
            return web.post(where, headers={"Authorization": f"Bearer {secret}"})

        refused = post_as(reader)
        assert refused.status_code == 403 and "exports:write" in refused.json()["detail"]
        refused = post_as(rita)
        assert refused.status_code == 403 and "someone else" in refused.json()["detail"]
        assert post_as(cleo, "/exports/no-such-export-1/resume").status_code == 404
        taken = post_as(cleo)
        assert taken.status_code == 202, taken.text
        assert taken.json()["id"] == job_id and taken.json()["state"] == "running"
        assert export_jobs.wait(job_id, 120)
        shown = web.get(f"/exports/{job_id}", headers={"Authorization": f"Bearer {cleo}"})
        assert shown.json()["state"] == "done" and shown.json()["records"] == 5
        again = post_as(cleo)
        assert again.status_code == 403 and "is done" in again.json()["detail"]
    (resumed,) = audit.events(inst.app.engine, action="export.resumed", object_id=job_id)
    assert resumed.actor == "cleo" and resumed.via == "token" and resumed.reason is None
