"""The admin's status page: what ``bulletin status`` shows (live daemons, deliveries, the
archive and its backlog, free disk, capture sweeps) and charts drawn on the server
(:mod:`bulletin.web.svgchart`), each with a table of the same numbers.

The handler asks the application layer (:func:`bulletin.app.status_plots.status_plots`,
which refuses anyone but an admin) before it reads the service's status, and renders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bulletin.app import Actor, App
from bulletin.app.status_plots import StatusPlots, status_plots
from bulletin.web import svgchart
from bulletin.web.console import Console
from bulletin.web.pages import Pages


def routes(pages: Pages) -> list[BaseRoute]:
    """The status page's route, bound to ``pages``."""
    page = StatusPage(Console(pages))
    return [Route("/status", page.show, methods=["GET"])]


@dataclass(frozen=True)
class Reading:
    plots: StatusPlots
    state: Any  # bulletin.service.status.Status
    sweeps: dict[str, Any]
    problems: list[str]


def read(app: App, actor: Actor) -> Reading:
    """The figures, once the application layer let ``actor`` see them."""
    from bulletin.archiver.status import capture_health
    from bulletin.service.instances import HEARTBEAT_SECONDS
    from bulletin.service.status import gather, problems

    plots = status_plots(app, actor)  # raises Refused for anyone but an admin
    state = gather(app, HEARTBEAT_SECONDS)
    sweeps, _ = capture_health(app.engine, app.settings)
    return Reading(plots, state, sweeps, problems(state, sweeps, app.clock.now()))


def charts(plots: StatusPlots) -> dict[str, Any]:
    """The four charts of ``plots``, as SVG markup."""
    days = [d.strftime("%m-%d") for d in plots.deliveries.days]
    return {
        "deliveries_svg": svgchart.bars(
            "deliveries",
            f"Deliveries per day by state, last {len(days)} days",
            days,
            [(s, [float(n) for n in v]) for s, v in plots.deliveries.counts.items()],
        ),
        "latency_svg": svgchart.bars(
            "latency",
            "Approve-to-post latency per day in seconds, median and 95th percentile",
            days,
            [("median", plots.latency.median), ("95th percentile", plots.latency.p95)],
        ),
        "lag_svg": svgchart.bars(
            "lag",
            "Capture lag of comments by account and path in seconds, median and 95th percentile",
            [f"{g.account} ({g.path})" for g in plots.lags],
            [
                ("median", [g.median for g in plots.lags]),
                ("95th percentile", [g.p95 for g in plots.lags]),
            ],
        ),
        "spend_svg": svgchart.bars(
            "spend",
            f"Platform spend this month ({plots.month}) against the monthly budget, US dollars",
            [g.account for g in plots.spend],
            [
                ("spend", [g.usd for g in plots.spend]),
                ("budget", [g.budget or None for g in plots.spend]),
            ],
        ),
    }


class StatusPage:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    async def show(self, request: Request) -> Response:
        who = await self.console.who(request)
        found = await run_in_threadpool(read, self.app, who.actor)
        return self.console.render(
            request,
            who,
            "status.html",
            r=found,
            s=found.state,
            p=found.plots,
            **charts(found.plots),
        )
