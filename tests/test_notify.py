"""Email notifications against a real SMTP server (aiosmtpd with STARTTLS and AUTH): approval
requests with one-time links, written with the change and sent by the outbox's job; escalation
of emergencies; quiet hours; deduplicated administrators' notices; retries."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session, select
from structlog.testing import capture_logs

from bulletin.app import Actor
from bulletin.app.notify import send_test, verify_approval_link
from bulletin.db import session_scope
from bulletin.errors import Refused
from bulletin.models import AuditEvent, Notice
from bulletin.notify import outbox
from bulletin.notify.escalate import escalate_due, send_digest
from bulletin.notify.send import Sender, backoff
from bulletin.publisher import announce
from bulletin.publisher.notices import NoticeDraft, create_notice
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke

PASSWORD = "s3cret-smtp-Pa55word"
TEXT = "Evacuate the area around Bedford St between Hill St and Worthen Rd now."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """What the SMTP server received, and how to start it on ``port``."""

    port: int
    ca_file: Path
    start: Callable[[], None]
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "smtp.pem", tmp / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Inbox]:
    """A real SMTP server on a free port requiring STARTTLS and AUTH (started by the test
    through ``inbox.start()``, so a test can first see it down)."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    controllers: list[Controller] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            inbox.messages.append(parsed)
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:  # fmt: skip
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
        if ok:
            inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    def start() -> None:
        controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=inbox.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticate,
            auth_required=True,
        )
        controller.start()
        controllers.append(controller)

    inbox = Inbox(free_port(), cert_file, start)
    yield inbox
    for controller in controllers:
        controller.stop()


def config(inbox: Inbox, extra: str = "") -> str:
    return f"""
[web]
base_url = "https://bulletin.example.org"

[notify]
smtp_host = "127.0.0.1"
smtp_port = {inbox.port}
starttls = true
ca_file = "{inbox.ca_file}"
username = "bulletin"
password_env = "NOTIFY_SMTP_PASSWORD"
sender = "bulletin@example.org"
approvers = ["chief@example.org", "lt@example.org"]
escalate_to = ["captain@example.org"]
admins = ["it@example.org"]
{extra}
"""


@pytest.fixture
def inst(tmp_path: Path, db_url: str, smtp: Inbox) -> Iterator[Instance]:
    instance = make_instance(tmp_path, db_url, config(smtp))
    instance.app.environ = {"NOTIFY_SMTP_PASSWORD": PASSWORD}
    yield instance
    instance.app.close()


def sender(inst: Instance) -> Sender:
    return Sender(inst.app.engine, inst.settings, inst.app.environ, inst.clock)


def draft(inst: Instance, category: str, text: str = TEXT) -> int:
    made = NoticeDraft(category=category, text=text, targets=("feed",))
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, made, "dana")
    assert notice.id is not None
    return notice.id


def link_in(message: EmailMessage) -> tuple[int, str]:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(
        r"https://bulletin\.example\.org/approvals/(\d+)\?t=(\S+)", body.get_content()
    )
    assert found is not None
    return int(found.group(1)), found.group(2)


