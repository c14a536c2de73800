"""The single sign-on routes: ``/sign-in/oidc`` sends the browser to the provider,
``/sign-in/oidc/callback`` is where it comes back. Both parse and redirect; the rules live in
:mod:`bulletin.app.sso`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bulletin.app import sessions, sso
from bulletin.errors import Refused
from bulletin.web import security
from bulletin.web.pages import PRE_COOKIE, SESSION_COOKIE, Pages, message


def routes(pages: Pages) -> list[Route]:
    """The routes of single sign-on, bound to ``pages``."""

    async def start(request: Request) -> Response:
        nxt = security.local_path(request.query_params.get("next"))
        secret, fresh = pages.pre_secret(request)
        try:
            url = await run_in_threadpool(sso.begin, pages.app, secret, nxt)
        except Refused as e:
            return pages.sign_in_form(request, message(e), 502, nxt)
        response = RedirectResponse(url, status_code=303)
        if fresh:
            pages.set_cookie(request, response, PRE_COOKIE, secret)
        return response

    async def callback(request: Request) -> Response:
        query = request.query_params
        address = security.address(request)
        try:
            done = await run_in_threadpool(
                sso.finish,
                pages.app,
                request.cookies.get(PRE_COOKIE, ""),
                query.get("state", ""),
                query.get("code", ""),
                query.get("error", ""),
                address,
            )
        except Refused as e:
            return pages.sign_in_form(request, message(e), 401)
        old = request.cookies.get(SESSION_COOKIE, "")
        if old:
            await run_in_threadpool(sessions.sign_out, pages.app, old, address)
        response = RedirectResponse(security.local_path(done.next_path), status_code=303)
        pages.set_cookie(request, response, SESSION_COOKIE, done.session.cookie)
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    return [
        Route("/sign-in/oidc", start, methods=["GET"]),
        Route("/sign-in/oidc/callback", callback, methods=["GET"]),
    ]
