"""Capture sweeps through the sandbox: every post and comment archived once, versions for
edits, deletions and hidden comments, resumption after faults, quarantine, expired tokens."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bulletin.app import App
from bulletin.archiver.capture.sweep import sweep
from bulletin.archiver.store.base import object_key
from bulletin.archiver.verify import verify
from bulletin.archiver.warc import MIME_TYPE as WARC
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, SandboxServer
from bulletin.models import (
    CaptureSpend,
    CaptureSweep,
    Quarantine,
    RecordMedia,
)
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance
from tests.plugins.capture import (
    comments,
    exactly_once,
    fb_post,
    records,
    replies,
    run,
    thread_row,
    x_post,
)
from tests.plugins.sandbox import Control, x_connector


class Crash(BaseException):
    """Stands in for the process being killed between two pages."""


def commented_post(
    sandbox: SandboxServer, control: Control, account: str, count: int
) -> tuple[str, list[str], str]:
    """A post on ``account`` ("x" or "facebook") with ``count`` comments: the post's id, the
    comments' ids and the path (a pattern) the platform lists them at."""
    if account == "x":
        post = x_post(sandbox)
        return post, replies(control, post, count=count), r"/2/tweets/search/recent"
    post = fb_post(sandbox)
    return post, comments(control, post, count=count), rf"/{post}/comments"