def test_approval_needed_emails_each_approver_once_with_a_link(inst: Instance, smtp: Inbox) -> None:
    """Given two approvers on call, when an emergency is drafted, each gets one message over
    STARTTLS+AUTH with the notice's text, category, priority, author and a personal link."""
    smtp.start()
    notice_id = draft(inst, "evacuation")
    results = [o.result for o in sender(inst).run()]
    assert results == ["sent"]
    assert sorted(m["To"] for m in smtp.messages) == ["chief@example.org", "lt@example.org"]
    assert smtp.logins == ["bulletin"]
    (message,) = smtp.to("chief@example.org")
    assert message["From"] == "bulletin@example.org"
    assert f"notice #{notice_id}" in message["Subject"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert TEXT in part and "evacuation" in part and "emergency" in part and "dana" in part
        assert PASSWORD not in part
    assert link_in(message)[0] == notice_id
    assert link_in(smtp.to("lt@example.org")[0])[1] != link_in(message)[1]
    assert sender(inst).run() == []  # sent once


def test_a_rolled_back_change_sends_nothing(inst: Instance, smtp: Inbox) -> None:
    """Given a draft whose transaction rolls back after asking for approval, nothing is sent."""
    smtp.start()

    def draft_then_fail() -> None:
        with session_scope(inst.app.engine) as session:
            now = inst.clock.now()
            notice = Notice(category="evacuation", priority="emergency", text=TEXT,
                            author="dana", created_at=now)  # fmt: skip
            session.add(notice)
            session.flush()
            announce.drafted(session, notice, now)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        draft_then_fail()
    with Session(inst.app.engine) as session:
        assert session.exec(select(Notice)).all() == []
    assert sender(inst).run() == []
    assert smtp.messages == []


def test_an_emergency_escalates_once_after_escalate_after_and_an_advisory_never(
    inst: Instance, smtp: Inbox
) -> None:
    """Given an emergency and an advisory waiting, when the clock passes escalate_after, the
    emergency (only) escalates to escalate_to, once, audited."""
    smtp.start()
    emergency = draft(inst, "evacuation")
    draft(inst, "road-closure")
    assert escalate_due(inst.app.engine, inst.settings, inst.clock) == []
    inst.clock.advance(timedelta(minutes=4, seconds=59))
    assert escalate_due(inst.app.engine, inst.settings, inst.clock) == []
    inst.clock.advance(timedelta(seconds=1))
    assert escalate_due(inst.app.engine, inst.settings, inst.clock) == [emergency]
    inst.clock.advance(timedelta(minutes=10))
    assert escalate_due(inst.app.engine, inst.settings, inst.clock) == []
    sender(inst).run()
    (escalated,) = smtp.to("captain@example.org")
    assert "ESCALATED" in escalated["Subject"] and f"#{emergency}" in escalated["Subject"]
    assert link_in(escalated)[0] == emergency
    with Session(inst.app.engine) as session:
        audited = session.exec(select(AuditEvent).where(AuditEvent.action == "escalated")).all()
    assert [a.object_id for a in audited] == [str(emergency)]


def test_quiet_hours_delay_community_notices_never_emergencies(
    tmp_path: Path, db_url: str, smtp: Inbox
) -> None:
    """Given quiet hours 09:00-12:00 (it is 10:00 in New York), a community notice's mail
    waits until 12:00 while an emergency's goes at once."""
    inst = make_instance(tmp_path, db_url, config(smtp, 'quiet_hours = "09:00-12:00"'))
    inst.app.environ = {"NOTIFY_SMTP_PASSWORD": PASSWORD}
    smtp.start()
    community = draft(inst, "general", "Coffee with a cop, Saturday 9-11 at the library.")
    emergency = draft(inst, "evacuation")
    assert sorted(o.result for o in sender(inst).run()) == ["deferred", "sent"]
    assert {link_in(m)[0] for m in smtp.messages} == {emergency}
    inst.clock.advance(timedelta(hours=1, minutes=59))
    assert sender(inst).run() == []
    inst.clock.advance(timedelta(minutes=1))
    assert [o.result for o in sender(inst).run()] == ["sent"]
    assert {link_in(m)[0] for m in smtp.messages} == {emergency, community}
    inst.app.close()


def test_admin_messages_are_deduplicated_within_the_window(inst: Instance, smtp: Inbox) -> None:
    """Given the same administrators' subject three times within an hour, one message is
    sent; after the window another is."""
    smtp.start()
    for _ in range(3):
        with session_scope(inst.app.engine) as session:
            outbox.admin(session, "Delivery to feed failed", ["why"], inst.clock.now())
        sender(inst).run()
    assert len(smtp.to("it@example.org")) == 1
    inst.clock.advance(timedelta(hours=1, seconds=1))
    with session_scope(inst.app.engine) as session:
        outbox.admin(session, "Delivery to feed failed", ["again"], inst.clock.now())
    sender(inst).run()
    assert len(smtp.to("it@example.org")) == 2


def test_a_digest_gathers_admin_messages(tmp_path: Path, db_url: str, smtp: Inbox) -> None:
    """Given digest = true, administrators' messages wait for one daily digest."""
    inst = make_instance(tmp_path, db_url, config(smtp, "digest = true"))
    inst.app.environ = {"NOTIFY_SMTP_PASSWORD": PASSWORD}
    smtp.start()
    with session_scope(inst.app.engine) as session:
        outbox.admin(session, "Notice #1 failed", ["x"], inst.clock.now())
        outbox.admin(session, "Notice #1 failed", ["x"], inst.clock.now())
        outbox.admin(session, "Archive verification found problems", ["y"], inst.clock.now())
    assert sender(inst).run() == []
    assert send_digest(inst.app.engine, inst.settings, inst.app.environ, inst.clock) == 3
    (digest,) = smtp.messages
    body = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "2 x Notice #1 failed" in body and "Archive verification" in body
    assert send_digest(inst.app.engine, inst.settings, inst.app.environ, inst.clock) == 0
    inst.app.close()


def test_smtp_down_is_retried_later_and_nothing_is_lost(inst: Instance, smtp: Inbox) -> None:
    """Given the SMTP server down, the message is retried after a backoff and sent once the
    server is back; the password appears in no log line and no error."""
    notice_id = draft(inst, "evacuation")
    with capture_logs() as logs:
        outcomes = sender(inst).run()
        assert [o.result for o in outcomes] == ["retry"]
        assert sender(inst).run() == []  # not due yet
        smtp.start()
        inst.clock.advance(backoff(1))
        assert [o.result for o in sender(inst).run()] == ["sent"]
    assert {link_in(m)[0] for m in smtp.messages} == {notice_id}
    assert len(smtp.messages) == 2
    assert PASSWORD not in repr(logs) and PASSWORD not in repr(outcomes)


def test_a_wrong_password_is_never_shown(inst: Instance, smtp: Inbox) -> None:
    """Given a wrong password, the failure names the problem but not the password."""
    smtp.start()
    inst.app.environ = {"NOTIFY_SMTP_PASSWORD": "wrong-" + PASSWORD}
    draft(inst, "evacuation")
    with capture_logs() as logs:
        (outcome,) = sender(inst).run()
    assert outcome.result == "retry" and outcome.error is not None
    assert "SMTPAuthenticationError" in outcome.error
    assert PASSWORD not in repr(logs) and PASSWORD not in outcome.error
    assert smtp.messages == []


def test_a_link_verifies_once_and_expires(inst: Instance, smtp: Inbox) -> None:
    """Given two links from one approval request, the first opens the page once; the second,
    a day later, has expired; a forged one never verifies."""
    smtp.start()
    draft(inst, "evacuation")
    sender(inst).run()
    notice_id, token = link_in(smtp.to("chief@example.org")[0])
    _, other = link_in(smtp.to("lt@example.org")[0])
    chief = Actor("chief")
    assert verify_approval_link(inst.app, chief, notice_id, token) == "chief@example.org"
    with Session(inst.app.engine) as session:
        used = session.exec(select(AuditEvent).where(AuditEvent.action == "approval-link-used"))
        assert [(a.actor, a.object_id) for a in used] == [("chief", str(notice_id))]
    with pytest.raises(Refused, match="already used"):
        verify_approval_link(inst.app, chief, notice_id, token)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(Refused, match="not valid"):
        verify_approval_link(inst.app, chief, notice_id, forged)
    with pytest.raises(Refused, match="not valid"):
        verify_approval_link(inst.app, chief, notice_id + 1, other)
    inst.clock.advance(timedelta(hours=24))
    with pytest.raises(Refused, match="expired"):
        verify_approval_link(inst.app, chief, notice_id, other)


def test_notify_test_sends_a_message(inst: Instance, smtp: Inbox) -> None:
    """``bulletin notify test ADDRESS`` sends one message to ADDRESS."""
    smtp.start()
    outcome = send_test(inst.app, Actor("root"), "ops@example.org")
    assert outcome.recipients == ("ops@example.org",)
    (message,) = smtp.messages
    assert "Test message" in message["Subject"]
    result = invoke(inst, "notify", "test", "ops2@example.org", clock=inst.clock,
                    env={"NOTIFY_SMTP_PASSWORD": PASSWORD})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test message sent to ops2@example.org" in result.output
    assert len(smtp.messages) == 2


def test_accounts_with_an_email_and_the_role_are_told_too(
    tmp_path: Path, db_url: str, smtp: Inbox
) -> None:
    """Given an approver account whose address is set with ``user add --email`` and an admin
    whose address is set with ``user email``, the approval request reaches the first (not the
    admin), and a bad address is refused."""
    people = '[users.ada]\nroles = ["admin"]\nos_user = "ada"\n'
    inst = make_instance(tmp_path, db_url, config(smtp) + people)
    inst.app.environ = {"NOTIFY_SMTP_PASSWORD": PASSWORD}
    smtp.start()
    added = invoke(inst, "user", "add", "rosa", "--role", "approver", "--email",
                   "rosa@example.org", login="ada")  # fmt: skip
    assert added.exit_code == 0, added.output
    changed = invoke(inst, "user", "email", "ada", "ada@example.org", "--json", login="ada")
    assert changed.exit_code == 0, changed.output
    assert '"email": "ada@example.org"' in changed.output
    refused = invoke(inst, "user", "email", "ada", "not an address", login="ada")
    assert refused.exit_code == 2 and "not an email address" in refused.output
    draft(inst, "road-closure")
    sender(inst).run()
    assert sorted(m["To"] for m in smtp.messages) == [
        "chief@example.org",
        "lt@example.org",
        "rosa@example.org",
    ]
    inst.app.close()


def test_a_late_notice_after_downtime_tells_the_admins(inst: Instance, smtp: Inbox) -> None:
    """Given a routine notice whose time passed while no daemon ran, the admins are told
    once that it waits for a decision."""
    from bulletin.publisher.approval import approve_notice
    from bulletin.publisher.schedule import mark_late

    smtp.start()
    made = NoticeDraft(category="crime-prevention", text="Lock your car.", targets=("feed",),
                       publish_at=inst.clock.now() + timedelta(minutes=5))  # fmt: skip
    notice = create_notice(inst.app.engine, inst.settings, inst.clock, made, "dana")
    assert notice.id is not None
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id, "chief")
    inst.clock.advance(timedelta(hours=2))
    assert mark_late(inst.app.engine, inst.settings, inst.clock.now()) == [notice.id]
    sender(inst).run()
    (told,) = smtp.to("it@example.org")
    assert f"Notice #{notice.id} is late" in told["Subject"]
    body = told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Publish or cancel it" in body


