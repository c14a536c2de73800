"""Archive-first moderation: hide, unhide and delete record the comment before acting."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import AuditEvent
from tests.plugins.bulletin_app import Instance
from tests.plugins.capture import comments, fb_post, records, replies, run, x_post
from tests.plugins.cli import run as run_cli
from tests.plugins.sandbox import Control


def bulletin(inst: Instance, *args: str, code: int = 0) -> str:
    return run_cli(inst, *args, code=code, stdout=not code)


def test_hide_captures_fresh_first_then_hides_and_records_who_why_when(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """The comment, edited since the last sweep, is archived as it is now before it is
    hidden; the action is an audit event and a moderation-actions record."""
    post = fb_post(sandbox)
    [cid] = comments(control, post, message="first words")
    run(site, "facebook")
    [v1] = records(site, remote_id=cid)
    control.session.patch(
        f"{control.url}/_sandbox/fb/comments/{cid}",
        json={"message": "a personal attack"},
        timeout=5,
    ).raise_for_status()
    out = bulletin(
        site,
        "comment",
        "hide",
        str(v1.id),
        "--reason",
        "personal attack",
        "--as",
        "clerk1",
        "--json",
    )
    done = json.loads(out.splitlines()[-1])
    assert sandbox.state.fb["comments"][cid]["is_hidden"] is True
    v1, v2, v3 = records(site, remote_id=cid)
    assert (v2.text, v2.state, v3.state) == ("a personal attack", "visible", "hidden")
    assert done["captured_before"] == v2.id and done["comment_record"] == v3.id
    [action] = records(site, kind="moderation")
    assert (action.series, action.author, action.text, action.parent_id) == (
        "moderation-actions",
        "clerk1",
        "personal attack",
        cid,
    )
    with Session(site.app.engine) as session:
        [event] = session.exec(
            select(AuditEvent).where(AuditEvent.action == "comment-hidden")
        ).all()
    assert (event.actor, event.reason, event.object_id) == ("clerk1", "personal attack", str(v3.id))
    bulletin(site, "comment", "unhide", str(v1.id), "--reason", "appeal granted", "--as", "clerk1")
    assert sandbox.state.fb["comments"][cid]["is_hidden"] is False
    assert records(site, remote_id=cid)[-1].state == "visible"


def test_delete_on_facebook_keeps_every_version(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """Deleting an obscene comment removes it from the Page; the archive keeps it."""
    post = fb_post(sandbox)
    [cid] = comments(control, post, message="obscene words")
    run(site, "facebook")
    [v1] = records(site, remote_id=cid)
    bulletin(site, "comment", "delete", str(v1.id), "--reason", "obscenity", "--as", "clerk1")
    assert sandbox.state.fb["comments"][cid]["deleted"] is True
    assert [r.state for r in records(site, remote_id=cid)] == ["visible", "deleted"]
    assert records(site, remote_id=cid)[-1].text == "obscene words"


def test_invalid_parameter_on_delete_is_a_failure_not_a_deletion(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """Graph's code 100 without subcode 33 (an invalid parameter) on the delete is a failure:
    exit 1, the failure audited, the comment still there and no "deleted" version."""
    post = fb_post(sandbox)
    [cid] = comments(control, post, message="obscene words")
    run(site, "facebook")
    [v1] = records(site, remote_id=cid)
    control.fault("invalid_parameter", rf"/{cid}$", method="DELETE")
    out = bulletin(site, "comment", "delete", str(v1.id), "--reason", "obscenity", code=1)
    assert "Graph error 100" in out and "Invalid parameter" in out
    assert sandbox.state.fb["comments"][cid]["deleted"] is False
    assert [r.state for r in records(site, remote_id=cid)] == ["visible"]
    with Session(site.app.engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert "comment-delete-failed" in actions and "comment-deleted" not in actions


def test_invalid_parameter_on_the_fresh_read_is_not_a_deletion(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """Code 100 without subcode 33 on the read before moderating: nothing is done and no
    "deleted" version is archived (the comment is not gone, the request was refused)."""
    post = fb_post(sandbox)
    [cid] = comments(control, post)
    run(site, "facebook")
    [v1] = records(site, remote_id=cid)
    control.fault("invalid_parameter", rf"/{cid}$", method="GET")
    out = bulletin(site, "comment", "hide", str(v1.id), "--reason", "spam", code=1)
    assert "nothing was done" in out
    assert sandbox.state.fb["comments"][cid]["is_hidden"] is False
    assert [r.state for r in records(site, remote_id=cid)] == ["visible"]


def test_delete_of_a_comment_already_gone_counts_as_done(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """Graph's 100/33 (no such object) on the delete: the comment is already gone, which is
    what was asked; the connector reports success."""
    post = fb_post(sandbox)
    [cid] = comments(control, post)
    connector = site.app.connector("facebook")
    connector.delete_comment(cid)
    connector.delete_comment(cid)  # Graph answers 100/33 now: already gone, no error
    assert connector.fetch_comment(post, cid) is None
    assert sandbox.state.fb["comments"][cid]["deleted"] is True


def test_hide_on_x_then_sweeps_keep_it_hidden(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """X does not report hidden replies; a hidden reply stays hidden in later captures."""
    tweet = x_post(sandbox)
    [rid] = replies(control, tweet, text="off-topic")
    run(site, "x")
    [v1] = records(site, remote_id=rid)
    bulletin(site, "comment", "hide", str(v1.id), "--reason", "off-topic", "--as", "clerk1")
    assert sandbox.state.x["tweets"][rid]["hidden"] is True
    run(site, "x", full=True)
    assert [r.state for r in records(site, remote_id=rid)] == ["visible", "hidden"]


def test_no_action_when_the_fresh_capture_fails(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A platform error while capturing first means nothing is hidden; exit 1."""
    post = fb_post(sandbox)
    [cid] = comments(control, post)
    run(site, "facebook")
    [v1] = records(site, remote_id=cid)
    control.fault("error", rf"/{cid}", count=100, status=500)
    out = bulletin(site, "comment", "hide", str(v1.id), "--reason", "spam", "--as", "c", code=1)
    assert "nothing was done" in out
    assert sandbox.state.fb["comments"][cid]["is_hidden"] is False
    assert len(records(site, remote_id=cid)) == 1


@pytest.mark.parametrize("what", ["post", "unknown"])
def test_refuses_what_is_not_a_comment(site: Instance, sandbox: SandboxServer, what: str) -> None:
    """A post cannot be hidden as a comment; an unknown record is not found."""
    fb_post(sandbox)
    run(site, "facebook")
    [post] = records(site, kind="post")
    target = str(post.id) if what == "post" else "999"
    bulletin(site, "comment", "hide", target, "--reason", "x", "--as", "c", code=1)
