"""The portal's ASGI app: routes, one handler per page, each page also as JSON.

Handlers parse the request, call one function of :mod:`bulletin.app.public` (in a worker
thread: they block) and render a template or JSON; the rules of what the public sees live
there. Every route is GET (and HEAD); anything else is 405 (:class:`.limits.ReadOnly`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from bulletin.app import App, public
from bulletin.errors import BulletinError, DatabaseError, NotFound, Refused, UsageError
from bulletin.portal.limits import RateLimit, ReadOnly
from bulletin.web import security

VERIFY_COMMAND = "python3 verify_proof.py FILE  (or: python -m bulletin.portal.verify_proof FILE)"
FEED_SIZE = 50
HOME_NOTICES = 5
# The portal's own words (menus, headings, footer) are English: the page says so, and a post in
# any other language carries its own lang attribute for screen readers.
PAGE_LANGUAGE = "en"
Handler = Callable[[Request], Awaitable[Response]]


def _message(e: BulletinError) -> str:
    return f"{str(e)[:1].upper()}{str(e)[1:]}."


def _int(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise UsageError(f"{name} must be a whole number")
    return int(value)


class Portal:
    """The handlers, bound to one :class:`App` and its templates."""

    def __init__(self, app: App) -> None:
        self.app = app
        env = Environment(
            loader=PackageLoader("bulletin.portal", "templates"),
            autoescape=select_autoescape(default=True),
        )
        self.templates = Jinja2Templates(env=env)
        portal = app.settings.portal
        self.cache = f"public, max-age={portal.cache_seconds}"
        self.robots = portal.robots

    def wants_json(self, request: Request) -> bool:
        return request.query_params.get("format") == "json"

    def respond(
        self, request: Request, template: str, data: dict[str, Any], status: int = 200
    ) -> Response:
        """``data`` as JSON (``?format=json``) or through ``template``."""
        response: Response
        if self.wants_json(request):
            response = JSONResponse(data, status_code=status)
        else:
            context = {
                "agency": self.app.settings.agency.name,
                "page_lang": PAGE_LANGUAGE,
                "show_comments": self.app.settings.portal.show_comments,
                **data,
            }
            response = self.templates.TemplateResponse(
                request, template, context, status_code=status
            )
        if status == 200:
            response.headers["Cache-Control"] = self.cache
        if self.robots == "noindex":
            response.headers["X-Robots-Tag"] = "noindex"
        return response

    def page_args(self, request: Request) -> tuple[int, int | None]:
        return _int(request, "page", 1) or 0, _int(request, "size", None)

    # -- pages -----------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        latest = await run_in_threadpool(public.notices, self.app, HOME_NOTICES)
        return self.respond(
            request, "home.html", {"notices": [r.to_json() for r in latest], "query": ""}
        )

    async def search(self, request: Request) -> Response:
        text = request.query_params.get("q", "")
        page, size = self.page_args(request)
        found = await run_in_threadpool(public.search_public, self.app, text, page, size)
        return self.respond(request, "results.html", self.listing(found, text, "/search"))

    def listing(self, found: public.Listing, text: str, path: str) -> dict[str, Any]:
        return {
            "query": text,
            "understood": found.query,
            "page": found.page,
            "size": found.size,
            "more": found.more,
            "capped": found.capped,
            "max_scan": self.app.settings.portal.max_scan,
            "path": path,
            "results": [r.to_json() for r in found.items],
        }

    async def browse(self, request: Request) -> Response:
        names = public.accounts(self.app)
        return self.respond(request, "browse.html", {"accounts": names})

    async def account(self, request: Request) -> Response:
        name = request.path_params["account"]
        found = await run_in_threadpool(public.months, self.app, name)
        return self.respond(request, "months.html", {"account": name, "months": found})

    async def month(self, request: Request) -> Response:
        name, month = request.path_params["account"], request.path_params["month"]
        page, size = self.page_args(request)
        found = await run_in_threadpool(public.browse_month, self.app, name, month, page, size)
        data = self.listing(found, "", f"/browse/{name}/{month}")
        return self.respond(request, "results.html", {**data, "account": name, "month": month})

    async def record(self, request: Request) -> Response:
        shown = await run_in_threadpool(public.record, self.app, request.path_params["id"])
        data = {"record": shown.to_json(), "verify": VERIFY_COMMAND}
        return self.respond(request, "record.html", data)

    async def thread(self, request: Request) -> Response:
        page, size = self.page_args(request)
        found = await run_in_threadpool(
            public.thread, self.app, request.path_params["id"], page, size
        )
        data = {
            "record": found.record.to_json(),
            "items": [r.to_json() for r in found.items],
            "page": found.page,
            "size": found.size,
            "more": found.more,
            "path": f"/threads/{found.record.id}",
            "query": "",
            "siblings": [asdict(s) for s in found.siblings],
        }
        return self.respond(request, "thread.html", data)

    async def proof(self, request: Request) -> Response:
        record_id = request.path_params["id"]
        body = await run_in_threadpool(public.proof, self.app, record_id, VERIFY_COMMAND)
        return Response(
            body,
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="record-{record_id}-proof.json"',
                "Cache-Control": self.cache,
            },
        )

    async def proofs(self, request: Request) -> Response:
        return self.respond(request, "proofs.html", {"verify": VERIFY_COMMAND})

    async def verifier(self, request: Request) -> Response:
        path = resources.files("bulletin.portal") / "verify_proof.py"
        return Response(
            path.read_bytes(),
            media_type="text/x-python; charset=utf-8",
            headers={"Cache-Control": self.cache},
        )

    async def feed(self, request: Request) -> Response:
        latest = await run_in_threadpool(public.notices, self.app, FEED_SIZE)
        base = str(request.base_url)
        agency = self.app.settings.agency
        body = atom(agency.name, base, latest, agency.languages[0])
        return Response(
            body,
            media_type="application/atom+xml; charset=utf-8",
            headers={"Cache-Control": self.cache},
        )

    async def robots_txt(self, request: Request) -> Response:
        rule = "Disallow: /" if self.robots == "noindex" else "Allow: /"
        return PlainTextResponse(f"User-agent: *\n{rule}\n", headers={"Cache-Control": self.cache})

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    # -- errors ----------------------------------------------------------------------------

    def error(self, request: Request, status: int, title: str, text: str) -> Response:
        response = self.respond(
            request, "error.html", {"title": title, "error": text, "status": status}, status
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BulletinError)
        status, title = 500, "Not done"
        if isinstance(exc, UsageError):
            status, title = 400, "Cannot search that"
        elif isinstance(exc, NotFound):
            status, title = 404, "Not found"
        elif isinstance(exc, Refused):
            status, title = 403, "Not public"
        elif isinstance(exc, DatabaseError):
            status = 503
        text = _message(exc) if status < 500 else "The archive cannot be read just now."
        return self.error(request, status, title, text)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Not found", 405: "Not allowed"}.get(exc.status_code, "Not done")
        response = self.error(request, exc.status_code, title, str(exc.detail) + ".")
        response.headers.update(exc.headers or {})
        return response


def atom(agency: str, base: str, entries: list[public.PublicRecord], lang: str = "en") -> bytes:
    """An Atom 1.0 feed of the agency's notices, text as a public production shows it; the
    feed is in ``lang`` (``xml:lang``), an entry in another language says so on its own."""
    updated = max((e.posted or e.captured for e in entries), default="1970-01-01T00:00:00+00:00")
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{escape(lang)}">',
        f"<title>{escape(agency)}: public notices</title>",
        f"<id>{escape(base)}feed.atom</id>",
        f'<link rel="self" href="{escape(base)}feed.atom"/>',
        f'<link rel="alternate" href="{escape(base)}"/>',
        f"<updated>{updated}</updated>",
        f"<author><name>{escape(agency)}</name></author>",
    ]
    for e in entries:
        title = (e.text.splitlines() or [""])[0][:100] or f"Notice {e.id}"
        own = f' xml:lang="{escape(e.lang)}"' if e.lang and e.lang != lang else ""
        parts += [
            f"<entry{own}>",
            f"<title>{escape(title)}</title>",
            f"<id>{escape(base)}records/{e.id}</id>",
            f'<link rel="alternate" href="{escape(base)}records/{e.id}"/>',
            f"<updated>{e.posted or e.captured}</updated>",
            f'<content type="text">{escape(e.text)}</content>',
            "</entry>",
        ]
    parts.append("</feed>")
    return ("\n".join(parts) + "\n").encode()


def create_app(app: App) -> Starlette:
    """The public archive portal of ``app`` (its settings, clock, database and store)."""
    portal = Portal(app)
    static = str(resources.files("bulletin.portal") / "static")

    async def stylesheet(request: Request) -> Response:
        return FileResponse(
            f"{static}/portal.css",
            media_type="text/css",
            headers={"Cache-Control": portal.cache},
        )

    routes: list[BaseRoute] = [
        Route("/", portal.home, methods=["GET"]),
        Route("/search", portal.search, methods=["GET"]),
        Route("/browse", portal.browse, methods=["GET"]),
        Route("/browse/{account}", portal.account, methods=["GET"]),
        Route("/browse/{account}/{month}", portal.month, methods=["GET"]),
        Route("/records/{id:int}", portal.record, methods=["GET"]),
        Route("/records/{id:int}/proof.json", portal.proof, methods=["GET"]),
        Route("/threads/{id:int}", portal.thread, methods=["GET"]),
        Route("/feed.atom", portal.feed, methods=["GET"]),
        Route("/proofs", portal.proofs, methods=["GET"]),
        Route("/verify_proof.py", portal.verifier, methods=["GET"]),
        Route("/robots.txt", portal.robots_txt, methods=["GET"]),
        Route("/healthz", portal.healthz, methods=["GET"]),
        Route("/static/portal.css", stylesheet, methods=["GET"]),
    ]
    settings = app.settings.portal
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(security.Protections, settings.trusted_proxies),
            Middleware(RateLimit, settings.rate_limit, app.clock.now),
            Middleware(ReadOnly),
        ],
        exception_handlers={BulletinError: portal.refused, HTTPException: portal.http_error},
    )
