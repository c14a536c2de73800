"""Door 2b: the HTTP API for programs (CAD systems, scripts), mounted at ``/api/v1``.

Every operation authenticates a bearer token (:mod:`bulletin.app.tokens`), checks the scope it
needs, calls one application-layer function as the token's account and formats the result;
the rules (roles, the two-person rule) are the application layer's. Errors are RFC 9457
problem details whose ``detail`` is the one line the command line prints, with this door's
words for the remedy. OpenAPI 3.1 at ``/api/v1/openapi.json``; ``/api/v1/docs`` lists the
operations (no script, no CDN).
"""

from __future__ import annotations

import html
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bulletin import __version__
from bulletin.app import App, idempotency, tokens
from bulletin.errors import BulletinError, DatabaseError, NotFound, Refused, UsageError
from bulletin.web.api import (
    accounts,
    exports,
    holds,
    notices,
    records,
    requests,
    status,
    templates,
    webhooks,
)
from bulletin.web.api.common import PREFIX as PREFIX
from bulletin.web.api.common import FieldError, body_field, message, pointer, problem
from bulletin.web.api.notices import MAX_NOTICE_BODY as MAX_NOTICE_BODY

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
log = structlog.get_logger("bulletin.web.api")


def status_of(e: BulletinError) -> int:
    """The HTTP status of a refusal."""
    if isinstance(e, tokens.Unauthenticated):
        return 401
    if isinstance(e, idempotency.KeyReused):
        return 422
    if isinstance(e, Refused):
        return 403
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, UsageError):
        return 422
    if isinstance(e, DatabaseError):
        return 503
    return 500


def create_api(app: App) -> FastAPI:
    """The HTTP API of ``app``, to be mounted at :data:`PREFIX`."""
    api = FastAPI(
        title="Bulletin API",
        version=__version__,
        summary="Draft, approve and follow public notices; read the public record.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        root_path_in_servers=False,
        servers=[{"url": PREFIX}],
    )
    api.state.bulletin = app
    for module in (
        notices,
        templates,
        status,
        accounts,
        records,
        holds,
        requests,
        exports,
        webhooks,
    ):
        api.include_router(module.router)
    generated = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = with_choices(generated(), app)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    @api.exception_handler(BulletinError)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BulletinError)
        code = status_of(exc)
        if code == 401:
            return problem(401, TITLES[401], message(exc), headers={"WWW-Authenticate": "Bearer"})
        if code == 503:
            return problem(503, TITLES[503], "Bulletin cannot reach its database.")
        detail = message(exc)
        field = body_field(getattr(exc, "field", None))
        errors = [FieldError(detail=detail, pointer=pointer(field))] if field else None
        return problem(code, TITLES.get(code, "Error"), detail, errors=errors)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(400, TITLES[400], "the request body is not valid JSON")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        text = str(first.get("msg", "invalid")).replace("\n", " ")
        detail = f"{where}: {text}"[:500]
        loc = tuple(first.get("loc", ()))
        fields = (
            [FieldError(detail=detail, pointer=pointer(loc[1:]))] if loc[:1] == ("body",) else None
        )
        return problem(422, TITLES[422], detail, errors=fields)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(code, "Error")
        response = problem(code, TITLES.get(code, "Error"), detail)
        response.headers.update(exc.headers or {})
        return response

    @api.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        log.error("api error", path=request.url.path, error=type(exc).__name__)
        return problem(500, TITLES[500], "unexpected error (please report this)")

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(api.openapi()))

    return api


#: the operations that draft a notice, whose bodies may carry its images
NEW_NOTICES = ("/notices", "/notices/from-template")


def body_limits(api: ASGIApp, max_body: int) -> ASGIApp:
    """``api`` taking bodies of ``max_body`` bytes at most (413 beyond), but for a new
    notice's (:data:`NEW_NOTICES`), which may carry its images: :data:`MAX_NOTICE_BODY`."""
    notice = RequestBodyLimitMiddleware(api, MAX_NOTICE_BODY)
    other = RequestBodyLimitMiddleware(api, max_body)

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.removeprefix(scope.get("root_path", "")).rstrip("/") in NEW_NOTICES:
                return await notice(scope, receive, send)
        await other(scope, receive, send)

    return limited


def with_choices(spec: dict[str, Any], app: App) -> dict[str, Any]:
    """``spec`` with this configuration's categories, accounts and webhook events as the
    choices of the fields that take them (so clients and fuzzers know them)."""
    from bulletin.events import EVENT_TYPES

    schemas = spec.get("components", {}).get("schemas", {})
    categories = sorted(app.settings.publisher.categories)
    accounts = sorted(app.settings.accounts)
    for name in ("NewNotice", "FromTemplate"):
        fields = schemas.get(name, {}).get("properties", {})
        if "category" in fields:
            fields["category"]["enum"] = categories
        if "targets" in fields:
            fields["targets"]["items"]["enum"] = accounts
    hook = schemas.get("NewWebhook", {}).get("properties", {})
    if "events" in hook:
        hook["events"]["items"]["enum"] = list(EVENT_TYPES)
    return spec


def docs_page(spec: dict[str, Any]) -> str:
    """A plain page listing every operation (the schema itself is at openapi.json); a path
    may break after each slash, so that the page fits a phone."""
    items = []
    for path, operations in spec.get("paths", {}).items():
        where = "/<wbr>".join(html.escape(part) for part in (PREFIX + path).split("/"))
        for method, op in operations.items():
            items.append(
                f"<li><code>{html.escape(method.upper())} {where}</code>: "
                f"{html.escape(op.get('summary', ''))}</li>"
            )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/static/bulletin.css">'
        '<title>Bulletin API</title></head><body><main id="main">'
        "<h1>Bulletin API</h1><p>Send <code>Authorization: Bearer TOKEN</code> (a token of "
        "<code>bulletin token create</code>). The OpenAPI 3.1 schema: "
        f'<a href="{PREFIX}/openapi.json">openapi.json</a>.</p>'
        "<h2>Operations</h2><ul>" + "".join(items) + "</ul></main></body></html>"
    )
