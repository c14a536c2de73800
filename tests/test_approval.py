"""Roles and approval, pre-approved templates, per-platform text, threads and cost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bulletin.app import App
from bulletin.connectors.sandbox import SANDBOX_ENV, SandboxServer
from bulletin.errors import Refused, UsageError
from bulletin.identity import is_open_mode
from bulletin.models import Approval, AuditEvent, Delivery, Notice
from bulletin.publisher.approval import approve_notice, review_notice
from bulletin.publisher.delivery import outgoing_post
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.publisher.templates import (
    add_template,
    approve_template,
    notice_from_template,
    parse_variables,
)
from bulletin.publisher.texts import measure
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.sandbox import x_connector

USERS = """
[users.dana]
roles = ["dispatcher"]
os_user = "dana"
[users.chief]
roles = ["approver"]
os_user = "chief"
[users.lt]
roles = ["approver", "dispatcher"]
os_user = "lt"
[users.clerk]
roles = ["clerk"]
os_user = "clerk"

[publisher.approvals]
default = 1
special-event = 2

[accounts.x]
platform = "x"
consumer_key_env = "X_KEY"
consumer_secret_env = "X_SECRET"
access_token_env = "X_TOKEN"
access_token_secret_env = "X_TOKEN_SECRET"
"""

MISSING = "Missing person: {name}, {age}, last seen {place} at {time}. Call {phone}."
MISSING_VARS = ["name:str", "age:int", "place:str", "time:time", "phone:phone"]
VALUES = {
    "name": "Jane Doe",
    "age": "82",
    "place": "Lexington Center",
    "time": "3:30 pm",
    "phone": "781 862 1212",
}
TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."


@pytest.fixture
def staffed(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin with [users] (dispatcher, approvers, clerk) on each database backend."""
    inst = make_instance(tmp_path, db_url, USERS)
    yield inst
    inst.app.close()


def draft(**changes: object) -> NoticeDraft:
    base: dict[str, object] = {"category": "road-closure", "text": TEXT, "targets": ("feed",)}
    base.update(changes)
    return NoticeDraft(**base)  # type: ignore[arg-type]


def add(inst: Instance, author: str = "dana", **changes: object) -> int:
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft(**changes), author)
    assert notice.id is not None
    return notice.id


def approve(inst: Instance, notice_id: int, who: str, **kw: object) -> str:
    return approve_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        notice_id,
        who,
        **kw,  # type: ignore[arg-type]
    ).state


def missing_template(inst: Instance, approver: str | None = "chief") -> None:
    engine, settings, clock = inst.app.engine, inst.settings, inst.clock
    add_template(
        engine,
        settings,
        clock,
        "missing",
        "missing-person",
        MISSING,
        parse_variables(MISSING_VARS),
        "lt",
    )
    if approver:
        approve_template(engine, settings, clock, "missing", approver)


def from_template(inst: Instance, values: dict[str, str] | None = None, **changes: object):  # type: ignore[no-untyped-def]
    return notice_from_template(
        inst.app.engine,
        inst.settings,
        inst.clock,
        "missing",
        VALUES if values is None else values,
        draft(**changes),
        "dana",
    )


# -- approval ------------------------------------------------------------------------------


def test_self_approval_is_refused(staffed: Instance) -> None:
    """An approver who wrote the notice may not approve it."""
    notice_id = add(staffed, author="lt")
    with pytest.raises(Refused, match=r"lt wrote notice .* may not approve it"):
        approve(staffed, notice_id, "lt")


def test_open_mode_still_refuses_self_approval(instance: Instance) -> None:
    """With no accounts and no [users], names are taken as given, yet nobody approves a
    notice or a template of their own; someone else may."""
    assert is_open_mode(instance.settings, instance.app.engine)
    notice_id = add(instance, author="dana")
    with pytest.raises(Refused, match=r"dana wrote notice .* may not approve it"):
        approve(instance, notice_id, "dana")
    assert approve(instance, notice_id, "lee") == "approved"
    missing_template(instance, approver=None)
    engine, settings, clock = instance.app.engine, instance.settings, instance.clock
    with pytest.raises(Refused, match="lt wrote template missing"):
        approve_template(engine, settings, clock, "missing", "lt")
    approve_template(engine, settings, clock, "missing", "chief")


def test_approval_needs_the_approver_role(staffed: Instance) -> None:
    """A dispatcher or clerk cannot approve; an unknown name is refused."""
    notice_id = add(staffed)
    for who in ("dana", "clerk"):
        with pytest.raises(Refused, match=f"{who}' does not hold the approver role"):
            approve(staffed, notice_id, who)
    with pytest.raises(Refused, match="unknown user 'mallory'"):
        approve(staffed, notice_id, "mallory")


