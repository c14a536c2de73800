"""Templates a dispatcher drafts notices from: list, show."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from bulletin.app import Actor, templates
from bulletin.models import Template
from bulletin.web.api.common import PROBLEMS, AppDep, Name, scope

router = APIRouter(tags=["templates"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("templates:read")]


class TemplateOut(BaseModel):
    """A template's newest version: its texts, variables (name → type) and approval."""

    name: str
    version: int
    category: str
    bodies: dict[str, str]
    variables: dict[str, str]
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


class Templates(BaseModel):
    items: list[TemplateOut]


def _out(t: Template) -> dict[str, Any]:
    return {name: getattr(t, name) for name in TemplateOut.model_fields}


@router.get("/templates", response_model=Templates, summary="List templates")
def list_templates(app: AppDep, actor: Reader) -> dict[str, Any]:
    return {"items": [_out(t) for t in templates.list_all(app)]}


@router.get("/templates/{name}", response_model=TemplateOut, summary="Show a template")
def show_template(name: Annotated[Name, Path()], app: AppDep, actor: Reader) -> dict[str, Any]:
    return _out(templates.show(app, name))
