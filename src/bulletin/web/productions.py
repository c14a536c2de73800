"""The records clerk's productions: start an export of a request or a query (public or
counsel), follow its progress, resume it after an interruption, download the zip and see the
check of the bundle; the register of Bates numbers by matter.

Each handler finds who is signed in, checks the form's token on a POST, calls one
application-layer function (:mod:`bulletin.app.export_jobs`, :mod:`bulletin.app.exports`,
which check the role) and renders a template; ``.json`` gives a job as JSON. A job's page
works without JavaScript (a Refresh link); with it, ``progress.js`` polls the JSON and
updates the progress bar, reloading the page when the job ends.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import clerk_desk, export_jobs, exports
from bulletin.app.export_jobs import ExportJob
from bulletin.app.sessions import SignedIn
from bulletin.errors import BulletinError, UsageError
from bulletin.web import security
from bulletin.web.console import Console, iso, wants_json
from bulletin.web.pages import Pages, message, status_of

START = "start-production"
RESUME = "resume-production"


def routes(pages: Pages, max_body: int) -> list[BaseRoute]:
    """The productions' routes, bound to ``pages``; a form bigger than ``max_body`` bytes
    gets 413."""
    desk = Productions(Console(pages))
    return [
        Route("/productions", desk.listing, methods=["GET"]),
        Route("/productions", desk.start, methods=["POST"], max_body_size=max_body),
        Route("/productions/{job_id}.json", desk.job, methods=["GET"]),
        Route("/productions/{job_id}", desk.job, methods=["GET"]),
        Route(
            "/productions/{job_id}/resume", desk.resume, methods=["POST"], max_body_size=max_body
        ),
        Route("/productions/{job_id}/download", desk.download, methods=["GET"]),
    ]


def request_of(given: str) -> int | None:
    """The request number chosen (None: none; :raises UsageError: not a number)."""
    if not given:
        return None
    if not given.isdigit():
        raise UsageError("choose a records request from the list")
    return int(given)


def job_json(job: ExportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state,
        "production": job.production,
        "request_id": job.request_id,
        "query": job.query,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "error": job.error,
        "records": job.records,
        "payload_sha256": job.payload_sha256,
        "first_bates": job.first_bates,
        "last_bates": job.last_bates,
        "verified": job.verified,
        "resumes": job.resumes,
        "resumable": job.resumable,
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


class Productions:
    """The productions' handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    async def listing(self, request: Request) -> Response:
        who = await self.console.who(request)
        return await self._listing(request, who, {}, None, 200)

    async def _listing(
        self,
        request: Request,
        who: SignedIn,
        values: dict[str, str],
        error: str | None,
        status: int,
    ) -> Response:
        def read() -> tuple[list[ExportJob], Any, list[Any]]:
            jobs = export_jobs.list_jobs(self.app, who.actor)
            docket = clerk_desk.docket(self.app, who.actor)
            return jobs, docket, exports.bates_register(self.app, who.actor)

        jobs, docket, register = await run_in_threadpool(read)
        return self.console.render(
            request,
            who,
            "productions.html",
            status,
            jobs=jobs,
            docket=docket,
            register=register,
            v={"request": "", "q": "", "production": "public"} | values,
            error=error,
            csrf=security.form_token(who.csrf_secret, START),
        )

    async def start(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, START)
        values = {k: str(form.get(k, "")).strip() for k in ("request", "q", "production")}
        try:
            production = values["production"]
            if production not in ("public", "counsel"):
                raise UsageError("a production is public or counsel")
            request_id = request_of(values["request"])
            job = await run_in_threadpool(
                lambda: export_jobs.start(
                    self.app,
                    who.actor,
                    request_id=request_id,
                    query=values["q"] or None,
                    production="counsel" if production == "counsel" else "public",
                )
            )
        except BulletinError as e:
            return await self._listing(request, who, values, message(e), status_of(e))
        return RedirectResponse(f"/productions/{job.id}", status_code=303)

    async def job(self, request: Request) -> Response:
        who = await self.console.who(request)
        job_id = request.path_params["job_id"]
        return await self._job(request, who, job_id, None, 200)

    async def _job(
        self, request: Request, who: SignedIn, job_id: str, error: str | None, status: int
    ) -> Response:
        job = await run_in_threadpool(export_jobs.progress, self.app, who.actor, job_id)
        if wants_json(request):
            return JSONResponse(job_json(job), status_code=status)
        return self.console.render(
            request,
            who,
            "production.html",
            status,
            job=job,
            error=error,
            csrf=security.form_token(who.csrf_secret, RESUME),
        )

    async def resume(self, request: Request) -> Response:
        who = await self.console.who(request)
        await self.console.pages.checked_form(request, who.csrf_secret, RESUME)
        job_id = request.path_params["job_id"]
        try:
            await run_in_threadpool(export_jobs.resume, self.app, who.actor, job_id)
        except BulletinError as e:
            return await self._job(request, who, job_id, message(e), status_of(e))
        return RedirectResponse(f"/productions/{job_id}", status_code=303)

    async def download(self, request: Request) -> Response:
        who = await self.console.who(request)
        job_id = request.path_params["job_id"]
        path = await run_in_threadpool(export_jobs.download, self.app, who.actor, job_id)
        return FileResponse(path, media_type="application/zip", filename=path.name)