def test_two_approvals_and_the_second_by_the_same_person(staffed: Instance) -> None:
    """special-event needs two approvals: the same person twice is refused, a third too."""
    notice_id = add(staffed, category="special-event")
    assert approve(staffed, notice_id, "chief") == "draft"
    with pytest.raises(Refused, match=r"chief already approved .* approval 2 of 2"):
        approve(staffed, notice_id, "chief")
    assert approve(staffed, notice_id, "lt") == "approved"
    with pytest.raises(Refused, match="already approved: it has all 2"):
        approve(staffed, notice_id, "chief")
    with Session(staffed.app.engine) as session:
        rows = session.exec(select(Approval).where(Approval.notice_id == notice_id)).all()
        due = [d.due_at for d in session.exec(select(Delivery))]
    assert [a.approver for a in rows] == ["chief", "lt"]
    assert due == [staffed.clock.now()]


def test_override_needs_a_reason(staffed: Instance) -> None:
    """A policy finding refuses approval; an override without a reason is a usage error;
    with a reason it is approved and the audit keeps the reason."""
    notice_id = add(staffed, category="general", text="The suspect committed the burglary.")
    with pytest.raises(Refused, match="breaks the content policy: guilt-or-prosecution"):
        approve(staffed, notice_id, "chief")
    with pytest.raises(UsageError, match="an override needs a reason"):
        approve(staffed, notice_id, "chief", overrides=["guilt-or-prosecution"])
    with pytest.raises(UsageError, match="unknown policy rule 'guilt'"):
        approve(staffed, notice_id, "chief", overrides=["guilt"], reason="r")
    state = approve(
        staffed,
        notice_id,
        "chief",
        overrides=["guilt-or-prosecution"],
        reason="the court entered the verdict today",
    )
    assert state == "approved"
    with Session(staffed.app.engine) as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "policy-overridden")
        ).one()
    assert (event.actor, event.reason) == ("chief", "the court entered the verdict today")


def test_policy_is_checked_again_before_publishing(tmp_path: Path, db_url: str) -> None:
    """A rule added after approval stops the delivery, which fails with the reason."""
    inst = make_instance(tmp_path, db_url)
    try:
        notice_id = add(inst, text="Heck of a storm tonight: stay home.")
        approve(inst, notice_id, "chief")
        strict = inst.settings.model_copy(
            update={
                "policy": inst.settings.policy.model_validate(
                    {"rules": [{"id": "mild", "kind": "words", "words": ["heck"], "message": "m"}]}
                )
            }
        )
        inst.app.replace_settings(strict)
        daemon = Daemon(inst.app)
        daemon.prepare()
        outcomes = daemon.dispatch_due()
        assert [(o.state, o.detail.split(":")[0]) for o in outcomes] == [
            ("failed", "content policy")
        ]
        assert "mild (block)" in outcomes[0].detail
    finally:
        inst.app.close()


# -- templates -----------------------------------------------------------------------------


def test_unknown_missing_and_mistyped_variables(staffed: Instance) -> None:
    """Unknown, missing or wrongly typed variables are one-line usage errors."""
    missing_template(staffed)
    with pytest.raises(UsageError, match="unknown variable 'nme' for template missing"):
        from_template(staffed, {**VALUES, "nme": "x"})
    without_phone = {k: v for k, v in VALUES.items() if k != "phone"}
    with pytest.raises(UsageError, match=r"needs variable phone \(phone\)"):
        from_template(staffed, without_phone)
    with pytest.raises(UsageError, match="variable age: 'eighty' is not a whole number"):
        from_template(staffed, {**VALUES, "age": "eighty"})
    with pytest.raises(UsageError, match="variable time: '25:00' is not a time of day"):
        from_template(staffed, {**VALUES, "time": "25:00"})


def test_template_not_approved(staffed: Instance) -> None:
    """A template nobody approved cannot be used."""
    missing_template(staffed, approver=None)
    with pytest.raises(Refused, match="template missing is not approved"):
        from_template(staffed)


def test_changed_template_voids_its_approval(staffed: Instance) -> None:
    """A new version of an approved template is not covered by the old approval."""
    missing_template(staffed)
    add_template(
        staffed.app.engine,
        staffed.settings,
        staffed.clock,
        "missing",
        "missing-person",
        MISSING.replace("Missing person", "MISSING"),
        parse_variables(MISSING_VARS),
        "lt",
    )
    with pytest.raises(Refused, match="was changed: version 2 is not approved"):
        from_template(staffed)


