"""The records clerk's desk: open records requests by due date (days left, red when overdue,
amber within ``[requests] warn_days``) and open legal holds with a form to release one; the
forms that open, extend and close a request and place a hold are in
:mod:`bulletin.web.clerk_forms`.

Each handler finds who is signed in, calls the application layer with that actor
(:mod:`bulletin.app.clerk_desk` checks the role for the lists,
:func:`bulletin.app.holds.release_hold` for a release) and renders a template; ``?format=json``
(or ``.json``) gives the same data as JSON. The release form carries a form token.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import clerk_desk, holds
from bulletin.app.holds import HoldView
from bulletin.app.sessions import SignedIn
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.web import clerk_forms, security
from bulletin.web.console import Console, iso, wants_json
from bulletin.web.pages import Pages, message

RELEASE = "release-hold"
_DONE = re.compile(r"(released|placed)-(\d+)-(\d+)")


def routes(pages: Pages, max_body: int) -> list[BaseRoute]:
    """The desk's routes, bound to ``pages``; a form bigger than ``max_body`` bytes gets
    413."""
    desk = Desk(Console(pages))
    return [
        *clerk_forms.routes(pages, max_body),
        Route("/requests", desk.requests, methods=["GET"]),
        Route("/requests.json", desk.requests, methods=["GET"]),
        Route("/holds", desk.holds, methods=["GET"]),
        Route("/holds.json", desk.holds, methods=["GET"]),
        Route(
            "/holds/{hold_id:int}/release", desk.release, methods=["POST"], max_body_size=max_body
        ),
    ]


class Desk:
    """The desk's handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    async def requests(self, request: Request) -> Response:
        who = await self.console.who(request)
        found = await run_in_threadpool(clerk_desk.docket, self.app, who.actor)
        if wants_json(request):
            return JSONResponse(
                {
                    "rule": {
                        "response_days": found.rule.response_days,
                        "unit": found.rule.unit,
                        "where": found.rule.where,
                    },
                    "warn_days": found.warn_days,
                    "requests": [
                        {
                            "id": d.view.request.id,
                            "requester": d.view.request.requester,
                            "description": d.view.request.description,
                            "query": d.view.query,
                            "litigation": d.view.request.litigation,
                            "received_on": d.view.request.received_on.isoformat(),
                            "due_on": d.view.request.due_on.isoformat(),
                            "days_left": d.view.days_left,
                            "urgency": d.urgency,
                            "hold_id": d.view.request.hold_id,
                        }
                        for d in found.requests
                    ],
                }
            )
        return self.console.render(request, who, "requests.html", docket=found)

    async def holds(self, request: Request) -> Response:
        who = await self.console.who(request)
        return await self._holds(request, who, None, 200)

    async def _holds(
        self, request: Request, who: SignedIn, error: str | None, status: int
    ) -> Response:
        found = await run_in_threadpool(clerk_desk.open_holds, self.app, who.actor)
        if wants_json(request):
            return JSONResponse({"holds": [hold_json(h) for h in found]})
        done = _DONE.fullmatch(request.query_params.get("done", ""))
        return self.console.render(
            request,
            who,
            "holds.html",
            status,
            holds=found,
            error=error,
            done=(done.group(1), int(done.group(2)), int(done.group(3))) if done else None,
            csrf=security.form_token(who.csrf_secret, RELEASE),
        )

    async def release(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, RELEASE)
        hold_id = int(request.path_params["hold_id"])
        reason = str(form.get("reason", "")).strip()
        try:
            freed = await run_in_threadpool(
                lambda: holds.release_hold(self.app, who.actor, hold_id, reason=reason)
            )
        except Refused as e:
            return await self._holds(request, who, message(e), 403)
        except NotFound as e:
            return await self._holds(request, who, message(e), 404)
        except UsageError as e:
            return await self._holds(request, who, message(e), 400)
        return RedirectResponse(f"/holds?done=released-{hold_id}-{freed}", status_code=303)


def hold_json(h: HoldView) -> dict[str, Any]:
    return {
        "id": h.hold.id,
        "name": h.hold.name,
        "query": h.query,
        "reason": h.hold.reason,
        "records": h.records,
        "request_id": h.hold.request_id,
        "created_by": h.hold.created_by,
        "created_at": iso(h.hold.created_at),
    }
