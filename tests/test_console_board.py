"""The board's filters (state, category, account, text), the late-after-downtime decisions
made from it (publish now, cancel; refused without the role), its live refresh (a small
script; the page works without it) and the week's calendar of scheduled and recurring
notices in the agency's zone. Over a real uvicorn on a free port, against SQLite and
PostgreSQL; the pages checked with axe-core at 320 and 1280 pixels."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bulletin.app import Actor, board, notices
from bulletin.audit import events
from bulletin.errors import Refused
from bulletin.publisher.notices import NoticeDraft
from bulletin.states import DeliveryState, NoticeState
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke, run
from tests.test_console import (
    DANA,
    NO_SIDEWAYS,
    ROAD,
    WIDEST,
    browser_sign_in,
    browser_site,  # noqa: F401  (a fixture)
    csrf_for,
    drafted,
    signed_in,
    site,  # noqa: F401  (a fixture)
    web,  # noqa: F401  (a fixture)
)
from tests.test_web import error_of, serving

ABE = Actor("abe", "session", "127.0.0.1")
PARADE = "Parade on Mass Ave Saturday at 10 am."


def ids(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'<th scope="row"><a href="/notices/(\d+)">', page)}


def test_the_board_filters_by_state_category_account_and_text(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """Each filter narrows the board and its JSON twin; they combine; the form keeps them."""
    road = drafted(site.app)
    parade = drafted(site.app, PARADE, category="special-event")
    with signed_in(web, "rita") as rita:
        assert ids(rita.get("/notices").text) == {road, parade}
        assert ids(rita.get("/notices", params={"category": "special-event"}).text) == {parade}
        assert ids(rita.get("/notices", params={"text": "mass AVE"}).text) == {road, parade}
        assert ids(rita.get("/notices", params={"text": "parade"}).text) == {parade}
        assert ids(rita.get("/notices", params={"text": "100%"}).text) == set()
        assert ids(rita.get("/notices", params={"account": "feed"}).text) == {road, parade}
        assert ids(rita.get("/notices", params={"account": "nowhere"}).text) == set()
        both = rita.get("/notices", params={"state": "draft", "text": "road closed"})
        assert ids(both.text) == {road}
        assert 'id="text" name="text" type="search" value="road closed"' in both.text
        as_json = rita.get("/notices.json", params={"category": "road-closure"}).json()
        assert [n["id"] for n in as_json["notices"]] == [road]
        assert as_json["category"] == "road-closure"


def late(inst: Instance, text: str = ROAD) -> int:
    """A routine notice approved, then left while no daemon ran: late after downtime."""
    notice_id = drafted(inst.app, text)
    notices.approve(inst.app, ABE, notice_id)
    inst.clock.advance(timedelta(hours=2))
    run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
    return notice_id


def test_late_posts_are_published_or_cancelled_from_the_board(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The late section has a form per notice; the token is checked; a dispatcher's
    "publish now" is refused by the application layer (an approver's decision) with the
    reason on the board; the approver publishes it; a dispatcher cancels another. A reader
    and a clerk may cancel neither a late notice nor any other."""
    first, second = late(site), late(site, PARADE)
    for looker in ("rita", "cleo"):
        actor = Actor(looker, "session", "127.0.0.1")
        with pytest.raises(Refused, match="holds none of the roles"):
            notices.decide_late(site.app, actor, second, False)
        with pytest.raises(Refused, match="holds none of the roles"):
            notices.cancel(site.app, actor, second, "Not needed.")
    path = f"/notices/{first}/late"
    with signed_in(web, "dana") as dana:
        board = dana.get("/notices").text
        token = csrf_for(board, path)
        assert dana.post(path, data={"decision": "publish"}).status_code == 403
        refused = dana.post(path, data={"csrf": token, "decision": "publish"})
        assert refused.status_code == 403 and "approver" in error_of(refused.text)
        other = f"/notices/{second}/late"
        cancelled = dana.post(other, data={"csrf": csrf_for(board, other), "decision": "cancel"})
        assert cancelled.status_code == 200, cancelled.text
        assert f"Notice {second}: late posts cancelled (feed)." in cancelled.text
    with signed_in(web, "abe") as abe:
        token = csrf_for(abe.get("/notices").text, path)
        done = abe.post(path, data={"csrf": token, "decision": "publish"})
        assert done.status_code == 200, done.text
        assert f"Notice {first}: late posts sent on now (feed)." in done.text
        assert f'action="/notices/{first}/late"' not in done.text
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    with signed_in(web, "rita") as rita:
        states = {n["id"]: n["state"] for n in rita.get("/notices.json").json()["notices"]}
        assert states == {first: "published", second: "cancelled"}
        board = rita.get("/notices").text
        assert 'src="/static/board.js"' in board and 'id="board-refresh"' in board


