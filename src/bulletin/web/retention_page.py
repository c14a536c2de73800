"""Retention in the console: the disposition batches awaiting approval, what each would
destroy, approval by a records officer who did not list it (two people see every destruction), and
the batches decided with their certificates of destruction.

Each handler finds who is signed in, checks the form's token on a POST, calls one
application-layer function (:mod:`bulletin.app.retention`, which checks the roles and the
two-person rule) and renders a template.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import retention
from bulletin.app.sessions import SignedIn
from bulletin.errors import BulletinError, UsageError
from bulletin.web import security
from bulletin.web.console import Console
from bulletin.web.pages import Pages, message, status_of

APPROVE = "approve-batch"


def routes(pages: Pages, max_body: int) -> list[BaseRoute]:
    """The retention pages' routes, bound to ``pages``; a form bigger than ``max_body``
    bytes gets 413."""
    page = RetentionPages(Console(pages))
    return [
        Route("/retention", page.desk, methods=["GET"]),
        Route("/retention/{batch_id:int}", page.batch, methods=["GET"]),
        Route(
            "/retention/{batch_id:int}/approve",
            page.approve,
            methods=["POST"],
            max_body_size=max_body,
        ),
    ]


class RetentionPages:
    """The retention pages' handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    async def desk(self, request: Request) -> Response:
        who = await self.console.who(request)
        found = await run_in_threadpool(retention.retention_desk, self.app, who.actor)
        return self.console.render(request, who, "retention.html", desk=found)

    async def batch(self, request: Request) -> Response:
        who = await self.console.who(request)
        return await self._batch(request, who, None, 200)

    async def _batch(
        self, request: Request, who: SignedIn, error: str | None, status: int
    ) -> Response:
        batch_id = int(request.path_params["batch_id"])
        detail = await run_in_threadpool(retention.batch_page, self.app, who.actor, batch_id)
        return self.console.render(
            request,
            who,
            "batch.html",
            status,
            detail=detail,
            b=detail.batch,
            error=error,
            done=request.query_params.get("done") == "approved",
            csrf=security.form_token(who.csrf_secret, APPROVE),
        )

    async def approve(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, APPROVE)
        batch_id = int(request.path_params["batch_id"])
        try:
            if not form.get("confirm"):
                raise UsageError("tick the box to confirm the destruction")
            await run_in_threadpool(retention.approve_batch, self.app, who.actor, batch_id)
        except BulletinError as e:
            return await self._batch(request, who, message(e), status_of(e))
        return RedirectResponse(f"/retention/{batch_id}?done=approved", status_code=303)
