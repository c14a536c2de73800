"""The command line acts as the OS user the kernel names, mapped through ``os_user``: a name
given with --as, --by or BULLETIN_USER may only be that account's; an admin acts for someone
else only with --on-behalf-of NAME --reason TEXT, audited as such. Open mode records names as
given. The OS user is injected as the clock is (``login=``), never through the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulletin.audit import events
from bulletin.identity import invoking_os_user
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import Passwd, invoke, run

PEOPLE = """
[users.ada]
roles = ["admin"]
os_user = "ada-login"

[users.dana]
roles = ["dispatcher", "approver"]
os_user = "dana"

[users.chief]
roles = ["approver"]
os_user = "chief"
"""
TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."
ADD = ("notice", "add", "--category", "road-closure", "--text", TEXT, "--target", "feed")


@pytest.fixture
def staffed(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """[users] with an admin, a dispatcher who also approves, and an approver."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    yield inst
    inst.app.close()


@pytest.fixture
def open_site(tmp_path: Path) -> Iterator[Instance]:
    """No accounts and no [users]: open mode."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    yield inst
    inst.app.close()


def drafted(inst: Instance, *extra: str, login: str, env: dict[str, str] | None = None) -> int:
    """A notice added by the OS user ``login``; its id."""
    result = invoke(inst, *ADD, *extra, "--json", login=login, env=env)
    assert result.exit_code == 0, result.output
    notice_id: int = json.loads(result.stdout)["id"]
    return notice_id


def error_of(inst: Instance, *args: str, code: int, **how: object) -> str:
    """The one error line of a command that must fail with ``code``."""
    result = invoke(inst, *args, **how)  # type: ignore[arg-type]
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("bulletin: error")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_the_os_user_acts_and_may_name_only_itself(staffed: Instance) -> None:
    """dana's login drafts as dana (audited via os-user); naming dana is fine; naming chief
    is refused in one line that says who the login maps to and what to do instead."""
    notice_id = drafted(staffed, login="dana")
    drafted(staffed, "--as", "dana", login="dana")
    line = error_of(staffed, *ADD, "--as", "chief", code=1, login="dana")
    assert "the OS user 'dana' acts as 'dana' only, not as 'chief'" in line
    assert "--on-behalf-of NAME --reason" in line
    line = error_of(staffed, "notice", "approve", str(notice_id), "--by", "chief", code=1,
                    login="dana")  # fmt: skip
    assert "acts as 'dana' only, not as 'chief'" in line
    [first, _] = events(staffed.app.engine, action="drafted")
    assert (first.actor, first.via) == ("dana", "os-user")


def test_bulletin_user_naming_someone_else_is_refused(staffed: Instance) -> None:
    """BULLETIN_USER is no way round it: naming another account is refused as --as is."""
    line = error_of(staffed, *ADD, code=1, login="dana", env={"BULLETIN_USER": "chief"})
    assert "the OS user 'dana' acts as 'dana' only, not as 'chief'" in line
    assert events(staffed.app.engine, action="drafted") == []
    drafted(staffed, login="dana", env={"BULLETIN_USER": "dana"})


def test_an_unmapped_os_user_is_refused(staffed: Instance) -> None:
    """A login that is no account's os_user may not act, even naming a real account."""
    line = error_of(staffed, *ADD, "--as", "dana", code=1, login="mallory")
    assert "the OS user 'mallory' is no account's os_user" in line
    assert "os_user" in line.split("os_user", 1)[1]  # the remedy names the setting
    assert events(staffed.app.engine, action="drafted") == []


def test_sudo_is_believed_only_from_root_or_the_data_owner(staffed: Instance) -> None:
    """SUDO_UID names the person when root (or the data directory's owner, the service's
    user) runs us; from anyone else it is ignored."""
    names = {0: "root", 1001: "dana", 4242: "mallory", 4343: "bulletin"}
    sudo = {"SUDO_UID": "1001", "SUDO_USER": "dana"}
    assert invoking_os_user(Passwd(0, names), sudo) == "dana"
    assert invoking_os_user(Passwd(4242, names), sudo) == "mallory"
    assert invoking_os_user(Passwd(0, names), {}) == "root"
    assert invoking_os_user(Passwd(0, names), {"SUDO_USER": "dana"}) == "dana"
    as_root = Passwd(0, names)
    drafted_by_sudo = invoke(staffed, *ADD, "--json", env=sudo, login=as_root)
    assert drafted_by_sudo.exit_code == 0, drafted_by_sudo.output
    line = error_of(staffed, *ADD, code=1, env=sudo, login=Passwd(4242, names))
    assert "the OS user 'mallory' is no account's os_user" in line
    line = error_of(staffed, *ADD, code=1, env=sudo, login=Passwd(4343, names))
    assert "the OS user 'bulletin' is no account's os_user" in line
    os.chown(staffed.data_dir, 4343, -1)  # `sudo -u bulletin`: the service's own user
    try:
        by_service = invoke(staffed, *ADD, "--json", env=sudo, login=Passwd(4343, names))
        assert by_service.exit_code == 0, by_service.output
    finally:
        os.chown(staffed.data_dir, 0, -1)
    assert [e.actor for e in events(staffed.app.engine, action="drafted")] == ["dana", "dana"]


