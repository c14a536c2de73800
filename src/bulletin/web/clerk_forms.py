"""The records clerk's forms: open a records request (previewing its scope first), extend and
close it on its page, and place a legal hold on a search of the archive (previewed first).

Each handler finds who is signed in, checks the form's token, calls one application-layer
function with that actor (:mod:`bulletin.app.requests`, :mod:`bulletin.app.holds`,
:mod:`bulletin.app.clerk_desk`, which check the role) and renders a template; a refusal is
shown on the page (403 Refused, 400 UsageError, 404 NotFound). A "Preview" submit shows how
many records and which threads the scope matches, and saves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import clerk_desk, holds, requests
from bulletin.app.clerk_desk import ScopePreview
from bulletin.app.sessions import SignedIn
from bulletin.archiver.requests import MAX_EXTENSION_DAYS
from bulletin.errors import BulletinError, UsageError
from bulletin.web import security
from bulletin.web.console import Console
from bulletin.web.pages import Pages, message, status_of

OPEN = "open-request"
EXTEND = "extend-request"
CLOSE = "close-request"
NOTE = "request-note"
FEE = "request-fee"
PLACE = "place-hold"
_DONE = re.compile(r"(opened|extended|closed|noted|charged)")
_PLACED = re.compile(r"placed-(\d+)-(\d+)")
T = TypeVar("T")


def routes(pages: Pages, max_body: int) -> list[BaseRoute]:
    """The forms' routes, bound to ``pages``; a form bigger than ``max_body`` bytes gets
    413."""
    forms = ClerkForms(Console(pages))
    return [
        Route("/requests/new", forms.new_request, methods=["GET"]),
        Route("/requests/new", forms.open_request, methods=["POST"], max_body_size=max_body),
        Route("/requests/{request_id:int}", forms.request_page, methods=["GET"]),
        Route(
            "/requests/{request_id:int}/extend",
            forms.extend,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/requests/{request_id:int}/close",
            forms.close,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/requests/{request_id:int}/notes",
            forms.note,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/requests/{request_id:int}/fees",
            forms.fee,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route("/holds/new", forms.new_hold, methods=["GET"]),
        Route("/holds/new", forms.place_hold, methods=["POST"], max_body_size=max_body),
    ]


def text(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def received_date(given: str) -> date:
    """The received date typed (:raises UsageError: not YYYY-MM-DD)."""
    try:
        return date.fromisoformat(given)
    except ValueError:
        raise UsageError(f"the received date {given!r} is not a date (YYYY-MM-DD)") from None


def days_of(given: str) -> int:
    """The days of an extension typed (:raises UsageError: not a whole number)."""
    if not given.isdigit():
        raise UsageError(f"an extension is a whole number of days from 1 to {MAX_EXTENSION_DAYS}")
    return int(given)


class ClerkForms:
    """The forms' handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    async def _call(self, work: Callable[[], T]) -> T:
        return await run_in_threadpool(work)

    # -- opening a request --------------------------------------------------------------------

    async def new_request(self, request: Request) -> Response:
        who = await self.console.who(request)
        await self._call(lambda: clerk_desk.may_keep_records(self.app, who.actor))
        values: dict[str, Any] = {"q": request.query_params.get("q", "")}
        return self._request_form(request, who, values, None, None, 200)

    def _request_form(
        self,
        request: Request,
        who: SignedIn,
        values: dict[str, Any],
        preview: ScopePreview | None,
        error: str | None,
        status: int,
    ) -> Response:
        return self.console.render(
            request,
            who,
            "request_new.html",
            status,
            v=values,
            preview=preview,
            error=error,
            rule=requests.deadline_rule(self.app),
            today=clerk_desk.today(self.app).isoformat(),
            csrf=security.form_token(who.csrf_secret, OPEN),
        )

    async def open_request(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, OPEN)
        values: dict[str, Any] = {
            key: text(form, key) for key in ("requester", "received", "description", "q")
        }
        values["litigation"] = bool(form.get("litigation"))
        values["allow_empty"] = bool(form.get("allow_empty"))
        try:
            if form.get("action") == "preview":
                preview = await self._call(
                    lambda: clerk_desk.preview_scope(self.app, who.actor, values["q"])
                )
                return self._request_form(request, who, values, preview, None, 200)
            received = received_date(values["received"])
            view = await self._call(
                lambda: requests.open_request(
                    self.app,
                    who.actor,
                    requester=values["requester"],
                    received=received,
                    description=values["description"],
                    query=values["q"],
                    litigation=values["litigation"],
                    allow_empty=values["allow_empty"],
                )
            )
        except BulletinError as e:
            return self._request_form(request, who, values, None, message(e), status_of(e))
        return RedirectResponse(f"/requests/{view.request.id}?done=opened", status_code=303)

    # -- a request's page ---------------------------------------------------------------------

    async def request_page(self, request: Request) -> Response:
        who = await self.console.who(request)
        return await self._request_page(request, who, None, 200)

    async def _request_page(
        self, request: Request, who: SignedIn, error: str | None, status: int
    ) -> Response:
        request_id = int(request.path_params["request_id"])
        page = await self._call(lambda: clerk_desk.request_page(self.app, who.actor, request_id))
        done = _DONE.fullmatch(request.query_params.get("done", ""))
        return self.console.render(
            request,
            who,
            "request.html",
            status,
            page=page,
            q=page.view.request,
            error=error,
            done=done.group(1) if done else None,
            max_days=MAX_EXTENSION_DAYS,
            extend_csrf=security.form_token(who.csrf_secret, EXTEND),
            close_csrf=security.form_token(who.csrf_secret, CLOSE),
            note_csrf=security.form_token(who.csrf_secret, NOTE),
            fee_csrf=security.form_token(who.csrf_secret, FEE),
        )

    async def extend(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, EXTEND)
        request_id = int(request.path_params["request_id"])
        try:
            days = days_of(text(form, "days"))
            await self._call(
                lambda: requests.extend_request(
                    self.app, who.actor, request_id, days=days, reason=text(form, "reason")
                )
            )
        except BulletinError as e:
            return await self._request_page(request, who, message(e), status_of(e))
        return RedirectResponse(f"/requests/{request_id}?done=extended", status_code=303)

    async def close(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, CLOSE)
        request_id = int(request.path_params["request_id"])
        try:
            await self._call(
                lambda: requests.close_request(
                    self.app, who.actor, request_id, reason=text(form, "reason")
                )
            )
        except BulletinError as e:
            return await self._request_page(request, who, message(e), status_of(e))
        return RedirectResponse(f"/requests/{request_id}?done=closed", status_code=303)

    async def note(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, NOTE)
        request_id = int(request.path_params["request_id"])
        try:
            await self._call(
                lambda: requests.add_note(self.app, who.actor, request_id, text=text(form, "note"))
            )
        except BulletinError as e:
            return await self._request_page(request, who, message(e), status_of(e))
        return RedirectResponse(f"/requests/{request_id}?done=noted", status_code=303)

    async def fee(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, FEE)
        request_id = int(request.path_params["request_id"])
        try:
            cents = requests.fee_cents(text(form, "amount"))
            await self._call(
                lambda: requests.add_fee(
                    self.app, who.actor, request_id, amount_cents=cents, text=text(form, "for")
                )
            )
        except BulletinError as e:
            return await self._request_page(request, who, message(e), status_of(e))
        return RedirectResponse(f"/requests/{request_id}?done=charged", status_code=303)

    # -- placing a hold -----------------------------------------------------------------------

    async def new_hold(self, request: Request) -> Response:
        who = await self.console.who(request)
        values: dict[str, Any] = {"q": request.query_params.get("q", ""), "name": "", "reason": ""}
        try:
            preview = await self._call(
                lambda: clerk_desk.preview_scope(self.app, who.actor, values["q"])
            )
        except UsageError as e:
            return self._hold_form(request, who, values, None, message(e), 400)
        return self._hold_form(request, who, values, preview, None, 200)

    def _hold_form(
        self,
        request: Request,
        who: SignedIn,
        values: dict[str, Any],
        preview: ScopePreview | None,
        error: str | None,
        status: int,
    ) -> Response:
        placed = _PLACED.fullmatch(request.query_params.get("done", ""))
        return self.console.render(
            request,
            who,
            "hold_new.html",
            status,
            v=values,
            preview=preview,
            error=error,
            placed=(int(placed.group(1)), int(placed.group(2))) if placed else None,
            csrf=security.form_token(who.csrf_secret, PLACE),
        )

    async def place_hold(self, request: Request) -> Response:
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, PLACE)
        values: dict[str, Any] = {key: text(form, key) for key in ("q", "name", "reason")}
        try:
            if form.get("action") == "preview":
                preview = await self._call(
                    lambda: clerk_desk.preview_scope(self.app, who.actor, values["q"])
                )
                return self._hold_form(request, who, values, preview, None, 200)
            placed = await self._call(
                lambda: holds.place_hold(
                    self.app,
                    who.actor,
                    name=values["name"],
                    query=values["q"],
                    reason=values["reason"],
                )
            )
        except BulletinError as e:
            return self._hold_form(request, who, values, None, message(e), status_of(e))
        return RedirectResponse(
            f"/holds?done=placed-{placed.hold.id}-{placed.records}", status_code=303
        )
