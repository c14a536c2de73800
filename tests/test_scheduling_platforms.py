"""Corrections, retractions and follow-ups on X and Facebook through the sandbox, checked in
the sandbox's own state: replies exist with their parent, deleted posts are deleted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from bulletin.config.accounts import FacebookAccountSettings
from bulletin.models import Delivery, Notice, Record
from bulletin.publisher.amend import correct_notice, retract_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance
from tests.plugins.sandbox import Control
from tests.test_delivery_platforms import approve, drain, platforms, worker

__all__ = ["platforms"]  # the fixture, shared with test_delivery_platforms


def rows(inst: Instance, notice_id: int) -> list[Delivery]:
    with Session(inst.app.engine) as session:
        return list(
            session.exec(
                select(Delivery).where(Delivery.notice_id == notice_id).order_by(col(Delivery.id))
            )
        )


def sandbox_state(control: Control) -> dict[str, Any]:
    state: dict[str, Any] = control.get("state")
    return state


def tweet(control: Control, tweet_id: str) -> dict[str, Any]:
    found: dict[str, Any] = sandbox_state(control)["x"]["tweets"][tweet_id]
    return found


def published(inst: Instance, notice_id: int, kind: str = "post") -> dict[str, Delivery]:
    return {d.account: d for d in rows(inst, notice_id) if d.kind == kind}


def test_correction_is_a_reply_on_x_and_facebook(platforms: Instance, control: Control) -> None:
    """A correction goes out as a reply to each published post: on X a tweet replying to
    it, on Facebook the Page's comment on it; both are archived."""
    inst = platforms
    notice_id = approve(inst, "Maple St closed for paving until 5 pm.", "x", "facebook")
    w = worker(inst)
    drain(inst, w)
    posts = published(inst, notice_id)
    correct_notice(
        inst.app.engine,
        inst.settings,
        inst.clock.now(),
        notice_id,
        "Main St, not Maple St.",
        "wrong street in the first post",
        "sgt",
    )
    drain(inst, w)
    fixes = published(inst, notice_id, "correction")
    assert {a: d.state for a, d in fixes.items()} == {"x": "published", "facebook": "published"}
    reply = tweet(control, fixes["x"].remote_id or "")
    assert reply["text"] == "Correction: Main St, not Maple St."
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": posts["x"].remote_id}]
    comment = sandbox_state(control)["fb"]["comments"][fixes["facebook"].remote_id]
    assert comment["post_id"] == posts["facebook"].remote_id
    assert comment["message"] == "Correction: Main St, not Maple St."
    page = inst.settings.account("facebook", FacebookAccountSettings)
    assert comment["from"]["id"] == page.page_id
    with Session(inst.app.engine) as session:
        archived = session.exec(
            select(Record).where(Record.remote_id == fixes["x"].remote_id)
        ).one()
    assert archived.parent_id == posts["x"].remote_id


def test_retract_with_delete_removes_the_posts(platforms: Instance, control: Control) -> None:
    """retract --delete deletes the post on X and on Facebook (the sandbox marks them
    deleted) and posts nothing new."""
    inst = platforms
    notice_id = approve(inst, "Suspect sought in Elm St break-in.", "x", "facebook")
    w = worker(inst)
    drain(inst, w)
    posts = published(inst, notice_id)
    retract_notice(
        inst.app.engine,
        inst.settings,
        inst.clock.now(),
        notice_id,
        "names a juvenile",
        "lt",
        delete=True,
    )
    drain(inst, w)
    deletions = published(inst, notice_id, "deletion")
    assert {a: d.state for a, d in deletions.items()} == {"x": "deleted", "facebook": "deleted"}
    state = sandbox_state(control)
    assert state["x"]["tweets"][posts["x"].remote_id]["deleted"] is True
    assert state["fb"]["posts"][posts["facebook"].remote_id]["deleted"] is True
    assert len(state["x"]["tweets"]) == 1 and len(state["fb"]["posts"]) == 1


def test_retraction_reply_without_delete(platforms: Instance, control: Control) -> None:
    """retract without --delete leaves the post and answers it with the retraction text."""
    inst = platforms
    notice_id = approve(inst, "Fireworks show moved to Friday.", "x", "facebook")
    w = worker(inst)
    drain(inst, w)
    posts = published(inst, notice_id)
    retract_notice(
        inst.app.engine, inst.settings, inst.clock.now(), notice_id, "show cancelled", "lt"
    )
    drain(inst, w)
    replies = published(inst, notice_id, "retraction")
    reply = tweet(control, replies["x"].remote_id or "")
    assert reply["text"] == "This notice has been withdrawn."
    assert reply["referenced_tweets"][0]["id"] == posts["x"].remote_id
    assert tweet(control, posts["x"].remote_id or "")["deleted"] is False
    comment = sandbox_state(control)["fb"]["comments"][replies["facebook"].remote_id]
    assert comment["post_id"] == posts["facebook"].remote_id


def test_follow_up_at_expiry_replies_in_the_same_threads(
    platforms: Instance, control: Control
) -> None:
    """A closure with a follow-up: at expiry "reopened" is posted as a reply to the post on
    X and as the Page's comment on Facebook."""
    inst = platforms
    notice_id = approve(
        inst,
        "Mass Ave closed at Pleasant St.",
        "x",
        "facebook",
        category="road-closure",
        expires_at=inst.clock.now() + timedelta(hours=1),
        follow_up="Mass Ave has reopened.",
    )
    daemon = Daemon(inst.app)
    daemon.prepare()
    daemon.dispatch_due()
    inst.clock.advance(timedelta(hours=1, seconds=1))
    daemon.dispatch_due()
    posts = published(inst, notice_id)
    follow = published(inst, notice_id, "follow-up")
    assert {a: d.state for a, d in follow.items()} == {"x": "published", "facebook": "published"}
    assert tweet(control, follow["x"].remote_id or "")["referenced_tweets"] == [
        {"type": "replied_to", "id": posts["x"].remote_id}
    ]
    comment = sandbox_state(control)["fb"]["comments"][follow["facebook"].remote_id]
    assert (comment["post_id"], comment["message"]) == (
        posts["facebook"].remote_id,
        "Mass Ave has reopened.",
    )


def test_recurring_notice_on_x_is_not_refused_as_duplicate(
    platforms: Instance, control: Control
) -> None:
    """Two daily occurrences of the same tip reach X: the date line makes each text new, so
    the sandbox (which refuses duplicate text as X does) accepts both."""
    inst = platforms
    start = inst.clock.now()
    notice_id = approve(
        inst,
        "Never leave valuables in sight in your car.",
        "x",
        category="crime-prevention",
        recurrence="daily;at=10:00",
        until_cancelled=True,
        publish_at=start + timedelta(hours=1),
    )
    daemon = Daemon(inst.app)
    daemon.prepare()
    for _ in range(2):
        with Session(inst.app.engine) as session:
            notice = session.get(Notice, notice_id)
            assert notice is not None
        due = [d.due_at for d in rows(inst, notice_id) if d.state == "pending" and d.due_at]
        when = min(due) if due else notice.next_occurrence_at
        assert when is not None
        inst.clock.set(when + timedelta(seconds=1))
        assert [o.state for o in daemon.dispatch_due()] == ["published"]
    states = [(d.occurrence, d.state) for d in rows(inst, notice_id)]
    assert states == [(1, "published"), (2, "published")]
    texts = [t["text"] for t in sandbox_state(control)["x"]["tweets"].values()]
    assert len(set(texts)) == 2
