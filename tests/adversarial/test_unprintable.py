"""Characters that no platform displays: refused where notices are written (they would make
the feed invalid XML), made visible where visitors' archived text is printed, and a delivery
that keeps being retried is reported by `status --check`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import Delivery, Notice
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.delivery import DeliveryWorker
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import comments, fb_post, run
from tests.plugins.cli import invoke
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts


def _invoke(config: Path, *argv: str, code: int = 0) -> tuple[str, str]:
    """Run ``bulletin`` with ``argv``; its stdout and stderr, once it exited with ``code``."""
    result = invoke(config, *argv)
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def test_template_variable_with_a_control_character_is_refused(
    sqlite_instance: Instance,
) -> None:
    """A template variable holding a form feed (published without a second approval) is
    refused in one line naming the variable; no notice is drafted and no feed is written."""
    config = sqlite_instance.config
    _invoke(
        config,
        *("template", "add", "closure", "--category", "road-closure"),
        *("--text", "Road closed: {road}.", "--var", "road:str", "--as", "dana"),
    )
    _invoke(config, "template", "approve", "closure", "--by", "chief")
    _, stderr = _invoke(
        config,
        *("notice", "add", "--template", "closure", "--var", "road=Elm\x0cSt"),
        *("--target", "feed", "--as", "dana"),
        code=2,
    )
    assert stderr.strip().splitlines()[-1] == (
        "bulletin: error: variable road has a control character (U+000C) at position 4; "
        "remove it (no platform displays it)"
    )
    with Session(sqlite_instance.app.engine) as session:
        assert session.exec(select(Notice)).all() == []
    assert not sqlite_instance.settings.feed_path("feed").exists()


def test_archived_visitor_text_prints_its_escapes_visibly(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """A visitor comment carrying a terminal escape and a bidi override is archived as written,
    and `archive list/show/search/thread` and `hold show` print both escaped, never raw."""
    post = fb_post(sandbox)
    hostile = "Detour\x1b[2J\x1b]0;pwned\x07 via \u202eElm\nsecond line"
    [comment] = comments(control, post, message=hostile, author="Eve\x1b[31m")
    run(site, "facebook")
    with Session(site.app.engine) as session:
        from bulletin.models import Record

        record = session.exec(select(Record).where(Record.remote_id == comment)).one()
    assert record.text == hostile  # the record keeps what the visitor wrote
    outputs = {
        "list": _invoke(site.config, "archive", "list")[0],
        "show": _invoke(site.config, "archive", "show", str(record.id))[0],
        "search": _invoke(site.config, "archive", "search", "Detour")[0],
        "thread": _invoke(site.config, "archive", "thread", str(record.id))[0],
    }
    for command, out in outputs.items():
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in out, f"archive {command} printed {raw!r}"
        assert "Detour\\x1b[2J" in out, command
    assert "\\u202eElm\nsecond line" in outputs["show"]  # newlines kept where text spans lines
    assert "Eve\\x1b[31m" in outputs["thread"]
    _invoke(
        site.config,
        *("hold", "create", "--name", "Detour", "--query", "Detour"),
        *("--reason", "claim", "--as", "clerk"),
    )
    held = _invoke(site.config, "hold", "show", "1")[0]
    assert "\x1b" not in held
    assert "Eve\\x1b[31m" in held


def test_delivery_retried_too_long_is_a_check_line(
    tmp_path: Path, sandbox: SandboxServer, control: Control
) -> None:
    """A post X keeps refusing with 503, still retried 40 minutes after its first attempt
    (beyond [daemon] stuck_after = "30min"), is named by `status --check`."""
    inst = make_instance(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", sandbox_accounts(sandbox.url)
    )
    try:
        app = inst.app
        app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
        Daemon(app).prepare()
        control.fault("error", r"^/2/tweets$", method="POST", count=1000, status=503)
        now = datetime.now(UTC)  # `status` reads the wall clock
        inst.clock.set(now - timedelta(minutes=40))
        notice = create_notice(
            app.engine,
            inst.settings,
            inst.clock,
            NoticeDraft("traffic", "Main St closed for a parade until 2 pm.", ("x",)),
            "dispatcher",
        )
        approve_notice(app.engine, inst.settings, inst.clock, notice.id or 0, "approver")
        worker = DeliveryWorker(
            app.engine, app.settings, app.clock, app.archiver, app.connector, "vm:1:a"
        )
        for minutes_ago in (40, 1):  # the first attempt, and the latest retry
            inst.clock.set(now - timedelta(minutes=minutes_ago))
            claims = worker.claim()
            assert len(claims) == 1
            assert worker.run(claims[0]).state in ("pending", "uncertain")
        with Session(app.engine) as session:
            delivery = session.exec(select(Delivery)).one()
        assert delivery.attempts == 2
        checks = [
            line
            for line in _invoke(inst.config, "status", "--check", code=1)[0].splitlines()
            if line.startswith("CHECK:")
        ]
        assert (
            "CHECK: 1 deliveries still retried over 30min after their first attempt "
            "(see `bulletin notice show`)"
        ) in checks
    finally:
        inst.app.close()


def test_old_notice_with_a_control_character_never_breaks_the_feed(
    sqlite_instance: Instance,
) -> None:
    """An approved notice whose text gained a form feed before drafts were checked (stored
    as it was) fails alone with the reason; the feed stays valid XML and the next notice
    is published in it."""
    inst = sqlite_instance
    app = inst.app

    def approved(text: str) -> int:
        notice = create_notice(
            app.engine, inst.settings, inst.clock, NoticeDraft("traffic", text, ("feed",)), "d"
        )
        approve_notice(app.engine, inst.settings, inst.clock, notice.id or 0, "chief")
        return notice.id or 0

    old = approved("Main St closed for a parade until 2 pm.")
    with Session(app.engine) as session:  # what an older version let through
        for row in session.exec(select(Delivery).where(Delivery.notice_id == old)):
            row.text = "Main St\x0cclosed for a parade until 2 pm."
            session.add(row)
        session.commit()
    daemon = Daemon(app)
    daemon.prepare()
    [outcome] = daemon.dispatch_due()
    assert outcome.state == "failed"
    assert "control character (U+000C) at position 8, which a feed cannot carry" in (
        outcome.detail or ""
    )
    approved("Elm St reopened.")
    assert [o.state for o in daemon.dispatch_due()] == ["published"]
    from defusedxml import ElementTree as SafeET

    root = SafeET.parse(inst.settings.feed_path("feed")).getroot()
    assert len(root.findall("{http://www.w3.org/2005/Atom}entry")) == 1