def test_template_self_approval_and_undeclared_placeholder(staffed: Instance) -> None:
    """The template's author may not approve it; every placeholder must be declared."""
    missing_template(staffed, approver=None)
    with pytest.raises(Refused, match="lt wrote template missing"):
        approve_template(staffed.app.engine, staffed.settings, staffed.clock, "missing", "lt")
    with pytest.raises(UsageError, match=r"placeholder \{road\} is not declared"):
        add_template(
            staffed.app.engine,
            staffed.settings,
            staffed.clock,
            "road",
            "road-closure",
            "Road closed: {road}",
            {},
            "lt",
        )


def test_a_variable_of_unknown_type_or_bad_name_is_refused(staffed: Instance) -> None:
    """Through the application layer (the API's and the console's way in, a mapping of name
    to type) as through ``--var``: a type or name the drafting would fail on is refused when
    the template is added, and nothing is stored."""
    from bulletin.app import Actor, templates

    for variables, said in [
        ({"road": "text"}, r"variable 'road:text': unknown type 'text' \(types: str, int"),
        ({"Road": "str"}, r"variable 'Road:str': a variable name is lower-case"),
    ]:
        with pytest.raises(UsageError, match=said):
            templates.add(
                staffed.app,
                Actor("lt"),
                "road",
                "road-closure",
                "Road closed: {road} {Road}",
                variables,
            )
    assert templates.list_all(staffed.app) == []


def test_dispatcher_template_notice_is_published_without_an_approver(staffed: Instance) -> None:
    """A dispatcher's notice from an approved template is published by the daemon at once,
    and the audit trail names whose template approval covered it."""
    missing_template(staffed)
    made = from_template(staffed)
    assert made.covered and made.notice.state == "approved"
    daemon = Daemon(staffed.app)
    daemon.prepare()
    outcomes = daemon.dispatch_due()
    assert [o.state for o in outcomes] == ["published"]
    feed = (staffed.data_dir / "feed.xml").read_text()
    assert (
        "Missing person: Jane Doe, 82, last seen Lexington Center at 3:30 PM. "
        "Call 781-862-1212." in feed
    )
    with Session(staffed.app.engine) as session:
        approval = session.exec(select(Approval)).one()
        event = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "approved", AuditEvent.object_id == str(made.notice.id)
            )
        ).one()
    assert (approval.approver, approval.via_template_id) == ("chief", made.template.id)
    assert event.actor == "dana"
    assert event.reason == "covered by template missing v1, approved by chief"
    assert json.loads(event.detail or "{}")["template_approved_by"] == "chief"


def test_template_notice_breaking_policy_waits_for_an_approver(staffed: Instance) -> None:
    """Filled-in values that break a rule are not covered: the notice stays a draft."""
    missing_template(staffed)
    made = from_template(staffed, {**VALUES, "name": "Jane Doe (DOB 04/12/1944)"})
    assert not made.covered and made.notice.state == "draft"
    assert [f.rule for f in made.findings] == ["personal-data"]


# -- per-platform text, length, threads, cost ----------------------------------------------


def test_x_over_length_is_refused_with_the_weighted_count(staffed: Instance) -> None:
    """A text too long for X is refused with its weighted length (emoji weigh 2)."""
    text = "Storm warning " + "🌀" * 140
    with pytest.raises(UsageError, match="the text for x is 294 weighted characters; x allows 280"):
        add(staffed, text=text, targets=("feed", "x"))
    with Session(staffed.app.engine) as session:
        assert session.exec(select(Delivery)).all() == []


def test_allow_thread_splits_into_numbered_parts(staffed: Instance) -> None:
    """With --allow-thread the X text becomes numbered parts that each fit; the feed keeps
    the whole text; each part is a reply to the one before."""
    text = " ".join(f"Detour step {i}: follow the signs past the common." for i in range(12))
    notice_id = add(staffed, text=text, targets=("feed", "x"), allow_thread=True)
    with Session(staffed.app.engine, expire_on_commit=False) as session:
        deliveries = {d.account: d for d in session.exec(select(Delivery))}
        notice = session.get_one(Notice, notice_id)
        review = review_notice(session, staffed.settings, notice)
    parts = deliveries["x"].parts or []
    assert len(parts) == 3
    assert [p.rsplit(" ", 1)[1] for p in parts] == ["1/3", "2/3", "3/3"]
    assert all(measure("x", p) <= 280 for p in parts)
    assert " ".join(p.rsplit(" ", 1)[0] for p in parts) == text
    assert deliveries["feed"].parts is None
    x_cost = next(t.cost for t in review.targets if t.account == "x")
    assert x_cost == pytest.approx(3 * 0.015)
    second = outgoing_post(notice, deliveries["x"], part=1, reply_to="100")
    assert (second.text, second.reply_to, second.key) == (
        parts[1],
        "100",
        f"notice-{notice_id}.{notice.uid}-part-2",
    )


