"""CAP 1.2 alerts into notices: mapping, updates, cancellations, safety, filters, feeds."""

from __future__ import annotations

import functools
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bulletin.cap.document import CapError, parse_alert
from bulletin.cap.feed import import_source, poll_feeds
from bulletin.cap.importer import ImportResult
from bulletin.cap.mapping import compose_text
from bulletin.cap.models import CapAlert
from bulletin.config.loader import load_settings
from bulletin.errors import ConfigError
from bulletin.models import AuditEvent, Delivery, Notice
from bulletin.publisher import texts
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.templates import add_template, approve_template
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke

DATA = Path(__file__).parent / "data" / "cap"
WARNING_ID = "urn:oid:2.49.0.1.840.0.4f0a7c2e9b8d1f6a3c5e7b9d2f4a6c8e0b1d3f5a.001.1"
UPDATE_ID = "urn:oid:2.49.0.1.840.0.9c1d3e5f7a9b0c2d4e6f8a0b1c3d5e7f9a1b3c5d.001.1"
CANCEL_ID = "urn:oid:2.49.0.1.840.0.e2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9.001.1"

CAP_CONFIG = """
[accounts.x]
platform = "x"
base_url = "http://127.0.0.1:9"
consumer_key_env = "X_KEY"
consumer_secret_env = "X_SECRET"
access_token_env = "X_TOKEN"
access_token_secret_env = "X_TOKEN_SECRET"
enabled = false

[cap]
targets = ["feed"]
{extra}
"""


def cap_instance(tmp_path: Path, db_url: str, extra: str = "") -> Instance:
    return make_instance(tmp_path, db_url, CAP_CONFIG.format(extra=extra))