def test_the_week_shows_scheduled_and_recurring_notices_across_daylight_saving(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """A weekly notice at 09:00 New York time from 1 March 2027 shows in the week of 8 March
    at 09:00 EST and in the week of 15 March at 09:00 EDT (14:00 and 13:00 UTC); a draft's
    publish time shows as waiting for approval; a bad start date is a 400."""
    start = datetime(2027, 3, 1, 14, 0, tzinfo=UTC)
    weekly = NoticeDraft(
        category="road-closure",
        text="Street sweeping on Mass Ave today.",
        targets=["feed"],
        publish_at=start,
        recurrence="weekly;at=09:00",
        until_cancelled=True,
    )
    made = notices.draft(site.app, DANA, weekly).notice.id
    assert made is not None
    notices.approve(site.app, ABE, made)
    once = NoticeDraft(
        category="special-event",
        text=PARADE,
        targets=["feed"],
        publish_at=datetime(2027, 3, 16, 15, 0, tzinfo=UTC),
    )
    waiting = notices.draft(site.app, DANA, once).notice.id
    with signed_in(web, "rita") as rita:
        before = rita.get("/notices/week", params={"from": "2027-03-08"})
        assert before.status_code == 200
        assert '<time datetime="2027-03-08T14:00:00+00:00">09:00 EST</time>' in before.text
        after = rita.get("/notices/week", params={"from": "2027-03-15"})
        assert '<time datetime="2027-03-15T13:00:00+00:00">09:00 EDT</time>' in after.text
        assert "recurring" in after.text
        days = rita.get("/notices/week.json", params={"from": "2027-03-15"}).json()["days"]
        entries = [(e["at"], e["id"], e["draft"]) for d in days for e in d["entries"]]
        assert entries == [
            ("2027-03-15T13:00:00+00:00", made, False),
            ("2027-03-16T15:00:00+00:00", waiting, True),
        ]
        assert days[0]["date"] == "2027-03-15" and len(days) == 7
        assert rita.get("/notices/week", params={"from": "March"}).status_code == 400
        assert rita.get("/notices/week").status_code == 200
    with signed_in(web, "cleo") as cleo:
        assert cleo.get("/notices/week").status_code == 403


def test_the_week_shows_an_approved_post_in_its_week_only(
    site: Instance,  # noqa: F811
) -> None:
    """An approved one-off notice due on 17 March 2027 shows in the week of 15 March with its
    account, and not in the weeks before and after (the week reads only the notices that can
    fall in it)."""
    due = datetime(2027, 3, 17, 16, 30, tzinfo=UTC)
    once = NoticeDraft(category="special-event", text=PARADE, targets=["feed"], publish_at=due)
    made = notices.draft(site.app, DANA, once).notice.id
    assert made is not None
    notices.approve(site.app, ABE, made)

    def week_of(day: str) -> list[tuple[datetime, int, list[str], bool]]:
        days = board.week(site.app, DANA, date.fromisoformat(day))
        return [(e.at, e.notice_id, e.accounts, e.draft) for d in days for e in d.entries]

    assert week_of("2027-03-15") == [(due, made, ["feed"], False)]
    assert week_of("2027-03-08") == [] and week_of("2027-03-22") == []


def crowd(inst: Instance, day: datetime, count: int) -> list[int]:
    """``count`` approved one-off notices due on ``day``, a minute apart from its time."""
    made = []
    for i in range(count):
        due = day + timedelta(minutes=i)
        draft = NoticeDraft(
            category="special-event",
            title=f"Block party {i + 1} on {day:%A}",
            text=f"Block party {i + 1} on Mass Ave.",
            targets=["feed"],
            publish_at=due,
        )
        notice_id = notices.draft(inst.app, DANA, draft).notice.id
        assert notice_id is not None
        notices.approve(inst.app, ABE, notice_id)
        made.append(notice_id)
    return made


def test_a_crowded_day_shows_its_first_entries_and_links_the_board_for_that_day(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """A day holding more than ``PER_DAY`` entries shows the first ``PER_DAY`` in time order
    and "and N more", linking the board filtered to that day, which lists them all and not
    the next day's; the JSON says the same; a bad day is a 400."""
    wednesday = datetime(2027, 3, 17, 14, 0, tzinfo=UTC)
    many = crowd(site, wednesday, board.PER_DAY + 2)
    (thursday,) = crowd(site, wednesday + timedelta(days=1), 1)
    days = board.week(site.app, DANA, date(2027, 3, 15), per_day=3)
    assert [(len(d.entries), d.more) for d in days] == [
        (0, 0), (0, 0), (3, board.PER_DAY - 1), (1, 0), (0, 0), (0, 0), (0, 0),
    ]  # fmt: skip
    assert [e.notice_id for e in days[2].entries] == many[:3]
    with signed_in(web, "rita") as rita:
        page = rita.get("/notices/week", params={"from": "2027-03-15"}).text
        shown = {int(i) for i in re.findall(r'<a href="/notices/(\d+)">Notice', page)}
        assert shown == {*many[: board.PER_DAY], thursday}
        assert (
            'and 2 more — <a href="/notices?day=2027-03-17">see the board filtered to '
            "Wednesday 17 March</a>"
        ) in page
        week = rita.get("/notices/week.json", params={"from": "2027-03-15"}).json()["days"]
        assert (len(week[2]["entries"]), week[2]["more"]) == (board.PER_DAY, 2)
        assert week[2]["board"] == "/notices?day=2027-03-17" and week[3]["more"] == 0
        filtered = rita.get("/notices", params={"day": "2027-03-17"})
        assert ids(filtered.text) == set(many)
        assert 'name="day" type="date" aria-describedby="day-hint" value="2027-03-17"' in (
            filtered.text
        )
        as_json = rita.get("/notices.json", params={"day": "2027-03-18"}).json()
        assert [n["id"] for n in as_json["notices"]] == [thursday]
        assert ids(rita.get("/notices", params={"day": "2027-03-19"}).text) == set()
        assert rita.get("/notices", params={"day": "Wednesday"}).status_code == 400


@pytest.mark.slow
def test_the_board_with_filters_and_late_notices_and_the_week_pass_axe(
    browser_site: Instance,  # noqa: F811
    browser: Any,
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the board with its filters, a late
    notice's decision forms and a failed notice's Retry button, after a refused decision, on
    the week's calendar, and on a crowded week and the board its "more" link opens, at 320
    and 1280 pixels, without sideways scrolling."""
    notice_id = late(browser_site)
    failed(browser_site)  # a Retry button in its row
    zone = ZoneInfo(browser_site.settings.agency.time_zone)
    crowded = (browser_site.clock.now() + timedelta(days=2)).astimezone(zone).date()
    crowd(browser_site, datetime.combine(crowded, time(9), zone), board.PER_DAY + 1)
    for later in (1, 3, 4):  # a few on other days of the week too
        crowd(browser_site, datetime.combine(crowded + timedelta(days=later), time(14), zone), 2)
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "dana", "/notices")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                if width == 1280:
                    screenshot(page, "console-board", whole=False)  # the top of a long board
                page.fill("#text", "road")
                page.click("form.filter button[type=submit]")
                page.wait_for_url(re.compile(r".*text=road.*"))
                assert not (found := axe_violations(page)), describe(found)
                page.click(f"text=Publish notice {notice_id} now")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.goto(f"{url}/notices/week")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.goto(f"{url}/notices/week?from={crowded:%Y-%m-%d}")
                if width == 1280:
                    assert not (found := axe_violations(page)), describe(found)
                    screenshot(page, "console-week")
                page.click(f"text=see the board filtered to {crowded:%A %d %B}")
                page.wait_for_url(re.compile(r".*day=.*"))
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
            finally:
                context.close()
    assert not events(browser_site.app.engine, action="late-published")


def failed(inst: Instance) -> int:
    """A published notice whose feed post is then recorded as failed, as the worker records
    a post the platform refused (the state this test starts from)."""
    from sqlmodel import Session, select

    from bulletin.models import Delivery, Notice

    notice_id = drafted(inst.app)
    notices.approve(inst.app, ABE, notice_id)
    with Session(inst.app.engine) as session:
        post = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).one()
        post.state, post.last_error = DeliveryState.FAILED, "[400] the platform refused it"
        notice = session.get(Notice, notice_id)
        assert notice is not None
        notice.state = NoticeState.FAILED
        session.add_all([post, notice])
        session.commit()
    return notice_id


def test_a_failed_notice_is_retried_from_the_board_and_the_command_line(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The board shows the failure's reason and a Retry button; a reader's retry is refused
    by the application layer; a dispatcher's sends the post again and the daemon publishes
    it; a second retry has nothing failed to send; ``notice retry`` does the same."""
    notice_id = failed(site)
    path = f"/notices/{notice_id}/retry"
    with signed_in(web, "rita") as rita:
        board = rita.get("/notices").text
        assert "[400] the platform refused it" in board
        refused = rita.post(path, data={"csrf": csrf_for(board, path)})
        assert refused.status_code == 403 and "roles" in error_of(refused.text)
    with signed_in(web, "dana") as dana:
        token = csrf_for(dana.get("/notices").text, path)
        assert dana.post(path, data={}).status_code == 403
        done = dana.post(path, data={"csrf": token})
        assert done.status_code == 200, done.text
        assert f"Notice {notice_id}: failed posts sent again (feed)." in done.text
        again = dana.post(path, data={"csrf": token})
        assert again.status_code == 403 and "approved" in error_of(again.text)
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    with signed_in(web, "rita") as rita:
        assert rita.get(f"/notices/{notice_id}.json").json()["state"] == "published"
    [queued] = events(site.app.engine, action="retry-queued")
    assert queued.actor == "dana"
    other = failed(site)
    out = run(site, "notice", "retry", str(other), login="abe")
    assert f"notice {other}: sent again to feed" in out
    result = invoke(site, "notice", "retry", str(other), login="abe")
    assert result.exit_code != 0 and "is approved" in result.output
