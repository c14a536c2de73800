"""The pages: sign-in, sign-out, set-password and home. Each handler parses the request, calls
one application-layer function (in a worker thread: they block) and renders a template; the
rules live below."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bulletin.app import App, sessions, sso, users
from bulletin.errors import BulletinError, NotFound, Refused, UsageError
from bulletin.web import security

SESSION_COOKIE = "bulletin_session"
PRE_COOKIE = "bulletin_pre"  # keys the form tokens of pages shown before sign-in
SIGN_IN = "sign-in"
SIGN_OUT = "sign-out"
FOR_LINK = "set-password"

# How this door says an error's remedy (BulletinError.remedy).
REMEDIES = {
    "totp-code": " Enter the six digits your authenticator app shows now.",
    "allow-empty": " Preview the scope; to go ahead anyway, tick the box to open it on no record.",
}


def message(e: BulletinError) -> str:
    return f"{str(e)[:1].upper()}{str(e)[1:]}.{REMEDIES.get(e.remedy or '', '')}"


def status_of(e: BulletinError) -> int:
    """The HTTP status a page shows a refusal with: 403 refused, 404 no such thing, else 400."""
    if isinstance(e, Refused):
        return 403
    if isinstance(e, NotFound):
        return 404
    return 400


class Pages:
    """The handlers, bound to one :class:`App` and its templates."""

    def __init__(self, app: App, templates: Jinja2Templates) -> None:
        self.app = app
        self.templates = templates

    # -- helpers -------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        context.setdefault("agency", self.app.settings.agency.name)
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def set_cookie(self, request: Request, response: Response, key: str, value: str) -> None:
        response.set_cookie(
            key, value, httponly=True, samesite="lax", secure=security.https(request), path="/"
        )

    def pre_secret(self, request: Request) -> tuple[str, bool]:
        """The pre-session cookie's value, or a new one (then True: set it on the response)."""
        value = request.cookies.get(PRE_COOKIE, "")
        return (value, False) if value else (secrets.token_urlsafe(32), True)

    def render_with_pre(
        self, request: Request, template: str, purpose: str, status: int, **context: Any
    ) -> Response:
        """Render a form shown before sign-in, with its token (and the cookie keying it)."""
        secret, fresh = self.pre_secret(request)
        response = self.render(
            request, template, status, csrf=security.form_token(secret, purpose), **context
        )
        if fresh:
            self.set_cookie(request, response, PRE_COOKIE, secret)
        return response

    async def signed_in(self, request: Request) -> sessions.SignedIn | None:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return await run_in_threadpool(
            sessions.current, self.app, cookie, security.address(request)
        )

    async def checked_form(self, request: Request, secret: str | None, purpose: str) -> FormData:
        """The posted form, when its token matches ``secret``; else a 403 (raised)."""
        form = await request.form()
        if not security.token_matches(secret, purpose, form.get("csrf")):
            raise Forbidden
        return form

    # -- pages -----------------------------------------------------------------------------

    async def sign_in_page(self, request: Request) -> Response:
        return self._sign_in_form(request, "", None, 200)

    def sign_in_form(self, request: Request, error: str, status: int, nxt: str = "") -> Response:
        """The sign-in page showing ``error`` (a refused single sign-on)."""
        return self._sign_in_form(request, "", error, status, nxt)

    def _sign_in_form(
        self, request: Request, name: str, error: str | None, status: int, nxt: str = ""
    ) -> Response:
        nxt = nxt or security.local_path(request.query_params.get("next"))
        sso_label = sso.label(self.app)
        return self.render_with_pre(
            request,
            "sign_in.html",
            SIGN_IN,
            status,
            name=name,
            error=error,
            next=nxt,
            sso=sso_label,
        )

    async def sign_in(self, request: Request) -> Response:
        form = await self.checked_form(request, request.cookies.get(PRE_COOKIE), SIGN_IN)
        name = str(form.get("name", "")).strip()
        password = str(form.get("password", ""))
        code = str(form.get("code", "")).strip() or None
        nxt = security.local_path(form.get("next"))
        try:
            new = await run_in_threadpool(
                sessions.sign_in, self.app, name, password, code, security.address(request)
            )
        except sessions.Throttled as e:
            response = self._sign_in_form(request, name, message(e), 429, nxt)
            response.headers["Retry-After"] = str(e.retry_after)
            return response
        except Refused as e:
            return self._sign_in_form(request, name, message(e), 401, nxt)
        old = request.cookies.get(SESSION_COOKIE, "")
        if old:
            await run_in_threadpool(sessions.sign_out, self.app, old, security.address(request))
        response = RedirectResponse(nxt, status_code=303)
        self.set_cookie(request, response, SESSION_COOKIE, new.cookie)
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    async def sign_out(self, request: Request) -> Response:
        who = await self.signed_in(request)
        if who is not None:  # a session that has ended already has nothing left to protect
            await self.checked_form(request, who.csrf_secret, SIGN_OUT)
            cookie = request.cookies.get(SESSION_COOKIE, "")
            await run_in_threadpool(sessions.sign_out, self.app, cookie, security.address(request))
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def home(self, request: Request) -> Response:
        who = await self.signed_in(request)
        if who is None:
            return RedirectResponse("/sign-in?next=/", status_code=303)
        shown = await run_in_threadpool(sessions.profile, self.app, who.actor)
        return self.render(
            request,
            "home.html",
            user=shown,
            csrf=security.form_token(who.csrf_secret, SIGN_OUT),
        )

    async def set_password_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        name = await run_in_threadpool(users.link_holder, self.app, token)
        return self._set_password_form(request, name, None, 200)

    def _set_password_form(
        self, request: Request, name: str, error: str | None, status: int
    ) -> Response:
        return self.render_with_pre(
            request, "set_password.html", FOR_LINK, status, name=name, error=error
        )

    async def set_password(self, request: Request) -> Response:
        form = await self.checked_form(request, request.cookies.get(PRE_COOKIE), FOR_LINK)
        token = request.path_params["token"]
        name = await run_in_threadpool(users.link_holder, self.app, token)
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            return self._set_password_form(request, name, "The two passwords differ.", 400)
        try:
            await run_in_threadpool(
                users.set_password, self.app, token, password, security.address(request), name
            )
        except UsageError as e:
            return self._set_password_form(request, name, message(e), 400)
        return self.render(request, "password_set.html", name=name)


class Forbidden(Exception):
    """A form posted without its token (or with a wrong one)."""
