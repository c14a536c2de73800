"""What a program watching Bulletin needs: deliveries and notices by state, what is due,
live daemons, the archive's size and backlog, what waits for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from bulletin.app import Actor
from bulletin.web.api.common import PROBLEMS, AppDep, scope

router = APIRouter(tags=["status"], responses=PROBLEMS)


class StatusOut(BaseModel):
    daemons: int
    deliveries: dict[str, int]
    notices: dict[str, int]
    due_now: int
    next_due: datetime | None
    failed_notices: list[int]
    late_notices: list[int]
    records: int
    ledger_head: int
    store_backlog: int


@router.get("/status", response_model=StatusOut, summary="Bulletin's state now")
def status(app: AppDep, actor: Annotated[Actor, scope("status:read")]) -> dict[str, Any]:
    from bulletin.service.instances import HEARTBEAT_SECONDS
    from bulletin.service.status import gather

    state = gather(app, HEARTBEAT_SECONDS)
    return {
        "daemons": len(state.daemons),
        "deliveries": state.deliveries,
        "notices": state.notices,
        "due_now": state.due_now,
        "next_due": state.next_due,
        "failed_notices": [f.notice_id for f in state.failed],
        "late_notices": [n.notice_id for n in state.late],
        "records": state.records,
        "ledger_head": state.ledger_head,
        "store_backlog": state.store_backlog,
    }