@pytest.fixture
def inst(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """A Bulletin on each database with ``[cap] targets = ["feed"]``."""
    made = cap_instance(tmp_path, db_url)
    yield made
    made.app.close()


def load(inst: Instance, name: str, actor: str = "dispatcher1") -> ImportResult:
    (result,) = import_source(inst.app.engine, inst.settings, inst.clock, str(DATA / name), actor)
    return result


def notice(inst: Instance, notice_id: int | None) -> tuple[Notice, list[Delivery]]:
    assert notice_id is not None
    with Session(inst.app.engine) as session:
        found = session.get(Notice, notice_id)
        assert found is not None
        deliveries = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()
        return found, list(deliveries)


def rows(inst: Instance) -> list[CapAlert]:
    with Session(inst.app.engine) as session:
        return list(session.exec(select(CapAlert).order_by(col(CapAlert.id))).all())


def actions(inst: Instance, object_id: int | None = None) -> list[str]:
    with Session(inst.app.engine) as session:
        query = select(AuditEvent).order_by(col(AuditEvent.id))
        if object_id is not None:
            query = query.where(
                AuditEvent.object_type == "notice", AuditEvent.object_id == str(object_id)
            )
        return [e.action for e in session.exec(query)]


def publish(inst: Instance, notice_id: int | None) -> None:
    """Approve and run the daemon's due-scan once."""
    assert notice_id is not None
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    daemon = Daemon(inst.app)
    daemon.prepare()
    try:
        assert [o.state for o in daemon.dispatch_due()] == ["published"]
    finally:
        daemon.instance.release_lock()


# -- an alert, its update, its cancellation --------------------------------------------------


def test_alert_becomes_draft_with_mapped_fields(inst: Instance) -> None:
    """An NWS Tornado Warning becomes an emergency weather draft with its text, link, expiry."""
    result = load(inst, "nws_tornado_warning.xml")
    assert (result.outcome, result.notice_state, result.signature) == (
        "drafted",
        "draft",
        "unsigned",
    )
    made, deliveries = notice(inst, result.notice_id)
    assert (made.category, made.priority, made.author) == (
        "weather-emergency",
        "emergency",
        "dispatcher1",
    )
    assert made.title.startswith("Tornado Warning issued November 25 at 9:58AM EST")
    assert made.text.splitlines()[1] == "Area: Middlesex, MA"
    assert "TAKE COVER NOW!" in made.text
    assert made.link == "https://www.weather.gov/box/"
    assert made.expires_at == datetime(2026, 11, 25, 15, 45, tzinfo=UTC)
    (feed,) = deliveries
    assert feed.account == "feed" and feed.text is not None
    assert "confirmed tornado was located near Waltham" in feed.text  # the full description
    (row,) = rows(inst)
    assert (row.identifier, row.msg_type, row.status, row.outcome, row.notice_id) == (
        WARNING_ID,
        "Alert",
        "Actual",
        "drafted",
        result.notice_id,
    )
    assert row.raw == (DATA / "nws_tornado_warning.xml").read_bytes()
    assert actions(inst, result.notice_id) == ["drafted", "cap-imported"]


def test_evacuation_maps_to_evacuation_category(inst: Instance) -> None:
    """A county "Evacuation Immediate" becomes an evacuation notice with the shelter address."""
    result = load(inst, "county_evacuation.xml")
    made, _ = notice(inst, result.notice_id)
    assert (made.category, made.priority) == ("evacuation", "emergency")
    assert "Lexington High School" in made.text


def test_text_fits_the_tightest_target(tmp_path: Path) -> None:
    """With X among the targets the instruction is shortened at a word to fit 280."""
    made = cap_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    try:
        info = parse_alert((DATA / "nws_tornado_warning.xml").read_bytes()).info()
        assert info is not None
        link = "https://www.weather.gov/box/"
        text = compose_text(made.settings, ["feed", "x"], info, link)
        planned = texts.plan(made.settings, "x", "x", text, link, allow_thread=False)
        assert planned.fits and planned.length <= 280
        assert text.startswith("Tornado Warning issued") and text.endswith("\u2026")
        assert "TAKE COVER NOW!" in text
    finally:
        made.app.close()


def test_each_target_gets_the_fullest_text_and_x_keeps_the_instruction(
    tmp_path: Path, db_url: str
) -> None:
    """An alert with a long area and no <web>, for the feed and X: the feed gets the whole
    alert; X's cut keeps "TAKE COVER NOW!" (the area gives way first) and links the agency's
    feed page, where the whole alert is."""
    inst = make_instance(
        tmp_path, db_url, CAP_CONFIG.replace("enabled = false", "").format(extra="")
    )
    towns = "; ".join(f"Town of Example{i}, Middlesex County MA" for i in range(8))
    xml = (DATA / "nws_tornado_warning.xml").read_text()
    xml = xml.replace("<areaDesc>Middlesex, MA</areaDesc>", f"<areaDesc>{towns}</areaDesc>")
    xml = xml.replace("<web>https://www.weather.gov/box/</web>", "")
    alert = tmp_path / "long_area.xml"
    alert.write_text(xml)
    (result,) = import_source(
        inst.app.engine, inst.settings, inst.clock, str(alert), "dispatcher1", ["feed", "x"]
    )
    made, deliveries = notice(inst, result.notice_id)
    assert made.link == inst.settings.agency.website
    texts_by = {d.account: d.text or made.text for d in deliveries}
    assert "confirmed tornado was located near Waltham" in texts_by["feed"]
    assert "protect yourself from flying debris" in texts_by["feed"]
    x_text = texts_by["x"]
    assert "TAKE COVER NOW!" in x_text
    planned = texts.plan(inst.settings, "x", "x", x_text, made.link, allow_thread=False)
    assert planned.fits
    inst.app.close()


def test_cap_import_works_on_the_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no configuration file, `cap import` drafts for every configured account (Facebook
    with the whole alert, X cut to fit with the instruction kept); --target picks accounts
    and an unknown one is refused in one line."""
    monkeypatch.chdir(tmp_path)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # not expired

    def dated(name: str) -> str:
        path = tmp_path / name
        path.write_text((DATA / name).read_text().replace("2026-11-25T", f"{tomorrow}T"))
        return str(path)

    def run(*args: str, code: int = 0) -> str:
        result = invoke(None, *args, env={"BULLETIN_CONFIG": ""})
        assert result.exit_code == code, result.output
        return result.stdout if code == 0 else result.output

    run("init")
    out = run("cap", "import", dated("nws_tornado_warning.xml"), "--as", "d1", "--json")
    shown = json.loads(run("notice", "show", str(json.loads(out)["id"]), "--json"))
    by_account = {d["account"]: d["text"] or shown["text"] for d in shown["deliveries"]}
    assert sorted(by_account) == ["feed", "sandbox-facebook", "sandbox-x"]
    assert "protect yourself from flying debris" in by_account["sandbox-facebook"]
    assert "confirmed tornado was located near Waltham" in by_account["sandbox-facebook"]
    assert "TAKE COVER NOW!" in by_account["sandbox-x"]
    assert len(by_account["sandbox-x"]) < len(by_account["sandbox-facebook"])
    evacuation = dated("county_evacuation.xml")
    out = run("cap", "import", evacuation, "--target", "feed", "--target", "sandbox-x", "--json")
    shown = json.loads(run("notice", "show", str(json.loads(out)["id"]), "--json"))
    assert sorted(d["account"] for d in shown["deliveries"]) == ["feed", "sandbox-x"]
    refused = run("cap", "import", evacuation, "--target", "nope", code=2)
    errors = [line for line in refused.splitlines() if line.startswith("bulletin: error")]
    assert errors == [
        "bulletin: error: unknown account 'nope' "
        "(accounts: feed, sandbox-bluesky, sandbox-facebook, sandbox-instagram, "
        "sandbox-mastodon, "
        "sandbox-threads, sandbox-x)"
    ]


def test_cap_targets_from_the_environment_may_be_comma_separated(tmp_path: Path) -> None:
    """BULLETIN_CAP__TARGETS=feed,sandbox-x is the list of those two accounts (JSON works too)."""
    for value in ("feed,sandbox-x", "feed, sandbox-x", '["feed", "sandbox-x"]'):
        settings = load_settings(None, {"BULLETIN_CAP__TARGETS": value}, cwd=tmp_path)
        assert settings.cap.targets == ["feed", "sandbox-x"]


def test_update_supersedes_a_draft(inst: Instance) -> None:
    """An Update to an alert whose notice is still a draft replaces it with a new draft."""
    first = load(inst, "nws_tornado_warning.xml")
    update = load(inst, "nws_tornado_update.xml")
    assert (update.outcome, update.previous_notice_id) == ("updated", first.notice_id)
    old, old_deliveries = notice(inst, first.notice_id)
    new, _ = notice(inst, update.notice_id)
    assert old.state == "cancelled" and [d.state for d in old_deliveries] == ["cancelled"]
    assert old.closed_reason == f"superseded by CAP update {UPDATE_ID}"
    assert new.state == "draft" and not new.text.startswith("UPDATE")
    assert "11:15AM EST" in new.text
    assert new.expires_at == datetime(2026, 11, 25, 16, 15, tzinfo=UTC)
    assert actions(inst, first.notice_id)[-2:] == ["cancelled", "superseded"]


def test_update_after_publication_makes_a_linked_update(inst: Instance) -> None:
    """An Update to a published notice: a new "UPDATE:" draft, and a correction is recorded."""
    first = load(inst, "nws_tornado_warning.xml")
    publish(inst, first.notice_id)
    update = load(inst, "nws_tornado_update.xml")
    old, _ = notice(inst, first.notice_id)
    new, _ = notice(inst, update.notice_id)
    assert old.state == "published"
    assert new.state == "draft" and new.text.startswith("UPDATE: Tornado Warning")
    assert update.previous_notice_id == first.notice_id
    assert "needs-correct" in actions(inst, first.notice_id)


def test_cancel_cancels_deliveries_not_yet_published(inst: Instance) -> None:
    """A Cancel stops an approved notice whose deliveries have not gone out."""
    first = load(inst, "nws_tornado_warning.xml")
    approve_notice(inst.app.engine, inst.settings, inst.clock, first.notice_id or 0, "chief")
    cancel = load(inst, "nws_tornado_cancel.xml")
    assert (cancel.outcome, cancel.previous_notice_id) == ("cancelled", first.notice_id)
    old, deliveries = notice(inst, first.notice_id)
    assert old.state == "cancelled"
    assert old.closed_reason == f"CAP cancel {CANCEL_ID}"
    assert [d.state for d in deliveries] == ["cancelled"]
    daemon = Daemon(inst.app)
    daemon.prepare()
    try:
        assert daemon.dispatch_due() == []
    finally:
        daemon.instance.release_lock()


def test_cancel_after_update_and_publication(inst: Instance) -> None:
    """A Cancel naming an alert and its update: the open draft is cancelled and the
    published notice gets a retraction reply where it went, which the daemon publishes."""
    from bulletin.cap.actions import CAP_CANCEL_TEXT

    first = load(inst, "nws_tornado_warning.xml")
    publish(inst, first.notice_id)
    update = load(inst, "nws_tornado_update.xml")
    cancel = load(inst, "nws_tornado_cancel.xml")
    assert cancel.outcome == "cancelled"
    assert cancel.reason == f"retraction queued for notice(s) {first.notice_id}"
    new, _ = notice(inst, update.notice_id)
    assert new.state == "cancelled"
    assert "needs-retract" in actions(inst, first.notice_id)
    _, deliveries = notice(inst, first.notice_id)
    replies = [d for d in deliveries if d.kind != "post"]
    assert replies and all(d.text == CAP_CANCEL_TEXT for d in replies)
    daemon = Daemon(inst.app)
    daemon.prepare()
    try:
        assert {o.state for o in daemon.dispatch_due()} == {"published"}
    finally:
        daemon.instance.release_lock()


def test_cancel_of_an_unknown_alert_is_ignored(inst: Instance) -> None:
    """A Cancel whose references match nothing imported here is recorded as ignored."""
    result = load(inst, "nws_tornado_cancel.xml")
    assert (result.outcome, result.reason) == (
        "ignored",
        "Cancel references no alert imported here",
    )


# -- what is ignored, with the reason --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"), [("exercise.xml", "Exercise"), ("test_message.xml", "Test")]
)
def test_exercise_and_test_alerts_are_recorded_as_ignored(
    inst: Instance, name: str, status: str
) -> None:
    """Exercise and Test alerts make no notice; their row says why."""
    result = load(inst, name)
    assert result.outcome == "ignored" and result.notice_id is None
    assert result.reason == f"status {status} is not imported (imported: Actual)"
    (row,) = rows(inst)
    assert (row.status, row.outcome) == (status, "ignored")
    with Session(inst.app.engine) as session:
        assert session.exec(select(Notice)).all() == []


def test_expired_alert_is_ignored(inst: Instance) -> None:
    """An alert whose expiry has passed makes no notice; the reason names the expiry."""
    result = load(inst, "expired.xml")
    assert result.outcome == "ignored"
    assert result.reason == "expired at 2026-11-25T03:00:00+00:00"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ('min_severity = "Moderate"', "severity Minor is below [cap] min_severity Moderate"),
        (
            'areas = ["MAC017", "Lexington"]',
            "area 'Western Franklin; Eastern Franklin' matches none of [cap] areas",
        ),
        ('ignore_events = ["frost advisory"]', "event 'Frost Advisory' is in [cap] ignore_events"),
        (
            'events = ["Tornado Warning"]',
            "event 'Frost Advisory' is not in [cap] events",
        ),
    ],
)
def test_filtered_alert_is_recorded_with_the_reason(
    tmp_path: Path, extra: str, reason: str
) -> None:
    """Event, area and severity filters: the alert is recorded as ignored, with why."""
    made = cap_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", extra)
    try:
        result = load(made, "nws_frost_advisory.xml")
        assert (result.outcome, result.reason) == ("ignored", reason)
        assert [r.outcome for r in rows(made)] == ["ignored"]
    finally:
        made.app.close()


def test_area_filter_matches_ugc_and_fips(tmp_path: Path) -> None:
    """An area filter keeps an alert by UGC code, SAME/FIPS code or areaDesc substring."""
    for i, wanted in enumerate(["MAC017", "025017", "middlesex"]):
        made = cap_instance(
            tmp_path / str(i),
            f"sqlite:///{tmp_path / str(i) / 'data' / 'bulletin.db'}",
            f'areas = ["{wanted}"]',
        )
        try:
            assert load(made, "nws_tornado_warning.xml").outcome == "drafted"
        finally:
            made.app.close()


def test_duplicate_is_not_imported_twice(inst: Instance) -> None:
    """The same sender, identifier and sent again: no second notice, no second row."""
    first = load(inst, "nws_tornado_warning.xml")
    again = load(inst, "nws_tornado_warning.xml")
    assert again.outcome == "duplicate" and again.notice_id == first.notice_id
    assert again.reason == f"already imported (drafted, notice {first.notice_id})"
    assert len(rows(inst)) == 1
    with Session(inst.app.engine) as session:
        assert len(session.exec(select(Notice)).all()) == 1


# -- documents refused -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_cap.xml", "not a CAP 1.2 alert: the root element is <rss>"),
        ("missing_urgency.xml", "alert/info[1]/urgency: required element is missing"),
    ],
)
def test_invalid_documents_are_refused_naming_the_element(
    inst: Instance, name: str, message: str
) -> None:
    """A document that is not CAP, or breaks the schema, is refused in one line."""
    with pytest.raises(CapError, match=message.replace("[", r"\[")):
        load(inst, name)
    assert rows(inst) == []


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier>'
            b"<sender>s</sender><sent>2026-11-25T09:58:00Z</sent></alert>",
            "alert/sent: '2026-11-25T09:58:00Z' is not a CAP date-time",
        ),
        (
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a b</identifier>'
            b"<sender>s</sender><sent>2026-11-25T09:58:00-05:00</sent><status>Actual</status>"
            b"<msgType>Alert</msgType><scope>Public</scope></alert>",
            "alert/identifier: 'a b' must not be empty or contain spaces",
        ),
        (
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier>'
            b"<sender>s</sender><sent>2026-11-25T09:58:00-05:00</sent><status>Real</status>"
            b"<msgType>Alert</msgType><scope>Public</scope></alert>",
            "alert/status: 'Real' is not one of Actual, Exercise, System, Test, Draft",
        ),
        (
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><sender>s</sender>'
            b"<identifier>a</identifier></alert>",
            r"alert/sender: out of order \(identifier comes before it\)",
        ),
        (
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"><identifier>a</identifier>'
            b"</alert>",
            "this is a CAP 1.1 alert; only CAP 1.2",
        ),
        (b"<alert><unclosed></alert>", "not well-formed XML"),
    ],
)
def test_schema_rules(xml: bytes, message: str) -> None:
    """Date-time pattern, identifier characters, enumerations, order, version, well-formedness."""
    with pytest.raises(CapError, match=message):
        parse_alert(xml)


def test_billion_laughs_is_refused_fast_and_small() -> None:
    """An entity bomb is refused before any expansion: fast, and with little memory."""
    data = (DATA / "billion_laughs.xml").read_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(CapError, match="declares a DTD or entities"):
            parse_alert(data)
        elapsed = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5_000_000


def test_external_entity_is_refused(inst: Instance) -> None:
    """An external entity (XXE) is refused; nothing of the named file is read or kept."""
    with pytest.raises(CapError, match="declares a DTD or entities") as caught:
        load(inst, "xxe.xml")
    assert "root:" not in str(caught.value)
    assert rows(inst) == []
    with Session(inst.app.engine) as session:
        (refused,) = session.exec(
            select(AuditEvent).where(AuditEvent.action == "cap-refused")
        ).all()
    assert refused.object_type == "cap-document" and "DTD" in (refused.reason or "")


def test_signed_alert_without_trust_store_is_recorded_not_verified(inst: Instance) -> None:
    """An enveloped signature with no trust store configured: imported, marked not-verified."""
    raw = (DATA / "county_evacuation.xml").read_text()
    signed = raw.replace(
        "</alert>",
        '    <Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>\n'
        "</alert>",
    )
    path = inst.data_dir / "signed.xml"
    path.write_text(signed)
    (result,) = import_source(inst.app.engine, inst.settings, inst.clock, str(path), "d1")
    assert (result.outcome, result.signature) == ("drafted", "not-verified")


def test_missing_targets_is_a_configuration_error(tmp_path: Path) -> None:
    """Importing with no [cap] targets names the key to set."""
    made = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    try:
        with pytest.raises(ConfigError, match=r"cap.targets: name the accounts"):
            load(made, "nws_tornado_warning.xml")
    finally:
        made.app.close()


# -- templates and the daemon ----------------------------------------------------------------


def test_template_covered_alert_is_published_at_once(tmp_path: Path, db_url: str) -> None:
    """With an approved template for its event, the alert is approved on import and the
    daemon's due-scan publishes it to the feed; the audit names the template's approver."""
    made = cap_instance(tmp_path, db_url, '[cap.templates]\n"Tornado Warning" = "tornado"')
    try:
        engine, settings, clock = made.app.engine, made.settings, made.clock
        add_template(
            engine,
            settings,
            clock,
            "tornado",
            "weather-emergency",
            "Tornado Warning for {area} until {expires}. Take cover now in a basement or an "
            "interior room away from windows.",
            {"area": "str", "expires": "time"},
            "pio",
        )
        approve_template(engine, settings, clock, "tornado", "chief")
        result = load(made, "nws_tornado_warning.xml", actor="cap")
        assert (result.outcome, result.notice_state) == ("approved", "approved")
        assert result.reason == "covered by template tornado v1, approved by chief"
        daemon = Daemon(made.app)
        daemon.prepare()
        try:
            assert [o.state for o in daemon.dispatch_due()] == ["published"]
        finally:
            daemon.instance.release_lock()
        feed = (made.data_dir / "feed.xml").read_text()
        assert "Tornado Warning for Middlesex, MA until 10:45 AM. Take cover now" in feed
        with Session(engine) as session:
            approved = session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "approved", AuditEvent.object_id == str(result.notice_id)
                )
            ).one()
        assert json.loads(approved.detail or "{}")["template_approved_by"] == "chief"
    finally:
        made.app.close()


def test_unapproved_template_leaves_a_draft(tmp_path: Path) -> None:
    """A template that was never approved does not cover: a draft, and the row says why."""
    made = cap_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        '[cap.templates]\n"Tornado Warning" = "tornado"',
    )
    try:
        add_template(
            made.app.engine,
            made.settings,
            made.clock,
            "tornado",
            "weather-emergency",
            "Tornado Warning for {area}. Take cover now.",
            {"area": "str"},
            "pio",
        )
        result = load(made, "nws_tornado_warning.xml")
        assert (result.outcome, result.notice_state) == ("drafted", "draft")
        assert result.reason is not None and "template tornado not used" in result.reason
    finally:
        made.app.close()


# -- polled feeds ----------------------------------------------------------------------------


@pytest.fixture
def cap_server() -> Iterator[str]:
    """tests/data/cap over HTTP on a free local port."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(DATA))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_polled_feed_over_http(tmp_path: Path, db_url: str, cap_server: str) -> None:
    """An Atom feed with an embedded and a linked alert: both drafted; a second poll adds
    nothing and fetches no linked alert again."""
    made = cap_instance(tmp_path, db_url, f'feeds = ["{cap_server}/feed.atom"]')
    try:
        first = poll_feeds(made.app.engine, made.settings, made.clock)
        assert [(r.event, r.outcome) for r in first] == [
            ("Evacuation Immediate", "drafted"),
            ("Tornado Warning", "drafted"),
        ]
        (linked,) = [r for r in rows(made) if r.event == "Tornado Warning"]
        assert linked.source == f"{cap_server}/nws_tornado_warning.xml"
        assert linked.imported_by == "cap"
        second = poll_feeds(made.app.engine, made.settings, made.clock)
        assert [r.outcome for r in second] == ["duplicate"]
        assert len(rows(made)) == 2
    finally:
        made.app.close()


def test_polled_feed_from_a_file_url(tmp_path: Path) -> None:
    """A file:// feed works the same; its relative links resolve beside it."""
    made = cap_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        f'feeds = ["{(DATA / "feed.atom").as_uri()}"]',
    )
    try:
        results = poll_feeds(made.app.engine, made.settings, made.clock)
        assert [r.outcome for r in results] == ["drafted", "drafted"]
    finally:
        made.app.close()


