"""The records actions' application layer: roles are checked there, whichever door calls it,
and its errors name a remedy, not a command-line flag."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bulletin.app import Actor, holds, redactions, requests, retention
from bulletin.cli import error_line
from bulletin.errors import NotFound, Refused
from tests.plugins.bulletin_app import Instance, make_instance

ROLES = {"clerk1": "clerk", "disp": "dispatcher", "rita": "records-officer"}


@pytest.fixture
def staffed(tmp_path: Path) -> Iterator[Instance]:
    """A Bulletin with [users]: a clerk and a dispatcher, and an empty archive."""
    users = "".join(f'\n[users.{name}]\nroles = ["{role}"]\n' for name, role in ROLES.items())
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'b.db'}", users)
    yield inst
    inst.app.close()


ACTIONS: list[tuple[str, Callable[[Instance, Actor], Any]]] = [
    (
        "clerk",
        lambda i, a: holds.place_hold(i.app, a, name="n", query="account:feed", reason="r"),
    ),
    ("clerk", lambda i, a: holds.release_hold(i.app, a, 1, reason="r")),
    (
        "clerk",
        lambda i, a: requests.open_request(
            i.app, a, requester="A", received=date(2026, 11, 2), description="d", query="x"
        ),
    ),
    ("clerk", lambda i, a: requests.close_request(i.app, a, 1, reason="r")),
    ("clerk", lambda i, a: redactions.remove_redaction(i.app, a, 1, reason="r")),
    ("admin", lambda i, a: retention.apply_schedule(i.app, a, dry_run=True)),
    ("records-officer", lambda i, a: retention.approve_batch(i.app, a, 1)),
]


@pytest.mark.parametrize(("role", "action"), ACTIONS)
def test_an_action_is_refused_to_who_lacks_its_role(
    staffed: Instance, role: str, action: Callable[[Instance, Actor], Any]
) -> None:
    """Given [users], when a dispatcher attempts a records action, the application layer
    refuses it naming the role, before anything else is looked at."""
    with pytest.raises(Refused, match=f"user 'disp' does not hold the {role} role"):
        action(staffed, Actor("disp"))


def test_reading_needs_no_role_and_a_clerk_gets_past_the_check(staffed: Instance) -> None:
    """Anyone (even an unnamed reader) lists holds; a clerk's release reaches the hold
    itself (there is none)."""
    assert holds.list_holds(staffed.app, Actor("")) == []
    with pytest.raises(NotFound, match="no hold 1"):
        holds.release_hold(staffed.app, Actor("clerk1"), 1, reason="r")


def test_a_records_officer_does_what_a_clerk_does(staffed: Instance) -> None:
    """A records officer holds the clerk's powers: places and releases a hold, opens and
    closes a request; a clerk is still refused a batch's approval naming the role."""
    placed = holds.place_hold(
        staffed.app, Actor("rita"), name="n", query="account:feed", reason="r", allow_empty=True
    )
    holds.release_hold(staffed.app, Actor("rita"), placed.hold.id or 0, reason="done")
    with pytest.raises(NotFound):
        requests.close_request(staffed.app, Actor("rita"), 1, reason="r")
    with pytest.raises(Refused, match="user 'clerk1' does not hold the records-officer role"):
        retention.approve_batch(staffed.app, Actor("clerk1"), 1)
    with pytest.raises(NotFound):
        retention.approve_batch(staffed.app, Actor("rita"), 1)


def test_an_empty_hold_names_its_remedy_and_the_command_line_its_flag(
    staffed: Instance,
) -> None:
    """A hold whose query matches nothing is refused with remedy ``allow-empty``: the message
    names no flag, the command line's line says --allow-empty; allowed, it is placed."""
    with pytest.raises(Refused) as refused:
        holds.place_hold(staffed.app, Actor("clerk1"), name="n", query="account:feed", reason="r")
    assert refused.value.remedy == "allow-empty"
    assert "--" not in str(refused.value)
    assert "use --allow-empty" in error_line(refused.value)
    placed = holds.place_hold(
        staffed.app, Actor("clerk1"), name="n", query="account:feed", reason="r", allow_empty=True
    )
    assert placed.records == 0 and placed.query == "account:feed"
