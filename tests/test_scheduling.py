"""Scheduling: recurrence across daylight saving, expiry with follow-up, corrections and
retractions, cancellation racing delivery, and late posts after downtime (in one process,
with the manual clock, on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from defusedxml import ElementTree as SafeET
from sqlmodel import Session, col, select

from bulletin.connectors.feed import ATOM, THREADING, TOMBSTONES
from bulletin.errors import Refused, UsageError
from bulletin.models import AuditEvent, Delivery, DeliveryAttempt, Notice, Record
from bulletin.publisher import recurrence
from bulletin.publisher.amend import correct_notice, retract_notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker
from bulletin.publisher.notices import NoticeDraft, cancel_notice, create_notice
from bulletin.publisher.schedule import decide_late, late_notices
from bulletin.service.daemon import Daemon
from bulletin.timeparse import ambiguity, parse_until, parse_when
from tests.plugins.bulletin_app import Instance, feed_entry_id
from tests.plugins.cli import invoke

NY = ZoneInfo("America/New_York")
TIP = "Lock your car and take your keys: most thefts from cars are from unlocked cars."


def local(text: str) -> datetime:
    """A New York wall-clock time as aware UTC (first of two in the autumn hour)."""
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


def add(instance: Instance, text: str = TIP, approve: bool = True, **changes: object) -> int:
    fields: dict[str, object] = {"category": "crime-prevention", "text": text, "targets": ("feed",)}
    fields.update(changes)
    notice = create_notice(
        instance.app.engine,
        instance.settings,
        instance.clock,
        NoticeDraft(**fields),  # type: ignore[arg-type]
        "dispatcher",
    )
    assert notice.id is not None
    if approve:
        approve_notice(instance.app.engine, instance.settings, instance.clock, notice.id, "chief")
    return notice.id


def deliveries(instance: Instance, notice_id: int) -> list[Delivery]:
    with Session(instance.app.engine) as session:
        return list(
            session.exec(
                select(Delivery).where(Delivery.notice_id == notice_id).order_by(col(Delivery.id))
            )
        )


def notice_row(instance: Instance, notice_id: int) -> Notice:
    with Session(instance.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return notice


def feed_root(instance: Instance) -> SafeET.Element:
    return SafeET.parse(instance.settings.feed_path("feed")).getroot()


def feed_entries(instance: Instance) -> list[tuple[str, str]]:
    """(entry id, content) of each entry, newest first."""
    path = instance.settings.feed_path("feed")
    if not path.exists():
        return []
    return [
        (e.findtext(f"{{{ATOM}}}id") or "", e.findtext(f"{{{ATOM}}}content") or "")
        for e in feed_root(instance).findall(f"{{{ATOM}}}entry")
    ]


def worker(instance: Instance, owner: str = "w") -> DeliveryWorker:
    app = instance.app
    return DeliveryWorker(app.engine, app.settings, app.clock, app.archiver, app.connector, owner)


# -- the rule and the time zone -------------------------------------------------------------


def test_rule_syntax_is_normalised_and_errors_are_clear() -> None:
    """A rule reads case-insensitively and is stored normalised; a bad one says what is wrong."""
    rule = recurrence.parse_rule("Weekly; BYDAY=th,mo; at=9:00")
    assert rule.text() == "weekly;byday=MO,TH;at=09:00"
    assert recurrence.parse_every("weekday").byday == ("MO", "TU", "WE", "TH", "FR")
    with pytest.raises(UsageError, match="daily, weekly or monthly"):
        recurrence.parse_rule("hourly")
    with pytest.raises(UsageError, match="unknown weekday XX"):
        recurrence.parse_rule("weekly;byday=XX")
    with pytest.raises(UsageError, match="at is a local time"):
        recurrence.parse_rule("daily;at=25:00")


def test_weekly_at_0900_keeps_local_time_across_both_dst_changes() -> None:
    """Weekly at 09:00 New York across 2026-11-01 and 2027-03-14: the UTC time moves by an
    hour each time, the local time stays 09:00."""
    rule = recurrence.parse_rule("weekly;byday=SU;at=09:00")
    anchor = local("2026-10-25T09:00")
    autumn = recurrence.occurrences_between(
        rule, anchor, NY, anchor - timedelta(seconds=1), local("2026-11-08T12:00")
    )
    assert [t.hour for t in autumn] == [13, 14, 14]  # EDT, then EST from 1 November (2:00)
    spring = recurrence.occurrences_between(
        rule, anchor, NY, local("2027-03-01T00:00"), local("2027-03-21T12:00")
    )
    assert [t.hour for t in spring] == [14, 13, 13]  # EST, then EDT from 14 March
    for when in autumn + spring:
        assert when.astimezone(NY).strftime("%H:%M") == "09:00"


def test_recurrence_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    """02:30 does not exist on 2027-03-14: that occurrence is at 03:30 EDT (the offset before
    the gap, as RFC 5545 says); the next week is at 02:30 again."""
    rule = recurrence.parse_rule("weekly;byday=SU;at=02:30")
    anchor = local("2027-03-07T02:30")
    times = recurrence.occurrences_between(
        rule, anchor, NY, anchor - timedelta(seconds=1), local("2027-03-21T12:00")
    )
    shown = [t.astimezone(NY).strftime("%Y-%m-%d %H:%M %Z") for t in times]
    assert shown == ["2027-03-07 02:30 EST", "2027-03-14 03:30 EDT", "2027-03-21 02:30 EDT"]


def test_entered_times_refuse_the_gap_and_take_the_first_repeated_hour() -> None:
    """A typed 02:30 on 2027-03-14 is refused; 01:30 on 2026-11-01 is the first (EDT) one,
    with a warning naming the second; an offset picks the second."""
    now = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(UsageError, match="does not exist in America/New_York"):
        parse_when("2027-03-14T02:30", "America/New_York", now)
    first = parse_when("2026-11-01T01:30", "America/New_York", now)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    note = ambiguity("2026-11-01T01:30", "America/New_York")
    assert note is not None and "happens twice" in note and "-05:00" in note
    second = parse_when("2026-11-01T01:30-05:00", "America/New_York", now)
    assert second == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert ambiguity("2026-11-01T03:30", "America/New_York") is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("tomorrow 7am", "2026-11-26T07:00"),
        ("Tomorrow 7:30 p.m.", "2026-11-26T19:30"),
        ("tomorrow 12am", "2026-11-26T00:00"),
        ("tomorrow 12 pm", "2026-11-26T12:00"),
        ("today 23:45", "2026-11-25T23:45"),
        ("tomorrow 07:00", "2026-11-26T07:00"),
    ],
)
def test_today_and_tomorrow_are_the_agency_s_calendar_days(typed: str, expected: str) -> None:
    """At 23:30 in New York (04:30 the next day in UTC), "tomorrow" is the next day in New
    York, not the day after UTC's."""
    now = local("2026-11-25T23:30")
    assert parse_when(typed, "America/New_York", now) == local(expected)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("tomorrow 7", "give minutes"),
        ("tomorrow 13pm", "1 to 12"),
        ("tomorrow 24:00", "no such time"),
        ("tomorrow 7:75", "no such time"),
        ("tomorow 7am", "cannot read time"),
        ("tomorrow 07:00m", "cannot read time"),
        ("+30m", "write 30min for minutes or 30mo for months"),
        ("+0min", "no time at all"),
    ],
)
def test_typed_day_times_that_make_no_sense_are_refused(typed: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_when(typed, "America/New_York", local("2026-11-25T12:00"))


def test_tomorrow_at_a_skipped_or_repeated_hour() -> None:
    """The clock rules hold for today/tomorrow too: the skipped hour is refused, the repeated
    one warned about."""
    with pytest.raises(UsageError, match="does not exist"):
        parse_when("tomorrow 2:30am", "America/New_York", local("2027-03-13T20:00"))
    note = ambiguity("tomorrow 1:30am", "America/New_York", local("2026-10-31T20:00"))
    assert note is not None and "2026-11-01T01:30 happens twice" in note


def test_a_recurrence_needs_an_explicit_end(instance: Instance) -> None:
    """--repeat without --until (a time, or 'until cancelled') is refused, and so is a rule
    without a time of day."""
    with pytest.raises(UsageError, match="needs an end"):
        add(instance, recurrence="weekly;byday=MO;at=09:00", approve=False)
    with pytest.raises(UsageError, match="time of day"):
        add(instance, recurrence="weekly;byday=MO", until_cancelled=True, approve=False)
    with pytest.raises(UsageError, match="a follow-up is posted at expiry"):
        add(instance, follow_up="Reopened.", approve=False)


# -- recurrence through the due-scan --------------------------------------------------------


def test_weekly_tip_is_published_per_occurrence_across_the_autumn_change(
    instance: Instance,
) -> None:
    """A weekly tip (Mondays 09:00) from 26 Oct to 9 Nov 2026: three occurrences, each made
    when its time comes, each its own delivery with its date line, 09:00 local each time
    though New York left daylight time in between; nothing more after --until."""
    instance.clock.set(local("2026-10-20T12:00"))
    notice_id = add(
        instance,
        recurrence="weekly;byday=MO;at=09:00",
        repeat_until=local("2026-11-09T23:00"),
    )
    daemon = Daemon(instance.app)
    daemon.prepare()
    assert daemon.dispatch_due() == []  # not yet
    assert len(deliveries(instance, notice_id)) == 1  # only the first occurrence exists
    for day in ("2026-10-26", "2026-11-02", "2026-11-09"):
        instance.clock.set(local(f"{day}T09:00") + timedelta(seconds=1))
        outcomes = daemon.dispatch_due()
        assert [o.state for o in outcomes] == ["published"], day
    instance.clock.set(local("2026-11-30T09:01"))
    assert daemon.dispatch_due() == []
    rows = deliveries(instance, notice_id)
    assert [(d.occurrence, d.state) for d in rows] == [
        (1, "published"),
        (2, "published"),
        (3, "published"),
    ]
    assert [d.due_at.hour if d.due_at else None for d in rows] == [13, 14, 14]
    assert [(d.text or "").splitlines()[-1] for d in rows] == [
        "(Mon 26 Oct 2026)",
        "(Mon 02 Nov 2026)",
        "(Mon 09 Nov 2026)",
    ]
    assert len({text for _, text in feed_entries(instance)}) == 3
    assert notice_row(instance, notice_id).state == "published"


def test_until_cancelled_series_stops_when_cancelled(instance: Instance) -> None:
    """'Until cancelled' runs on until someone cancels it; after that nothing more is made."""
    instance.clock.set(local("2026-12-01T08:00"))
    notice_id = add(instance, recurrence="daily;at=09:00", until_cancelled=True)
    daemon = Daemon(instance.app)
    daemon.prepare()
    for day in (1, 2):
        instance.clock.set(local(f"2026-12-0{day}T09:00:05"))
        daemon.dispatch_due()
    result = cancel_notice(instance.app.engine, instance.clock, notice_id, "sgt", "campaign over")
    assert result.cancelled == [] and result.too_late == {"feed": "published"}
    instance.clock.set(local("2026-12-09T09:00"))
    assert daemon.dispatch_due() == []
    assert [d.occurrence for d in deliveries(instance, notice_id)] == [1, 2]
    assert notice_row(instance, notice_id).next_occurrence_at is None


def test_missed_occurrences_after_downtime_only_the_latest_is_made(instance: Instance) -> None:
    """A daily tip whose daemon was down for four days: only the most recent missed
    occurrence is made (late, being routine); the skipped ones are audited."""
    instance.clock.set(local("2026-12-01T08:00"))
    notice_id = add(instance, recurrence="daily;at=09:00", until_cancelled=True)
    daemon = Daemon(instance.app)
    daemon.prepare()
    instance.clock.set(local("2026-12-01T09:00:05"))
    daemon.dispatch_due()
    instance.clock.set(local("2026-12-05T12:00"))  # down since the 1st
    daemon.dispatch_due()
    rows = deliveries(instance, notice_id)
    assert [(d.occurrence, d.state) for d in rows] == [(1, "published"), (2, "late")]
    assert (rows[1].text or "").endswith("(Sat 05 Dec 2026)")
    with Session(instance.app.engine) as session:
        made = session.exec(select(AuditEvent).where(AuditEvent.action == "occurrence-made")).one()
    assert "2026-12-02" in (made.detail or "")  # the skipped days are named


@pytest.mark.parametrize("every", ["day", "week", "month"])
@pytest.mark.parametrize("at", ["now", "+90s", "+30min"])
def test_a_recurrence_starts_at_its_first_time_not_a_period_later(
    instance: Instance, every: str, at: str
) -> None:
    """--every day|week|month with --at now, +90s or +30m (seconds past the minute): the first
    occurrence is at that time, today, and is published then; the next is one period later at
    the same minute."""
    instance.clock.advance(timedelta(seconds=7))
    now = instance.clock.now()
    asked = parse_when(at, instance.settings.agency.time_zone, now)
    notice_id = add(
        instance,
        recurrence=recurrence.parse_every(every).text(),
        publish_at=asked,
        until_cancelled=True,
    )
    row = notice_row(instance, notice_id)
    assert row.publish_at == asked
    minute = asked.astimezone(NY).replace(second=0, tzinfo=None)
    period = {"day": relativedelta(days=1), "week": relativedelta(weeks=1)}
    following = minute + period.get(every, relativedelta(months=1))
    assert row.next_occurrence_at == local(following.isoformat())
    daemon = Daemon(instance.app)
    daemon.prepare()
    instance.clock.set(asked)
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    [post] = deliveries(instance, notice_id)
    assert (post.text or "").endswith(recurrence.date_line(now, NY))


def test_until_a_date_includes_that_day(instance: Instance) -> None:
    """--until 2026-11-27 (a date alone) is the end of that day in New York: the daily 09:00
    occurrences of the 26th and of the 27th are both made, and none after."""
    tz = instance.settings.agency.time_zone
    until = parse_until("2026-11-27", tz, instance.clock.now())
    assert until == local("2026-11-27T23:59:59")
    assert parse_until("2026-11-27T09:00", tz, instance.clock.now()) == local("2026-11-27T09:00")
    notice_id = add(instance, recurrence="daily;at=09:00", repeat_until=until)
    daemon = Daemon(instance.app)
    daemon.prepare()
    for day in ("2026-11-26", "2026-11-27", "2026-11-28"):
        instance.clock.set(local(f"{day}T09:00:05"))
        daemon.dispatch_due()
    rows = deliveries(instance, notice_id)
    assert [(d.occurrence, d.state) for d in rows] == [(1, "published"), (2, "published")]
    assert (rows[1].text or "").endswith("(Fri 27 Nov 2026)")
    assert notice_row(instance, notice_id).state == "published"


def test_command_line_every_day_at_now_until_a_date(sqlite_instance: Instance) -> None:
    """`notice add --every day --at now --until DATE` (wall clock): the first occurrence is now,
    not tomorrow, and the series runs to the end of DATE in the agency's zone."""
    tomorrow = (datetime.now(NY) + timedelta(days=1)).date().isoformat()
    before = datetime.now(UTC)
    result = invoke(
        sqlite_instance,
        *("notice", "add", "--text", TIP),
        *("--category", "crime-prevention", "--target", "feed", "--every", "day"),
        *("--at", "now"),
        *("--until", tomorrow, "--as", "dispatcher1", "--json"),
    )
    assert result.exit_code == 0, result.output
    added = json.loads(result.output.splitlines()[-1])
    first = datetime.fromisoformat(added["publish_at"])
    assert before <= first <= datetime.now(UTC)
    assert datetime.fromisoformat(added["repeat_until"]) == local(f"{tomorrow}T23:59:59")


# -- expiry and follow-up -------------------------------------------------------------------


def test_follow_up_at_expiry_is_a_new_feed_entry_linking_the_first(instance: Instance) -> None:
    """A road closure with --follow-up: published, then at expiry the follow-up goes to the
    feed as a new entry in reply to the first (RFC 4685 in-reply-to), and is archived."""
    now = instance.clock.now()
    notice_id = add(
        instance,
        text="Mass Ave closed at Pleasant St until 4 pm.",
        category="road-closure",
        expires_at=now + timedelta(hours=2),
        follow_up="Mass Ave has reopened.",
        link="https://lexingtonma.gov/police/closures",
    )
    daemon = Daemon(instance.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    instance.clock.advance(timedelta(hours=1))
    assert daemon.dispatch_due() == []  # not expired yet
    instance.clock.advance(timedelta(hours=1, seconds=1))
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    assert daemon.dispatch_due() == []  # once
    [post, follow] = deliveries(instance, notice_id)
    assert (follow.kind, follow.parent_id, follow.state) == ("follow-up", post.id, "published")
    entries = feed_root(instance).findall(f"{{{ATOM}}}entry")
    assert entries[0].findtext(f"{{{ATOM}}}content") == "Mass Ave has reopened."
    reply = entries[0].find(f"{{{THREADING}}}in-reply-to")
    assert reply is not None and reply.get("ref") == feed_entry_id(instance, notice_id)
    with Session(instance.app.engine) as session:
        records = session.exec(select(Record).where(Record.notice_id == notice_id)).all()
    assert len(records) == 2


def test_expired_notice_is_not_published_and_gets_no_follow_up(instance: Instance) -> None:
    """A notice that expires before it goes out is never published, and so has nothing to
    follow up."""
    now = instance.clock.now()
    notice_id = add(
        instance,
        publish_at=now + timedelta(minutes=10),
        expires_at=now + timedelta(minutes=20),
        follow_up="Over.",
    )
    instance.clock.advance(timedelta(minutes=25))
    daemon = Daemon(instance.app)
    daemon.prepare()
    daemon.dispatch_due()
    daemon.dispatch_due()
    assert [(d.kind, d.state) for d in deliveries(instance, notice_id)] == [("post", "failed")]
    assert feed_entries(instance) == []


def test_notice_that_expired_before_any_attempt_shows_no_attempt(instance: Instance) -> None:
    """A notice that expired while its post waited is failed with the reason, with no attempt
    counted or logged, and `notice show` says so (attempts 0, no try line)."""
    now = instance.clock.now()
    notice_id = add(
        instance, publish_at=now + timedelta(minutes=10), expires_at=now + timedelta(minutes=20)
    )
    instance.clock.advance(timedelta(minutes=25))
    daemon = Daemon(instance.app)
    daemon.prepare()
    assert daemon.dispatch_due() == []
    [post] = deliveries(instance, notice_id)
    assert (post.state, post.attempts, post.last_error) == (
        "failed",
        0,
        "the notice expired before it was published",
    )
    shown = invoke(instance, "notice", "show", str(notice_id), "--json")
    assert shown.exit_code == 0, shown.output
    [delivery] = json.loads(shown.output)["deliveries"]
    assert (delivery["attempts"], delivery["attempt_log"]) == (0, [])
    text = invoke(instance, "notice", "show", str(notice_id))
    assert "attempts 0" in text.output and "try " not in text.output


# -- corrections and retractions (feed; X and Facebook in test_scheduling_platforms) ----------


def test_correction_and_retraction_on_the_feed(instance: Instance) -> None:
    """A correction is a new entry in reply to the first; a retraction with --delete removes
    the entry and leaves an RFC 6721 tombstone; each is audited with its reason."""
    notice_id = add(instance, text="Maple St closed for paving today.", category="road-closure")
    engine, settings = instance.app.engine, instance.settings
    with pytest.raises(Refused, match="nothing published"):
        correct_notice(engine, settings, instance.clock.now(), notice_id, "x", "y", "sgt")
    daemon = Daemon(instance.app)
    daemon.prepare()
    daemon.dispatch_due()
    correct_notice(
        engine, settings, instance.clock.now(), notice_id, "Main St, not Maple St.", "typo", "sgt"
    )
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    assert feed_entries(instance)[0][1] == "Correction: Main St, not Maple St."
    retract_notice(engine, settings, instance.clock.now(), notice_id, "wrong day", "lt", True)
    assert [o.state for o in daemon.dispatch_due()] == ["deleted"]
    ids = [entry_id for entry_id, _ in feed_entries(instance)]
    assert feed_entry_id(instance, notice_id) not in ids
    tombstone = feed_root(instance).find(f"{{{TOMBSTONES}}}deleted-entry")
    assert tombstone is not None
    assert tombstone.get("ref") == feed_entry_id(instance, notice_id)
    with pytest.raises(Refused, match="nothing left to retract"):
        retract_notice(engine, settings, instance.clock.now(), notice_id, "again", "lt")
    with Session(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert {"correction-queued", "retracted", "deleted"} <= set(actions)


def test_a_retracted_notice_says_so_and_a_deletion_takes_no_text(instance: Instance) -> None:
    """`retract --delete --text` is refused in one line and changes nothing; a retraction
    makes the notice `retracted` (its deletion going through does not undo it), which
    `notice list --state retracted` and `status` show."""
    instance.clock.set(datetime.now(UTC))  # the commands read the wall clock
    notice_id = add(instance, text="Maple St closed for paving today.", category="road-closure")
    daemon = Daemon(instance.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]

    def run(*args: str, code: int = 0) -> str:
        result = invoke(instance, *args)
        assert result.exit_code == code, result.output
        return result.output

    retract = ("notice", "retract", str(notice_id), "--reason", "wrong day", "--as", "lt")
    refused = run(*retract, "--delete", "--text", "Posted in error.", code=2)
    errors = [line for line in refused.splitlines() if line.startswith("bulletin: error")]
    assert len(errors) == 1 and "not both" in errors[0]
    assert notice_row(instance, notice_id).state == "published"
    run(*retract, "--delete")
    assert notice_row(instance, notice_id).state == "retracted"
    instance.clock.advance(timedelta(minutes=1))
    assert [o.state for o in daemon.dispatch_due()] == ["deleted"]
    assert notice_row(instance, notice_id).state == "retracted"
    listed = json.loads(run("notice", "list", "--state", "retracted", "--json"))
    assert [n["id"] for n in listed["notices"]] == [notice_id]
    assert "notices: retracted 1" in run("status")


# -- cancellation racing a due delivery -----------------------------------------------------


def race(instance: Instance, notice_id: int, owner: str, head_start: float) -> dict[str, object]:
    """Start a worker's claim-and-run and a cancellation together; what each of them said."""
    w = worker(instance, owner)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def publish() -> None:
        barrier.wait()
        results["outcomes"] = [w.run(c).state for c in w.claim()]

    def cancel() -> None:
        barrier.wait()
        threading.Event().wait(head_start)
        try:
            results["cancel"] = cancel_notice(
                instance.app.engine, instance.clock, notice_id, "sgt", "race"
            ).too_late
        except Refused as e:  # it finished first: the whole notice is published
            results["cancel"] = str(e)

    threads = [threading.Thread(target=publish), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("head_start", [0.0, 0.002, 0.01])
def test_cancel_racing_a_due_delivery_has_one_consistent_winner(
    instance: Instance, head_start: float
) -> None:
    """A worker claiming a due post and a cancellation at the same moment (two threads):
    either the post is published and the cancellation says it was too late for the feed,
    or it is cancelled and never published; never both, never neither."""
    for round_ in range(4):
        notice_id = add(instance, text=f"{TIP} ({head_start} {round_})")
        results = race(instance, notice_id, f"w{round_}", head_start)
        cancelled = results["cancel"]
        [row] = deliveries(instance, notice_id)
        in_feed = feed_entry_id(instance, notice_id) in dict(feed_entries(instance))
        if row.state == "published":  # the worker won: the cancellation was too late
            assert in_feed
            assert results["outcomes"] == ["published"]
            assert cancelled in (
                {"feed": "in-flight"},
                {"feed": "published"},
                f"notice {notice_id} is already published",
            )
        else:  # the cancellation won: never published
            assert row.state == "cancelled"
            assert not in_feed
            assert cancelled == {}
            assert results["outcomes"] == []


# -- downtime -------------------------------------------------------------------------------


def test_after_downtime_routine_waits_and_emergency_goes_out(instance: Instance) -> None:
    """Both due at 10:00 while no daemon ran; it starts at 11:00: the emergency notice goes
    out at once, the routine one is late and waits for a person, who publishes it."""
    now = instance.clock.now()
    routine = add(instance, publish_at=now + timedelta(minutes=5))
    emergency = add(
        instance,
        text="Shelter in place: gas leak on Bedford St.",
        category="shelter-in-place",
        publish_at=now + timedelta(minutes=5),
        expires_at=now + timedelta(hours=6),
    )
    instance.clock.advance(timedelta(hours=1, minutes=5))
    daemon = Daemon(instance.app)
    daemon.prepare()  # recovery marks it late and says so
    outcomes = daemon.dispatch_due()
    assert [o.state for o in outcomes] == ["published"]
    assert deliveries(instance, emergency)[0].state == "published"
    assert deliveries(instance, routine)[0].state == "late"
    with Session(instance.app.engine) as session:
        assert [n.notice_id for n in late_notices(session)] == [routine]
    assert daemon.dispatch_due() == []  # still waiting
    decide_late(
        instance.app.engine, instance.settings, instance.clock.now(), routine, True, "chief"
    )
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    with pytest.raises(Refused, match="nothing waiting"):
        decide_late(
            instance.app.engine, instance.settings, instance.clock.now(), routine, False, "c"
        )


def test_late_notice_can_be_cancelled_and_small_delays_are_not_late(instance: Instance) -> None:
    """A late routine notice cancelled by a person is never published; one only ten minutes
    past its time (within late_grace) just goes out."""
    now = instance.clock.now()
    late = add(instance, publish_at=now + timedelta(minutes=1))
    instance.clock.advance(timedelta(hours=2))
    soon = add(instance, text=f"{TIP} (b)", publish_at=instance.clock.now() + timedelta(minutes=1))
    instance.clock.advance(timedelta(minutes=11))
    daemon = Daemon(instance.app)
    daemon.prepare()
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    assert deliveries(instance, soon)[0].state == "published"
    decide_late(
        instance.app.engine, instance.settings, instance.clock.now(), late, False, "sgt", "stale"
    )
    assert deliveries(instance, late)[0].state == "cancelled"
    assert notice_row(instance, late).state == "cancelled"


# -- the attempts log -----------------------------------------------------------------------


def test_each_attempt_is_logged_with_its_outcome(instance: Instance) -> None:
    """A claim that expires is logged as abandoned; the next try as published."""
    notice_id = add(instance)
    dead = worker(instance, "dead")
    assert len(dead.claim()) == 1
    instance.clock.advance(timedelta(seconds=instance.settings.daemon.lease_seconds + 1))
    survivor = worker(instance, "survivor")
    assert [survivor.run(c).state for c in survivor.claim()] == ["published"]
    [row] = deliveries(instance, notice_id)
    with Session(instance.app.engine) as session:
        attempts = session.exec(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == row.id)
            .order_by(col(DeliveryAttempt.id))
        ).all()
    assert [(a.owner, a.outcome) for a in attempts] == [
        ("dead", "abandoned"),
        ("survivor", "published"),
    ]
    assert all(a.finished_at is not None for a in attempts)
