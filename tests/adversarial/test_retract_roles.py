"""Retracting or cancelling a published notice takes an approver: a clerk cannot post free
text through a retraction, a dispatcher cannot delete posts or stop a published series, and
the text of a retraction is checked by the content policy. A dispatcher may answer with an
approved retraction template's text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bulletin.models import Delivery, Notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.templates import add_template, approve_template
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke
from tests.test_approval import USERS, add

LINK_RULE = """
[[policy.rules]]
id = "off-site-link"
message = "links only to the department's own site"
patterns = ["https?://(?!lexingtonma\\\\.gov)"]
"""
LINK = "Follow us at https://x.com/LexingtonPD for updates."


@pytest.fixture
def staffed(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin with [users] and a policy rule against links off the agency's site."""
    inst = make_instance(tmp_path, db_url, USERS + LINK_RULE)
    yield inst
    inst.app.close()


def _published(inst: Instance, **changes: object) -> int:
    """A notice drafted by dana, approved by chief and published to the feed."""
    notice_id = add(inst, "dana", **changes)
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    if "recurrence" in changes:  # from 10:00 local to the first occurrence, 09:00 tomorrow
        inst.clock.advance(timedelta(hours=23, seconds=5))
    daemon = Daemon(inst.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    return notice_id


def _withdrawn_template(inst: Instance) -> None:
    """Template ``withdrawn``, written by lt and approved by chief."""
    engine, settings, clock = inst.app.engine, inst.settings, inst.clock
    text = "This notice has been withdrawn."
    add_template(engine, settings, clock, "withdrawn", "road-closure", text, {}, "lt")
    approve_template(engine, settings, clock, "withdrawn", "chief")


def _run(inst: Instance, *args: str, login: str | None = None) -> tuple[int, str]:
    result = invoke(inst, *args, login=login)
    return result.exit_code, result.stderr.strip()


def _acts(inst: Instance, notice_id: int) -> list[str]:
    with Session(inst.app.engine) as session:
        return [
            d.kind
            for d in session.exec(select(Delivery).where(Delivery.notice_id == notice_id))
            if d.kind != "post"
        ]


def _state(inst: Instance, notice_id: int) -> str:
    with Session(inst.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return notice.state


@pytest.mark.parametrize(
    ("who", "how", "says"),
    [
        ("clerk", ("--text", LINK), "user 'clerk' does not hold the approver role"),
        ("dana", ("--text", "Withdrawn."), "user 'dana' does not hold the approver role"),
        ("dana", ("--delete",), "user 'dana' does not hold the approver role"),
        ("dana", (), "user 'dana' does not hold the approver role"),
        ("clerk", ("--template", "withdrawn"), "user 'clerk' does not hold the approver role"),
        ("chief", ("--text", LINK), "the retraction text breaks the content policy: off-site-link"),
    ],
    ids=[
        "clerk free text",
        "dispatcher free text",
        "dispatcher delete",
        "dispatcher default text",
        "clerk with template",
        "approver text with an off-site link",
    ],
)
def test_a_published_notice_is_retracted_only_as_the_roles_allow(
    staffed: Instance, who: str, how: tuple[str, ...], says: str
) -> None:
    """Each refused retraction says why in one line; nothing is queued, the notice stays
    published."""
    _withdrawn_template(staffed)
    notice_id = _published(staffed)
    code, stderr = _run(
        staffed, "notice", "retract", str(notice_id), "--reason", "r", *how, login=who
    )
    assert code == 1, stderr
    assert len(stderr.splitlines()) == 1 and says in stderr, stderr
    assert _acts(staffed, notice_id) == []
    assert _state(staffed, notice_id) == "published"


def test_an_approver_or_a_dispatcher_with_a_template_retracts(staffed: Instance) -> None:
    """The approver's own text (within policy) and a dispatcher's approved template each
    queue a retraction reply; an approver may delete."""
    _withdrawn_template(staffed)
    by_template, by_text, deleted = (_published(staffed) for _ in range(3))
    for notice_id, as_who, how in (
        (by_template, "dana", ("--template", "withdrawn")),
        (by_text, "chief", ("--text", "Withdrawn: see lexingtonma.gov.")),
        (deleted, "lt", ("--delete",)),
    ):
        code, stderr = _run(
            staffed, "notice", "retract", str(notice_id), "--reason", "r", *how, login=as_who
        )
        assert code == 0, stderr
        assert _state(staffed, notice_id) == "retracted"
    assert _acts(staffed, deleted) == ["deletion"]


def test_a_dispatcher_cannot_cancel_a_published_series(staffed: Instance) -> None:
    """A daily notice with a published occurrence is cancelled by an approver, not by a
    dispatcher."""
    notice_id = _published(
        staffed, category="crime-prevention", recurrence="daily;at=09:00", until_cancelled=True
    )
    code, stderr = _run(staffed, "notice", "cancel", str(notice_id), "--reason", "r", login="dana")
    assert code == 1
    assert stderr == (
        "bulletin: error: user 'dana' does not hold the approver role: cancelling a published "
        "notice needs an approver"
    )
    with Session(staffed.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None and notice.next_occurrence_at is not None
    code, stderr = _run(staffed, "notice", "cancel", str(notice_id), "--reason", "r", login="chief")
    assert code == 0, stderr
