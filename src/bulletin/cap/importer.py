"""CAP alerts into notices: an Alert becomes a draft (or, with an approved template for its
event, an approved notice), an Update supersedes or follows up the notice its reference made,
a Cancel cancels what has not gone out yet (see :mod:`bulletin.cap.actions`).

Every alert received gets one row in ``cap_alerts`` (imported or ignored, with the reason), so
the same alert (sender, identifier, sent) is never imported twice. The row is written before
the notice, as a claim (see :mod:`bulletin.cap.claims`): two importers racing for one alert
cannot both make a notice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import audit
from bulletin.cap.actions import NoticeActions
from bulletin.cap.claims import Claims
from bulletin.cap.document import Alert, Info, alert_from_element, parse_xml
from bulletin.cap.mapping import check_settings, ignore_reason
from bulletin.cap.models import CapAlert
from bulletin.cap.signature import signature_state
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import BulletinError
from bulletin.logs import get_logger
from bulletin.models import AuditEvent, Notice
from bulletin.states import NoticeState

log = get_logger("bulletin.cap")


@dataclass(frozen=True)
class ImportResult:
    """What became of one alert."""

    alert: str  # sender,identifier,sent
    event: str | None
    outcome: str  # drafted | approved | updated | cancelled | ignored | duplicate
    reason: str | None = None
    notice_id: int | None = None
    previous_notice_id: int | None = None
    signature: str = "unsigned"
    row_id: int | None = None
    notice_state: str | None = None

    @property
    def approved(self) -> bool:
        """The notice made is approved (a template covered it): it publishes at once."""
        return self.notice_state == NoticeState.APPROVED

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.notice_id,
            "alert": self.alert,
            "event": self.event,
            "outcome": self.outcome,
            "reason": self.reason,
            "notice_id": self.notice_id,
            "notice_state": self.notice_state,
            "previous_notice_id": self.previous_notice_id,
            "signature": self.signature,
            "cap_alert_id": self.row_id,
        }

    def line(self) -> str:
        head = f"CAP {self.alert} ({self.event or 'no event'}): {self.outcome}"
        if self.notice_id is not None:
            head += f", notice {self.notice_id} ({self.notice_state})"
        if self.previous_notice_id is not None:
            head += f" (earlier notice {self.previous_notice_id})"
        if self.reason:
            head += f"; {self.reason}"
        return head


@dataclass
class Importer:
    """Imports alerts into one database, acting as ``actor``, for ``targets`` (none: the
    accounts of [cap] targets)."""

    engine: Engine
    settings: Settings
    clock: Clock
    actor: str
    targets: Sequence[str] = ()
    claims: Claims = field(init=False)
    actions: NoticeActions = field(init=False)

    def __post_init__(self) -> None:
        self.claims = Claims(self.engine, self.clock, self.actor)
        self.actions = NoticeActions(
            self.engine, self.settings, self.clock, self.actor, self.targets
        )

    def import_element(
        self, root: Element, raw: bytes, source: str, entry_id: str | None = None
    ) -> ImportResult:
        """Validate and import one parsed ``<alert>`` element.

        :raises CapError: not a valid CAP 1.2 alert, or a bad signature.
        """
        alert = alert_from_element(root, raw)
        signature = signature_state(raw, alert.signed, self.settings.cap)
        return self.import_alert(alert, signature, source, entry_id)

    def import_alert(
        self, alert: Alert, signature: str, source: str, entry_id: str | None = None
    ) -> ImportResult:
        """Record ``alert`` and act on it (see the module docstring)."""
        check_settings(self.settings, self.targets)
        now = self.clock.now()
        info = alert.info(self.settings.cap.language)
        claims = self.claims
        existing = claims.existing(alert)
        if existing is not None and claims.take_over(existing, now):
            log.warning("CAP alert resumed", alert=str(alert.key), row=existing.id)
            return self._act(alert, info, signature, existing, resumed=True)
        if existing is not None:
            return self._result(existing, alert, info, outcome="duplicate")
        references = claims.referenced(alert.references) if alert.references else []
        reason = ignore_reason(self.settings, alert, info, now, follows_up=bool(references))
        if reason is None and alert.msg_type == "Cancel" and not references:
            reason = "Cancel references no alert imported here"
        if reason is not None:
            row = claims.claim(alert, info, signature, source, entry_id, "ignored", reason)
            if row is None:
                return self._result(claims.existing(alert), alert, info, outcome="duplicate")
            log.info("CAP alert ignored", alert=str(alert.key), reason=reason)
            return self._result(row, alert, info)
        row = claims.claim(alert, info, signature, source, entry_id, "received", None)
        if row is None:
            return self._result(claims.existing(alert), alert, info, outcome="duplicate")
        return self._act(alert, info, signature, row)

    def _act(
        self, alert: Alert, info: Info | None, signature: str, row: CapAlert, resumed: bool = False
    ) -> ImportResult:
        """Act on a claimed alert: a notice, an update or a cancellation."""
        references = self.claims.referenced(alert.references) if alert.references else []
        try:
            if alert.msg_type == "Cancel":
                outcome = self.actions.cancel(alert, references)
            elif alert.msg_type == "Update" and references:
                assert info is not None
                outcome = self.actions.update(alert, info, signature, references, row)
            else:
                assert info is not None
                outcome = self.actions.new_notice(alert, info, signature, "", None, row)
        except BaseException:
            if not resumed:
                self.claims.release(row)
            raise
        row = self.claims.finish(row, outcome)
        log.info(
            "CAP alert imported",
            alert=str(alert.key),
            outcome=row.outcome,
            notice=row.notice_id,
            previous=row.previous_notice_id,
        )
        return self._result(row, alert, info)

    def record_refusal(self, data: bytes, source: str, reason: str) -> None:
        """Audit a refused document once (by its sha256): what came, from where, and why."""
        digest = hashlib.sha256(data).hexdigest()
        with session_scope(self.engine) as session:
            seen = session.exec(
                select(AuditEvent.id).where(
                    AuditEvent.object_type == "cap-document", AuditEvent.object_id == digest
                )
            ).first()
            if seen is None:
                audit.record_event(
                    session,
                    at=self.clock.now(),
                    actor=self.actor,
                    action="cap-refused",
                    object_type="cap-document",
                    object_id=digest,
                    reason=reason,
                    source=source,
                    size=len(data),
                )
        log.info("CAP document refused", source=source, sha256=digest, reason=reason)

    def repair_stale(self) -> list[ImportResult]:
        """Finish every alert whose handling was cut short (still ``received`` after
        :data:`~bulletin.cap.claims.CLAIM_STALE`), from the alert as stored."""
        results = []
        for row in self.claims.stale():
            try:
                alert = alert_from_element(parse_xml(row.raw, self.settings.cap.max_bytes), row.raw)
                results.append(self.import_alert(alert, row.signature, row.source or "stored"))
            except BulletinError as e:
                log.error("CAP alert could not be resumed", row=row.id, error=str(e))
        return results

    def _result(
        self, row: CapAlert | None, alert: Alert, info: Info | None, outcome: str | None = None
    ) -> ImportResult:
        state = None
        if row is not None and row.notice_id is not None:
            with Session(self.engine) as session:
                notice = session.get(Notice, row.notice_id)
                state = notice.state if notice else None
        return ImportResult(
            notice_state=state,
            alert=str(alert.key),
            event=info.event if info else None,
            outcome=outcome or (row.outcome if row else "duplicate"),
            reason=(
                f"already imported ({row.outcome}"
                + (f", notice {row.notice_id}" if row.notice_id else "")
                + ")"
                if outcome == "duplicate" and row is not None
                else (row.reason if row else None)
            ),
            notice_id=row.notice_id if row else None,
            previous_notice_id=row.previous_notice_id if row else None,
            signature=row.signature if row else "unsigned",
            row_id=row.id if row else None,
        )
