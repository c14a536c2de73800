"""Door 2: the web console, server-rendered (Starlette, Jinja2), usable without JavaScript.

:func:`create_app` builds the ASGI app for one :class:`~bulletin.app.App`. Handlers parse,
call the application layer with the signed-in :class:`~bulletin.app.Actor` and render; every
response carries the security headers of :mod:`.security`; every POST carries a form token.
The HTTP API for programs is mounted at ``/api/v1`` (:mod:`bulletin.web.api`: bearer
tokens, no forms).
"""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bulletin.app import App
from bulletin.app.health import readiness
from bulletin.errors import BulletinError, DatabaseError, NotFound, Refused, UsageError
from bulletin.web import (
    api,
    audit_page,
    clerk_desk,
    console,
    facebook_hook,
    media,
    productions,
    records_console,
    retention_page,
    security,
    sso,
    status_page,
)
from bulletin.web.pages import Forbidden, Pages, message

MAX_BODY = 64 * 1024  # the forms are small


def create_app(app: App) -> Starlette:
    """The web console of ``app`` (its settings, clock and database)."""
    env = Environment(
        loader=PackageLoader("bulletin.web", "templates"),
        autoescape=select_autoescape(default=True),
    )
    templates = Jinja2Templates(env=env)
    pages = Pages(app, templates)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        found = await run_in_threadpool(readiness, app)
        body = {
            "database": "ok" if found.database else "unavailable",
            "store": "ok" if found.store else "unavailable",
        }
        return JSONResponse(body, status_code=200 if found.ready else 503)

    async def forbidden(request: Request, exc: Exception) -> Response:
        return pages.render(
            request,
            "error.html",
            403,
            title="Refused",
            error="This form has expired or was "
            "not sent by this site. Go back, reload the page and try again.",
        )

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BulletinError)
        status = 503
        if isinstance(exc, UsageError):
            status = 400
        elif isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, Refused):
            status = 403
        elif not isinstance(exc, DatabaseError):
            status = 500
        text = message(exc) if status != 503 else "Bulletin cannot reach its database."
        return pages.render(request, "error.html", status, title="Not done", error=text)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Not found", 405: "Not allowed", 413: "Too large"}.get(
            exc.status_code, "Not done"
        )
        response = pages.render(
            request, "error.html", exc.status_code, title=title, error=str(exc.detail) + "."
        )
        response.headers.update(exc.headers or {})
        return response

    static = str(resources.files("bulletin.web") / "static")
    routes = [
        Route("/", pages.home, methods=["GET"]),
        Route("/sign-in", pages.sign_in_page, methods=["GET"]),
        Route("/sign-in", pages.sign_in, methods=["POST"], max_body_size=MAX_BODY),
        Route("/sign-out", pages.sign_out, methods=["POST"], max_body_size=MAX_BODY),
        Route("/set-password/{token}", pages.set_password_page, methods=["GET"]),
        Route(
            "/set-password/{token}", pages.set_password, methods=["POST"], max_body_size=MAX_BODY
        ),
        *sso.routes(pages),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *console.routes(pages, MAX_BODY),
        *records_console.routes(pages, MAX_BODY),
        *clerk_desk.routes(pages, MAX_BODY),
        *productions.routes(pages, MAX_BODY),
        *audit_page.routes(pages),
        *retention_page.routes(pages, MAX_BODY),
        *status_page.routes(pages),
        Mount("/static", StaticFiles(directory=static), name="static"),
        # the approved images, public, for the platforms that fetch them by URL
        *media.routes(app),
        # a form's worth, but a new notice with its images
        Mount(api.PREFIX, api.body_limits(api.create_api(app), MAX_BODY)),
        # Meta's webhooks: authenticated by signature, not by session or form token (see
        # the module); its bodies may be larger than a form's
        *facebook_hook.routes(app),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(security.Protections, app.settings.web.trusted_proxies)],
        exception_handlers={
            Forbidden: forbidden,
            BulletinError: refused,
            HTTPException: http_error,
        },
        # the largest any route takes: Meta's webhook, the compose form with an image, or a
        # new notice with its images through the API
        max_body_size=max(
            facebook_hook.MAX_BODY, console.MAX_UPLOAD + MAX_BODY, api.MAX_NOTICE_BODY
        ),
    )
