"""Mastodon through the sandbox: length as Mastodon counts it, the instance's own limit,
Idempotency-Key and reconciliation, text and images read back as sent, notices published as
threads, follow-ups, corrections and retractions, replies captured with their versions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlmodel import Session, col, select

from bulletin.connectors.base import Media, OutgoingPost
from bulletin.connectors.mastodon import mastodon_length, plain_text
from bulletin.connectors.platforms import platform
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.sandbox.mastodon_api import render_content
from bulletin.connectors.sandbox.state import DEFAULT_MASTODON_ACCOUNT
from bulletin.errors import Ambiguous, Rejected
from bulletin.models import Delivery
from bulletin.publisher.amend import correct_notice, retract_notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import records, run
from tests.plugins.cli import invoke
from tests.plugins.sandbox import (
    FAST_RETRY,
    FAST_TIMEOUT,
    Control,
    Visitor,
    mastodon_connector,
)

ACCOUNT = f"mastodon:{DEFAULT_MASTODON_ACCOUNT['id']}"


def created(control: Control) -> tuple[int, int]:
    counts = control.received(ACCOUNT)
    return counts.get("create_requests", 0), counts.get("created", 0)


def test_length_is_counted_as_mastodon_counts_it() -> None:
    """A URL counts 23 whatever its length, a family emoji one, a remote mention its local
    part; the registry measures the same way."""
    url = "https://www.example.gov/alerts/2026/road-closures/main-street-detour?lang=en"
    assert mastodon_length(f"Detour: {url}") == len("Detour: ") + 23
    assert mastodon_length("👨‍👩‍👧 safe") == 6
    assert mastodon_length("Thanks @chief@pd.example.gov") == len("Thanks @chief")
    assert platform("mastodon").measure(f"See {url}") == 4 + 23


def test_html_content_reads_back_as_the_text_sent() -> None:
    """Mastodon's HTML (paragraphs, line breaks, links with hidden spans, entities) is read
    back as the plain text that was posted."""
    text = "Road closed <Main & Elm>.\nDetour via https://pd.example.gov/detour\n\nStay safe."
    assert plain_text(render_content(text)) == text


def test_the_instance_limit_is_read_and_applied(sandbox: SandboxServer, control: Control) -> None:
    """Before publishing, the connector reads the instance's max_characters: a text over
    Mastodon's default 500 goes out on an instance that allows 1,000, and a text over the
    instance's limit is refused before any request is sent."""
    connector = mastodon_connector(sandbox.url)
    assert connector.limits().max_length == 500
    connector.list_posts()  # the sandbox's Mastodon exists now
    sandbox.state.data["mastodon"]["instance"]["max_characters"] = 1000
    connector.publish(OutgoingPost("k1", "a" * 800))
    assert connector.limits().max_length == 1000
    with pytest.raises(Rejected, match="1000"):
        connector.publish(OutgoingPost("k2", "b" * 1001))
    assert created(control) == (1, 1)


def test_a_repeated_idempotency_key_returns_the_first_status(
    sandbox: SandboxServer, control: Control
) -> None:
    """Two creates with one Idempotency-Key make one status; the second answer is the
    first status (as Mastodon keeps keys for an hour)."""
    headers = {
        "authorization": f"Bearer {DEFAULT_MASTODON_ACCOUNT['access_token']}",
        "idempotency-key": "notice-1.abc",
    }
    url = f"{sandbox.url}/api/v1/statuses"
    first = requests.post(url, data={"status": "Once"}, headers=headers, timeout=5).json()
    second = requests.post(url, data={"status": "Once"}, headers=headers, timeout=5).json()
    assert first["id"] == second["id"]
    assert created(control) == (2, 1)


def test_a_timeout_after_the_status_was_made_is_reconciled(
    sandbox: SandboxServer, control: Control
) -> None:
    """The server makes the status but the answer never comes: the next attempt finds it
    among the account's statuses and publishes nothing more."""
    control.fault("timeout", r"^/api/v1/statuses$", method="POST", seconds=1.5)
    connector = mastodon_connector(sandbox.url)
    result = connector.publish(OutgoingPost("notice-9.x", "Water main break: Elm St closed."))
    assert created(control) == (1, 1)
    assert connector.fetch_post(result.remote_id) is not None


def test_uncheckable_ambiguity_stays_ambiguous_then_resolves(
    sandbox: SandboxServer, control: Control
) -> None:
    """A timeout while the account's statuses cannot be read raises Ambiguous (never
    'nothing happened'); a later attempt with the same key finds the status, still one."""
    control.fault("timeout", r"^/api/v1/statuses$", method="POST", seconds=1.5, count=9)
    control.fault("error", r"/accounts/\d+/statuses$", method="GET", status=503, count=99)
    connector = mastodon_connector(sandbox.url)
    post = OutgoingPost("notice-10.y", "Boil water notice for Zone 3.")
    with pytest.raises(Ambiguous):
        connector.publish(post)
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    found = connector.find_published(post, datetime.now(UTC) - timedelta(minutes=5))
    assert found is not None
    assert created(control)[1] == 1


