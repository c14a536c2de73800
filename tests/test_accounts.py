"""Accounts of people in the database: argon2id passwords set through one-time links, TOTP,
roles checked against the accounts, and audit events that say how and where from."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from bulletin.app import Actor, users
from bulletin.app.admin import initialise
from bulletin.app.holds import place_hold
from bulletin.audit import events
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.identity import require_role
from bulletin.users.models import UserAccount, UserToken
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke, run

PEOPLE = """
[users.ada]
roles = ["admin"]
os_user = "ada-login"

[users.dan]
roles = ["dispatcher"]
os_user = "dan"

[users.cleo]
roles = ["clerk"]
os_user = "cleo"

[auth]
require_mfa_for = ["approver"]

[web]
base_url = "https://bulletin.example.org/"
"""
PASSWORD = "correct horse battery staple"
ADA = Actor("ada", "os-user", "console-1")


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database whose [users] name an admin, a dispatcher and a clerk."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    yield inst
    inst.app.close()


def token_of(link: users.SetPasswordLink) -> str:
    prefix = "https://bulletin.example.org/set-password/"
    assert link.url.startswith(prefix)
    return link.url[len(prefix) :]


def add_with_password(site: Instance, name: str, *roles: str) -> None:
    link = users.add(site.app, ADA, name, list(roles))
    users.set_password(site.app, token_of(link), PASSWORD)


def every_stored_text(site: Instance) -> str:
    """Every value of every row of the tables a password or link could reach."""
    tables = ("user_accounts", "user_tokens", "audit_events")
    with site.app.engine.connect() as conn:
        rows = [r for t in tables for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]  # noqa: S608
    return "\n".join(str(value) for row in rows for value in row)


def test_a_password_is_stored_as_argon2id_and_nowhere_in_plain(
    site: Instance, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The hash is argon2id; neither the password nor the link's token is in any row, the
    audit or the log; the token is kept as its sha256 only."""
    link = users.add(site.app, ADA, "rosa", ["clerk"])
    token = token_of(link)
    assert link.expires_at == site.clock.now() + timedelta(hours=24)
    assert users.set_password(site.app, token, PASSWORD) == "rosa"
    with Session(site.app.engine) as session:
        account = session.exec(select(UserAccount).where(UserAccount.name == "rosa")).one()
        [stored] = session.exec(select(UserToken)).all()
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$v=19$")
    import hashlib

    assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    text = every_stored_text(site)
    assert PASSWORD not in text and token not in text
    assert users.verify_password(site.app, "rosa", PASSWORD) == Actor("rosa", "password", "")
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err + caplog.text


def test_a_link_expires_after_a_day_and_works_once(site: Instance) -> None:
    """A link 24 hours old is refused; a reset revokes the old link; a used link is refused."""
    first = users.add(site.app, ADA, "rosa", ["clerk"])
    site.clock.advance(timedelta(hours=24))
    with pytest.raises(Refused, match="not valid"):
        users.set_password(site.app, token_of(first), PASSWORD)
    second = users.reset(site.app, ADA, "rosa")
    third = users.reset(site.app, ADA, "rosa")
    with pytest.raises(Refused, match="not valid"):
        users.set_password(site.app, token_of(second), PASSWORD)
    with pytest.raises(UsageError, match="at least 12 characters"):
        users.set_password(site.app, token_of(third), "short")
    users.set_password(site.app, token_of(third), PASSWORD)  # a short try kept it usable
    with pytest.raises(Refused, match="not valid"):
        users.set_password(site.app, token_of(third), PASSWORD + "!")
    users.verify_password(site.app, "rosa", PASSWORD)


def test_unknown_user_wrong_password_and_disabled_account_get_one_message(
    site: Instance,
) -> None:
    """Signing in says the same whatever was wrong; a disabled account cannot act either."""
    add_with_password(site, "rosa", "clerk")
    messages = []
    for name, password in (("nobody", PASSWORD), ("rosa", PASSWORD + "x"), ("dan", PASSWORD)):
        with pytest.raises(Refused) as caught:
            users.verify_password(site.app, name, password)
        messages.append(str(caught.value))
    users.disable(site.app, ADA, "rosa")
    with pytest.raises(Refused) as caught:
        users.verify_password(site.app, "rosa", PASSWORD)
    messages.append(str(caught.value))
    assert set(messages) == {users.SIGN_IN_REFUSED}
    with pytest.raises(Refused, match="'rosa' is disabled"):
        place_hold(site.app, Actor("rosa"), name="n", query="x", reason="r", allow_empty=True)


