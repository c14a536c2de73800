"""Outbound webhooks (an administrator's): list, add (its secret shown once), remove."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from bulletin.app import Actor
from bulletin.app import webhooks as hooks
from bulletin.web.api.common import MAX_ID, PROBLEMS, AppDep, Name, Text, scope

router = APIRouter(tags=["webhooks"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("webhooks:read")]
Writer = Annotated[Actor, scope("webhooks:write")]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text = Field(min_length=1, max_length=2000)
    events: list[Name] = Field(min_length=1, max_length=20)
    format: Name = "standard"


class WebhookOut(BaseModel):
    """A webhook: its URL elided past the host, never its secret."""

    id: int
    url: str
    events: list[str]
    format: str
    enabled: bool
    failing_since: datetime | None
    disabled_at: datetime | None
    created_by: str
    created_at: datetime


class AddedWebhook(WebhookOut):
    secret: str  # shown this once


class Webhooks(BaseModel):
    items: list[WebhookOut]


@router.get("/webhooks", response_model=Webhooks, summary="List webhooks")
def list_webhooks(app: AppDep, actor: Reader) -> dict[str, Any]:
    return {"items": [asdict(w) for w in hooks.list_webhooks(app, actor)]}


@router.post("/webhooks", status_code=201, response_model=AddedWebhook, summary="Add a webhook")
def add_webhook(app: AppDep, actor: Writer, body: NewWebhook) -> dict[str, Any]:
    """Add an enabled webhook; its signing secret is in this answer only."""
    made = hooks.add_webhook(app, actor, body.url, body.events, body.format)
    return {**asdict(made.webhook), "secret": made.secret}


@router.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response, summary="Remove")
def remove_webhook(app: AppDep, actor: Writer, webhook_id: WebhookId) -> Response:
    hooks.remove_webhook(app, actor, webhook_id)
    return Response(status_code=204)