def test_old_messages_and_links_are_pruned(inst: Instance, smtp: Inbox) -> None:
    """Messages and links older than 30 days go; the escalation marker stays."""
    from bulletin.notify.links import ApprovalLink
    from bulletin.notify.outbox import Notification
    from bulletin.notify.send import prune

    smtp.start()
    draft(inst, "evacuation")
    inst.clock.advance(timedelta(minutes=6))
    escalate_due(inst.app.engine, inst.settings, inst.clock)
    sender(inst).run()
    assert prune(inst.app.engine, inst.clock.now()) == 0
    inst.clock.advance(timedelta(days=32))
    assert prune(inst.app.engine, inst.clock.now()) == 4  # 1 approval, 3 links
    with Session(inst.app.engine) as session:
        assert [n.kind for n in session.exec(select(Notification))] == ["escalation"]
        assert session.exec(select(ApprovalLink)).all() == []


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ('smtp_host = "mail"', "sender"),
        ('smtp_host = "mail"\nsender = "b@x.org"\nusername = "b"', "password_env"),
        (f'password_env = "{PASSWORD}"', "not the secret itself"),
        ('quiet_hours = "10pm-7am"', "HH:MM-HH:MM"),
        ('escalate_after = "5m"', "ambiguous"),
    ],
)
def test_a_bad_notify_section_is_refused_in_one_line(
    tmp_path: Path, section: str, problem: str
) -> None:
    """Each mistake in [notify] is refused with what to change, never echoing a secret."""
    from bulletin.config import load_settings
    from bulletin.errors import ConfigError

    path = tmp_path / "bulletin.toml"
    path.write_text(f"[notify]\n{section}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert problem in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_environment_overrides_reach_the_notify_section(tmp_path: Path) -> None:
    """BULLETIN_NOTIFY__SMTP_HOST and friends configure the section like the file does."""
    from bulletin.config import load_settings

    path = tmp_path / "bulletin.toml"
    path.write_text('[notify]\nsender = "b@x.org"\n')
    settings = load_settings(path, environ={"BULLETIN_NOTIFY__SMTP_HOST": "mail.x.org"})
    assert settings.notify.enabled and settings.notify.smtp_host == "mail.x.org"
    assert settings.notify.escalate_delta == timedelta(minutes=5)


def test_the_daemon_runs_the_notify_jobs(inst: Instance, smtp: Inbox) -> None:
    """With [notify] configured, the daemon's job table sends due mail and escalates; the
    send job's body delivers an approval request."""
    from bulletin.service.daemon import Daemon
    from bulletin.service.jobs import table

    smtp.start()
    jobs = {job.id: job for job in table(Daemon(inst.app))}
    assert {"notify", "escalate", "notify-log"} <= set(jobs)
    assert "digest" not in jobs
    draft(inst, "evacuation")
    assert jobs["notify"].run() == 1
    assert len(smtp.messages) == 2


def test_the_emailed_link_opens_the_approval_queue_once_after_sign_in(
    inst: Instance, smtp: Inbox
) -> None:
    """Given an approval email, when its approver opens the link signed out, they are sent to
    sign in and back; the link is used up and they land on that notice in the queue, without
    the token in the address; opened again, the console says the link was already used."""
    from starlette.testclient import TestClient

    from bulletin.app import users
    from bulletin.web import create_app

    smtp.start()
    notice_id = draft(inst, "evacuation")
    sender(inst).run()
    _, token = link_in(smtp.to("chief@example.org")[0])
    link = users.add(inst.app, Actor("setup"), "chief", ["approver"], os_user="chief")
    users.set_password(inst.app, link.url.rsplit("/", 1)[1], "correct horse battery staple")
    path = f"/approvals/{notice_id}?t={token}"
    with TestClient(create_app(inst.app), follow_redirects=False) as web:
        first = web.get(path)
        assert first.status_code == 303 and first.headers["location"].startswith("/sign-in?next=")
        page = web.get(first.headers["location"])
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "name": "chief", "next": path}
        form["password"] = "correct horse battery staple"
        signed = web.post("/sign-in", data=form)
        assert signed.status_code == 303 and signed.headers["location"] == path
        landed = web.get(path)
        assert landed.status_code == 303
        assert landed.headers["location"] == f"/approvals#n{notice_id}-heading"
        assert "t=" not in landed.headers["location"]
        again = web.get(path)
        assert again.status_code == 403 and "already used" in again.text
    with Session(inst.app.engine) as session:
        used = session.exec(select(AuditEvent).where(AuditEvent.action == "approval-link-used"))
        assert [(a.actor, a.object_id) for a in used] == [("chief", str(notice_id))]
