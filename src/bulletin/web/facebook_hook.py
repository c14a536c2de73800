"""``/webhooks/facebook``: where Meta delivers Page webhooks.

This route has no session and no form token (CSRF), on purpose: its caller is Meta's
servers, which hold no cookie and load no form of ours. It is authenticated by what Meta
sends instead, in the application layer (:mod:`bulletin.app.facebook_webhooks`): the GET
handshake by the verify token, each POST by the X-Hub-Signature-256 HMAC of its raw body.
Anything else is answered 403 (and counted, see ``bulletin_facebook_webhooks_refused_total``).
A POST is answered 200 only once its body and signature are committed to the database.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bulletin.app import App
from bulletin.app import facebook_webhooks as hooks
from bulletin.errors import Refused

PATH = "/webhooks/facebook"
MAX_BODY = hooks.MAX_BODY


def routes(app: App) -> list[Route]:
    """The GET handshake and the POST deliveries."""

    async def handshake(request: Request) -> Response:
        query = request.query_params
        try:
            challenge = await run_in_threadpool(
                hooks.verify_subscription,
                app,
                query.get("hub.mode"),
                query.get("hub.verify_token"),
                query.get("hub.challenge"),
            )
        except Refused:
            return PlainTextResponse("forbidden\n", status_code=403)
        return PlainTextResponse(challenge)

    async def deliver(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature is over them
        signature = request.headers.get("x-hub-signature-256")
        try:
            await run_in_threadpool(hooks.accept_delivery, app, body, signature)
        except Refused:
            return PlainTextResponse("forbidden\n", status_code=403)
        return PlainTextResponse("ok\n")

    return [
        Route(PATH, handshake, methods=["GET"]),
        Route(PATH, deliver, methods=["POST"], max_body_size=MAX_BODY),
    ]
