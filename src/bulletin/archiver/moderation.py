"""Archive-first moderation: a comment is captured fresh from the platform and archived
before it is hidden or deleted there; the action is then recorded as a state change of the
comment, an audit event and a ``moderation-actions`` record (who, why, when).

Nothing is done on the platform when the fresh capture fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from sqlmodel import Session

from bulletin import audit
from bulletin.archiver.archive import Archiver, Capture
from bulletin.archiver.capture.versioning import gone_version
from bulletin.connectors.base import Connector, RemoteItem, platform_id
from bulletin.db import session_scope
from bulletin.errors import ConnectorError, NotFound, Refused
from bulletin.logs import get_logger
from bulletin.models import Account, Record
from bulletin.states import RecordState

log = get_logger("bulletin.moderation")

Action = Literal["hide", "unhide", "delete"]
_STATE = {"hide": "hidden", "unhide": "visible", "delete": "deleted"}


@dataclass(frozen=True)
class Moderated:
    """What a moderation action archived: the comment before, after, and the action record."""

    before: Record
    after: Record
    action: Record


def moderate(
    archiver: Archiver,
    connector: Connector,
    record_id: int,
    action: Action,
    *,
    actor: str,
    reason: str,
) -> Moderated:
    """Capture the comment of ``record_id`` fresh, archive it, then ``action`` it.

    :raises NotFound: no such record.
    :raises Refused: not a comment, the platform cannot do it, the fresh capture failed
        (nothing was done), or the comment is already gone (its deletion is archived).
    """
    if not reason.strip():
        raise Refused("moderating a comment needs a reason", remedy="reason")
    with Session(archiver.engine) as session:
        record = session.get(Record, record_id)
        if record is None:
            raise NotFound(f"no archived record {record_id}")
        account = session.get(Account, record.account)
    if record.kind != "comment":
        raise Refused(f"record {record_id} is a {record.kind}, not a visitor comment")
    limits = connector.limits()
    if action in ("hide", "unhide") and not limits.supports_hide:
        raise Refused(f"{record.platform} accounts cannot hide comments")
    if action == "delete" and not limits.supports_delete_comment:
        raise Refused(f"{record.platform} does not let the account delete visitors' comments")
    training = account.training if account else False
    thread_id = record.thread_id or record.parent_id or record.remote_id

    def archive(item: RemoteItem) -> Record:
        return archiver.archive([Capture(record.account, record.platform, item, training)])[0]

    try:
        fresh = connector.fetch_comment(thread_id, record.remote_id)
    except ConnectorError as e:
        log.error("moderation refused: the comment could not be captured", record=record_id)
        raise Refused(f"the comment could not be captured first, so nothing was done: {e}") from e
    if fresh is None:
        gone = gone_version(record, {"found_gone_by": "moderation"})
        archive(gone)
        raise Refused(f"comment {record.remote_id} is no longer on {record.platform}; recorded")
    if (
        not limits.reports_hidden
        and record.state == RecordState.HIDDEN
        and fresh.state == "visible"
    ):
        fresh = replace(fresh, state="hidden")  # the platform does not say; we hid it
    before = archive(fresh)
    target = platform_id(fresh)
    try:
        if action == "delete":
            connector.delete_comment(target)
        else:
            connector.hide_comment(target, hidden=action == "hide")
    except ConnectorError as e:
        with session_scope(archiver.engine) as session:
            audit.record_event(
                session,
                at=archiver.clock.now(),
                actor=actor,
                action=f"comment-{action}-failed",
                object_type="record",
                object_id=before.id or 0,
                reason=reason,
                error=str(e),
            )
        raise
    after = archive(replace(fresh, state=_STATE[action]))  # type: ignore[arg-type]
    now = archiver.clock.now()
    note = RemoteItem(
        kind="moderation",
        remote_id=f"{record.remote_id}/{action}/{now.isoformat()}",
        text=reason,
        author=actor,
        posted_at=now,
        parent_id=record.remote_id,
        thread_id=record.thread_id,
        extra={
            "action": action,
            "comment_record_before": before.id,
            "comment_record_after": after.id,
            "platform": record.platform,
            "platform_id": target,
        },
    )
    action_record = archive(note)
    with session_scope(archiver.engine) as session:
        audit.record_event(
            session,
            at=now,
            actor=actor,
            action=f"comment-{_PAST[action]}",
            object_type="record",
            object_id=after.id or 0,
            reason=reason,
            captured_before=before.id,
            moderation_record=action_record.id,
            remote_id=record.remote_id,
            account=record.account,
        )
    log.info(
        "comment moderated",
        action=action,
        account=record.account,
        record=after.id,
        actor=actor,
    )
    return Moderated(before, after, action_record)


_PAST = {"hide": "hidden", "unhide": "unhidden", "delete": "deleted"}
