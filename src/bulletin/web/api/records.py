"""The public record: archived posts and comments, listed, searched and shown."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from bulletin.app import Actor
from bulletin.app import records as archive
from bulletin.models import Record
from bulletin.web.api.common import (
    DEFAULT_LIMIT,
    MAX_ID,
    PROBLEMS,
    AppDep,
    Limit,
    Name,
    Page,
    Text,
    decode_cursor,
    encode_cursor,
    scope,
)

router = APIRouter(tags=["records"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("records:read")]


class RecordOut(BaseModel):
    """One archived version of a post or comment."""

    id: int
    account: str
    platform: str
    kind: str
    remote_id: str
    parent_id: str | None
    thread_id: str | None
    version: int
    state: str
    author: str | None
    text: str
    url: str | None
    posted_at: datetime | None
    captured_at: datetime
    series: str
    retain_until: datetime | None
    legal_hold: bool
    training: bool
    object_sha256: str


def record_out(r: Record) -> dict[str, Any]:
    return {name: getattr(r, name) for name in RecordOut.model_fields}


class RecordPage(Page):
    items: list[RecordOut]


class HitOut(BaseModel):
    record: RecordOut
    current_state: str
    versions: int


class Hits(BaseModel):
    query: str
    items: list[HitOut]


class RecordDetail(RecordOut):
    entry_hash: str | None
    contradictions: list[str]
    snapshot: Any


@router.get("/records", response_model=RecordPage, summary="List archived records")
def list_records(
    app: AppDep,
    actor: Reader,
    account: Annotated[Name | None, Query()] = None,
    kind: Annotated[Literal["post", "comment", "moderation"] | None, Query()] = None,
    limit: Annotated[Limit, Query()] = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Records newest first, a page at a time."""
    found = archive.list_records(
        app, actor, account=account, kind=kind, limit=limit + 1, before=decode_cursor(cursor)
    )
    items = [record_out(r) for r in found[:limit]]
    more = len(found) > limit
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}


@router.get("/records/search", response_model=Hits, summary="Search the archive")
def search_records(
    app: AppDep,
    actor: Reader,
    q: Annotated[Text, Query(max_length=1000, description="The archive's query language")] = "",
    limit: Annotated[Limit, Query()] = 20,
) -> dict[str, Any]:
    """Posts and comments matching ``q`` (``author:``, ``account:``, ``from:``... as in
    ``bulletin archive search``), newest version of each."""
    found = archive.search_records(app, actor, q, limit=limit)
    return {
        "query": found.query.describe(),
        "items": [
            {
                "record": record_out(h.record),
                "current_state": h.current_state,
                "versions": h.versions,
            }
            for h in found.hits
        ],
    }


@router.get("/records/{record_id}", response_model=RecordDetail, summary="Show a record")
def show_record(
    app: AppDep, actor: Reader, record_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    """One record with its snapshot from the store, checked against its hash."""
    shown = archive.show_record(app, actor, record_id)
    return {
        **record_out(shown.record),
        "entry_hash": shown.entry_hash,
        "contradictions": shown.contradictions,
        "snapshot": shown.data,
    }