def test_daemon_schedules_the_poll_only_with_feeds(tmp_path: Path) -> None:
    """The daemon adds a cap-poll job when [cap] feeds are configured, and none otherwise."""
    from apscheduler.schedulers.background import BackgroundScheduler

    for extra, expected in [("", False), (f'feeds = ["{(DATA / "feed.atom").as_uri()}"]', True)]:
        made = cap_instance(
            tmp_path / str(expected), f"sqlite:///{tmp_path / str(expected) / 'b.db'}", extra
        )
        try:
            daemon = Daemon(made.app)
            daemon._scheduler = BackgroundScheduler(timezone=UTC)
            daemon._schedule_jobs()
            assert (daemon._scheduler.get_job("cap-poll") is not None) is expected
        finally:
            made.app.close()


# -- the command line ------------------------------------------------------------------------


def test_cli_import_json_and_errors(inst: Instance) -> None:
    """`cap import --json` prints the notice id; a bad document is one line and exit 1."""
    env = inst.env(BULLETIN_USER="dispatcher1")
    # the command line runs on the wall clock: an alert that expires a day from now
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    alert = inst.data_dir / "evacuation.xml"
    alert.write_text(
        (DATA / "county_evacuation.xml").read_text().replace("2026-11-25T14:00:00-05:00", expires)
    )
    ok = invoke(None, "cap", "import", str(alert), "--json", env=env)
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["id"] is not None and payload["alerts"][0]["outcome"] == "drafted"
    bad = invoke(None, "cap", "import", str(DATA / "xxe.xml"), env=env)
    assert bad.exit_code == 1
    (error,) = [line for line in bad.stderr.splitlines() if "warning" not in line]
    assert error.startswith("bulletin: error: document refused: it declares a DTD")
    listed = invoke(None, "cap", "list", "--json", env=env)
    assert [a["outcome"] for a in json.loads(listed.stdout)["alerts"]] == ["drafted"]


