"""Productions (a clerk's): start one as a zip, follow its progress, resume it after an
interruption, download it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import FileResponse

from bulletin.app import Actor, export_jobs
from bulletin.web.api.common import MAX_ID, PROBLEMS, AppDep, Text, scope

router = APIRouter(tags=["exports"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("exports:read")]
Writer = Annotated[Actor, scope("exports:write")]
JobId = Annotated[str, Path(min_length=10, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


class NewExport(BaseModel):
    """The scope: a records request or a query, exactly one."""

    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    query: Text | None = Field(default=None, max_length=1000)
    production: Literal["public", "counsel"] = "public"


class ExportOut(BaseModel):
    id: str
    state: Literal["running", "interrupted", "done", "failed"]
    production: str
    started_at: datetime
    done: int
    total: int
    error: str | None
    records: int | None
    payload_sha256: str | None


def export_out(job: export_jobs.ExportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state,
        "production": job.production,
        "started_at": job.started_at,
        "done": job.done,
        "total": job.total,
        "error": job.error,
        "records": job.records,
        "payload_sha256": job.payload_sha256,
    }


@router.post("/exports", status_code=202, response_model=ExportOut, summary="Start an export")
def start_export(app: AppDep, actor: Writer, body: NewExport) -> dict[str, Any]:
    """Start producing a request's or a query's records as a BagIt zip (a clerk's)."""
    job = export_jobs.start(
        app, actor, request_id=body.request_id, query=body.query, production=body.production
    )
    return export_out(job)


@router.get("/exports/{export_id}", response_model=ExportOut, summary="An export's progress")
def export_progress(app: AppDep, actor: Reader, export_id: JobId) -> dict[str, Any]:
    return export_out(export_jobs.progress(app, actor, export_id))


@router.post(
    "/exports/{export_id}/resume",
    status_code=202,
    response_model=ExportOut,
    summary="Resume an interrupted export",
)
def resume_export(app: AppDep, actor: Writer, export_id: JobId) -> dict[str, Any]:
    """Take up an interrupted export (its worker died) where its journal left off, as the
    console's Resume does; a failed one whose work so far is kept too. Only who started it,
    or an admin; refused while it runs elsewhere, once done, or when another process took it
    up first. The daemon also resumes interrupted exports by itself."""
    return export_out(export_jobs.resume(app, actor, export_id))


@router.get(
    "/exports/{export_id}/download",
    response_class=FileResponse,
    summary="Download a finished export",
    responses={
        200: {
            "description": "The BagIt bundle, zipped",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def download_export(app: AppDep, actor: Reader, export_id: JobId) -> FileResponse:
    path = export_jobs.download(app, actor, export_id)
    return FileResponse(path, media_type="application/zip", filename=path.name)
