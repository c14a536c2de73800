"""Bluesky through the sandbox PDS: graphemes, link facets, a record key per delivery and the
read-back that makes a repeated key harmless, images with alt text, notices published as
threads with corrections and retractions, replies captured with their rewrites and deletions."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlmodel import Session, col, select

from bulletin.connectors.base import Media, OutgoingPost
from bulletin.connectors.bluesky import graphemes, link_facets, rkey_for, shared_tls
from bulletin.connectors.platforms import platform
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.sandbox.state import DEFAULT_BLUESKY_ACCOUNT
from bulletin.errors import Ambiguous, Refused, Rejected
from bulletin.models import Delivery
from bulletin.publisher.amend import correct_notice, retract_notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import records, run
from tests.plugins.cli import invoke
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, SkyVisitor, bluesky_connector

ACCOUNT = f"bluesky:{DEFAULT_BLUESKY_ACCOUNT['did']}"
CREATE = r"createRecord$"


def created(control: Control) -> tuple[int, int]:
    counts = control.received(ACCOUNT)
    return counts.get("create_requests", 0), counts.get("created", 0)


def test_length_is_graphemes_and_links_are_facets_over_bytes() -> None:
    """A family emoji is one grapheme and a URL counts in full; a link facet spans the URL's
    UTF-8 bytes, after multi-byte text."""
    assert graphemes("👨‍👩‍👧 safe") == 6
    assert platform("bluesky").measure("https://pd.example.gov/x") == 24
    text = "Café closed — see https://pd.example.gov/detour"
    [facet] = link_facets(text)
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode()[start:end] == b"https://pd.example.gov/detour"
    assert facet["features"][0]["uri"] == "https://pd.example.gov/detour"


def test_the_record_key_is_a_tid_made_from_the_delivery_key() -> None:
    """The key is stable for one delivery key, differs for another, and has TID syntax."""
    key = rkey_for("notice-7.3f9a02bc")
    assert key == rkey_for("notice-7.3f9a02bc") != rkey_for("notice-7.3f9a02bc-part-2")
    assert len(key) == 13 and key[0] in "234567abcdefghij"


def test_every_client_shares_one_tls_context(sandbox: SandboxServer) -> None:
    """A TLS context carries its own copy of the certificate store (about 0.8 MB): one per
    connector grew the daemon with each thread that used a Bluesky account."""
    first, second = bluesky_connector(sandbox.url), bluesky_connector(sandbox.url)
    contexts = [c._xrpc._client._transport._pool._ssl_context for c in (first, second)]
    assert contexts[0] is contexts[1] is shared_tls()
    assert shared_tls().verify_mode == ssl.CERT_REQUIRED and shared_tls().check_hostname


def test_a_repeated_key_is_a_server_error_on_the_pds(sandbox: SandboxServer) -> None:
    """As the reference PDS does, the sandbox answers a second createRecord at the same key
    with 500 InternalServerError, not a conflict: the connector may not wait for one."""
    connector = bluesky_connector(sandbox.url)
    connector.publish(OutgoingPost("notice-1.a", "Once"))
    login = {"identifier": DEFAULT_BLUESKY_ACCOUNT["handle"], "password": "sandbox-app-password"}
    xrpc = f"{sandbox.url}/xrpc"
    token = requests.post(f"{xrpc}/com.atproto.server.createSession", json=login, timeout=5)
    record = {"$type": "app.bsky.feed.post", "text": "Again", "createdAt": "2026-01-01T00:00:00Z"}
    again = requests.post(
        f"{xrpc}/com.atproto.repo.createRecord",
        json={
            "repo": DEFAULT_BLUESKY_ACCOUNT["did"],
            "collection": "app.bsky.feed.post",
            "rkey": rkey_for("notice-1.a"),
            "record": record,
        },
        headers={"authorization": f"Bearer {token.json()['accessJwt']}"},
        timeout=5,
    )
    assert (again.status_code, again.json()["error"]) == (500, "InternalServerError")


def test_a_timeout_after_the_record_was_written_is_one_post(
    sandbox: SandboxServer, control: Control
) -> None:
    """The PDS writes the record but the answer never comes; the retry meets the taken key
    (a 500) or reads it back first: one post, and the publish answers its URI."""
    control.fault("timeout", CREATE, method="POST", seconds=1.5)
    connector = bluesky_connector(sandbox.url)
    post = OutgoingPost("notice-9.x", "Water main break: Elm St closed.")
    result = connector.publish(post)
    assert result.remote_id.endswith("/" + rkey_for("notice-9.x"))
    assert created(control) == (1, 1)


def test_a_500_on_a_key_already_written_is_already_published(
    sandbox: SandboxServer, control: Control
) -> None:
    """A second publish of the same delivery (after a crash that lost the first answer)
    meets the PDS's 500 and reads the record back: no second post, the first one's URI."""
    connector = bluesky_connector(sandbox.url)
    post = OutgoingPost("notice-10.y", "Boil water notice for Zone 3.")
    first = connector.publish(post)
    again = bluesky_connector(sandbox.url).publish(post)
    assert again.remote_id == first.remote_id
    assert created(control) == (2, 1)


def test_uncheckable_ambiguity_stays_ambiguous(sandbox: SandboxServer, control: Control) -> None:
    """A timeout while the record cannot be read back raises Ambiguous, never 'nothing
    happened'; once the PDS answers again, find_published finds the one post."""
    control.fault("timeout", CREATE, method="POST", seconds=1.5, count=9)
    control.fault("error", r"getRecord$", method="GET", status=503, count=99)
    connector = bluesky_connector(sandbox.url)
    post = OutgoingPost("notice-11.z", "Evacuate Zone A now.")
    with pytest.raises(Ambiguous):
        connector.publish(post)
    control.session.delete(f"{control.url}/_sandbox/faults", timeout=5).raise_for_status()
    assert connector.find_published(post, datetime.now(UTC) - timedelta(minutes=5)) is not None
    assert created(control)[1] == 1


