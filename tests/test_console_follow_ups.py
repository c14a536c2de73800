"""A notice's follow-ups on the console: the approval queue and the notice page show each
follow-up's text (per language, marked with its lang), when it goes and to which accounts;
the notice page also shows how each one stands (pending, published with its post, failed).
Over a real uvicorn on a free port, against SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from bulletin.app import Actor, App, notices
from bulletin.app.notice_queries import show_notice
from bulletin.models import Delivery
from bulletin.publisher.delivery.states import move
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.notices import NoticeDraft
from bulletin.publisher.schedule import make_follow_ups
from bulletin.states import DeliveryKind, DeliveryState
from bulletin.timeparse import local_text
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.test_console import (
    DANA,
    ROAD,
    drafted,
    signed_in,
    site,  # noqa: F401  (a fixture)
    web,  # noqa: F401  (a fixture)
)
from tests.test_languages import LANGUAGES, SPANISH, bilingual_instance
from tests.test_web import PEOPLE, add_with_password, serving

ABE = Actor("abe", "session", "127.0.0.1")
REOPENED = "Mass Ave has reopened."
ABIERTA = "La calle Main está abierta."


def with_follow_up(
    app: App,
    follow_up: str = REOPENED,
    *,
    targets: Sequence[str] = ("feed",),
    languages: Sequence[LanguageVariant] = (),
    partial: bool = False,
    text: str = ROAD,
) -> int:
    """A draft by dana expiring in six hours, with ``follow_up`` (and ``languages``)."""
    made = notices.draft(
        app,
        DANA,
        NoticeDraft(
            category="road-closure",
            text=text,
            targets=targets,
            expires_at=app.clock.now() + timedelta(hours=6),
            follow_up=follow_up,
            follow_up_partial=partial,
            languages=languages,
        ),
    )
    assert made.notice.id is not None
    return made.notice.id


def article(page: str, notice_id: int) -> str:
    """The approval queue's article about notice ``notice_id``."""
    found = re.search(
        rf'<article class="pending" aria-labelledby="n{notice_id}-heading">(.*?)</article>',
        page,
        re.S,
    )
    assert found, page
    return found.group(1)


