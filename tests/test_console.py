"""The dispatcher's and approver's console: the board and its JSON twin, one notice with its
audit trail, the approval queue (previews, policy findings, cost, approve with override),
send back and edit, compose. Over a real uvicorn on a free port, against SQLite and
PostgreSQL; pages checked with axe-core in Chromium at 320 and 1280 pixels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from bulletin.app import Actor, App, notices, templates
from bulletin.audit import events
from bulletin.publisher.notices import NoticeDraft
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run
from tests.test_web import PEOPLE, add_with_password, csrf_of, error_of, serving, sign_in

DANA = Actor("dana", "session", "127.0.0.1")  # a dispatcher
ANN = Actor("ann", "session", "127.0.0.1")  # a dispatcher who is an approver too
ROAD = "Road closed: Mass Ave between Winthrop Rd and Pleasant St until 6 pm."
GUILT = "The suspect was found guilty of the Main St burglaries."


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin with dana (dispatcher), abe (approver), ann (dispatcher and approver),
    rita (reader) and cleo (clerk), each with a password."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    for name, roles in PEOPLE_ROLES.items():
        add_with_password(inst.app, name, *roles)
    yield inst
    inst.app.close()


PEOPLE_ROLES = {
    "dana": ["dispatcher"],
    "abe": ["approver"],
    "ann": ["dispatcher", "approver"],
    "rita": ["reader"],
    "cleo": ["clerk"],
}


def drafted(
    app: App,
    text: str = ROAD,
    who: Actor = DANA,
    category: str = "road-closure",
    follow_up: str | None = None,
) -> int:
    """A draft to the feed; with ``follow_up``, it expires in six hours and is followed up."""
    expires = app.clock.now() + timedelta(hours=6) if follow_up else None
    made = notices.draft(
        app,
        who,
        NoticeDraft(
            category=category, text=text, targets=["feed"], expires_at=expires, follow_up=follow_up
        ),
    )
    assert made.notice.id is not None
    return made.notice.id


def csrf_for(page: str, action: str) -> str:
    """The form token of the form posting to ``action`` on ``page``."""
    found = re.search(
        rf'action="{re.escape(action)}"[^>]*>\s*<input type="hidden" name="csrf" value="(\w+)"',
        page,
    )
    assert found, page
    return found.group(1)


@pytest.fixture
def web(site: Instance) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


@contextmanager
def signed_in(url: str, name: str) -> Iterator[httpx.Client]:
    """A client over the socket, signed in as ``name``."""
    with httpx.Client(timeout=30, base_url=url, follow_redirects=False) as client:
        assert sign_in(client, name).status_code == 303
        yield client


def test_the_board_shows_what_went_out_with_links_and_as_json(site: Instance, web: str) -> None:
    """A reader sees the board: the published notice with a link to its post, the draft
    waiting; the state filter narrows it; the JSON twin says the same; the notice's page has
    its text, deliveries with their post links and its audit trail."""
    published = drafted(site.app)
    notices.approve(site.app, Actor("abe", "session"), published)
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    waiting = drafted(site.app, "Parade on Mass Ave Saturday at 10 am.", category="special-event")
    with signed_in(web, "rita") as rita:
        page = rita.get("/notices")
        assert page.status_code == 200
        assert f'href="/notices/{published}"' in page.text
        assert f'href="/notices/{waiting}"' in page.text
        [post] = re.findall(r'<a href="([^"]+)">post<span', page.text)
        assert post.startswith("http")
        only = rita.get("/notices", params={"state": "published"}).text
        assert f'href="/notices/{published}"' in only
        assert f'href="/notices/{waiting}"' not in only
        as_json = rita.get("/notices.json").json()
        assert as_json == rita.get("/notices", params={"format": "json"}).json()
        states = {n["id"]: n["state"] for n in as_json["notices"]}
        assert states == {published: "published", waiting: "draft"}
        [feed] = next(n for n in as_json["notices"] if n["id"] == published)["deliveries"]
        assert feed == {"delivery": "feed", "state": "published", "url": post, "problem": None}
        one = rita.get(f"/notices/{published}")
        assert one.status_code == 200
        assert ROAD in one.text and f'href="{post}"' in one.text
        for action in ("drafted", "approved"):
            assert f'<th scope="row">{action}</th>' in one.text, action
        detail = rita.get(f"/notices/{published}.json").json()
        assert detail["text"] == ROAD and detail["deliveries"][0]["url"] == post
        trail = [(e["action"], e["about"]) for e in detail["audit"]]
        assert trail[:2] == [("drafted", "notice"), ("approved", "notice")]
        assert ("published", "feed") in trail and ("notice-published", "notice") in trail
        assert rita.get("/notices", params={"state": "nonsense"}).status_code == 400
        assert rita.get("/notices/999999").status_code == 404


def test_the_board_shows_posts_late_after_downtime_with_the_reason(
    site: Instance, web: str
) -> None:
    """A routine notice whose time passed while no daemon ran is listed as late, and its
    delivery says why it waits (on the page and in the JSON)."""
    notice_id = drafted(site.app)
    notices.approve(site.app, Actor("abe", "session"), notice_id)
    site.clock.advance(timedelta(hours=2))
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    with signed_in(web, "rita") as rita:
        page = rita.get("/notices").text
        assert "Late after downtime" in page
        assert f'<a href="/notices/{notice_id}">Notice {notice_id}</a> (road-closure)' in page
        assert "120 minutes past its time when a daemon saw it" in page
        board = rita.get("/notices.json").json()
        assert [n["id"] for n in board["late"]] == [notice_id]
        [feed] = board["notices"][0]["deliveries"]
        assert feed["state"] == "late" and "waiting for a decision" in feed["problem"]


def test_the_console_needs_sign_in_and_a_role_that_sees_notices(site: Instance, web: str) -> None:
    """Without a session every console page goes to sign-in and back; a clerk is refused
    by the application layer (403)."""
    with httpx.Client(timeout=30, base_url=web, follow_redirects=False) as anonymous:
        for path in ("/notices", "/notices/1", "/approvals", "/notices.json"):
            got = anonymous.get(path)
            assert got.status_code == 303, path
            assert got.headers["location"] == f"/sign-in?next={path}"
    with signed_in(web, "cleo") as cleo:
        for path in ("/notices", "/approvals", "/notices.json"):
            got = cleo.get(path)
            assert got.status_code == 403, path
            assert "holds none of the roles" in got.text


def test_the_queue_shows_previews_findings_cost_and_author(site: Instance, web: str) -> None:
    """Each draft in the queue shows its author, the text as the feed will post it with its
    count and cost, and the policy finding with the matched words and whether an approver
    may override it."""
    notice_id = drafted(site.app, GUILT, category="public-safety-advisory")
    with signed_in(web, "abe") as abe:
        page = abe.get("/approvals")
        assert page.status_code == 200
        assert f"Notice {notice_id}: public-safety-advisory" in page.text
        assert "By <strong>dana</strong>" in page.text
        assert f"{len(GUILT)} of " in page.text and "estimated cost $" in page.text
        assert "<strong>guilt-or-prosecution</strong> (blocks)" in page.text
        assert "matched “<mark>found guilty</mark>”" in page.text
        assert "An approver may override it, with a reason." in page.text
        assert 'value="guilt-or-prosecution"' in page.text
        queued = abe.get("/approvals.json").json()["notices"]
        [review] = [n["review"] for n in queued]
        assert review["blocking"] == ["guilt-or-prosecution"]
        assert review["previews"] == {"feed": [GUILT]}


def test_approving_through_the_page(site: Instance, web: str) -> None:
    """The approver approves (the form needs its token); a blocking finding refuses a plain
    approval with its rule named, and approving with an override and a reason goes through
    and is audited; the board then shows both approved, and published after the daemon."""
    plain = drafted(site.app)
    risky = drafted(site.app, GUILT, category="public-safety-advisory")
    with signed_in(web, "abe") as abe:
        token = csrf_of(abe.get("/approvals").text)
        assert abe.post(f"/approvals/{plain}", data={}).status_code == 403
        assert abe.post(f"/approvals/{plain}", data={"csrf": "0" * 64}).status_code == 403
        done = abe.post(f"/approvals/{plain}", data={"csrf": token})
        assert done.status_code == 303
        assert "is approved" in abe.get(done.headers["location"]).text
        refused = abe.post(f"/approvals/{risky}", data={"csrf": token})
        assert refused.status_code == 403
        assert "guilt-or-prosecution" in error_of(refused.text)
        no_reason = {"csrf": token, "with_override": "1", "override": "guilt-or-prosecution"}
        assert abe.post(f"/approvals/{risky}", data=no_reason).status_code == 400
        reason = "Quoting the jury's verdict from the court's press release."
        done = abe.post(f"/approvals/{risky}", data={**no_reason, "reason": reason})
        assert done.status_code == 303
        [override] = events(site.app.engine, action="policy-overridden")
        assert (override.actor, override.via, override.reason) == ("abe", "session", reason)
        states = {n["id"]: n["state"] for n in abe.get("/notices.json").json()["notices"]}
        assert states == {plain: "approved", risky: "approved"}
        run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
        states = {n["id"]: n["state"] for n in abe.get("/notices.json").json()["notices"]}
        assert states == {plain: "published", risky: "published"}


def test_self_approval_and_a_dispatcher_are_refused_through_the_page(
    site: Instance, web: str
) -> None:
    """The two-person rule and the approver role come from the application layer: ann may
    not approve her own notice, dana (a dispatcher) may not approve at all."""
    own = drafted(site.app, who=ANN)
    for name, expected in (("ann", "Ann wrote notice"), ("dana", "approver role")):
        with signed_in(web, name) as person:
            token = csrf_of(person.get("/approvals").text)
            refused = person.post(f"/approvals/{own}", data={"csrf": token})
            assert refused.status_code == 403, name
            assert expected in error_of(refused.text)
    assert not events(site.app.engine, action="approved")


def test_send_back_and_edit_through_the_pages(site: Instance, web: str) -> None:
    """An approver sends a draft back with a comment (the form needs its token); it cannot
    be approved until edited; its author sees the comment on the notice page and edits it
    (nobody else may); the edit is revision 2 in the audit trail, and the approval names it."""
    notice_id = drafted(site.app)
    comment = "Say which detour drivers should take."
    with signed_in(web, "abe") as abe:
        queue = abe.get("/approvals").text
        token = csrf_of(queue)
        back = f"/approvals/{notice_id}/send-back"
        back_token = csrf_for(queue, back)
        assert abe.post(back, data={"comment": comment}).status_code == 403
        assert abe.post(back, data={"csrf": token, "comment": comment}).status_code == 403
        assert abe.post(back, data={"csrf": back_token, "comment": " "}).status_code == 400
        done = abe.post(back, data={"csrf": back_token, "comment": comment})
        assert done.status_code == 303
        queue = abe.get(done.headers["location"]).text
        assert "is sent back to its author" in queue and comment in queue
        refused = abe.post(f"/approvals/{notice_id}", data={"csrf": token})
        assert refused.status_code == 403 and "sent back to dana" in error_of(refused.text)
        edit_token = csrf_of(abe.get(f"/notices/{notice_id}/edit").text)
        refused = abe.post(f"/notices/{notice_id}/edit", data={"csrf": edit_token, "text": "x"})
        assert refused.status_code == 403
        assert "does not hold the dispatcher role" in error_of(refused.text)
    new_text = ROAD + " Detour by Worthen Rd."
    with signed_in(web, "dana") as dana:
        page = dana.get(f"/notices/{notice_id}").text
        assert comment in page and f'href="/notices/{notice_id}/edit"' in page
        form = dana.get(f"/notices/{notice_id}/edit").text
        assert comment in form
        assert dana.post(f"/notices/{notice_id}/edit", data={"text": new_text}).status_code == 403
        saved = dana.post(
            f"/notices/{notice_id}/edit", data={"csrf": csrf_of(form), "text": new_text}
        )
        assert saved.status_code == 303 and saved.headers["location"] == f"/notices/{notice_id}"
        detail = dana.get(f"/notices/{notice_id}.json").json()
        assert (detail["text"], detail["revision"], detail["sent_back"]) == (new_text, 2, None)
        assert detail["review"]["previews"] == {"feed": [new_text]}
        actions = [e["action"] for e in detail["audit"]]
        assert actions == ["drafted", "sent-back", "edited"]
    with signed_in(web, "abe") as abe:
        token = csrf_of(abe.get("/approvals").text)
        assert abe.post(f"/approvals/{notice_id}", data={"csrf": token}).status_code == 303
    [approved] = events(site.app.engine, action="approved")
    assert json.loads(approved.detail or "{}")["revision"] == 2


def test_an_edit_starts_the_approvals_over(tmp_path: Path, db_url: str) -> None:
    """A category needing two approvals: the first approval counts for revision 1 only; after
    an edit the same approver approves revision 2, and a second one completes it."""
    inst = make_instance(tmp_path, db_url, PEOPLE + "\n[publisher.approvals]\nroad-closure = 2\n")
    try:
        for name, roles in {**PEOPLE_ROLES, "amy": ["approver"]}.items():
            add_with_password(inst.app, name, *roles)
        notice_id = drafted(inst.app)
        abe, amy = Actor("abe", "session"), Actor("amy", "session")
        assert notices.approve(inst.app, abe, notice_id).approvals == 1
        notices.edit(inst.app, DANA, notice_id, ROAD + " Use Worthen Rd.")
        again = notices.approve(inst.app, abe, notice_id)
        assert (again.approvals, again.notice.state) == (1, "draft")
        done = notices.approve(inst.app, amy, notice_id)
        assert (done.approvals, done.notice.state) == (2, "approved")
    finally:
        inst.app.close()


def test_send_back_and_edit_on_the_command_line(site: Instance) -> None:
    """`notice send-back ID --comment` and `notice edit ID --text`, as JSON."""
    notice_id = drafted(site.app)
    sent = run(
        site,
        "notice",
        "send-back",
        str(notice_id),
        "--comment",
        "Too vague.",
        "--json",
        login="abe",
        clock=site.clock,
    )
    assert json.loads(sent) == {
        "id": notice_id,
        "state": "draft",
        "revision": 1,
        "comment": "Too vague.",
    }
    edited = run(
        site,
        "notice",
        "edit",
        str(notice_id),
        "--text",
        ROAD + " Detour posted.",
        "--json",
        login="dana",
        clock=site.clock,
    )
    assert json.loads(edited) == {"id": notice_id, "state": "draft", "revision": 2}
    refused = run(
        site,
        "notice",
        "edit",
        str(notice_id),
        "--text",
        "Other.",
        code=1,
        login="ann",
        clock=site.clock,
    )
    assert "only dana, who wrote notice" in refused


def test_compose_preview_queue_approve_and_publish(site: Instance, web: str) -> None:
    """A dispatcher composes a notice: Preview shows each target's count, cost and policy
    findings without storing anything; saving drafts it (times read as the command line reads
    them, in the agency's zone); the approver approves it from the queue and, after the
    daemon, the board shows it published with its post link."""
    with signed_in(web, "dana") as dana:
        page = dana.get("/notices/new").text
        assert '<option value="road-closure">road-closure (advisory)</option>' in page
        assert 'value="feed"' in page
        token = csrf_for(page, "/notices/new")
        form = {"category": "road-closure", "target": "feed", "text": GUILT, "at": "now"}
        assert dana.post("/notices/new", data={**form, "action": "preview"}).status_code == 403
        shown = dana.post("/notices/new", data={**form, "csrf": token, "action": "preview"})
        assert shown.status_code == 200
        assert f"{len(GUILT)} of " in shown.text and "estimated cost $" in shown.text
        assert "matched “<mark>found guilty</mark>”" in shown.text
        assert f">{GUILT}</textarea>" in shown.text  # the form keeps what was typed
        assert dana.get("/notices.json").json()["notices"] == []
        bad = dana.post("/notices/new", data={**form, "csrf": token, "at": "someday"})
        assert bad.status_code == 400 and "Cannot read time" in error_of(bad.text)
        later = {**form, "text": ROAD, "csrf": token, "at": "tomorrow 7am", "action": "draft"}
        saved = dana.post("/notices/new", data=later)
        assert saved.status_code == 303
        first = int(saved.headers["location"].rsplit("/", 1)[1])
        detail = dana.get(f"/notices/{first}.json").json()
        assert detail["publish_at"] == "2026-11-26T12:00:00+00:00"  # 7 am in New York
        saved = dana.post("/notices/new", data={**form, "text": ROAD, "csrf": token})
        notice_id = int(saved.headers["location"].rsplit("/", 1)[1])
        assert dana.get(f"/notices/{notice_id}.json").json()["state"] == "draft"
    with signed_in(web, "abe") as abe:
        queue = abe.get("/approvals").text
        assert f"Notice {notice_id}: road-closure" in queue
        approved = abe.post(f"/approvals/{notice_id}", data={"csrf": csrf_of(queue)})
        assert approved.status_code == 303
        run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
        board = abe.get("/notices.json").json()["notices"]
        [row] = [n for n in board if n["id"] == notice_id]
        assert row["state"] == "published" and row["deliveries"][0]["url"].startswith("http")
        assert f'href="/notices/{notice_id}"' in abe.get("/notices?state=published").text


def road_template(app: App) -> None:
    """An approved template with a text and a time variable."""
    variables = {"road": "str", "until": "time"}
    templates.add(app, DANA, "road-closed", "road-closure", TEMPLATE, variables)
    templates.approve(app, Actor("abe", "session"), "road-closed")


TEMPLATE = "Road closed: {road} until {until}. Use another route."


def test_a_notice_from_an_approved_template(site: Instance, web: str) -> None:
    """The compose page lists the approved templates; a template's form has one field per
    variable, typed; a value of the wrong type is refused with the variable named; filled in,
    the notice is approved by the template's approval and published."""
    road_template(site.app)
    with signed_in(web, "dana") as dana:
        page = dana.get("/notices/new").text
        assert 'href="/notices/new?template=road-closed"' in page
        form_page = dana.get("/notices/new", params={"template": "road-closed"}).text
        assert 'name="var-road"' in form_page and 'type="text"' in form_page
        assert "A time of day, e.g. 18:30 or 6:30 pm." in form_page
        token = csrf_for(form_page, "/notices/new")
        form = {
            "csrf": token,
            "template": "road-closed",
            "var-road": "Mass Ave",
            "var-until": "half past six",
            "target": "feed",
            "at": "now",
        }
        bad = dana.post("/notices/new", data=form)
        assert bad.status_code == 400 and "until" in error_of(bad.text)
        assert 'value="Mass Ave"' in bad.text  # what was typed stays
        done = dana.post("/notices/new", data={**form, "var-until": "18:30"})
        assert done.status_code == 303
        detail = dana.get(done.headers["location"] + ".json").json()
        assert detail["text"] == "Road closed: Mass Ave until 6:30 PM. Use another route."
        assert detail["state"] == "approved"
        assert dana.get("/notices/new", params={"template": "nothing"}).status_code == 404
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    with signed_in(web, "rita") as rita:
        assert rita.get(f"/notices/{detail['id']}.json").json()["state"] == "published"


def test_only_a_dispatcher_composes(site: Instance, web: str) -> None:
    """The compose page asks the application layer: a reader and an approver are refused."""
    for name in ("rita", "abe"):
        with signed_in(web, name) as person:
            got = person.get("/notices/new")
            assert got.status_code == 403, name
            assert "dispatcher role" in got.text


@pytest.fixture
def browser_site(tmp_path: Path) -> Iterator[Instance]:
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    for name, roles in PEOPLE_ROLES.items():
        add_with_password(inst.app, name, *roles)
    yield inst
    inst.app.close()


def browser_sign_in(page: Any, url: str, name: str, then: str) -> None:
    page.goto(f"{url}/sign-in?next={then}")
    page.fill("#name", name)
    page.fill("#password", "correct horse battery staple")
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}{then}")


NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"
# the elements that stick out on the right, for an assertion message
WIDEST = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth)
  .map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"""


@pytest.mark.slow
def test_console_pages_pass_axe_at_320_and_1280_pixels(
    browser_site: Instance, browser: Any
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the board, a notice, a notice whose
    follow-up went out, the approval queue (with a policy finding and a follow-up, and with
    an error), a notice sent back and its edit form, the compose form (empty, previewed, with
    an error) and a template's form, at 320 and 1280 pixels, and no page scrolls sideways."""
    app = browser_site.app
    published = drafted(app)
    followed = drafted(app, "Road closed: Bedford St.", follow_up="Bedford St has reopened.")
    for notice_id in (published, followed):
        notices.approve(app, Actor("abe", "session"), notice_id)
    run(browser_site, "daemon", "--once", "--max-wait", "0", clock=browser_site.clock)
    browser_site.clock.advance(timedelta(hours=6, minutes=1))
    run(browser_site, "daemon", "--once", "--max-wait", "0", clock=browser_site.clock)
    drafted(app, GUILT, category="public-safety-advisory", follow_up="The trial is over.")
    sent = drafted(app, "Road work on Bedford St.")
    notices.send_back(app, Actor("abe", "session"), sent, "Say when the work ends.")
    road_template(app)
    with serving(app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "ann", "/notices")
                pages = ("/notices", f"/notices/{published}", f"/notices/{followed}")
                for path in (*pages, f"/notices/{sent}", f"/notices/{sent}/edit", "/approvals"):
                    page.goto(f"{url}{path}")
                    if path in (f"/notices/{followed}", "/approvals"):
                        assert page.locator(".follow-ups blockquote").count() == 1, path
                    assert not (found := axe_violations(page)), f"{path}: {describe(found)}"
                    assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                if width == 320:  # the approver's phone
                    screenshot(page, "console-approvals-phone")
                page.click("text=/^Approve notice \\d+$/")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS)
                page.goto(f"{url}/notices/new?template=road-closed")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.goto(f"{url}/notices/new")
                assert not (found := axe_violations(page)), describe(found)
                page.fill("#text", GUILT)
                assert page.inner_text("#text-count") == f"{len(GUILT)} characters typed"
                page.click("button[value=preview]")
                page.wait_for_selector("#preview-heading")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#at", "someday")
                page.click("button[value=draft]")
                page.wait_for_selector("p.error")
                assert not (found := axe_violations(page)), describe(found)
            finally:
                context.close()


@pytest.mark.slow
def test_an_approver_approves_with_the_keyboard_alone(browser_site: Instance, browser: Any) -> None:
    """From the queue, Tab reaches the notice's Approve button and Enter approves it."""
    notice_id = drafted(browser_site.app)
    with serving(browser_site.app) as url:
        context = browser.new_context(viewport={"width": 320, "height": 640})
        page = context.new_page()
        try:
            browser_sign_in(page, url, "abe", "/approvals")
            target = f"Approve notice {notice_id}"
            for _ in range(40):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.textContent") == target:
                    break
            else:
                pytest.fail(f"Tab never reached {target!r}")
            page.keyboard.press("Enter")
            page.wait_for_selector("p.done")
            assert f"Notice {notice_id} is approved." in page.inner_text("p.done")
        finally:
            context.close()
    states = json.dumps([e.action for e in events(browser_site.app.engine, action="approved")])
    assert states == '["approved"]'
