"""Records requests: list and show (anyone with the scope), open (a clerk's)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from bulletin.app import Actor
from bulletin.app import requests as records_requests
from bulletin.web.api.common import MAX_ID, PROBLEMS, AppDep, Text, scope

router = APIRouter(tags=["requests"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("requests:read")]
Writer = Annotated[Actor, scope("requests:write")]


class RequestOut(BaseModel):
    id: int
    requester: str
    description: str
    query: str
    litigation: bool
    received_on: date
    due_on: date
    days_left: int
    state: str
    hold_id: int | None
    opened_by: str
    opened_at: datetime
    closed_at: datetime | None
    records: int | None


class Requests(BaseModel):
    items: list[RequestOut]


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requester: Text = Field(min_length=1, max_length=500)
    received: date
    description: Text = Field(min_length=1, max_length=5000)
    query: Text = Field(min_length=1, max_length=1000)
    litigation: bool = False
    allow_empty: bool = False


def request_out(view: records_requests.RequestView) -> dict[str, Any]:
    r = view.request
    return {
        "id": r.id,
        "requester": r.requester,
        "description": r.description,
        "query": view.query,
        "litigation": r.litigation,
        "received_on": r.received_on,
        "due_on": r.due_on,
        "days_left": view.days_left,
        "state": r.state,
        "hold_id": r.hold_id,
        "opened_by": r.opened_by,
        "opened_at": r.opened_at,
        "closed_at": r.closed_at,
        "records": view.records,
    }


@router.get("/requests", response_model=Requests, summary="List records requests")
def list_requests(
    app: AppDep, actor: Reader, closed: Annotated[bool, Query()] = False
) -> dict[str, Any]:
    """Open requests (with ``closed``, all), the soonest due first."""
    found = records_requests.list_requests(app, actor, include_closed=closed)
    return {"items": [request_out(v) for v in found]}


@router.get("/requests/{request_id}", response_model=RequestOut, summary="Show a request")
def show_request(
    app: AppDep, actor: Reader, request_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    return request_out(records_requests.show_request(app, actor, request_id))


@router.post("/requests", status_code=201, response_model=RequestOut, summary="Open a request")
def open_request(app: AppDep, actor: Writer, body: NewRequest) -> dict[str, Any]:
    """Record a request, compute its due date and hold its scope (a clerk's)."""
    view = records_requests.open_request(
        app,
        actor,
        requester=body.requester,
        received=body.received,
        description=body.description,
        query=body.query,
        litigation=body.litigation,
        allow_empty=body.allow_empty,
    )
    return request_out(view)
