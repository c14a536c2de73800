"""Email notifications as people use them: an administrator sends a test message; the approval
page checks the one-time link a message carried (the page itself still needs a signed-in
approver; the link never approves anything)."""

from __future__ import annotations

from bulletin.app.actor import Actor
from bulletin.app.context import App
from bulletin.audit import record_event
from bulletin.db import session_scope
from bulletin.errors import Refused
from bulletin.identity import require_role
from bulletin.notify import links, outbox
from bulletin.notify.send import Outcome, Sender


def send_test(app: App, actor: Actor, address: str) -> Outcome:
    """Send a test message to ``address`` now, through the outbox like any other.

    :raises Refused: ``actor`` is not an admin, no SMTP server is configured, or sending
        failed (the message stays in the outbox and is tried again by the daemon).
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "admin", engine)
    if not app.settings.notify.enabled:
        raise Refused("no SMTP server is configured: set [notify] smtp_host and sender")
    if "@" not in address or any(c.isspace() for c in address.strip()):
        raise Refused(f"{address!r} is not an email address")
    with session_scope(engine) as session:
        row = outbox.trial_message(session, address.strip(), app.clock.now())
        row_id = row.id
    for outcome in Sender(engine, app.settings, app.environ, app.clock).run():
        if outcome.id == row_id:
            if outcome.result != "sent":
                raise Refused(f"the test message was not sent: {outcome.error}")
            return outcome
    raise Refused("the test message was not sent: the outbox is busy; the daemon will send it")


def verify_approval_link(app: App, actor: Actor, notice_id: int, token: str) -> str:
    """Check and use up the one-time ``token`` of notice ``notice_id``'s approval page for a
    signed-in ``actor`` (audited ``approval-link-used``); returns the address the link was
    sent to.

    :raises Refused: ``actor`` is not an approver, or the link is not valid, has expired or
        was already used.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "approver", engine)
    now = app.clock.now()
    try:
        with session_scope(engine) as session:
            key = links.link_key(session, app.settings.notify, app.environ, now)
            recipient = links.redeem(session, key, notice_id, token, now)
            record_event(session, at=now, actor=actor, action="approval-link-used",
                         object_type="notice", object_id=notice_id, sent_to=recipient)  # fmt: skip
            return recipient
    except links.LinkRefused as e:
        raise Refused(f"{e}: open the approval page from the list of notices instead") from None