def words(html: str) -> str:
    """``html``'s text, tags dropped and spaces squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def in_six_hours(inst: Instance) -> str:
    """Six hours from now (a draft's expiry) as the pages show times: in the agency's zone."""
    return local_text(inst.clock.now() + timedelta(hours=6), inst.settings.agency.time_zone)


def test_the_queue_and_the_notice_page_show_a_draft_s_follow_up(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """An approver sees, beside the draft, the follow-up's text, when it goes (the notice's
    expiry in the agency's zone) and to which account; the notice page shows it pending, due
    at expiry; the JSON twins say the same. A notice without a follow-up shows none."""
    followed = with_follow_up(site.app)
    plain = drafted(site.app, "Parade on Mass Ave Saturday at 10 am.", category="special-event")
    expires = in_six_hours(site)
    assert expires.endswith(("EST", "EDT"))  # the agency's zone, as other times
    with signed_in(web, "abe") as abe:
        queue = abe.get("/approvals")
        assert queue.status_code == 200
        mine = article(queue.text, followed)
        assert f'<blockquote class="text" lang="en">{REOPENED}</blockquote>' in mine
        said = words(mine)
        assert f"Follow-up at expiry Goes when the notice expires, {expires}," in said
        assert "as a reply to each published post. " in said
        assert f"{REOPENED} To feed." in said
        assert "ollow-up" not in article(queue.text, plain)
        [queued] = [n for n in abe.get("/approvals.json").json()["notices"] if n["id"] == followed]
        [follow_up] = queued["follow_ups"]
        assert follow_up["text"] == REOPENED and follow_up["lang"] == "en"
        assert [(p["account"], p["state"]) for p in follow_up["posts"]] == [("feed", "pending")]
        page = abe.get(f"/notices/{followed}")
        assert page.status_code == 200
        assert f'<blockquote class="text" lang="en">{REOPENED}</blockquote>' in page.text
        assert f"feed: pending, due {expires}" in words(page.text)
        assert "ollow-up" not in abe.get(f"/notices/{plain}").text
        assert abe.get(f"/notices/{plain}.json").json()["follow_ups"] == []


def test_the_notice_page_shows_a_follow_up_published_with_its_post_and_one_failed(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """Once the notice expired, the page says when the follow-ups were queued and how each
    stands: a published one links to its post; a failed one says so, with its error."""
    published = with_follow_up(site.app)
    failing = with_follow_up(site.app, "Bedford St is open again.", text="Bedford St closed.")
    for notice_id in (published, failing):
        notices.approve(site.app, ABE, notice_id)
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    site.clock.advance(timedelta(hours=6, minutes=1))
    assert sorted(make_follow_ups(site.app.engine, site.clock.now())) == [published, failing]
    when = local_text(site.clock.now(), site.settings.agency.time_zone)
    with Session(site.app.engine) as session:
        [follow] = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == failing)
            .where(Delivery.kind == DeliveryKind.FOLLOW_UP)
        ).all()
        move(follow, DeliveryState.FAILED)
        follow.last_error = "rejected by the platform: duplicate"
        session.add(follow)
        session.commit()
    run(site, "daemon", "--once", "--max-wait", "0", clock=site.clock)
    with signed_in(web, "rita") as rita:
        detail = rita.get(f"/notices/{published}.json").json()
        [line] = detail["follow_ups"][0]["posts"]
        assert line["state"] == "published" and line["url"].startswith("http")
        posts = {d["url"] for d in detail["deliveries"] if d["delivery"] == "feed"}
        assert line["url"] not in posts  # the follow-up's own post, not the notice's
        page = rita.get(f"/notices/{published}").text
        said = words(page)
        assert f"Queued {when}, when the notice expired," in said
        assert f"feed: published {when}, the follow-up on feed" in said
        assert f'<a href="{line["url"]}">the follow-up<span class="visually-hidden">' in page
        bad = words(rita.get(f"/notices/{failing}").text)
        assert "feed: failed (rejected by the platform: duplicate)" in bad


def test_follow_ups_in_two_languages_carry_their_lang(tmp_path: Path, db_url: str) -> None:
    """A bilingual notice: each language's follow-up under its own heading, its text marked
    with its lang, to the accounts posting that language; a language left without one says
    so. Both on the approval queue and on the notice page."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + PEOPLE)
    try:
        add_with_password(inst.app, "abe", "approver")
        add_with_password(inst.app, "dana", "dispatcher")
        targets = ("feed", "feed-es")
        both = with_follow_up(
            inst.app,
            "Main St has reopened.",
            targets=targets,
            languages=[replace(SPANISH, follow_up=ABIERTA)],
        )
        english_only = with_follow_up(
            inst.app, "Main St is open.", targets=targets, languages=[SPANISH], partial=True
        )
        with serving(inst.app) as url, signed_in(url, "abe") as abe:
            queue = abe.get("/approvals").text
            page = abe.get(f"/notices/{both}").text
            for shown in (article(queue, both), page):
                assert f'<blockquote class="text" lang="es">{ABIERTA}</blockquote>' in shown
                assert '<blockquote class="text" lang="en">Main St has reopened.' in shown
                assert f'id="n{both}-follow-up-es"><span lang="es">español</span> (es)' in shown
                said = words(shown)
                assert "Follow-ups at expiry" in said and "in its language." in said
                assert "English (en, primary)" in said
            said = words(article(queue, both))
            assert "Main St has reopened. To feed." in said
            assert f"{ABIERTA} To feed, feed-es." in said
            said = words(page)
            assert "Main St has reopened. feed: pending" in said
            assert f"{ABIERTA} feed: pending" in said and "feed-es: pending" in said
            for shown in (article(queue, english_only), abe.get(f"/notices/{english_only}").text):
                assert "None: the es posts get no follow-up." in words(shown)
                assert '<blockquote class="text" lang="en">Main St is open.' in shown
    finally:
        inst.app.close()


def test_a_follow_up_s_text_is_escaped(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """A follow-up holding markup is shown as text on both pages, never run as script."""
    script = '<script>alert("x")</script> Mass Ave is open & clear.'
    notice_id = with_follow_up(site.app, script)
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Mass Ave is open &amp; clear."
    with signed_in(web, "abe") as abe:
        for path in ("/approvals", f"/notices/{notice_id}"):
            shown = abe.get(path).text
            assert f'<blockquote class="text" lang="en">{escaped}</blockquote>' in shown, path
            assert "<script>alert" not in shown, path


def test_a_post_that_will_not_go_gets_no_follow_up_and_one_left_out_says_why(
    tmp_path: Path, db_url: str
) -> None:
    """A cancelled post is not listed as getting a follow-up; once the follow-ups are queued,
    an account whose post was not published is listed as skipped, with the reason, on the
    notice page."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + PEOPLE)
    try:
        add_with_password(inst.app, "abe", "approver")
        add_with_password(inst.app, "dana", "dispatcher")
        notice_id = with_follow_up(
            inst.app,
            "Main St has reopened.",
            targets=("feed", "feed-es"),
            languages=[replace(SPANISH, follow_up=ABIERTA)],
        )
        notices.approve(inst.app, ABE, notice_id)
        with Session(inst.app.engine) as session:
            [spanish_only] = session.exec(
                select(Delivery)
                .where(Delivery.notice_id == notice_id)
                .where(Delivery.account == "feed-es")
            ).all()
            move(spanish_only, DeliveryState.CANCELLED)
            session.add(spanish_only)
            session.commit()

        def accounts() -> dict[str, list[tuple[str, str]]]:
            view = show_notice(inst.app, notice_id)
            return {f.lang: [(p.account, p.state) for p in f.posts] for f in view.follow_ups}

        assert accounts() == {"en": [("feed", "pending")], "es": [("feed", "pending")]}
        for _ in range(2):
            run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
        inst.clock.advance(timedelta(hours=6, minutes=1))
        assert make_follow_ups(inst.app.engine, inst.clock.now()) == [notice_id]
        assert accounts() == {
            "en": [("feed", "pending")],
            "es": [("feed", "pending"), ("feed-es", "skipped")],
        }
        with serving(inst.app) as url, signed_in(url, "abe") as abe:
            said = words(abe.get(f"/notices/{notice_id}").text)
            assert "feed-es: skipped (no published post to reply to)" in said
    finally:
        inst.app.close()
