"""The agency's approved images at ``/media/{sha256}.{ext}``, public and content-addressed,
for the platforms that fetch a post's images by URL (Threads, Instagram: their accounts'
``media_base_url`` is ``{web base_url}/media``). What may be served is decided by
:func:`bulletin.app.media.approved_image`; anything else is a plain 404. GET (and HEAD)
only: no body is read."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bulletin.app import App
from bulletin.app.media import approved_image
from bulletin.errors import NotFound

#: the name is the content's hash: the answer never changes
CACHE = "public, max-age=31536000, immutable"


def routes(app: App) -> list[Route]:
    """The media route of ``app``."""

    async def image(request: Request) -> Response:
        try:
            found = await run_in_threadpool(approved_image, app, request.path_params["name"])
        except NotFound:
            return PlainTextResponse("Not found.\n", status_code=404)
        return Response(
            found.data,
            media_type=found.mime_type,
            headers={"Cache-Control": CACHE, "Cross-Origin-Resource-Policy": "cross-origin"},
        )

    return [Route("/media/{name}", image, methods=["GET"])]