# -- signatures ------------------------------------------------------------------------------


def _certificate(
    name: str, key: object, issuer: tuple[str, object] | None = None, ca: bool = False
) -> bytes:
    from datetime import timedelta as td

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - td(days=1))
        .not_valid_after(now + td(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()),  # type: ignore[attr-defined]
        critical=False,
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),  # type: ignore[attr-defined]
        critical=False,
    )
    cert = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Signing:
    """A trust store file, a signer's PEM key and certificate, a stranger's (key, cert)."""

    trust_store: Path
    key: bytes
    cert: bytes
    stranger: tuple[bytes, bytes]


@pytest.fixture
def signing(tmp_path: Path) -> Signing:
    """A county CA (the trust store), a signer it certified, and a stranger's CA."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_pem = _certificate("Middlesex County OEM CA", ca_key, ca=True)
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer_pem = _certificate(
        "oem@middlesexcounty.example.gov", signer_key, ("Middlesex County OEM CA", ca_key)
    )
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger_pem = _certificate("Someone Else", stranger_key, ca=True)
    (tmp_path / "trust.pem").write_bytes(ca_pem)
    return Signing(
        trust_store=tmp_path / "trust.pem",
        key=signer_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert=signer_pem,
        stranger=(
            stranger_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            stranger_pem,
        ),
    )


def _signed(raw: bytes, key: bytes, cert: bytes) -> bytes:
    from lxml import etree
    from signxml.signer import XMLSigner

    root = etree.fromstring(raw)
    signed = XMLSigner().sign(root, key=key, cert=cert.decode())
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def test_signature_is_verified_against_the_trust_store(tmp_path: Path, signing: Signing) -> None:
    """With a trust store: a good signature is verified; a tampered alert or a signer the
    store does not vouch for is refused; an unsigned alert is recorded as unsigned."""
    made = cap_instance(
        tmp_path / "i",
        f"sqlite:///{tmp_path / 'i' / 'data' / 'bulletin.db'}",
        f'trust_store = "{signing.trust_store}"',
    )
    try:
        raw = (DATA / "county_evacuation.xml").read_bytes()
        key, cert = signing.key, signing.cert
        assert isinstance(key, bytes) and isinstance(cert, bytes)
        good = tmp_path / "good.xml"
        good.write_bytes(_signed(raw, key, cert))
        tampered = tmp_path / "tampered.xml"
        tampered.write_bytes(
            _signed(raw.replace(b"0412", b"0413"), key, cert).replace(b"Route 2A", b"Route 4A")
        )
        stranger_key, stranger_cert = signing.stranger
        foreign = tmp_path / "foreign.xml"
        foreign.write_bytes(_signed(raw.replace(b"0412", b"0414"), stranger_key, stranger_cert))

        assert load(made, str(good)).signature == "verified"
        for document in (tampered, foreign):
            with pytest.raises(CapError, match="alert signature does not verify"):
                load(made, str(document))
        assert load(made, "nws_tornado_warning.xml").signature == "unsigned"
        assert [(r.identifier, r.signature) for r in rows(made)] == [
            ("MIDDLESEX-OEM-2026-0412", "verified"),
            (WARNING_ID, "unsigned"),
        ]
    finally:
        made.app.close()


def test_required_signature_refuses_unsigned_alerts(tmp_path: Path) -> None:
    """With require_signature, an unsigned alert is refused and nothing is recorded."""
    made = cap_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", "require_signature = true"
    )
    try:
        with pytest.raises(CapError, match="not signed and \\[cap\\] require_signature"):
            load(made, "nws_tornado_warning.xml")
        assert rows(made) == []
    finally:
        made.app.close()


def test_poll_actor_must_be_a_dispatcher_with_users(tmp_path: Path) -> None:
    """With [users], the poller's [cap] actor must be a configured dispatcher."""
    feed = (DATA / "feed.atom").as_uri()
    made = cap_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        f'feeds = ["{feed}"]\n\n[users.chief]\nroles = ["approver"]',
    )
    try:
        with pytest.raises(ConfigError, match=r"cap\.actor: unknown user 'cap'"):
            poll_feeds(made.app.engine, made.settings, made.clock)
    finally:
        made.app.close()


