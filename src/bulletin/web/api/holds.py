"""Legal holds: list and show (anyone with the scope), place and release (a clerk's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from bulletin.app import Actor
from bulletin.app import holds as legal
from bulletin.web.api.common import MAX_ID, PROBLEMS, AppDep, Name, Text, scope

router = APIRouter(tags=["holds"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("holds:read")]
Writer = Annotated[Actor, scope("holds:write")]
HoldId = Annotated[int, Path(ge=1, le=MAX_ID)]


class HoldOut(BaseModel):
    id: int
    name: str
    query: str
    reason: str
    state: str
    request_id: int | None
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None
    records: int


class HoldDetail(HoldOut):
    record_ids: list[int]


class Holds(BaseModel):
    items: list[HoldOut]


class NewHold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    query: Text = Field(min_length=1, max_length=1000)
    reason: Text = Field(min_length=1, max_length=2000)
    allow_empty: bool = False


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=2000)


class Released(BaseModel):
    id: int
    records_left_hold: int


def hold_out(view: legal.HoldView) -> dict[str, Any]:
    h = view.hold
    return {
        "id": h.id,
        "name": h.name,
        "query": view.query,
        "reason": h.reason,
        "state": h.state,
        "request_id": h.request_id,
        "created_by": h.created_by,
        "created_at": h.created_at,
        "released_by": h.released_by,
        "released_at": h.released_at,
        "records": view.records,
    }


@router.get("/holds", response_model=Holds, summary="List legal holds")
def list_holds(
    app: AppDep, actor: Reader, released: Annotated[bool, Query()] = False
) -> dict[str, Any]:
    """Open holds (with ``released``, all), newest first."""
    return {"items": [hold_out(v) for v in legal.list_holds(app, actor, include_released=released)]}


@router.get("/holds/{hold_id}", response_model=HoldDetail, summary="Show a legal hold")
def show_hold(app: AppDep, actor: Reader, hold_id: HoldId) -> dict[str, Any]:
    view = legal.show_hold(app, actor, hold_id)
    return {**hold_out(view), "record_ids": [r.id for r in view.members]}


@router.post("/holds", status_code=201, response_model=HoldOut, summary="Place a legal hold")
def place_hold(app: AppDep, actor: Writer, body: NewHold) -> dict[str, Any]:
    """Hold every record matching ``query`` now and those captured later (a clerk's)."""
    view = legal.place_hold(
        app,
        actor,
        name=body.name,
        query=body.query,
        reason=body.reason,
        allow_empty=body.allow_empty,
    )
    return hold_out(view)


@router.post("/holds/{hold_id}/release", response_model=Released, summary="Release a hold")
def release_hold(app: AppDep, actor: Writer, hold_id: HoldId, body: Release) -> dict[str, Any]:
    freed = legal.release_hold(app, actor, hold_id, reason=body.reason)
    return {"id": hold_id, "records_left_hold": freed}