def test_too_long_is_refused_before_sending(sandbox: SandboxServer, control: Control) -> None:
    """301 graphemes are refused with the count, and nothing is sent."""
    with pytest.raises(Rejected, match="301"):
        bluesky_connector(sandbox.url).publish(OutgoingPost("k", "a" * 301))
    assert created(control) == (0, 0)


def test_images_and_links_read_back_as_sent(sandbox: SandboxServer) -> None:
    """An image goes with its alt text, a link as a facet; the post reads back with both."""
    connector = bluesky_connector(sandbox.url)
    image = Media(b"\x89PNG\r\n\x1a\nfake", "image/png", "Map of the detour around Main St")
    result = connector.publish(
        OutgoingPost("notice-12.m", "Detour map", link="https://pd.example.gov/d", media=(image,))
    )
    item = connector.fetch_post(result.remote_id)
    assert item is not None
    assert item.text == "Detour map\nhttps://pd.example.gov/d"
    assert item.extra["attachment_alt_texts"] == ["Map of the detour around Main St"]
    record = sandbox.state.data["bluesky"]["records"][result.remote_id]["value"]
    assert record["facets"][0]["features"][0]["uri"] == "https://pd.example.gov/d"


def test_a_malformed_reply_is_rejected_with_its_uri(
    sandbox: SandboxServer, control: Control
) -> None:
    """One reply whose text is not a string is a reject naming its URI; the rest is read."""
    connector = bluesky_connector(sandbox.url)
    root = connector.publish(OutgoingPost("k", "Community meeting")).remote_id
    visitor = SkyVisitor(sandbox.url)
    bad, good = visitor.reply(root, "one"), visitor.reply(root, "two")
    control.fault("malformed_item", r"getPostThread$", method="GET")
    page = connector.list_comments(root)
    assert [i.remote_id for i in page.items] == [good]
    assert [r.remote_id for r in page.rejects] == [bad]


# -- through Bulletin ------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with one sandbox Bluesky account, fast retries, on each database."""
    toml = f"""
[accounts.bluesky]
platform = "bluesky"
base_url = "{sandbox.url}"
handle = "{DEFAULT_BLUESKY_ACCOUNT["handle"]}"
app_password_env = "SANDBOX_BLUESKY_APP_PASSWORD"
"""
    inst = make_instance(tmp_path, db_url, toml)
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps records with the wall clock
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    yield inst
    inst.app.close()