def test_variants_per_platform_and_cost(staffed: Instance) -> None:
    """--text-for x gives X its own wording; a URL makes an X post cost $0.200."""
    notice_id = add(
        staffed,
        targets=("feed", "x"),
        variants={"x": "Mass Ave closed until 6 pm. Details: lexingtonma.gov/police"},
    )
    with Session(staffed.app.engine) as session:
        texts = {d.account: d.text for d in session.exec(select(Delivery))}
        review = review_notice(session, staffed.settings, session.get_one(Notice, notice_id))
    assert texts == {
        "feed": TEXT,
        "x": "Mass Ave closed until 6 pm. Details: lexingtonma.gov/police",
    }
    assert {t.account: t.cost for t in review.targets} == {"feed": 0.0, "x": 0.2}
    with pytest.raises(UsageError, match="the text for facebook: not a target"):
        add(staffed, targets=("feed",), variants={"facebook": "x"})


def test_the_follow_ups_are_in_the_estimated_cost(staffed: Instance) -> None:
    """A follow-up is a post on X too: the review of a notice with one counts its price
    beside the posts' (once per post it replies to), as the review of the draft did; one
    without a follow-up costs only its posts."""
    from datetime import timedelta

    from bulletin.publisher.approval import review_draft

    expires = staffed.clock.now() + timedelta(hours=6)
    with_follow_up = draft(
        targets=("feed", "x"), expires_at=expires, follow_up="Mass Ave has reopened."
    )
    notice_id = add(
        staffed, targets=("feed", "x"), expires_at=expires, follow_up="Mass Ave has reopened."
    )
    plain_id = add(staffed, targets=("feed", "x"), expires_at=expires)
    with Session(staffed.app.engine) as session:
        review = review_notice(session, staffed.settings, session.get_one(Notice, notice_id))
        plain = review_notice(session, staffed.settings, session.get_one(Notice, plain_id))
    assert review.follow_up_cost == pytest.approx(0.015)  # one reply on X, the feed is free
    assert review.cost == pytest.approx(0.015 + 0.015)
    assert review.as_json()["cost_usd"] == {
        "feed": 0.0,
        "x": 0.015,
        "follow-ups": 0.015,
        "total": 0.03,
    }
    assert plain.follow_up_cost == 0 and plain.cost == pytest.approx(0.015)
    assert "follow-ups" not in plain.as_json()["cost_usd"]  # type: ignore[operator]
    assert review_draft(staffed.settings, with_follow_up).cost == pytest.approx(review.cost)


def test_thread_and_variant_published_to_x(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The daemon posts the X variant as a numbered thread of replies on the sandbox, and the
    feed gets the notice's own text."""
    extra = SANDBOX_X.format(url=sandbox.url)
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", extra)
    inst.app.close()
    inst.app = App(inst.settings, SANDBOX_ENV, clock=inst.clock)
    try:
        long_x = " ".join(f"Detour step {i}: follow the signs past the common." for i in range(12))
        notice_id = add(
            inst, targets=("feed", "sandbox-x"), variants={"x": long_x}, allow_thread=True
        )
        approve(inst, notice_id, "chief")
        daemon = Daemon(inst.app)
        daemon.prepare()
        assert sorted(o.state for o in daemon.dispatch_due()) == ["published", "published"]
        with Session(inst.app.engine) as session:
            x = session.exec(select(Delivery).where(Delivery.account == "sandbox-x")).one()
        ids = x.thread_ids or []
        assert len(ids) == 3 and x.remote_id == ids[0]
        posts = {p.remote_id: p for p in x_connector(sandbox.url).list_posts().items}
        assert [posts[i].text.rsplit(" ", 1)[1] for i in ids] == ["1/3", "2/3", "3/3"]
        assert TEXT in (inst.data_dir / "feed.xml").read_text()
    finally:
        inst.app.close()


SANDBOX_X = """
[accounts.sandbox-x]
platform = "x"
base_url = "{url}"
consumer_key_env = "SANDBOX_X_CONSUMER_KEY"
consumer_secret_env = "SANDBOX_X_CONSUMER_SECRET"
access_token_env = "SANDBOX_X_ACCESS_TOKEN"
access_token_secret_env = "SANDBOX_X_ACCESS_TOKEN_SECRET"
"""
