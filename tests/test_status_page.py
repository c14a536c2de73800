"""The admin's status page: the figures from the application layer (admins only), the
charts as well-formed, labelled SVG, the tables with the same numbers, and the page checked
with axe at 320 and 1280 pixels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree as ET
from sqlmodel import Session

from bulletin.app import Actor
from bulletin.app.status_plots import percentile, status_plots
from bulletin.archiver.capture.spend import month_of
from bulletin.archiver.store.base import object_key
from bulletin.errors import Refused
from bulletin.models import Account, Approval, CaptureSpend, Delivery, Notice
from bulletin.states import DeliveryState
from bulletin.web import svgchart
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run
from tests.test_archive import archive_some
from tests.test_console import NO_SIDEWAYS, WIDEST, browser_sign_in, signed_in
from tests.test_web import PEOPLE, add_with_password, serving

IVY = Actor("ivy", "session", "127.0.0.1")
SVG = "{http://www.w3.org/2000/svg}"


def seed(inst: Instance) -> None:
    """Deliveries around the injected clock's now (10:00 in New York): two posts published
    two days ago 600 s and 30 s after approval, one failed yesterday, one pending today, a
    scheduled post published today 5 s after its due time, and one published 20 days ago."""
    now = inst.clock.now()
    day = timedelta(days=1)
    sec = timedelta(seconds=1)
    # (state, approved, due, published)
    rows = [
        (
            DeliveryState.PUBLISHED,
            now - 2 * day - 600 * sec,
            now - 2 * day - 600 * sec,
            now - 2 * day,
        ),
        (
            DeliveryState.PUBLISHED,
            now - 2 * day - 30 * sec,
            now - 2 * day - 30 * sec,
            now - 2 * day,
        ),
        (DeliveryState.FAILED, now - day, now - day, None),
        (DeliveryState.PENDING, now - 3 * day, now + 3600 * sec, None),
        (DeliveryState.PUBLISHED, now - 3 * day, now - 3600 * sec, now - 3595 * sec),
        (DeliveryState.PUBLISHED, now - 20 * day, now - 20 * day, now - 20 * day),
    ]
    with Session(inst.app.engine) as session:
        if session.get(Account, "feed") is None:
            session.add(Account(name="feed", platform="feed"))
        for state, approved, due, published in rows:
            notice = Notice(
                category="traffic",
                priority="routine",
                text="Road closed",
                author="dana",
                created_at=approved,
                state="approved",
            )
            session.add(notice)
            session.flush()
            assert notice.id is not None
            session.add(Approval(notice_id=notice.id, approver="abe", at=approved))
            session.add(
                Delivery(
                    notice_id=notice.id,
                    account="feed",
                    state=state,
                    due_at=due,
                    published_at=published,
                )
            )
        session.add(CaptureSpend(account="feed", month=month_of(now), usd=12.5, reads=50))
        session.commit()


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = make_instance(tmp_path, db_url, PEOPLE)
    for name, roles in {"ivy": ["admin"], "dana": ["dispatcher"]}.items():
        add_with_password(inst.app, name, *roles)
    seed(inst)
    yield inst
    inst.app.close()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([30.0, 600.0], 95) == 600.0
    assert percentile([float(n) for n in range(1, 101)], 95) == 95.0
    assert percentile([7.0], 50) == 7.0


def test_the_figures_count_by_agency_day_and_refuse_a_dispatcher(site: Instance) -> None:
    """14 days up to today in New York; each delivery on its day; latency median and p95
    per day of publication, from approval or the later due time; a dispatcher is refused."""
    plots = status_plots(site.app, IVY)
    days = plots.deliveries.days
    assert len(days) == 14 and days[-1].isoformat() == "2026-11-25"
    counts = plots.deliveries.counts
    assert sorted(counts) == ["failed", "pending", "published"]
    assert counts["published"][-3:] == [2, 0, 1] and sum(counts["published"]) == 3
    assert counts["failed"][-2] == 1 and counts["pending"][-1] == 1
    lat = plots.latency
    assert (lat.posts[-3], lat.median[-3], lat.p95[-3]) == (2, 315.0, 600.0)
    assert (lat.posts[-1], lat.median[-1], lat.p95[-1]) == (1, 5.0, 5.0)
    assert lat.median[-2] is None and lat.p95[-2] is None
    assert plots.lags == []
    assert plots.month == "2026-11"
    assert [(g.account, g.usd, g.budget) for g in plots.spend if g.account == "feed"] == [
        ("feed", 12.5, 0.0)
    ]
    with pytest.raises(Refused, match="holds none of the roles admin"):
        status_plots(site.app, Actor("dana"))


def svgs(page: str) -> list[Any]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, re.S)]


def test_an_admin_sees_the_tables_and_charts_a_dispatcher_is_refused(site: Instance) -> None:
    """The tables hold the figures the application layer returns; each chart parses as XML,
    is an image named by its title; the nav links the page for admins only."""
    plots = status_plots(site.app, IVY)
    with serving(site.app) as url:
        with signed_in(url, "ivy") as ivy:
            page = ivy.get("/status")
            assert page.status_code == 200, page.text
            text = page.text
            assert 'href="/status"' in text and "Daemons running: 0" in text
            for i, day in enumerate(plots.deliveries.days):
                cells = "".join(f"<td>{v[i]}</td>" for v in plots.deliveries.counts.values())
                assert f'<th scope="row">{day.isoformat()}</th>{cells}</tr>' in text
            assert '<th scope="row">2026-11-23</th><td>2</td><td>315</td><td>600</td>' in text
            assert '<th scope="row">2026-11-25</th><td>1</td><td>5</td><td>5</td>' in text
            assert '<th scope="row">feed</th><td>12.50</td><td>none</td>' in text
            charts = svgs(text)
            assert len(charts) == 4
            for svg in charts:
                assert svg.get("role") == "img"
                title = svg.find(f"{SVG}title")
                assert title is not None and title.text
                assert svg.get("aria-labelledby") == title.get("id")
        with signed_in(url, "dana") as dana:
            got = dana.get("/status")
            assert got.status_code == 403 and "holds none of the roles admin" in got.text
            assert 'href="/status"' not in dana.get("/").text


def test_bars_scale_to_a_round_top_and_skip_missing_values() -> None:
    """Bar heights are proportional to the values against a round top; None draws no bar;
    labels are escaped; the result is well-formed XML with role img and a title."""
    svg = svgchart.bars("t", "A <title>", ["a&b", "c"], [("s", [50.0, None]), ("u", [25.0, 0])])
    root = ET.fromstring(str(svg))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "t-title"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "A <title>"
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("width") != "12"]
    heights = [float(r.get("height", "0")) for r in bars]
    assert len(heights) == 2 and heights[0] == pytest.approx(2 * heights[1])
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "a&b" in texts and "50" in texts  # the top of the axis
    assert svgchart._nice_top(0) == 1.0 and svgchart._nice_top(315) == 500.0
    assert svgchart._nice_top(600) == 1000.0 and svgchart._nice_top(3) == 5.0


@pytest.mark.slow
def test_the_status_page_passes_axe_at_320_and_1280_pixels(tmp_path: Path, browser: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the status page with its charts and
    two verify runs, the last with a problem, at 320 and 1280 pixels, and nothing scrolls
    sideways."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    add_with_password(inst.app, "ivy", "admin")
    seed(inst)
    run(inst, "archive", "verify", clock=inst.clock)
    (record,) = archive_some(inst, 1)
    inst.app.store.path_of(object_key(record.raw_sha256 or "")).unlink()  # type: ignore[attr-defined]
    inst.clock.advance(timedelta(minutes=1))
    run(inst, "archive", "verify", code=1, clock=inst.clock)  # a problem on the page
    try:
        with serving(inst.app) as url:
            for width in (320, 1280):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                try:
                    browser_sign_in(page, url, "ivy", "/status")
                    assert not (found := axe_violations(page)), describe(found)
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                    if width == 1280:
                        screenshot(page, "console-status")
                finally:
                    context.close()
    finally:
        inst.app.close()