def test_daemon_poll_job_imports_the_feed(tmp_path: Path) -> None:
    """The daemon's poll job body imports the configured feeds."""
    from bulletin.service.jobs import table

    made = cap_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        f'feeds = ["{(DATA / "feed.atom").as_uri()}"]',
    )
    try:
        [poll] = [job for job in table(Daemon(made.app)) if job.id == "cap-poll"]
        results = poll.run()
        assert isinstance(results, list)
        assert [r.outcome for r in results] == ["drafted", "drafted"]
        assert {r.imported_by for r in rows(made)} == {"cap"}
    finally:
        made.app.close()


def test_update_of_an_imported_alert_passes_the_filters(tmp_path: Path) -> None:
    """An Update whose own severity is now below min_severity still follows up the notice
    made from the alert it references."""
    made = cap_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", 'min_severity = "Severe"'
    )
    try:
        first = load(made, "nws_tornado_warning.xml")
        milder = tmp_path / "update.xml"
        milder.write_text(
            (DATA / "nws_tornado_update.xml")
            .read_text()
            .replace("<severity>Extreme</severity>", "<severity>Moderate</severity>")
        )
        update = load(made, str(milder))
        assert (update.outcome, update.previous_notice_id) == ("updated", first.notice_id)
    finally:
        made.app.close()


