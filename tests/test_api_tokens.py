"""API tokens: created through the command line and shown once, stored as a sha256 only,
listed without the token, revoked, expired by the injected clock, refused for a disabled
account; a token acts as its account with the account's roles, limited to its scopes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulletin.app import Actor, tokens, users
from bulletin.audit import events
from bulletin.errors import NotFound, Refused, UsageError
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke, run

PEOPLE = """
[users.ada]
roles = ["admin"]
os_user = "ada"

[users.dan]
roles = ["dispatcher"]
os_user = "dan"

[users.abe]
roles = ["approver"]
os_user = "abe"
"""
ADA = Actor("ada", "os-user", "console-1")
DAN = Actor("dan", "os-user", "console-2")
TOKEN = re.compile(r"^bltn_[A-Za-z0-9_-]{40,}$")


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database with an admin, a dispatcher and an approver."""
    inst = make_instance(tmp_path, db_url, PEOPLE)
    users.seed(inst.app)
    yield inst
    inst.app.close()


def stored_text(site: Instance) -> str:
    with site.app.engine.connect() as conn:
        rows = [
            r
            for t in ("api_tokens", "audit_events")
            for r in conn.execute(sa.text(f"SELECT * FROM {t}"))  # noqa: S608
        ]
    return "\n".join(str(v) for row in rows for v in row)


def test_create_prints_the_token_once_and_stores_its_sha256(site: Instance) -> None:
    """`token create` prints a bltn_ token; the table holds its sha256 and never the token;
    `token list` shows name, account and scopes but not the token; the creation is audited."""
    out = run(
        site,
        "token",
        "create",
        "--name",
        "cad",
        "--scope",
        "notices:write",
        "--scope",
        "notices:read",
        "--expires",
        "90d",
        login="dan",
        clock=site.clock,
    )
    [token] = [line for line in out.splitlines() if TOKEN.match(line)]
    assert "shown this once" in out
    with site.app.engine.connect() as conn:
        [row] = conn.execute(sa.text("SELECT name, token_sha256, expires_at FROM api_tokens"))
    assert row[0] == "cad"
    assert row[1] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored_text(site)
    listed = run(site, "token", "list", login="dan", clock=site.clock)
    assert "cad" in listed and "notices:write" in listed and token not in listed
    bearer = tokens.authenticate(site.app, token, "10.1.2.3")
    assert bearer.actor == Actor("dan", "token", "10.1.2.3")
    assert bearer.scopes == {"notices:write", "notices:read"}
    [made] = events(site.app.engine, action="token.created")
    assert (made.actor, made.object_id, made.via) == ("dan", "cad", "os-user")


def test_revoke_and_expiry_end_a_token(site: Instance) -> None:
    """A revoked token authenticates nothing; one past its expiry (the app's clock) neither;
    neither does one whose account is disabled."""
    first = tokens.create(site.app, DAN, "cad", ["notices:read"]).token
    run(site, "token", "revoke", "cad", login="dan", clock=site.clock)
    with pytest.raises(tokens.Unauthenticated):
        tokens.authenticate(site.app, first)
    assert [e.object_id for e in events(site.app.engine, action="token.revoked")] == ["cad"]
    second = tokens.create(
        site.app, DAN, "cad", ["notices:read"], expires_in=timedelta(days=1)
    ).token
    tokens.authenticate(site.app, second)
    site.clock.advance(timedelta(days=1))
    with pytest.raises(tokens.Unauthenticated):
        tokens.authenticate(site.app, second)
    third = tokens.create(site.app, DAN, "cad", ["notices:read"]).token
    users.disable(site.app, ADA, "dan")
    with pytest.raises(tokens.Unauthenticated):
        tokens.authenticate(site.app, third)
    for guess in ("", "bltn_", "bltn_" + "A" * 43, third + "x"):
        with pytest.raises(tokens.Unauthenticated):
            tokens.authenticate(site.app, guess)


def test_only_an_admin_makes_or_revokes_another_accounts_token(site: Instance) -> None:
    """--for another account is an admin's; so is revoking another's token."""
    refused = invoke(
        site,
        "token",
        "create",
        "--name",
        "x",
        "--scope",
        "notices:read",
        "--for",
        "abe",
        login="dan",
    )
    assert refused.exit_code == 1 and "admin role" in refused.output
    made = tokens.create(site.app, ADA, "cad", ["notices:write"], account="dan")
    assert tokens.authenticate(site.app, made.token).actor.name == "dan"
    with pytest.raises(Refused, match="another user's"):
        tokens.revoke(site.app, Actor("abe"), "cad")
    with pytest.raises(NotFound):
        tokens.create(site.app, ADA, "y", ["notices:read"], account="nobody")
    with pytest.raises(Refused, match="exists already"):
        tokens.create(site.app, DAN, "cad", ["notices:read"])
    assert [t.name for t in tokens.list_tokens(site.app, Actor("abe"))] == []
    assert [t.account for t in tokens.list_tokens(site.app, ADA)] == ["dan"]
    tokens.revoke(site.app, ADA, "cad")
    with pytest.raises(NotFound):
        tokens.revoke(site.app, ADA, "cad")


def test_bad_scopes_and_lifetimes_are_refused(site: Instance) -> None:
    with pytest.raises(UsageError, match="unknown scope"):
        tokens.create(site.app, DAN, "cad", ["notices:everything"])
    with pytest.raises(UsageError, match="at least one scope"):
        tokens.create(site.app, DAN, "cad", [])
    bad = invoke(
        site,
        "token",
        "create",
        "--name",
        "cad",
        "--scope",
        "notices:read",
        "--expires",
        "soon",
        login="dan",
    )
    assert bad.exit_code == 2 and "not a span" in bad.output


def test_a_scope_limits_what_the_token_may_do(site: Instance) -> None:
    """The scope check: a token without the scope is refused, one with it yields its actor."""
    bearer = tokens.authenticate(
        site.app, tokens.create(site.app, DAN, "cad", ["notices:read"]).token
    )
    assert tokens.require_scope(bearer, "notices:read") == bearer.actor
    with pytest.raises(Refused, match="does not hold the notices:write scope"):
        tokens.require_scope(bearer, "notices:write")