def test_totp_is_required_for_a_configured_role(site: Instance) -> None:
    """[auth] require_mfa_for = ["approver"]: an approver signs in only with a valid code,
    the current one of the instance's clock (RFC 6238, as pyotp computes it)."""
    add_with_password(site, "abe", "approver")
    with pytest.raises(Refused, match="enrol a second factor"):
        users.verify_password(site.app, "abe", PASSWORD)
    uri = users.enrol_totp(site.app, ADA, "abe")
    assert uri.startswith("otpauth://totp/")
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    with pytest.raises(Refused, match="code is needed"):
        users.verify_password(site.app, "abe", PASSWORD)
    now = site.clock.now()
    wrong = totp.at(now + timedelta(minutes=10))
    with pytest.raises(Refused, match="wrong one-time code"):
        users.verify_password(site.app, "abe", PASSWORD, wrong)
    actor = users.verify_password(site.app, "abe", PASSWORD, totp.at(now), host="10.0.0.5")
    assert actor == Actor("abe", "password", "10.0.0.5")
    users.verify_totp(site.app, "abe", totp.at(now))
    # a clerk (not in require_mfa_for, not enrolled) needs no code
    add_with_password(site, "rosa", "clerk")
    assert users.verify_password(site.app, "rosa", PASSWORD).name == "rosa"


def test_only_an_admin_manages_accounts(site: Instance) -> None:
    """The application layer refuses a non-admin; once accounts exist they decide roles."""
    for action in (
        lambda: users.add(site.app, Actor("dan"), "eve", ["admin"]),
        lambda: users.disable(site.app, Actor("dan"), "cleo"),
        lambda: users.set_roles(site.app, Actor("dan"), "dan", ["admin"]),
        lambda: users.reset(site.app, Actor("dan"), "cleo"),
        lambda: users.enrol_totp(site.app, Actor("dan"), "cleo"),
    ):
        with pytest.raises(Refused, match="'dan' does not hold the admin role"):
            action()
    with pytest.raises(UsageError, match="unknown role 'boss'"):
        users.add(site.app, ADA, "eve", ["boss"])
    users.add(site.app, ADA, "eve", ["admin"])  # an account only in the database
    users.add(site.app, Actor("eve"), "fay", ["clerk"])
    with pytest.raises(Refused, match="exists already"):
        users.add(site.app, ADA, "fay", ["clerk"])
    users.set_roles(site.app, ADA, "dan", ["clerk"])
    engine = site.app.engine
    require_role(site.settings, "dan", "clerk", engine)
    with pytest.raises(Refused, match="does not hold the dispatcher role"):
        require_role(site.settings, "dan", "dispatcher", engine)
    with pytest.raises(Refused, match="unknown user 'zed'"):
        require_role(site.settings, "zed", None, engine)
    with pytest.raises(NotFound):
        users.disable(site.app, ADA, "zed")
    with pytest.raises(Refused, match="their own account"):
        users.disable(site.app, ADA, "ada")


def test_audit_events_say_how_and_where_from(site: Instance) -> None:
    """An event records its actor's way of authentication and host, through the account
    actions and through any other application-layer action; older-style names stay bare."""
    users.add(site.app, ADA, "rosa", ["clerk"])
    place_hold(
        site.app,
        Actor("cleo", "as-given", "desk-7"),
        name="n",
        query="account:feed",
        reason="r",
        allow_empty=True,
    )
    engine = site.app.engine
    [added] = events(engine, action="user.added")
    assert (added.actor, added.via, added.host) == ("ada", "os-user", "console-1")
    [held] = events(engine, action="hold-created")
    assert (held.actor, held.via, held.host) == ("cleo", "as-given", "desk-7")
    seeded = events(engine, action="user.seeded")
    assert {e.object_id for e in seeded} == {"ada", "dan", "cleo"}
    assert {e.via for e in seeded} == {None}


def test_seeding_from_users_is_idempotent(site: Instance) -> None:
    """[users.NAME] becomes an account with its roles and os_user, once; later runs (init
    again, an admin's action) add nothing and keep changes made in the database."""
    assert sorted(users.seed(site.app)) == ["ada", "cleo", "dan"]
    users.set_roles(site.app, ADA, "dan", ["dispatcher", "approver"])
    assert users.seed(site.app) == []
    initialise(site.app, ADA)
    shown = {u.name: u for u in users.list_users(site.app, Actor(""))}
    assert sorted(shown) == ["ada", "cleo", "dan"]
    assert shown["ada"].os_user == "ada-login" and shown["ada"].roles == ["admin"]
    assert shown["dan"].roles == ["dispatcher", "approver"]
    assert not shown["ada"].has_password
    assert len(events(site.app.engine, action="user.seeded")) == 3


