"""The archive holds what the platforms hold: the snapshot taken when a post is published is
the platform's own representation, so the first sweep after it finds nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import Session, col, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import Delivery
from bulletin.publisher.amend import correct_notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.publisher.schedule import make_follow_ups
from tests.plugins.bulletin_app import Instance
from tests.plugins.capture import fb_post, records, run, x_post
from tests.plugins.cli import invoke
from tests.plugins.sandbox import Control

TARGETS = ("feed", "x", "facebook")


def drain(inst: Instance) -> None:
    app = inst.app
    worker = DeliveryWorker(app.engine, app.settings, app.clock, app.archiver, app.connector, "w")
    while claims := worker.claim():
        for claim in claims:
            worker.run(claim)


def publish_everything(inst: Instance) -> int:
    """One notice with a link, long enough to be a thread on X, then its correction and, at
    expiry, its follow-up, published to every target."""
    app, clock = inst.app, inst.clock
    text = " ".join(
        f"Main St is closed between Elm and Oak, part {n} of the detour." for n in "123456"
    )
    notice = create_notice(
        app.engine,
        inst.settings,
        clock,
        NoticeDraft(
            category="road-closure",
            text=text,
            targets=TARGETS,
            link="https://lexingtonma.gov/police/closures",
            allow_thread=True,
            expires_at=clock.now() + timedelta(hours=1),
            follow_up="Main St is open again.",
        ),
        "dispatcher",
    )
    notice_id = notice.id or 0
    approve_notice(app.engine, inst.settings, clock, notice_id, "chief")
    drain(inst)
    correct_notice(
        app.engine, inst.settings, clock.now(), notice_id, "Oak, not Ash.", "typo", "chief"
    )
    drain(inst)
    clock.advance(timedelta(hours=2))
    make_follow_ups(app.engine, clock.now())
    drain(inst)
    return notice_id


def test_first_sweep_after_publishing_finds_no_edit(site: Instance) -> None:
    """After publishing a notice with a link, a thread, a correction and a follow-up to the
    feed, X and Facebook and sweeping every account in full, `archive search --state edited`
    finds nothing, and each reply keeps the parent and thread it was published under."""
    publish_everything(site)
    with Session(site.app.engine) as session:
        published = session.exec(select(Delivery).order_by(col(Delivery.id))).all()
    assert [d.state for d in published] == ["published"] * 9
    for account in TARGETS:
        site.clock.advance(timedelta(hours=1))
        assert run(site, account, full=True).result == "ok"
    result = invoke(site, "archive", "search", "--state", "edited", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"] == []
    for delivery in published:
        [record] = records(site, remote_id=delivery.remote_id or "")
        assert record.id == delivery.archived_record_id and record.kind == "post"
    parents = {d.id: d for d in published}
    for reply in (d for d in published if d.parent_id):
        parent = parents[reply.parent_id or 0]
        [record] = records(site, remote_id=reply.remote_id or "")
        last_part: list[str | None] = [*(parent.thread_ids or [])[-1:]] or [parent.remote_id]
        assert (record.parent_id, record.thread_id) == (last_part[0], parent.remote_id)


def test_the_accounts_own_replies_are_archived_once_as_posts(site: Instance) -> None:
    """A thread's later parts, a correction and a follow-up come back in the conversation's
    replies too: they are the account's posts there as well, never visitor comments."""
    publish_everything(site)
    for account in TARGETS:
        site.clock.advance(timedelta(hours=1))
        run(site, account, full=True)
    assert records(site, kind="comment") == []
    ids = [(r.account, r.remote_id) for r in records(site)]
    assert len(ids) == len(set(ids))


def test_a_reply_of_the_accounts_own_deleted_on_the_platform_gets_a_deleted_version(
    site: Instance, control: Control
) -> None:
    """The correction, deleted on X by hand, is recorded as deleted by the next full sweep
    of its thread, as a visitor's reply would be; the version archived at publishing stays."""
    publish_everything(site)
    with Session(site.app.engine) as session:
        [correction] = session.exec(
            select(Delivery).where(Delivery.account == "x", Delivery.kind == "correction")
        ).all()
    remote_id = correction.remote_id or ""
    control.session.delete(f"{control.url}/_sandbox/x/tweets/{remote_id}", timeout=5)
    site.clock.advance(timedelta(hours=1))
    run(site, "x", full=True)
    assert [(r.kind, r.state, r.change) for r in records(site, remote_id=remote_id)] == [
        ("post", "visible", "new"),
        ("post", "deleted", "deleted"),
    ]


def test_reading_back_a_post_the_platform_no_longer_has_gives_none(
    site: Instance, sandbox: SandboxServer
) -> None:
    """X's 200 with a Not Found error, Graph's 100/33 and a feed without the entry all read
    back as None; a post still there reads back as the listings show it."""
    posts = {"x": x_post(sandbox), "facebook": fb_post(sandbox)}
    for account, remote_id in posts.items():
        connector = site.app.connector(account)
        [listed] = connector.list_posts().items
        assert connector.fetch_post(remote_id) == listed
        connector.delete_post(remote_id)
        assert connector.fetch_post(remote_id) is None
    assert site.app.connector("feed").fetch_post("notice-1") is None


def test_a_post_that_cannot_be_read_back_is_archived_as_sent(
    site: Instance, control: Control
) -> None:
    """X fails every read of the new post: it is published all the same and what was sent is
    archived at once, with its notice, so nothing published goes unrecorded."""
    control.fault("error", r"^/2/tweets/\d+$", method="GET", count=100, status=500)
    app = site.app
    notice = create_notice(
        app.engine,
        site.settings,
        site.clock,
        NoticeDraft(category="traffic", text="Route 2 closed at exit 53.", targets=("x",)),
        "dispatcher",
    )
    approve_notice(app.engine, site.settings, site.clock, notice.id or 0, "chief")
    drain(site)
    with Session(app.engine) as session:
        [delivery] = session.exec(select(Delivery)).all()
    assert delivery.state == "published" and delivery.archived_record_id
    [record] = records(site, remote_id=delivery.remote_id or "")
    assert (record.text, record.notice_id) == ("Route 2 closed at exit 53.", notice.id)
    assert record.author == "x"  # the account's name: not read from X (there, its username)
