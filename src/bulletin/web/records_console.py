"""The records clerk's console: search the archive in its query language, and read one
record with every version of its item, the word changes between them, its redactions, hashes
and ledger position.

Each handler finds who is signed in (through :class:`~bulletin.web.console.Console`), calls
one application-layer function of :mod:`bulletin.app.record_pages` with that actor (which
checks the role) and renders a template; ``?format=json`` (or ``.json``) gives the same data
as JSON.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import record_pages
from bulletin.app.record_pages import DEFAULT_HITS, MAX_HITS, RecordPage, Version
from bulletin.archiver.search import Hit
from bulletin.errors import UsageError
from bulletin.models import Record
from bulletin.web.console import Console, iso, wants_json
from bulletin.web.pages import Pages, message


def routes(pages: Pages) -> list[BaseRoute]:
    """The records console's routes, bound to ``pages`` (GET only: no forms post here)."""
    clerk = RecordsConsole(Console(pages))
    return [
        Route("/records", clerk.search, methods=["GET"]),
        Route("/records.json", clerk.search, methods=["GET"]),
        Route("/records/{record_id:int}", clerk.record, methods=["GET"]),
        Route("/records/{record_id:int}.json", clerk.record, methods=["GET"]),
    ]


def limit_of(request: Request) -> int:
    """The ``limit`` asked for, within 1 and :data:`MAX_HITS` (:raises UsageError: not a
    number)."""
    given = request.query_params.get("limit", "")
    if not given:
        return DEFAULT_HITS
    if not given.isdigit():
        raise UsageError(f"the number of hits must be a whole number from 1 to {MAX_HITS}")
    return max(1, min(int(given), MAX_HITS))


class RecordsConsole:
    """The records console's handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    async def search(self, request: Request) -> Response:
        who = await self.console.who(request)
        text = request.query_params.get("q", "")
        limit = limit_of(request)
        try:
            found = await run_in_threadpool(
                lambda: record_pages.find_records(self.app, who.actor, text, limit=limit)
            )
        except UsageError as e:
            if wants_json(request):
                return JSONResponse({"query": text, "error": message(e)}, status_code=400)
            return self.console.render(
                request, who, "records.html", 400, q=text, limit=limit, hits=None, error=message(e)
            )
        hits = found.hits
        if wants_json(request):
            return JSONResponse(
                {
                    "query": text,
                    "understood": found.query.describe(),
                    "limit": limit,
                    "more": len(hits) >= limit,
                    "hits": [hit_json(h) for h in hits],
                }
            )
        return self.console.render(
            request,
            who,
            "records.html",
            q=text,
            limit=limit,
            hits=hits,
            more=len(hits) >= limit,
            max_hits=MAX_HITS,
            error=None,
        )

    async def record(self, request: Request) -> Response:
        who = await self.console.who(request)
        record_id = int(request.path_params["record_id"])
        page = await run_in_threadpool(record_pages.record_page, self.app, who.actor, record_id)
        if wants_json(request):
            return JSONResponse(page_json(page))
        return self.console.render(request, who, "record.html", page=page, r=page.record)


def record_json(r: Record) -> dict[str, Any]:
    return {
        "id": r.id,
        "account": r.account,
        "platform": r.platform,
        "kind": r.kind,
        "remote_id": r.remote_id,
        "thread_id": r.thread_id,
        "version": r.version,
        "change": r.change,
        "state": r.state,
        "author": r.author,
        "text": r.text,
        "url": r.url,
        "posted_at": iso(r.posted_at),
        "captured_at": iso(r.captured_at),
        "legal_hold": r.legal_hold,
        "retain_until": iso(r.retain_until),
        "disposed_at": iso(r.disposed_at),
        "content_sha256": r.content_sha256,
        "object_sha256": r.object_sha256,
        "ledger_seq": r.ledger_seq,
    }


def hit_json(h: Hit) -> dict[str, Any]:
    return record_json(h.record) | {"current_state": h.current_state, "versions": h.versions}


def version_json(v: Version) -> dict[str, Any]:
    return record_json(v.record) | {
        "entry_hash": v.entry_hash,
        "redactions": [
            {
                "id": r.id,
                "start": r.start,
                "end": r.end,
                "exemption": r.exemption,
                "label": label,
                "reason": r.reason,
                "by": r.created_by,
                "at": iso(r.created_at),
            }
            for r, label in v.redactions
        ],
        "changes": [{"op": op, "text": text} for op, text in v.changes],
    }


def page_json(page: RecordPage) -> dict[str, Any]:
    return record_json(page.record) | {
        "contradictions": page.contradictions,
        "versions": [version_json(v) for v in page.versions],
    }