def test_images_go_with_their_alt_text_and_read_back(
    sandbox: SandboxServer, control: Control
) -> None:
    """An image is uploaded with its description; the status read back lists it with it."""
    connector = mastodon_connector(sandbox.url)
    image = Media(b"\x89PNG\r\n\x1a\nfake", "image/png", "Map of the detour around Main St")
    result = connector.publish(
        OutgoingPost("notice-11.z", "Detour map", link="https://pd.example.gov/d", media=(image,))
    )
    item = connector.fetch_post(result.remote_id)
    assert item is not None
    assert item.text == "Detour map\nhttps://pd.example.gov/d"
    assert item.extra["attachment_alt_texts"] == ["Map of the detour around Main St"]
    [media] = sandbox.state.data["mastodon"]["media"].values()
    assert media["description"] == "Map of the detour around Main St"


def test_a_malformed_reply_is_rejected_with_its_id_and_the_rest_read(
    sandbox: SandboxServer, control: Control
) -> None:
    """One reply whose content is not text comes back as a reject naming it; the others
    are read."""
    connector = mastodon_connector(sandbox.url)
    root = connector.publish(OutgoingPost("k", "Community meeting")).remote_id
    visitor = Visitor(sandbox.url)
    bad, good = visitor.reply(root, "one"), visitor.reply(root, "two")
    control.fault("malformed_item", r"/context$", method="GET")
    page = connector.list_comments(root)
    assert [i.remote_id for i in page.items] == [good]
    assert [r.remote_id for r in page.rejects] == [bad]


# -- through Bulletin ------------------------------------------------------------------------


def mastodon_account(url: str) -> str:
    return f"""
[accounts.mastodon]
platform = "mastodon"
instance = "https://sandbox.social"
base_url = "{url}"
token_env = "SANDBOX_MASTODON_TOKEN"
"""


@pytest.fixture
def site(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with one sandbox Mastodon account, fast retries, on each database."""
    inst = make_instance(tmp_path, db_url, mastodon_account(sandbox.url))
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps statuses with the wall clock
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


def add_notice(inst: Instance, text: str, **options: object) -> int:
    draft = NoticeDraft("traffic", text, ("mastodon",), **options)  # type: ignore[arg-type]
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher")
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
    return notice.id or 0


def statuses(sandbox: SandboxServer) -> list[dict[str, object]]:
    found = sandbox.state.snapshot()["mastodon"]["statuses"].values()
    return sorted(found, key=lambda s: int(s["id"]))


def test_a_long_notice_goes_out_as_a_thread_then_corrected_and_retracted(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A notice over 500 characters is a numbered thread of replies; a correction replies
    to its last part; a retraction with deletion removes every status the notice made."""
    text = " ".join(f"Detour step {i}: follow the signs along Route {i}." for i in range(20))
    notice_id = add_notice(site, text, allow_thread=True)
    daemon = Daemon(site.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    thread = statuses(sandbox)
    assert len(thread) >= 2 and all(s["in_reply_to_id"] for s in thread[1:])
    engine, settings, now = site.app.engine, site.settings, site.clock.now()
    correct_notice(engine, settings, now, notice_id, "Route 7, not Route 6.", "typo", "sgt")
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    correction = statuses(sandbox)[-1]
    assert correction["in_reply_to_id"] == thread[-1]["id"]
    assert "Route 7, not Route 6." in str(correction["text"])
    retract_notice(engine, settings, site.clock.now(), notice_id, "wrong day", "lt", True)
    daemon.dispatch_due()
    assert all(s["deleted"] for s in statuses(sandbox)[: len(thread)])
    with Session(engine) as session:
        kinds = [d.kind for d in session.exec(select(Delivery).order_by(col(Delivery.id)))]
    assert kinds[0] == "post" and len(kinds) >= 3
    assert created(control)[1] == len(thread) + 1


def test_replies_are_captured_with_their_edits_and_deletions(
    site: Instance, sandbox: SandboxServer
) -> None:
    """A published notice's replies are archived; a visitor's edit is a new version (the
    status keeps its id), a deletion a deleted version; the first version stays; sweeping
    again adds nothing."""
    add_notice(site, "Snow emergency: parking ban from 8 pm.")
    daemon = Daemon(site.app)
    daemon.prepare()
    daemon.dispatch_due()
    [post] = statuses(sandbox)
    visitor = Visitor(sandbox.url, "resident")
    edited, gone = (
        visitor.reply(str(post["id"]), "Which streets?"),
        visitor.reply(str(post["id"]), "Thanks"),
    )
    first = run(site, "mastodon")
    assert first.result == "ok"
    by_id = {r.remote_id: r for r in records(site, kind="comment")}
    assert by_id[edited].author == "resident@elsewhere.example"
    assert by_id[edited].thread_id == post["id"] and by_id[edited].parent_id == post["id"]
    visitor.edit(edited, "Which streets, please?")
    visitor.delete(gone)
    site.clock.advance(timedelta(hours=7))
    run(site, "mastodon", full=True)
    v1, v2 = records(site, remote_id=edited)
    assert (v1.text, v2.text, v2.change) == ("Which streets?", "Which streets, please?", "edited")
    g1, g2 = records(site, remote_id=gone)
    assert (g1.state, g2.state, g2.change) == ("visible", "deleted", "deleted")
    site.clock.advance(timedelta(hours=7))
    again = run(site, "mastodon", full=True)
    assert again.archived == 0
    assert [r.version for r in records(site, kind="post")] == [1]  # no false edit of the post


def test_account_check_through_the_cli(site: Instance) -> None:
    """`account check` names the token, the instance's limit, and reading posts and replies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    ok = invoke(site, "account", "check", "mastodon", env=env)
    assert ok.exit_code == 0, ok.output
    assert "ok  access token" in ok.output and "500 characters" in ok.output
