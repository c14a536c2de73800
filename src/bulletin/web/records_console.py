"""The records clerk's console: search the archive in its query language, and read one
record with every version of its item, the word changes between them, its redactions, hashes
and ledger position.

Each handler finds who is signed in (through :class:`~bulletin.web.console.Console`), calls
one application-layer function of :mod:`bulletin.app.record_pages` with that actor (which
checks the role) and renders a template; ``?format=json`` (or ``.json``) gives the same data
as JSON.

On a record's page a clerk withholds text from the public (:mod:`bulletin.app.redactions`,
which checks the role): the words are chosen by typing them (and which occurrence), or, with
JavaScript, by selecting them in the archived text, which fills the same fields; "Preview"
shows the public rendering with the box and saves nothing; each redaction in force has a form
that removes it (with a reason). The archive never changes.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import record_pages, redactions
from bulletin.app.record_pages import DEFAULT_HITS, MAX_HITS, RecordPage, Version
from bulletin.app.redactions import Proposal
from bulletin.app.sessions import SignedIn
from bulletin.archiver.search import Hit
from bulletin.errors import BulletinError, UsageError
from bulletin.models import Record
from bulletin.web import security
from bulletin.web.console import Console, iso, wants_json
from bulletin.web.pages import Pages, message, status_of

REDACT = "redact"
UNREDACT = "remove-redaction"


def routes(pages: Pages, max_body: int) -> list[BaseRoute]:
    """The records console's routes, bound to ``pages``; a form bigger than ``max_body``
    bytes gets 413."""
    clerk = RecordsConsole(Console(pages))
    return [
        Route("/records", clerk.search, methods=["GET"]),
        Route("/records.json", clerk.search, methods=["GET"]),
        Route("/records/{record_id:int}", clerk.record, methods=["GET"]),
        Route("/records/{record_id:int}.json", clerk.record, methods=["GET"]),
        Route(
            "/records/{record_id:int}/redact",
            clerk.redact,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/records/{record_id:int}/redactions/{redaction_id:int}/remove",
            clerk.unredact,
            methods=["POST"],
            max_body_size=max_body,
        ),
    ]


def occurrence_of(given: str) -> int | None:
    """The occurrence typed: None (empty: every one) or a whole number (:raises UsageError:
    anything else)."""
    if not given:
        return None
    if not given.isdigit() or int(given) < 1:
        raise UsageError("the occurrence is a whole number from 1 (or empty for every one)")
    return int(given)


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
        if wants_json(request):
            page = await run_in_threadpool(record_pages.record_page, self.app, who.actor, record_id)
            return JSONResponse(page_json(page))
        done = request.query_params.get("done", "")
        return await self._record_page(
            request, who, record_id, done=done if done in ("redacted", "removed") else None
        )

    async def _record_page(
        self,
        request: Request,
        who: SignedIn,
        record_id: int,
        *,
        values: dict[str, str] | None = None,
        proposal: Proposal | None = None,
        error: str | None = None,
        status: int = 200,
        done: str | None = None,
    ) -> Response:
        def read() -> tuple[RecordPage, list[Any], dict[str, Any]]:
            page = record_pages.record_page(self.app, who.actor, record_id)
            removed = [
                (r, redactions.label_of(self.app, r.exemption))
                for r in redactions.list_redactions(
                    self.app, who.actor, record_id=record_id, include_removed=True
                )
                if r.removed_at is not None
            ]
            return page, removed, redactions.exemption_codes(self.app, who.actor)

        page, removed, codes = await run_in_threadpool(read)
        return self.console.render(
            request,
            who,
            "record.html",
            status,
            page=page,
            r=page.record,
            codes=codes,
            removed=removed,
            v=values or {"phrase": "", "occurrence": "", "code": "", "reason": ""},
            proposal=proposal,
            error=error,
            done=done,
            redact_csrf=security.form_token(who.csrf_secret, REDACT),
            remove_csrf=security.form_token(who.csrf_secret, UNREDACT),
        )

    async def redact(self, request: Request) -> Response:
        """Preview (``action=preview``) or save a redaction of the words chosen."""
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, REDACT)
        record_id = int(request.path_params["record_id"])
        values = {
            key: str(form.get(key, "")).strip()
            for key in ("phrase", "occurrence", "code", "reason")
        }
        values["phrase"] = str(form.get("phrase", ""))  # spaces at its edges are text too

        def work() -> Proposal | None:
            page = record_pages.record_page(self.app, who.actor, record_id)
            spans = redactions.phrase_spans(
                page.record.text, values["phrase"], occurrence_of(values["occurrence"])
            )
            if form.get("action") == "preview":
                return redactions.preview_redaction(
                    self.app, who.actor, record_id, code=values["code"], spans=spans
                )
            redactions.add_redaction(
                self.app,
                who.actor,
                record_id,
                code=values["code"],
                reason=values["reason"],
                spans=spans,
            )
            return None

        try:
            proposal = await run_in_threadpool(work)
        except BulletinError as e:
            return await self._record_page(
                request, who, record_id, values=values, error=message(e), status=status_of(e)
            )
        if proposal is not None:
            return await self._record_page(
                request, who, record_id, values=values, proposal=proposal
            )
        return RedirectResponse(f"/records/{record_id}?done=redacted", status_code=303)

    async def unredact(self, request: Request) -> Response:
        """Take a redaction out of force, with the reason given."""
        who = await self.console.who(request)
        form = await self.console.pages.checked_form(request, who.csrf_secret, UNREDACT)
        record_id = int(request.path_params["record_id"])
        redaction_id = int(request.path_params["redaction_id"])
        reason = str(form.get("reason", "")).strip()
        try:
            removed = await run_in_threadpool(
                lambda: redactions.remove_redaction(
                    self.app, who.actor, redaction_id, reason=reason
                )
            )
        except BulletinError as e:
            return await self._record_page(
                request, who, record_id, error=message(e), status=status_of(e)
            )
        return RedirectResponse(f"/records/{removed.record_id}?done=removed", status_code=303)


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
        "lang": r.lang,
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
        "siblings": [s.as_json() for s in page.siblings],
    }