def test_a_bad_feed_entry_does_not_stop_the_others(tmp_path: Path) -> None:
    """An entry whose embedded alert is invalid is reported as an error; the next is imported."""
    feed = (DATA / "feed.atom").read_text().replace("<status>Actual</status>", "<status/>", 1)
    feed = feed.replace("<identifier>", "<identifier><b xmlns=''>x</b>", 1)
    path = tmp_path / "feed.atom"
    path.write_text(
        feed.replace(
            'href="nws_tornado_warning.xml"', f'href="{DATA.as_uri()}/nws_tornado_warning.xml"'
        )
    )
    made = cap_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    try:
        results = import_source(made.app.engine, made.settings, made.clock, str(path), "d1")
        assert [r.outcome for r in results] == ["error", "drafted"]
        assert results[0].reason is not None and "alert/identifier" in results[0].reason
    finally:
        made.app.close()


# -- an import cut short ---------------------------------------------------------------------


def _cut_short(inst: Instance, name: str) -> None:
    """What an importer killed right after recording the alert leaves: the claim, and
    nothing done about it (the first transaction of an import, and no more)."""
    from bulletin.cap.document import alert_from_element, parse_xml
    from bulletin.cap.importer import Importer

    raw = (DATA / name).read_bytes()
    alert = alert_from_element(parse_xml(raw), raw)
    importer = Importer(inst.app.engine, inst.settings, inst.clock, "dispatcher1")
    info = alert.info(inst.settings.cap.language)
    assert importer.claims.claim(alert, info, "unsigned", name, None, "received", None) is not None