def test_an_admin_acts_on_behalf_only_with_a_reason(staffed: Instance) -> None:
    """--on-behalf-of without --reason is a usage error; with it the act carries dana's
    name and the audit event names ada as the actor, dana and the reason beside her."""
    line = error_of(staffed, *ADD, "--on-behalf-of", "dana", code=2, login="ada-login")
    assert "acting on behalf of someone needs a reason (give --reason)" in line
    out = run(staffed, *ADD, "--on-behalf-of", "dana", "--reason", "dana phoned it in",
              "--json", stdout=True, login="ada-login")  # fmt: skip
    notice_id = json.loads(out)["id"]
    shown = json.loads(run(staffed, "notice", "show", str(notice_id), "--json", stdout=True))
    assert shown["author"] == "dana"
    [event] = events(staffed.app.engine, action="drafted")
    assert (event.actor, event.via, event.object_id) == ("ada", "os-user", str(notice_id))
    detail = json.loads(event.detail or "{}")
    assert (detail["on_behalf_of"], detail["on_behalf_reason"]) == ("dana", "dana phoned it in")
    assert f"ada for dana drafted      notice {notice_id}" in run(staffed, "audit")
    # a command with a --reason of its own shares it
    run(staffed, "notice", "cancel", str(notice_id), "--reason", "dana asked",
        "--on-behalf-of", "dana", login="ada-login")  # fmt: skip
    [cancelled] = events(staffed.app.engine, action="cancelled")
    assert cancelled.actor == "ada" and cancelled.reason == "dana asked"
    assert json.loads(cancelled.detail or "{}")["on_behalf_of"] == "dana"
    unknown = error_of(staffed, *ADD, "--on-behalf-of", "nobody", "--reason", "r", code=1,
                       login="ada-login")  # fmt: skip
    assert "unknown user 'nobody'" in unknown
    lone = error_of(staffed, *ADD, "--reason", "r", code=2, login="ada-login")
    assert "--reason is for acting --on-behalf-of someone" in lone


def test_only_an_admin_acts_on_behalf(staffed: Instance) -> None:
    """A dispatcher naming someone with --on-behalf-of is refused, reason or not."""
    line = error_of(staffed, *ADD, "--on-behalf-of", "chief", "--reason", "r", code=1,
                    login="dana")  # fmt: skip
    assert "user 'dana' does not hold the admin role" in line
    assert events(staffed.app.engine, action="drafted") == []


def test_the_two_person_rule_holds_on_behalf(staffed: Instance) -> None:
    """ada approving dana's notice on dana's behalf is dana approving her own: refused, as
    dana's own approval is; chief, the second person, may approve it."""
    notice_id = drafted(staffed, login="dana")
    line = error_of(staffed, "notice", "approve", str(notice_id), "--on-behalf-of", "dana",
                    "--reason", "r", code=1, login="ada-login")  # fmt: skip
    assert "dana wrote notice" in line and "may not approve it" in line
    line = error_of(staffed, "notice", "approve", str(notice_id), code=1, login="dana")
    assert "dana wrote notice" in line
    run(staffed, "notice", "approve", str(notice_id), login="chief")
    assert len(events(staffed.app.engine, action="approved")) == 1


def test_an_admin_is_one_person_however_many_names(tmp_path: Path) -> None:
    """An admin who drafted a notice herself may not also approve it on an approver's
    behalf: she would be both of the two people."""
    people = PEOPLE.replace('roles = ["admin"]', 'roles = ["admin", "dispatcher", "approver"]')
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", people)
    try:
        own = drafted(inst, login="ada-login")
        line = error_of(inst, "notice", "approve", str(own), "--on-behalf-of", "chief",
                        "--reason", "r", code=1, login="ada-login")  # fmt: skip
        assert "ada wrote or approved notice" in line and "on chief's behalf" in line
    finally:
        inst.app.close()


def test_open_mode_records_names_as_given(open_site: Instance) -> None:
    """Without accounts, --as names whoever it says (via as-given), the login is used
    otherwise (via os-user), and an author still may not approve their own notice."""
    notice_id = drafted(open_site, "--as", "pat", login="someone")
    drafted(open_site, login="someone")
    line = error_of(open_site, "notice", "approve", str(notice_id), "--by", "pat", code=1,
                    login="someone")  # fmt: skip
    assert "pat wrote notice" in line and "may not approve it" in line
    done = invoke(open_site, "notice", "approve", str(notice_id), login="lee")
    assert done.exit_code == 0, done.output
    [first, second] = events(open_site.app.engine, action="drafted")
    assert (first.actor, first.via) == ("pat", "as-given")
    assert (second.actor, second.via) == ("someone", "os-user")
    [approved] = events(open_site.app.engine, action="approved")
    assert (approved.actor, approved.via) == ("lee", "os-user")