def add_notice(inst: Instance, text: str, allow_thread: bool = False) -> int:
    draft = NoticeDraft("traffic", text, ("bluesky",), allow_thread=allow_thread)
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, draft, "dispatcher")
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
    return notice.id or 0


def posts(sandbox: SandboxServer) -> list[dict[str, object]]:
    found = sandbox.state.snapshot()["bluesky"]["records"].values()
    return sorted(found, key=lambda r: int(r["seq"]))


def test_a_long_notice_goes_out_as_a_thread_then_corrected_and_retracted(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A notice over 300 graphemes is a thread whose parts share one root; a correction
    replies to the last part; a retraction with deletion removes every post of the notice."""
    text = " ".join(f"Detour step {i}: follow the signs along Route {i}." for i in range(12))
    notice_id = add_notice(site, text, allow_thread=True)
    daemon = Daemon(site.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    thread = posts(sandbox)
    root = thread[0]["uri"]
    assert len(thread) >= 2
    assert all(p["value"]["reply"]["root"]["uri"] == root for p in thread[1:])  # type: ignore[index]
    engine, settings = site.app.engine, site.settings
    correct_notice(engine, settings, site.clock.now(), notice_id, "Route 7.", "typo", "sgt")
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    correction = posts(sandbox)[-1]["value"]
    assert correction["reply"]["parent"]["uri"] == thread[-1]["uri"]  # type: ignore[index]
    retract_notice(engine, settings, site.clock.now(), notice_id, "wrong day", "lt", True)
    daemon.dispatch_due()
    assert all(p["deleted"] for p in posts(sandbox)[: len(thread)])
    with Session(engine) as session:
        kinds = [d.kind for d in session.exec(select(Delivery).order_by(col(Delivery.id)))]
    assert kinds[0] == "post" and len(kinds) >= 3
    assert created(control)[1] == len(thread) + 1


def test_replies_are_captured_with_their_rewrites_and_deletions(
    site: Instance, sandbox: SandboxServer
) -> None:
    """Replies are archived; a rewritten reply is a new version, a deleted one a deleted
    version; the post itself gets no false edit; sweeping again adds nothing."""
    add_notice(site, "Snow emergency: parking ban from 8 pm.")
    daemon = Daemon(site.app)
    daemon.prepare()
    daemon.dispatch_due()
    [post] = posts(sandbox)
    visitor = SkyVisitor(sandbox.url, "resident")
    root = str(post["uri"])
    rewritten, gone = visitor.reply(root, "Which streets?"), visitor.reply(root, "Thanks")
    assert run(site, "bluesky").result == "ok"
    by_id = {r.remote_id: r for r in records(site, kind="comment")}
    assert by_id[rewritten].author == "resident.visitor.test"
    assert by_id[rewritten].thread_id == root and by_id[rewritten].parent_id == root
    visitor.rewrite(rewritten, "Which streets, please?")
    visitor.delete(gone)
    site.clock.advance(timedelta(hours=7))
    run(site, "bluesky", full=True)
    v1, v2 = records(site, remote_id=rewritten)
    assert (v1.text, v2.text, v2.change) == ("Which streets?", "Which streets, please?", "edited")
    g1, g2 = records(site, remote_id=gone)
    assert (g1.state, g2.state, g2.change) == ("visible", "deleted", "deleted")
    site.clock.advance(timedelta(hours=7))
    assert run(site, "bluesky", full=True).archived == 0
    assert [r.version for r in records(site, kind="post")] == [1]


def test_account_check_through_the_cli(site: Instance, control: Control) -> None:
    """`account check` says the app password works; a refused session fails it, exit 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    ok = invoke(site, "account", "check", "bluesky", env=env)
    assert ok.exit_code == 0, ok.output
    assert "ok  app password" in ok.output
    control.fault("expired_token", r"createSession$", count=20)
    bad = invoke(site, "account", "check", "bluesky", env=env)
    assert bad.exit_code == 1 and "NO " in bad.output


def agency_session(sandbox: SandboxServer) -> requests.Session:
    """A session of the agency's own account, straight on the sandbox's XRPC."""
    session = requests.Session()
    login = {
        "identifier": DEFAULT_BLUESKY_ACCOUNT["handle"],
        "password": DEFAULT_BLUESKY_ACCOUNT["password"],
    }
    answer = session.post(
        f"{sandbox.url}/xrpc/com.atproto.server.createSession", json=login, timeout=5
    )
    answer.raise_for_status()
    session.headers["authorization"] = f"Bearer {answer.json()['accessJwt']}"
    return session


def test_hiding_keeps_the_gates_reply_rules_and_reads_back_hidden(
    sandbox: SandboxServer,
) -> None:
    """Hiding adds the reply to hiddenReplies of the root's threadgate and nothing else: an
    existing ``allow`` stays; the thread then lists the reply as hidden; unhiding lists it
    visible again; a post that is not a reply is refused."""
    connector = bluesky_connector(sandbox.url)
    root = connector.publish(OutgoingPost("gate", "Water main break on Oak Ave")).remote_id
    visitor = SkyVisitor(sandbox.url, "resident")
    rude, kind = visitor.reply(root, "rude words"), visitor.reply(root, "thank you")
    rkey = root.rsplit("/", 1)[-1]
    did = DEFAULT_BLUESKY_ACCOUNT["did"]
    gate = {
        "$type": "app.bsky.feed.threadgate",
        "post": root,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "allow": [{"$type": "app.bsky.feed.threadgate#followingRule"}],
    }
    body = {"repo": did, "collection": "app.bsky.feed.threadgate", "rkey": rkey, "record": gate}
    agency_session(sandbox).post(
        f"{sandbox.url}/xrpc/com.atproto.repo.putRecord", json=body, timeout=5
    ).raise_for_status()
    connector.hide_comment(rude)
    connector.hide_comment(rude)
    stored = sandbox.state.snapshot()["bluesky"]["records"][
        f"at://{did}/app.bsky.feed.threadgate/{rkey}"
    ]["value"]
    assert stored == {**gate, "hiddenReplies": [rude]}
    states = {i.remote_id: i.state for i in connector.iter_comments(root)}
    assert states == {rude: "hidden", kind: "visible"}
    connector.hide_comment(rude, hidden=False)
    assert {i.state for i in connector.iter_comments(root)} == {"visible"}
    with pytest.raises(Refused):
        connector.hide_comment(root)


def test_a_new_gate_hides_without_limiting_replies(sandbox: SandboxServer) -> None:
    """Without a threadgate, hiding writes one that has no ``allow`` (an empty one would stop
    every reply), and visitors can still reply."""
    connector = bluesky_connector(sandbox.url)
    root = connector.publish(OutgoingPost("new gate", "Library closed Monday")).remote_id
    visitor = SkyVisitor(sandbox.url, "resident")
    connector.hide_comment(visitor.reply(root, "spam"))
    [gate] = [
        r
        for r in sandbox.state.snapshot()["bluesky"]["records"].values()
        if r["collection"] == "app.bsky.feed.threadgate"
    ]
    assert "allow" not in gate["value"] and gate["value"]["post"] == root
    assert visitor.reply(root, "still open")


def test_hide_through_the_cli_archives_first_and_captures_the_hidden_state(
    site: Instance, sandbox: SandboxServer
) -> None:
    """`comment hide` archives the reply, hides it; later sweeps keep it hidden; `unhide`
    shows it again, each state one version."""
    add_notice(site, "Boil-water advisory for the east side.")
    daemon = Daemon(site.app)
    daemon.prepare()
    daemon.dispatch_due()
    [post] = posts(sandbox)
    reply = SkyVisitor(sandbox.url, "resident").reply(str(post["uri"]), "buy my stuff")
    assert run(site, "bluesky").result == "ok"
    [v1] = records(site, remote_id=reply)
    hid = invoke(site, "comment", "hide", str(v1.id), "--reason", "spam", "--as", "clerk1")
    assert hid.exit_code == 0, hid.output
    assert [r.state for r in records(site, remote_id=reply)] == ["visible", "hidden"]
    site.clock.advance(timedelta(hours=7))
    run(site, "bluesky", full=True)
    assert [r.state for r in records(site, remote_id=reply)] == ["visible", "hidden"]
    shown = invoke(site, "comment", "unhide", str(v1.id), "--reason", "ok", "--as", "clerk1")
    assert shown.exit_code == 0, shown.output
    assert [r.state for r in records(site, remote_id=reply)][-1] == "visible"