def test_alert_cut_short_is_finished_by_the_next_import(inst: Instance) -> None:
    """A claim left `received` is not taken from a live importer (fresh), and is finished once
    stale: one notice, audited as resumed; after that it is a duplicate."""
    _cut_short(inst, "nws_tornado_warning.xml")
    assert load(inst, "nws_tornado_warning.xml").outcome == "duplicate"
    inst.clock.advance(timedelta(minutes=6))
    resumed = load(inst, "nws_tornado_warning.xml")
    assert resumed.outcome == "drafted" and resumed.notice_id is not None
    assert load(inst, "nws_tornado_warning.xml").outcome == "duplicate"
    with Session(inst.app.engine) as session:
        assert len(session.exec(select(Notice)).all()) == 1
    assert [r.outcome for r in rows(inst)] == ["drafted"]
    assert "cap-resumed" in actions(inst)


def test_poll_finishes_an_alert_cut_short_that_left_the_feed(inst: Instance) -> None:
    _cut_short(inst, "nws_tornado_warning.xml")
    inst.clock.advance(timedelta(minutes=6))
    (result,) = poll_feeds(inst.app.engine, inst.settings, inst.clock)
    assert result.outcome == "drafted" and result.notice_id is not None
    assert poll_feeds(inst.app.engine, inst.settings, inst.clock) == []


def test_cancel_cut_short_after_queuing_the_retraction_does_not_queue_it_twice(
    inst: Instance,
) -> None:
    first = load(inst, "nws_tornado_warning.xml")
    publish(inst, first.notice_id)
    cancel = load(inst, "nws_tornado_cancel.xml")
    assert cancel.reason == f"retraction queued for notice(s) {first.notice_id}"
    _, deliveries = notice(inst, first.notice_id)
    replies = len([d for d in deliveries if d.kind != "post"])
    with Session(inst.app.engine) as session:  # killed before its outcome was written
        row = session.get(CapAlert, cancel.row_id)
        assert row is not None
        row.outcome, row.reason = "received", None
        session.add(row)
        session.commit()
    inst.clock.advance(timedelta(minutes=6))
    again = load(inst, "nws_tornado_cancel.xml")
    assert again.outcome == "cancelled"
    assert again.reason == f"retraction queued for notice(s) {first.notice_id}"
    _, deliveries = notice(inst, first.notice_id)
    assert len([d for d in deliveries if d.kind != "post"]) == replies