def test_sweep_captures_posts_comments_replies_and_images(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A Page post, its comments and replies (one with an image) are archived once each;
    the image is its own object; sweeping again adds nothing."""
    post = fb_post(sandbox)
    [top] = comments(control, post, message="Is the detour signed?")
    [reply] = comments(control, post, message="Yes, via Elm", parent_id=top)
    [photo] = comments(
        control,
        post,
        message="Here is the sign",
        attachment_url=f"{sandbox.url}/_sandbox/media/sign.png",
    )
    first = run(site, "facebook")
    assert (first.result, first.archived) == ("ok", 4)
    by_id = {r.remote_id: r for r in records(site)}
    assert by_id[post].kind == "post"
    assert by_id[reply].parent_id == top and by_id[reply].thread_id == post
    with Session(site.app.engine) as session:
        [media] = [m for m in session.exec(select(RecordMedia)) if m.mime_type != WARC]
    assert media.record_id == by_id[photo].id and media.sha256
    assert site.app.store.get(object_key(media.sha256)).startswith(b"\x89PNG")
    assert by_id[top].posted_at is not None and by_id[top].posted_at != by_id[top].captured_at
    site.clock.advance(timedelta(hours=7))
    again = run(site, "facebook")
    assert (again.result, again.archived) == ("ok", 0)
    assert verify(site.app.engine, site.app.store).ok


def test_x_new_sweeps_use_since_id_and_charge_each_post_once_a_day(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A second sweep of a hot X thread asks only for replies newer than the cursor; the
    spend estimate charges each post read once per UTC day."""
    tweet = x_post(sandbox)
    first = replies(control, tweet, count=3)
    run(site, "x")
    assert thread_row(site, "x", tweet).since_id == max(first, key=int)
    later = replies(control, tweet, count=2)
    site.clock.advance(timedelta(minutes=10))
    result = run(site, "x")
    assert (result.seen, result.archived, result.reads_charged) == (2, 2, 2)
    exactly_once(site, first + later)
    with Session(site.app.engine) as session:
        spend = session.exec(select(CaptureSpend)).one()
    assert spend.reads == 6  # the post and five replies
    assert spend.usd == pytest.approx(6 * 0.005)


@pytest.mark.parametrize("fault", ["error", "delay"], ids=["500", "timeout"])
@pytest.mark.parametrize("account", ["x", "facebook"])
def test_fault_mid_pagination_resumes_from_the_stored_cursor(
    site: Instance, sandbox: SandboxServer, control: Control, account: str, fault: str
) -> None:
    """500s or timeouts after the first page stop the thread; the next sweep resumes at the
    stored cursor: no gap, no duplicate."""
    post, expected, path = commented_post(sandbox, control, account, 250)
    injected: list[bool] = []

    def after_page(what: str, pages: int) -> None:
        if what == post and not injected:
            injected.append(True)
            control.fault(fault, path, count=100, status=500, seconds=1.0)

    first = run(site, account, on_page=after_page, batch_items=100)
    assert first.result == "partial"
    assert thread_row(site, account, post).page_cursor is not None
    assert len(records(site, kind="comment")) == 100
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    second = run(site, account)
    assert second.result == "ok"
    assert second.seen == 150  # resumed at page two
    exactly_once(site, expected)
    assert thread_row(site, account, post).page_cursor is None


def test_comment_edited_between_two_pages(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """An edit to a comment already read waits for the next sweep (a new version); an edit
    to one not yet read is simply what is read."""
    post = fb_post(sandbox)
    ids = comments(control, post, count=150)
    early, late = ids[4], ids[120]

    def after_page(what: str, pages: int) -> None:
        if what == post and pages == 2:  # the posts page, then the first comments page
            for cid in (early, late):
                response = control.session.patch(
                    f"{control.url}/_sandbox/fb/comments/{cid}",
                    json={"message": "edited words"},
                    timeout=5,
                )
                response.raise_for_status()

    run(site, "facebook", on_page=after_page, batch_items=100)
    assert [(r.version, r.text) for r in records(site, remote_id=late)] == [(1, "edited words")]
    assert [r.version for r in records(site, remote_id=early)] == [1]
    site.clock.advance(timedelta(hours=7))
    run(site, "facebook")
    v1, v2 = records(site, remote_id=early)
    assert (v1.text, v2.text, v2.change, v2.previous_record_id) == (
        "comment 5",
        "edited words",
        "edited",
        v1.id,
    )
    exactly_once(site, [*ids, early])


@pytest.mark.parametrize("account", ["x", "facebook"])
def test_comment_deleted_between_two_sweeps(
    site: Instance, sandbox: SandboxServer, control: Control, account: str
) -> None:
    """A comment its author deletes gets a deleted version, stamped when first seen gone;
    the earlier version stays, word for word."""
    if account == "x":
        post = x_post(sandbox)
        keep, gone = replies(control, post, count=2)
        delete = f"{control.url}/_sandbox/x/tweets/{gone}"
    else:
        post = fb_post(sandbox)
        keep, gone = comments(control, post, count=2)
        delete = f"{control.url}/_sandbox/fb/comments/{gone}"
    run(site, account)
    control.session.delete(delete, timeout=5).raise_for_status()
    site.clock.advance(timedelta(hours=7))
    seen_gone_at = site.clock.now()
    run(site, account, full=True)
    v1, v2 = records(site, remote_id=gone)
    assert (v1.state, v2.state, v2.change) == ("visible", "deleted", "deleted")
    assert v2.text == v1.text and v2.captured_at == seen_gone_at
    assert v2.posted_at == v1.posted_at
    assert [r.state for r in records(site, remote_id=keep)] == ["visible"]
    site.clock.advance(timedelta(hours=7))
    run(site, account, full=True)  # still gone: nothing new
    assert len(records(site, remote_id=gone)) == 2


def test_hidden_comment_is_a_state_change(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A comment hidden on the Page is recorded as a hidden version, then unhidden."""
    post = fb_post(sandbox)
    [cid] = comments(control, post, message="off-topic rant")
    run(site, "facebook")
    site.app.connector("facebook").hide_comment(cid)
    site.clock.advance(timedelta(hours=7))
    run(site, "facebook")
    site.app.connector("facebook").hide_comment(cid, hidden=False)
    site.clock.advance(timedelta(hours=7))
    run(site, "facebook")
    assert [(r.state, r.change) for r in records(site, remote_id=cid)] == [
        ("visible", "new"),
        ("hidden", "hidden"),
        ("visible", "unhidden"),
    ]


def test_ten_thousand_comments_in_one_thread(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A thread with 10,000 comments is captured completely and once.

    ``bench/bench_capture.py`` prints how fast. One backend is enough here: the volume is
    the store's, not the database's.
    """
    if not site.settings.database_url.startswith("sqlite"):
        pytest.skip("the volume test runs on SQLite; the benchmark covers PostgreSQL")
    post = fb_post(sandbox)
    expected = comments(control, post, count=10_000)
    result = run(site, "facebook")
    assert (result.result, result.archived) == ("ok", 10_001)
    assert len({r.remote_id for r in records(site, kind="comment")}) == len(expected)


def test_malformed_answer_is_quarantined_and_other_threads_go_on(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A thread whose answer is not JSON is quarantined raw with the error; the other
    thread is captured; once the answer is good the thread is captured too."""
    bad, good = fb_post(sandbox, "first"), fb_post(sandbox, "second")
    bad_ids = comments(control, bad, count=2)
    good_ids = comments(control, good, count=2)
    control.fault("malformed", rf"/{bad}/comments", count=50)
    result = run(site, "facebook")
    assert (result.result, result.quarantined) == ("partial", 1)
    with Session(site.app.engine) as session:
        [row] = session.exec(select(Quarantine)).all()
    assert row.thread_id == bad and "not JSON" in row.error and row.raw_sha256
    assert site.app.store.get(object_key(row.raw_sha256)) == b'{"data": {"id": "12'
    exactly_once(site, good_ids)
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    run(site, "facebook")
    exactly_once(site, good_ids + bad_ids)
    report = verify(site.app.engine, site.app.store)
    assert report.ok and not report.notes  # the quarantined object is accounted for


def test_malformed_item_is_quarantined_the_rest_of_the_page_kept(sandbox: SandboxServer) -> None:
    """One element of an X page without an id is a reject; the others are items."""
    x = x_connector(sandbox.url)
    page = x._page({"data": [{"id": "12", "text": "ok"}, {"text": "no id"}], "meta": {}}, "comment")
    assert [i.remote_id for i in page.items] == ["12"]
    [reject] = page.rejects
    assert b"no id" in reject.raw and "KeyError" in reject.error


@pytest.mark.parametrize("account", ["x", "facebook"])
def test_item_quarantined_in_a_full_sweep_is_unknown_not_deleted(
    site: Instance, sandbox: SandboxServer, control: Control, account: str
) -> None:
    """A comment that comes back malformed in a full listing is quarantined and counts as
    seen: no "deleted" version is archived for it, and the sweep ends partial, not ok. Read
    well again, it adds nothing."""
    post, ids, path = commented_post(sandbox, control, account, 3)
    run(site, account)
    control.fault("malformed_item", path)
    site.clock.advance(timedelta(hours=7))
    result = run(site, account, full=True)
    assert [r.state for r in records(site, kind="comment")] == ["visible"] * 3
    assert (result.result, result.quarantined) == ("partial", 1)
    assert "quarantined a malformed answer" in result.errors[0]
    with Session(site.app.engine) as session:
        [row] = session.exec(select(Quarantine)).all()
        sweep_row = session.get(CaptureSweep, result.sweep_id)
    assert any(f"(item {i})" in row.error for i in ids) and row.thread_id == post
    assert sweep_row is not None and sweep_row.result == "partial"
    site.clock.advance(timedelta(hours=7))
    again = run(site, account, full=True)
    assert (again.result, again.archived, again.quarantined) == ("ok", 0, 0)
    exactly_once(site, ids)


def test_authors_are_named_as_the_platforms_show_them(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A reply on X is archived as by its username (not its user id), its user id and display
    name kept beside; a malformed ``includes`` leaves the bare user id, never a reject. A
    Facebook post is by the Page's name, its id kept beside."""
    tweet = x_post(sandbox)
    [reply] = replies(control, tweet, author="carla")
    page_post = fb_post(sandbox)
    run(site, "x")
    run(site, "facebook")
    [fb_record] = records(site, remote_id=page_post)
    assert fb_record.author == DEFAULT_FB_PAGE["name"]
    fb_snapshot = json.loads(site.app.store.get(object_key(fb_record.object_sha256)))
    assert fb_snapshot["item"]["extra"]["from"]["id"] == DEFAULT_FB_PAGE["id"]
    [record] = records(site, remote_id=reply)
    visitor = sandbox.state.x_visitor("carla")
    assert record.author == "carla"
    snapshot = json.loads(site.app.store.get(object_key(record.object_sha256)))
    assert snapshot["item"]["extra"]["author_id"] == visitor["id"]
    assert snapshot["item"]["extra"]["author_name"] == "carla"
    [post] = records(site, remote_id=tweet)
    assert post.author == "bulletin_sandbox"

    x = x_connector(sandbox.url)
    reply_json = {"id": "12", "text": "ok", "author_id": "77"}
    odd_includes: tuple[object, ...] = (
        [],
        {"users": 5},
        {"users": [{"id": "77"}]},
        {"users": ["x"]},
    )
    for includes in odd_includes:
        page = x._page({"data": [reply_json], "includes": includes, "meta": {}}, "comment")
        assert [i.author for i in page.items] == ["77"] and not page.rejects


def test_expired_token_is_alerted_and_other_accounts_go_on(
    site: Instance, sandbox: SandboxServer, control: Control, capsys: pytest.CaptureFixture[str]
) -> None:
    """Facebook refuses the token: its sweep ends auth-error (logged as an error); the X
    account is captured all the same."""
    fb = fb_post(sandbox)
    comments(control, fb)
    tweet = x_post(sandbox)
    expected = replies(control, tweet, count=2)
    control.fault("expired_token", r"^/v[\d.]+/", count=100)
    report = Daemon(site.app).run_once(max_wait=0)
    assert report.swept["x"] == 3
    exactly_once(site, expected)
    with Session(site.app.engine) as session:
        results = {s.account: s for s in session.exec(select(CaptureSweep)).all()}
    assert results["facebook"].result == "auth-error"
    assert "expired" in (results["facebook"].error or "")
    assert results["x"].result == "ok"


def test_killed_mid_sweep_then_restarted_loses_and_doubles_nothing(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A sweep cut off after three stored pages (as by SIGKILL), then a new process's sweep:
    every comment exactly once, the cut-off sweep marked interrupted."""
    post = fb_post(sandbox)
    expected = comments(control, post, count=450)

    def crash(what: str, pages: int) -> None:
        if pages == 4:
            raise Crash

    with pytest.raises(Crash):
        run(site, "facebook", on_page=crash, batch_items=100)
    site.app.close()
    fresh = App(site.settings, environ={}, clock=site.clock)
    fresh.connector_options = site.app.connector_options
    try:
        result = sweep(fresh.archiver, fresh.connector("facebook"), "facebook", site.clock)
    finally:
        fresh.close()
    assert result.result == "ok"
    exactly_once(site, expected)
    with Session(site.app.engine) as session:
        sweeps = session.exec(select(CaptureSweep).order_by(col(CaptureSweep.id)))
        states = [s.result for s in sweeps]
    assert states == ["interrupted", "ok"]
    assert verify(site.app.engine, site.app.store).ok


def test_an_edit_that_reverts_is_a_new_version(site: Instance) -> None:
    """A -> B -> A archives three versions: the revert is compared with the latest version,
    not with any version."""
    from bulletin.archiver.archive import Capture
    from bulletin.connectors.base import RemoteItem

    def item(text: str) -> Capture:
        return Capture(
            "facebook",
            "facebook",
            RemoteItem("comment", "c1", text, "v", None, parent_id="p", thread_id="p"),
        )

    archiver = site.app.archiver
    for text in ("A", "B", "A", "A"):
        archiver.archive([item(text)])
    assert [(r.version, r.text, r.change) for r in records(site, remote_id="c1")] == [
        (1, "A", "new"),
        (2, "B", "edited"),
        (3, "A", "edited"),
    ]
    # Within one batch too.
    archiver.archive([item("C"), item("D"), item("C")])
    assert [r.text for r in records(site, remote_id="c1")][3:] == ["C", "D", "C"]
    chain = records(site, remote_id="c1")
    assert all(b.previous_record_id == a.id for a, b in itertools.pairwise(chain))


def test_one_instance_sweeps_an_account_at_a_time(site: Instance, sandbox: SandboxServer) -> None:
    """On PostgreSQL a sweep holds an advisory lock per account (and schema): a second
    instance's sweep of the same account meanwhile does nothing."""
    from bulletin.archiver.capture.sweep import _claim

    if site.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one daemon per database (the daemon's instance lock)")
    fb_post(sandbox)
    with _claim(site.app.engine, "facebook") as held:
        assert held
        assert run(site, "facebook").result == "claimed-elsewhere"
        assert run(site, "x").result == "ok"
    assert run(site, "facebook").result == "ok"


def test_x_images_are_captured_with_their_authors_descriptions(
    site: Instance, sandbox: SandboxServer, control: Control, tmp_path: Path
) -> None:
    """A reply with two images, one described by its author: both images are archived as
    their own objects, the description kept in the snapshot, and the production's thread page
    shows it as the image's text alternative (the other says none was given)."""
    import json as json_module

    from bulletin.archiver.export import export_bundle, resolve

    tweet = x_post(sandbox)
    media = [
        {"url": f"{sandbox.url}/_sandbox/media/crash.png", "alt_text": "Two cars at Elm and Main"},
        {"url": f"{sandbox.url}/_sandbox/media/sign.png"},
    ]
    [reply] = replies(control, tweet, text="Saw this at 5pm", media=media)
    assert run(site, "x").result == "ok"
    [record] = [r for r in records(site) if r.remote_id == reply]
    snapshot = json_module.loads(site.app.store.get(object_key(record.object_sha256)))
    described = [(m["url"].rsplit("/", 1)[-1], m.get("alt_text")) for m in snapshot["media"]]
    assert described == [("crash.png", "Two cars at Elm and Main"), ("sign.png", None)]
    with Session(site.app.engine) as session:
        stored = session.exec(select(RecordMedia).where(RecordMedia.record_id == record.id)).all()
    stored = [m for m in stored if m.mime_type != WARC]  # the images, not the exchange
    assert len(stored) == 2 and all(m.sha256 for m in stored)
    scope = resolve(site.app.engine, site.settings, None, f"thread:{tweet}")
    out = tmp_path / "production"
    export_bundle(
        site.app.engine, site.app.store, site.settings, scope, out=out, actor="clerk1",
        now=site.clock.now,
    )  # fmt: skip
    pages = [p for p in (out / "data/threads").glob("*.html") if p.name != "index.html"]
    page = pages[0].read_text(encoding="utf-8")
    assert 'alt="Two cars at Elm and Main"' in page
    assert "No description provided by the author" in page
