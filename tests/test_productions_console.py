"""Productions from the console: start an export of a request or a query, follow it, resume
it after an interruption, download the zip with the check of the bundle, and the Bates
register by matter. Jobs live in the database: another process (a second App on the same
database) sees them and may resume one whose worker died. Over a real uvicorn on a free port
against SQLite and PostgreSQL; pages checked with axe at 320 and 1280 pixels."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from bulletin.app import Actor, App, export_jobs, exports
from bulletin.errors import Refused
from bulletin.models import ExportJobRow
from tests.plugins.browser import axe_violations, describe
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, csrf_for, signed_in
from tests.test_portal import post
from tests.test_web import PEOPLE, add_with_password, serving

CLEO = Actor("cleo", "session", "127.0.0.1")
DANA = Actor("dana", "session", "127.0.0.1")


class Interrupted(Exception):
    """Stands for the death of the process writing an export."""


def seeded(inst: Instance) -> None:
    inst.app.archiver.archive(
        [post(f"p{n}", f"Water main break number {n}", minutes=n) for n in range(1, 6)]
    )


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """cleo (clerk), dana (dispatcher), adam (admin), each with a password; five posts."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    for name, roles in {"cleo": ["clerk"], "dana": ["dispatcher"], "adam": ["admin"]}.items():
        add_with_password(inst.app, name, *roles)
    seeded(inst)
    yield inst
    inst.app.close()


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


def finished(app: App, job_id: str) -> export_jobs.ExportJob:
    assert export_jobs.wait(job_id, 60)
    return export_jobs.progress(app, CLEO, job_id)


def interrupted_job(inst: Instance, query: str = "water") -> str:
    """A job whose worker died after its first chunk: the partial export and its journal are
    on disk, the row still says running and its lease has run out."""
    job_id = "interrupted-job-0001"
    out = inst.data_dir / "exports" / f"api-{job_id}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)

    def die(done: int, total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        exports.produce(inst.app, CLEO, query=query, out=out, as_zip=True, progress=die)
    assert (out.parent / f"{out.name}.partial").is_dir()
    now = inst.clock.now()
    with Session(inst.app.engine) as session:
        session.add(
            ExportJobRow(
                id=job_id,
                owner="cleo",
                production="public",
                query=query,
                out=str(out),
                state="running",
                done=1,
                total=5,
                started_at=now,
                updated_at=now,
                claimed_by="gone:1",
                lease_until=now + timedelta(seconds=30),
            )
        )
        session.commit()
    assert export_jobs.progress(inst.app, CLEO, job_id).state == "running"
    inst.clock.advance(export_jobs.LEASE)
    return job_id


def test_a_job_lives_in_the_database_and_another_process_sees_it(site: Instance) -> None:
    """A job started in one App is followed to done, with its zip checked, from another App
    on the same database (another process, or the same after a restart)."""
    job = export_jobs.start(site.app, CLEO, query="water")
    assert job.state == "running"
    done = finished(site.app, job.id)
    assert (done.state, done.records, done.done, done.total) == ("done", 5, 5, 5)
    assert done.verified and done.verified.startswith("verified:")
    assert done.first_bates and done.payload_sha256
    other = App(site.settings, environ={}, clock=site.clock)
    try:
        seen = export_jobs.progress(other, CLEO, job.id)
        assert seen == done
        assert export_jobs.download(other, CLEO, job.id).read_bytes()[:2] == b"PK"
        assert [j.id for j in export_jobs.list_jobs(other, CLEO)] == [job.id]
    finally:
        other.close()


def test_an_interrupted_job_is_resumed_once_from_its_journal(site: Instance) -> None:
    """A running job whose lease ran out shows as interrupted; resuming continues from the
    journal to a checked zip; a second resume, or one while it runs, is refused."""
    job_id = interrupted_job(site)
    job = export_jobs.progress(site.app, CLEO, job_id)
    assert (job.state, job.resumable) == ("interrupted", True)
    with pytest.raises(Refused, match="does not hold the clerk role"):
        export_jobs.resume(site.app, DANA, job_id)
    export_jobs.resume(site.app, CLEO, job_id)
    done = finished(site.app, job_id)
    assert (done.state, done.records, done.resumes) == ("done", 5, 1), done.error
    assert done.verified and done.verified.startswith("verified:")
    with zipfile.ZipFile(done.out) as bundle:
        assert any(name.endswith("bagit.txt") for name in bundle.namelist())
    with pytest.raises(Refused, match="is done"):
        export_jobs.resume(site.app, CLEO, job_id)


def test_a_clerk_starts_follows_and_downloads_a_production(site: Instance, web: str) -> None:
    """From the form to the job's page (refresh link while running, JSON twin), to done: the
    check of the bundle, the Bates numbers and a zip to download; the register lists the
    matter; a bad scope is shown on the form."""
    with signed_in(web, "cleo") as cleo:
        page = cleo.get("/productions")
        assert page.status_code == 200 and "No production yet." in page.text
        token = csrf_for(page.text, "/productions")
        bad = cleo.post("/productions", data={"csrf": token, "production": "public"})
        assert bad.status_code == 400 and 'class="error"' in bad.text
        started = cleo.post(
            "/productions", data={"csrf": token, "q": "water", "production": "counsel"}
        )
        assert started.status_code == 303
        path = started.headers["location"]
        job_id = path.rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while (state := cleo.get(f"{path}.json").json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["state"] == "done" and state["production"] == "counsel", state
        assert state["verified"].startswith("verified:")
        page = cleo.get(path)
        assert "Check of the bundle" in page.text and state["first_bates"] in page.text
        assert f'href="/productions/{job_id}/download"' in page.text
        zipped = cleo.get(f"{path}/download")
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped.content)) as bundle:
            assert any(name.endswith("bagit.txt") for name in bundle.namelist())
        listing = cleo.get("/productions").text
        assert f'href="/productions/{job_id}"' in listing
        assert "Bates register" in listing and state["first_bates"] in listing


