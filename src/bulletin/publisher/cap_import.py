"""CAP alerts into notices: an Alert becomes a draft (or, with an approved template for its
event, an approved notice), an Update supersedes or follows up the notice its reference made,
a Cancel cancels what has not gone out yet.

Every alert received gets one row in ``cap_alerts`` (imported or ignored, with the reason), so
the same alert (sender, identifier, sent) is never imported twice. The row is written before
the notice, as a claim: two importers racing for one alert cannot both make a notice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element

import sqlalchemy as sa
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, tuple_

from bulletin import audit
from bulletin.clock import Clock, utc
from bulletin.config.accounts import FeedAccountSettings
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import BulletinError, Refused, UsageError
from bulletin.models import AuditEvent, Delivery, Notice
from bulletin.publisher.amend import retract_notice
from bulletin.publisher.cap import (
    ATOM_NS,
    Alert,
    CapError,
    Info,
    Reference,
    alert_from_element,
    local,
    parse_xml,
)
from bulletin.publisher.cap_map import (
    category_for,
    check_settings,
    compose_text,
    full_text,
    ignore_reason,
    link_for,
    priority_for,
    target_texts,
    template_for,
    template_values,
)
from bulletin.publisher.cap_models import CapAlert
from bulletin.publisher.cap_signature import signature_state
from bulletin.publisher.notices import (
    FINAL_NOTICE_STATES,
    NoticeDraft,
    cancel_notice,
    plan_targets,
    store_draft,
    validate_draft,
)
from bulletin.publisher.templates import get_template, notice_from_template

log = structlog.get_logger("bulletin.cap")

#: a claim still ``received`` this long after it was made was cut short (the importer died)
CLAIM_STALE = timedelta(minutes=5)

UPDATE_PREFIX = "UPDATE: "


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
        return self.notice_state == "approved"

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


# -- import ---------------------------------------------------------------------------------


@dataclass
class Importer:
    """Imports alerts into one database, acting as ``actor``, for ``targets`` (none: the
    accounts of [cap] targets)."""

    engine: Engine
    settings: Settings
    clock: Clock
    actor: str
    targets: Sequence[str] = ()

    @property
    def accounts(self) -> list[str]:
        """The accounts a notice made here goes to."""
        return list(self.targets or self.settings.cap.targets)

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
        existing = self._existing(alert)
        if existing is not None and self._take_over(existing, now):
            log.warning("CAP alert resumed", alert=str(alert.key), row=existing.id)
            return self._act(alert, info, signature, existing, resumed=True)
        if existing is not None:
            return self._result(existing, alert, info, outcome="duplicate")
        references = self._referenced(alert.references) if alert.references else []
        reason = ignore_reason(self.settings, alert, info, now, follows_up=bool(references))
        if reason is None and alert.msg_type == "Cancel" and not references:
            reason = "Cancel references no alert imported here"
        if reason is not None:
            row = self._claim(alert, info, signature, source, entry_id, "ignored", reason)
            if row is None:
                return self._result(self._existing(alert), alert, info, outcome="duplicate")
            log.info("CAP alert ignored", alert=str(alert.key), reason=reason)
            return self._result(row, alert, info)
        row = self._claim(alert, info, signature, source, entry_id, "received", None)
        if row is None:
            return self._result(self._existing(alert), alert, info, outcome="duplicate")
        return self._act(alert, info, signature, row)

    def _act(
        self, alert: Alert, info: Info | None, signature: str, row: CapAlert, resumed: bool = False
    ) -> ImportResult:
        """Act on a claimed alert: a notice, an update or a cancellation."""
        references = self._referenced(alert.references) if alert.references else []
        try:
            if alert.msg_type == "Cancel":
                outcome = self._cancel(alert, references)
            elif alert.msg_type == "Update" and references:
                assert info is not None
                outcome = self._update(alert, info, signature, references, row)
            else:
                assert info is not None
                outcome = self._new_notice(alert, info, signature, "", None, row)
        except BaseException:
            if not resumed:
                self._release(row)
            raise
        row = self._finish(row, outcome)
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

    # -- the rows ---------------------------------------------------------------------------

    def _existing(self, alert: Alert) -> CapAlert | None:
        with Session(self.engine) as session:
            return session.exec(
                select(CapAlert).where(
                    CapAlert.sender == alert.sender,
                    CapAlert.identifier == alert.identifier,
                    CapAlert.sent == alert.sent,
                )
            ).first()

    def _referenced(self, refs: Sequence[Reference]) -> list[CapAlert]:
        """Rows of the referenced alerts that made or acted on a notice, oldest first."""
        keys = [(r.sender, r.identifier, r.sent) for r in refs]
        with Session(self.engine) as session:
            rows = session.exec(
                select(CapAlert)
                .where(tuple_(CapAlert.sender, CapAlert.identifier, CapAlert.sent).in_(keys))
                .where(col(CapAlert.notice_id).is_not(None))
                .order_by(col(CapAlert.id))
            ).all()
        return list(rows)

    def _claim(
        self,
        alert: Alert,
        info: Info | None,
        signature: str,
        source: str,
        entry_id: str | None,
        outcome: str,
        reason: str | None,
    ) -> CapAlert | None:
        """Insert the alert's row; None when another importer got there first."""
        now = self.clock.now()
        row = CapAlert(
            identifier=alert.identifier,
            sender=alert.sender,
            sent=alert.sent,
            sent_at=alert.sent_at,
            msg_type=alert.msg_type,
            status=alert.status,
            scope=alert.scope,
            references=" ".join(str(r) for r in alert.references) or None,
            event=info.event if info else None,
            severity=info.severity if info else None,
            urgency=info.urgency if info else None,
            expires_at=utc(info.expires) if info and info.expires else None,
            outcome=outcome,
            reason=reason,
            signature=signature,
            source=source,
            entry_id=entry_id,
            raw_sha256=alert.sha256,
            raw=alert.raw,
            imported_by=self.actor,
            imported_at=now,
        )
        try:
            with session_scope(self.engine) as session:
                session.add(row)
                session.flush()
                assert row.id is not None
                audit.record_event(
                    session,
                    at=now,
                    actor=self.actor,
                    action="cap-ignored" if outcome == "ignored" else "cap-received",
                    object_type="cap-alert",
                    object_id=row.id,
                    reason=reason,
                    alert=str(alert.key),
                    msg_type=alert.msg_type,
                    status=alert.status,
                    event=row.event,
                    sha256=alert.sha256,
                    signature=signature,
                    source=source,
                )
        except sa_exc.IntegrityError:
            return None
        return row

    def _take_over(self, row: CapAlert, now: datetime) -> bool:
        """Whether ``row`` is a claim cut short (the importer died between recording the alert
        and acting on it) that this importer has now taken over, atomically."""
        if row.outcome != "received" or now - row.imported_at < CLAIM_STALE:
            return False
        table = CapAlert.__table__  # type: ignore[attr-defined]
        with session_scope(self.engine) as session:
            taken = session.execute(
                sa.update(table)
                .where(
                    table.c.id == row.id,
                    table.c.outcome == "received",
                    table.c.imported_at == row.imported_at,
                )
                .values(imported_at=now)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return False
            audit.record_event(
                session,
                at=now,
                actor=self.actor,
                action="cap-resumed",
                object_type="cap-alert",
                object_id=row.id or 0,
                reason="its handling was cut short",
                received_at=row.imported_at.isoformat(),
            )
        return True

    def repair_stale(self) -> list[ImportResult]:
        """Finish every alert whose handling was cut short (still ``received`` after
        :data:`CLAIM_STALE`), from the alert as stored."""
        cutoff = self.clock.now() - CLAIM_STALE
        with Session(self.engine) as session:
            stuck = session.exec(
                select(CapAlert).where(
                    CapAlert.outcome == "received", col(CapAlert.imported_at) <= cutoff
                )
            ).all()
        results = []
        for row in stuck:
            try:
                alert = alert_from_element(parse_xml(row.raw, self.settings.cap.max_bytes), row.raw)
                results.append(self.import_alert(alert, row.signature, row.source or "stored"))
            except BulletinError as e:
                log.error("CAP alert could not be resumed", row=row.id, error=str(e))
        return results

    def _release(self, row: CapAlert) -> None:
        """Forget a claim whose handling failed, so the alert can be imported again."""
        with session_scope(self.engine) as session:
            claimed = session.get(CapAlert, row.id)
            if claimed is not None and claimed.outcome == "received":
                session.delete(claimed)

    def _finish(self, row: CapAlert, outcome: _Outcome) -> CapAlert:
        with session_scope(self.engine) as session:
            stored = session.get(CapAlert, row.id)
            assert stored is not None
            stored.outcome = outcome.outcome
            stored.reason = outcome.reason
            stored.notice_id = outcome.notice_id
            stored.previous_notice_id = outcome.previous_notice_id
            session.add(stored)
        return stored

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

    # -- acting on notices ------------------------------------------------------------------

    def _new_notice(
        self,
        alert: Alert,
        info: Info,
        signature: str,
        prefix: str,
        previous: int | None,
        row: CapAlert,
    ) -> _Outcome:
        """A notice from ``info``: covered by the event's template when it can be, else a
        draft for an approver (stored in one transaction with the alert's row)."""
        settings = self.settings
        targets = self.accounts
        category = category_for(settings, info)
        link = link_for(info)
        template_name = template_for(settings, info.event)
        note: str | None = None
        if template_name is not None and not prefix:
            covered = self._from_template(alert, info, signature, template_name, link, previous)
            if isinstance(covered, _Outcome):
                return covered
            note = covered
        fullest = target_texts(settings, targets, info, link, prefix)
        whole = full_text(info, prefix, settings.publisher.max_text_length)
        if link is None and any(t != whole for t in fullest.values()):
            link = self._full_alert_link(row, targets)  # where the cut text leads
            fullest = target_texts(settings, targets, info, link, prefix)
        text = compose_text(settings, targets, info, link, prefix)
        variants = {target: t for target, t in fullest.items() if t != text}
        draft = NoticeDraft(
            category=category,
            text=text,
            targets=targets,
            title=(prefix + (info.headline or info.event))[:200],
            link=link,
            expires_at=info.expires,
            variants=variants,
        )
        now = self.clock.now()
        validate_draft(draft, settings, now)
        priority = priority_for(settings, category, info)
        plans = plan_targets(draft, settings)
        outcome = "updated" if previous is not None else "drafted"
        with session_scope(self.engine) as session:
            notice = store_draft(session, settings, now, draft, self.actor, priority, plans)
            assert notice.id is not None
            self._audit_import(session, notice.id, alert, signature, previous, note)
            claimed = session.get(CapAlert, row.id)
            assert claimed is not None
            claimed.outcome, claimed.reason, claimed.notice_id = outcome, note, notice.id
            claimed.previous_notice_id = previous
            session.add(claimed)
        return _Outcome(outcome, note, notice.id, previous)

    def _from_template(
        self,
        alert: Alert,
        info: Info,
        signature: str,
        name: str,
        link: str | None,
        previous: int | None,
    ) -> _Outcome | str:
        """The notice through template ``name``, or why the template could not be used."""
        settings = self.settings
        try:
            template = get_template(self.engine, name)
            declared: dict[str, str] = json.loads(template.variables)
            values = template_values(settings, alert, info)
            missing = [v for v in declared if v not in values]
            if missing:
                return f"template {name} not used: the alert has no {missing[0]}"
            draft = NoticeDraft(
                category=template.category,
                text="",
                targets=self.accounts,
                title=(info.headline or info.event)[:200],
                link=link,
                expires_at=info.expires,
            )
            made = notice_from_template(
                self.engine,
                settings,
                self.clock,
                name,
                {k: values[k] for k in declared},
                draft,
                self.actor,
            )
        except (UsageError, Refused) as e:
            log.warning("CAP template not used", template=name, error=str(e))
            return f"template {name} not used: {e}"
        notice_id = made.notice.id
        assert notice_id is not None
        with session_scope(self.engine) as session:
            self._audit_import(session, notice_id, alert, signature, previous, None)
        if made.covered:
            reason = (
                f"covered by template {name} v{made.template.version}, approved by "
                f"{made.template.approved_by}"
            )
            return _Outcome("approved", reason, notice_id, previous)
        blocking = "; ".join(f.line() for f in made.findings if f.severity == "block")
        return _Outcome(
            "drafted", f"template {name} did not cover it: {blocking}", notice_id, previous
        )

    def _full_alert_link(self, row: CapAlert, targets: Sequence[str]) -> str | None:
        """Where the whole alert can be read when a target's text is cut and the alert has no
        ``<web>``: the alert's own http(s) address (its feed entry's id, or where it was
        fetched), else the agency's feed page."""
        for address in (row.entry_id, row.source):
            if address and address.lower().startswith(("http://", "https://")):
                return address
        settings = self.settings
        feeds = [a for a in targets if isinstance(settings.accounts[a], FeedAccountSettings)]
        if feeds:
            return (
                settings.account(feeds[0], FeedAccountSettings).link
                or settings.agency.website
                or None
            )
        return None

    def _audit_import(
        self,
        session: Session,
        notice_id: int,
        alert: Alert,
        signature: str,
        previous: int | None,
        note: str | None,
    ) -> None:
        audit.record_event(
            session,
            at=self.clock.now(),
            actor=self.actor,
            action="cap-imported",
            object_type="notice",
            object_id=notice_id,
            reason=note,
            alert=str(alert.key),
            msg_type=alert.msg_type,
            sha256=alert.sha256,
            signature=signature,
            supersedes=previous,
        )

    def _update(
        self,
        alert: Alert,
        info: Info,
        signature: str,
        references: Sequence[CapAlert],
        row: CapAlert,
    ) -> _Outcome:
        """Supersede the latest notice the references made: a notice nobody has seen yet is
        cancelled and replaced; one already published gets a linked "UPDATE:" draft and a
        follow-up (correction) on what went out."""
        previous_id = max(r.notice_id for r in references if r.notice_id is not None)
        published = self._published(previous_id)
        reason = f"superseded by CAP update {alert.identifier}"
        self._cancel_open(previous_id, reason)
        if published:
            outcome = self._new_notice(alert, info, signature, UPDATE_PREFIX, previous_id, row)
            follow_up_published(self.engine, self.clock, previous_id, "correct", self.actor, reason)
        else:
            outcome = self._new_notice(alert, info, signature, "", previous_id, row)
        self._audit_supersede(previous_id, outcome.notice_id, reason)
        return _Outcome("updated", outcome.reason, outcome.notice_id, previous_id)

    def _cancel(self, alert: Alert, references: Sequence[CapAlert]) -> _Outcome:
        """Cancel every referenced notice's deliveries not yet published; each published
        one is answered with a retraction reply wherever it went (never deleted: the post
        and the reply both stay on record)."""
        reason = f"CAP cancel {alert.identifier}"
        ids = sorted({r.notice_id for r in references if r.notice_id is not None})
        retracted: list[int] = []
        pending: list[int] = []
        for notice_id in ids:
            self._cancel_open(notice_id, reason)
            if not self._published(notice_id):
                continue
            follow_up_published(self.engine, self.clock, notice_id, "retract", self.actor, reason)
            try:
                retract_notice(
                    self.engine,
                    self.settings,
                    self.clock.now(),
                    notice_id,
                    reason,
                    self.actor,
                    text=CAP_CANCEL_TEXT,
                    fixed_text=True,
                )
                retracted.append(notice_id)
            except Refused as e:
                if "nothing left to retract" not in str(e):
                    raise
                retracted.append(notice_id)  # done already (a resumed cancel) or by hand
            except BulletinError as e:
                log.warning("CAP cancel: retraction not queued", notice=notice_id, error=str(e))
                pending.append(notice_id)
        notes = []
        if retracted:
            notes.append(f"retraction queued for notice(s) {', '.join(map(str, retracted))}")
        if pending:
            notes.append(f"published notice(s) {', '.join(map(str, pending))} need a retraction")
        return _Outcome("cancelled", "; ".join(notes) or None, None, ids[-1])

    def _published(self, notice_id: int) -> bool:
        with Session(self.engine) as session:
            return (
                session.exec(
                    select(Delivery.id).where(
                        Delivery.notice_id == notice_id,
                        col(Delivery.state).in_(("published", "uncertain", "in-flight")),
                    )
                ).first()
                is not None
            )

    def _cancel_open(self, notice_id: int, reason: str) -> None:
        with Session(self.engine) as session:
            notice = session.get(Notice, notice_id)
            state = notice.state if notice else None
        if state is not None and state not in FINAL_NOTICE_STATES:
            cancel_notice(self.engine, self.clock, notice_id, self.actor, reason)

    def _audit_supersede(self, previous_id: int, notice_id: int | None, reason: str) -> None:
        with session_scope(self.engine) as session:
            audit.record_event(
                session,
                at=self.clock.now(),
                actor=self.actor,
                action="superseded",
                object_type="notice",
                object_id=previous_id,
                reason=reason,
                by_notice=notice_id,
            )


@dataclass(frozen=True)
class _Outcome:
    outcome: str
    reason: str | None
    notice_id: int | None
    previous_notice_id: int | None


CAP_CANCEL_TEXT = "The alert above has been cancelled by the issuing authority."


def follow_up_published(
    engine: Engine, clock: Clock, notice_id: int, kind: str, actor: str, reason: str
) -> None:
    """Record that a published notice needs a ``kind`` follow-up (``retract`` after a CAP
    Cancel, which the importer then queues; ``correct`` after a CAP Update, whose "UPDATE:"
    draft an approver publishes): logged and audited."""
    log.warning("published notice needs a follow-up", notice=notice_id, kind=kind, reason=reason)
    with session_scope(engine) as session:
        audit.record_event(
            session,
            at=clock.now(),
            actor=actor,
            action=f"needs-{kind}",
            object_type="notice",
            object_id=notice_id,
            reason=reason,
        )


def import_bytes(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    data: bytes,
    source: str,
    actor: str,
    targets: Sequence[str] = (),
) -> list[ImportResult]:
    """Import a CAP alert document, or every alert of an Atom feed of CAP entries, for
    ``targets`` (none: [cap] targets).

    :raises CapError: unsafe, not XML, not CAP 1.2 (nor a feed of it), or invalid.
    :raises UsageError: a target is not a configured account.
    """
    from bulletin.publisher.cap_feed import import_feed_root

    check_settings(settings, targets)
    importer = Importer(engine, settings, clock, actor, targets)
    try:
        root = parse_xml(data, settings.cap.max_bytes)
        if local(root.tag) == (ATOM_NS, "feed"):
            return import_feed_root(importer, root, source)
        return [importer.import_element(root, data, source)]
    except CapError as e:
        importer.record_refusal(data, source, str(e))
        raise
