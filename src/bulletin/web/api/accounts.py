"""The platform accounts notices go to (as configured)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from bulletin.app import Actor
from bulletin.web.api.common import PROBLEMS, AppDep, scope

router = APIRouter(tags=["accounts"], responses=PROBLEMS)


class AccountOut(BaseModel):
    name: str
    platform: str
    title: str | None
    enabled: bool


class Accounts(BaseModel):
    items: list[AccountOut]


@router.get("/accounts", response_model=Accounts, summary="List the platform accounts")
def list_accounts(app: AppDep, actor: Annotated[Actor, scope("accounts:read")]) -> dict[str, Any]:
    """The accounts a notice may target (``targets``), by name."""
    return {
        "items": [
            {
                "name": name,
                "platform": a.platform,
                "title": getattr(a, "title", "") or None,
                "enabled": a.enabled,
            }
            for name, a in sorted(app.settings.accounts.items())
        ]
    }
