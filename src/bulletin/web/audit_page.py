"""The audit trail in the console: who did what to which object, when and why, filtered by
actor, action, object and a range of days; the same as CSV.

The filter is a GET form (nothing changes, so no token); the handler calls
:func:`bulletin.app.audit.search_events` with the signed-in actor (which checks the role).
"""

from __future__ import annotations

import csv
import io
from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bulletin.app import audit
from bulletin.app.audit import CSV_EVENTS, PAGE_EVENTS, Filter
from bulletin.errors import UsageError
from bulletin.models import AuditEvent
from bulletin.web.console import Console
from bulletin.web.pages import Pages, message

COLUMNS = ("id", "at", "actor", "via", "host", "action", "object_type", "object_id", "reason")
FIELDS = ("actor", "action", "object_type", "object_id", "since", "until")


def routes(pages: Pages) -> list[BaseRoute]:
    """The audit page's routes, bound to ``pages`` (GET only)."""
    page = AuditPage(Console(pages))
    return [
        Route("/audit", page.page, methods=["GET"]),
        Route("/audit.csv", page.csv, methods=["GET"]),
    ]


def day_of(given: str, what: str) -> date | None:
    """The day typed (empty: None; :raises UsageError: not YYYY-MM-DD)."""
    if not given:
        return None
    try:
        return date.fromisoformat(given)
    except ValueError:
        raise UsageError(f"the {what} day {given!r} is not a date (YYYY-MM-DD)") from None


def cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet will not take for a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def as_csv(events: list[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for e in events:
        writer.writerow([cell(e.at.isoformat() if c == "at" else getattr(e, c)) for c in COLUMNS])
    return out.getvalue()


class AuditPage:
    """The audit page's handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    def _wanted(self, request: Request) -> tuple[dict[str, str], Filter]:
        values = {k: request.query_params.get(k, "").strip() for k in FIELDS}
        wanted = Filter(
            actor=values["actor"],
            action=values["action"],
            object_type=values["object_type"],
            object_id=values["object_id"],
            since=day_of(values["since"], "first"),
            until=day_of(values["until"], "last"),
        )
        return values, wanted

    async def page(self, request: Request) -> Response:
        who = await self.console.who(request)
        values: dict[str, str] = {k: request.query_params.get(k, "") for k in FIELDS}
        try:
            values, wanted = self._wanted(request)
            events = await run_in_threadpool(
                lambda: audit.search_events(self.app, who.actor, wanted)
            )
        except UsageError as e:
            return self.console.render(
                request, who, "audit.html", 400, v=values, events=None, error=message(e)
            )
        query = str(request.url.query)
        return self.console.render(
            request,
            who,
            "audit.html",
            v=values,
            events=events,
            more=len(events) >= PAGE_EVENTS,
            limit=PAGE_EVENTS,
            csv_url="/audit.csv" + (f"?{query}" if query else ""),
            error=None,
        )

    async def csv(self, request: Request) -> Response:
        who = await self.console.who(request)
        _, wanted = self._wanted(request)
        events = await run_in_threadpool(
            lambda: audit.search_events(self.app, who.actor, wanted, limit=CSV_EVENTS)
        )
        return Response(
            as_csv(events),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