def test_upgrade_from_0015_keeps_the_data(tmp_path: Path, db_url: str) -> None:
    """A database at 0015 with rows upgrades to the newest: the rows stay, old events' via and host
    are empty, and the account tables are there."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine, migrate

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0015")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO audit_events (at, actor, action, object_type, object_id) "
                "VALUES ('2026-03-01 00:00:00', 'chief', 'approved', 'notice', '7')"
            )
            conn.exec_driver_sql(
                "INSERT INTO accounts (name, platform, base_url, training, enabled) "
                "VALUES ('feed', 'feed', '', false, true)"
            )
        assert migrate(engine) == SCHEMA_REVISION >= "0016"
        check_schema(engine)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT actor, action, object_id, via, host FROM audit_events"
            ).all()
            assert [tuple(r) for r in rows] == [("chief", "approved", "7", None, None)]
            assert conn.exec_driver_sql("SELECT name FROM accounts").scalars().all() == ["feed"]
            assert conn.exec_driver_sql("SELECT count(*) FROM user_accounts").scalar() == 0
    finally:
        engine.dispose()


def test_the_user_commands(site: Instance) -> None:
    """bulletin user: add prints a link, set-password reads it and the password from stdin,
    list/roles/disable/reset/totp work and say errors in one line; the actor is audited
    with its host."""
    out = run(
        site, "user", "add", "rosa", "--role", "clerk", "--os-user", "rosa1", login="ada-login"
    )
    url = out.strip().splitlines()[-1]
    assert url.startswith("https://bulletin.example.org/set-password/")
    done = invoke(site, "user", "set-password", "rosa", input=f"{url}\n{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert "password set for rosa" in done.output
    listed = json.loads(run(site, "user", "list", "--json", stdout=True))["users"]
    rosa = next(u for u in listed if u["name"] == "rosa")
    assert rosa == {
        "name": "rosa",
        "roles": ["clerk"],
        "os_user": "rosa1",
        "disabled": False,
        "password_set": True,
        "totp": False,
        "email": None,
    }
    shown = json.loads(
        run(
            site,
            "user",
            "roles",
            "rosa",
            "--role",
            "clerk",
            "--role",
            "approver",
            "--json",
            stdout=True,
            login="ada-login",
        )
    )
    assert shown["roles"] == ["clerk", "approver"]
    totp = run(site, "user", "totp", "rosa", login="rosa1")
    assert "otpauth://totp/" in totp
    reset = json.loads(run(site, "user", "reset", "rosa", "--json", stdout=True, login="ada-login"))
    assert reset["url"].startswith("https://bulletin.example.org/set-password/")
    assert "disabled" in run(site, "user", "disable", "rosa", login="ada-login")
    refused = invoke(site, "user", "add", "eve", "--role", "admin", login="dan")
    assert refused.exit_code == 1
    assert refused.output.strip().count("\n") == 0
    assert "does not hold the admin role" in refused.output
    bad = invoke(site, "user", "set-password", "dan", input=f"{url}\n{PASSWORD}\n")
    assert bad.exit_code == 1 and "not valid" in bad.output
    [added] = events(site.app.engine, action="user.added")
    assert (added.via, added.host) == ("os-user", socket.gethostname())
    for command in ("add", "list", "disable", "roles", "reset", "totp", "set-password"):
        assert invoke(site, "user", command, "--help").exit_code == 0


def test_init_seeds_accounts_from_users(site: Instance) -> None:
    """`bulletin init` gives each [users.NAME] an account; running it again adds none."""
    run(site, "init")
    run(site, "init")
    names = [
        u["name"] for u in json.loads(run(site, "user", "list", "--json", stdout=True))["users"]
    ]
    assert names == ["ada", "cleo", "dan"]
    assert len(events(site.app.engine, action="user.seeded")) == 3


def test_accounts_end_open_mode(tmp_path: Path, db_url: str) -> None:
    """Without [users] anyone may add the first account; from then on the accounts decide:
    unknown names are refused, roles enforced and an author may not approve their notice."""
    from bulletin.app import notices
    from bulletin.publisher.notices import NoticeDraft

    inst = make_instance(tmp_path, db_url)
    try:
        users.add(inst.app, Actor("whoever"), "ada", ["admin"])
        with pytest.raises(Refused, match="unknown user 'whoever'"):
            users.add(inst.app, Actor("whoever"), "eve", ["admin"])
        users.add(inst.app, Actor("ada"), "dan", ["dispatcher", "approver"])
        draft = NoticeDraft(category="road-closure", text="Main St closed.", targets=("feed",))
        drafted = notices.draft(inst.app, Actor("dan"), draft)
        with pytest.raises(Refused, match="does not hold the dispatcher role"):
            notices.draft(inst.app, Actor("ada"), draft)
        with pytest.raises(Refused, match="may not approve"):
            notices.approve(inst.app, Actor("dan"), drafted.notice.id or 0)
    finally:
        inst.app.close()