def test_a_clerk_resumes_an_interrupted_production(site: Instance, web: str) -> None:
    """An interrupted job's page says so and offers Resume; the form (with its token) takes
    it up and it ends done."""
    job_id = interrupted_job(site)
    path = f"/productions/{job_id}"
    with signed_in(web, "cleo") as cleo:
        page = cleo.get(path)
        assert "Interrupted after 1 of 5 records" in page.text
        assert cleo.post(f"{path}/resume", data={}).status_code == 403
        token = csrf_for(page.text, f"{path}/resume")
        assert cleo.post(f"{path}/resume", data={"csrf": token}).status_code == 303
        assert export_jobs.wait(job_id, 60)
        assert cleo.get(f"{path}.json").json()["state"] == "done"
        again = cleo.post(f"{path}/resume", data={"csrf": token})
        assert again.status_code == 403 and "is done" in again.text


def test_productions_refuse_a_dispatcher_and_other_clerks_jobs(site: Instance, web: str) -> None:
    """A dispatcher is refused every production page and the form; an unknown job is 404."""
    job = export_jobs.start(site.app, CLEO, query="water")
    finished(site.app, job.id)
    with signed_in(web, "dana") as dana:
        for path in ("/productions", f"/productions/{job.id}", f"/productions/{job.id}.json"):
            got = dana.get(path)
            assert got.status_code == 403, path
            assert "does not hold the clerk role" in got.text, path
        assert dana.get(f"/productions/{job.id}/download").status_code == 403
        assert '<a href="/productions">' not in dana.get("/notices").text
    with signed_in(web, "cleo") as cleo:
        assert cleo.get("/productions/nosuchjob1234").status_code == 404
    with pytest.raises(Refused):
        export_jobs.start(site.app, DANA, query="water")
    with pytest.raises(Refused):
        export_jobs.list_jobs(site.app, DANA)


@pytest.fixture
def browser_site(tmp_path: Path) -> Iterator[Instance]:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    add_with_password(inst.app, "cleo", "clerk")
    seeded(inst)
    yield inst
    inst.app.close()


@pytest.mark.slow
def test_production_pages_pass_axe_at_320_and_1280_pixels(
    browser_site: Instance, browser: Any
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the productions page (empty, with an
    error, with jobs and the Bates register), a done job and an interrupted one, at 320 and
    1280 pixels, and no page scrolls sideways."""
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "cleo", "/productions")
                if width == 320:
                    assert not (found := axe_violations(page)), describe(found)
                    page.click("text=Start the production")
                    page.wait_for_selector("p.error")
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    done = export_jobs.start(browser_site.app, CLEO, query="water")
                    finished(browser_site.app, done.id)
                    stopped = interrupted_job(browser_site, "number")
                for path in ("/productions", f"/productions/{done.id}", f"/productions/{stopped}"):
                    page.goto(f"{url}{path}")
                    assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                    assert page.evaluate(NO_SIDEWAYS), (path, page.evaluate(WIDEST))
            finally:
                context.close()


@pytest.mark.slow
def test_a_running_production_is_followed_live_in_the_browser(
    browser_site: Instance, browser: Any
) -> None:
    """With JavaScript the page of a running production updates its progress bar and status
    from the JSON as the worker writes, and reloads when the job ends; the running page
    passes axe."""
    now = browser_site.clock.now()
    job_id = "running-job-000001"
    with Session(browser_site.app.engine) as session:
        session.add(
            ExportJobRow(
                id=job_id,
                owner="cleo",
                production="public",
                query="water",
                out=str(browser_site.data_dir / "exports" / f"api-{job_id}.zip"),
                state="running",
                total=5,
                started_at=now,
                updated_at=now,
                claimed_by="elsewhere:1",
                lease_until=now + export_jobs.LEASE,
            )
        )
        session.commit()

    def advance(**values: Any) -> None:
        with Session(browser_site.app.engine) as session:
            row = session.get(ExportJobRow, job_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
            session.commit()

    path = f"/productions/{job_id}"
    with serving(browser_site.app) as url:
        context = browser.new_context(viewport={"width": 320, "height": 800})
        page = context.new_page()
        try:
            browser_sign_in(page, url, "cleo", path)
            assert "0 of 5 records" in page.inner_text("#job-status")
            assert not (found := axe_violations(page)), describe(found)
            assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
            advance(done=3)
            page.wait_for_function(
                "() => document.getElementById('job-status').textContent.includes('3 of 5')",
                timeout=15_000,
            )
            assert page.get_attribute("#job-progress", "max") is not None
            assert page.evaluate("document.getElementById('job-progress').value") == 3
            advance(state="done", done=5, records=5, verified="verified: 1 files, 5 records")
            page.wait_for_function(
                "() => document.getElementById('job-status').textContent.startsWith('Done')",
                timeout=15_000,
            )
            assert "verified: 1 files, 5 records" in page.inner_text("main")
        finally:
            context.close()
