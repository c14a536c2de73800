"""What a claimed CAP alert does to notices: an Alert makes a notice (through the event's
approved template when it can, else a draft for an approver), an Update supersedes the notice
its references made, a Cancel cancels what has not gone out and retracts what has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.cap.claims import Outcome, settle
from bulletin.cap.document import Alert, Info
from bulletin.cap.mapping import (
    category_for,
    compose_text,
    full_text,
    link_for,
    other_languages,
    priority_for,
    target_texts,
    template_for,
    template_values,
)
from bulletin.cap.models import CapAlert
from bulletin.clock import Clock
from bulletin.config.accounts import FeedAccountSettings
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import BulletinError, Refused, UsageError
from bulletin.logs import get_logger
from bulletin.models import Delivery, Notice
from bulletin.publisher import announce
from bulletin.publisher.amend import retract_notice
from bulletin.publisher.languages import UPDATE_WORDS, LanguageVariant, word_in
from bulletin.publisher.notices import (
    FINAL_NOTICE_STATES,
    NoticeDraft,
    cancel_notice,
    plan_targets,
    store_draft,
    validate_draft,
)
from bulletin.publisher.templates import get_template, notice_from_template
from bulletin.states import DeliveryState

log = get_logger("bulletin.cap")

UPDATE_PREFIX = UPDATE_WORDS["en"]  # in the primary's language: :data:`UPDATE_WORDS`
CAP_CANCEL_TEXT = "The alert above has been cancelled by the issuing authority."


@dataclass
class NoticeActions:
    """Acts on notices for alerts, as ``actor``, for ``targets`` (none: the accounts of
    [cap] targets)."""

    engine: Engine
    settings: Settings
    clock: Clock
    actor: str
    targets: Sequence[str] = ()

    @property
    def accounts(self) -> list[str]:
        """The accounts a notice made here goes to."""
        return list(self.targets or self.settings.cap.targets)

    def new_notice(
        self,
        alert: Alert,
        info: Info,
        signature: str,
        prefix: str,
        previous: int | None,
        row: CapAlert,
    ) -> Outcome:
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
            if isinstance(covered, Outcome):
                return covered
            note = covered
        # an Update's "UPDATE:" in each variant's own language
        primary = settings.agency.languages[0]
        prefix = word_in(UPDATE_WORDS, primary) if prefix else ""
        fullest = target_texts(settings, targets, info, link, prefix)
        whole = full_text(info, prefix, settings.publisher.max_text_length)
        if link is None and any(t != whole for t in fullest.values()):
            link = self._full_alert_link(row, targets)  # where the cut text leads
            fullest = target_texts(settings, targets, info, link, prefix)
        text = compose_text(settings, targets, info, link, prefix)
        variants = {target: t for target, t in fullest.items() if t != text}
        languages = [
            LanguageVariant(
                lang,
                compose_text(
                    settings, targets, other, link, word_in(UPDATE_WORDS, lang) if prefix else ""
                ),
            )
            for lang, other in other_languages(settings, alert, info)
        ]
        draft = NoticeDraft(
            category=category,
            text=text,
            targets=targets,
            title=(prefix + (info.headline or info.event))[:200],
            link=link,
            expires_at=info.expires,
            variants=variants,
            languages=languages,
        )
        now = self.clock.now()
        validate_draft(draft, settings, now)
        priority = priority_for(settings, category, info)
        plans = plan_targets(draft, settings)
        outcome = "updated" if previous is not None else "drafted"
        with session_scope(self.engine) as session:
            notice = store_draft(session, settings, now, draft, self.actor, priority, plans)
            assert notice.id is not None
            announce.drafted(session, notice, now)
            self._audit_import(session, notice.id, alert, signature, previous, note)
            done = Outcome(outcome, note, notice.id, previous)
            settle(session, row, done)
        return done

    def _from_template(
        self,
        alert: Alert,
        info: Info,
        signature: str,
        name: str,
        link: str | None,
        previous: int | None,
    ) -> Outcome | str:
        """The notice through template ``name``, or why the template could not be used."""
        settings = self.settings
        try:
            template = get_template(self.engine, name)
            declared = template.variables
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
            return Outcome("approved", reason, notice_id, previous)
        blocking = "; ".join(f.line() for f in made.findings if f.severity == "block")
        return Outcome(
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

    def update(
        self,
        alert: Alert,
        info: Info,
        signature: str,
        references: Sequence[CapAlert],
        row: CapAlert,
    ) -> Outcome:
        """Supersede the latest notice the references made: a notice nobody has seen yet is
        cancelled and replaced; one already published gets a linked "UPDATE:" draft and a
        follow-up (correction) on what went out."""
        previous_id = max(r.notice_id for r in references if r.notice_id is not None)
        published = self._published(previous_id)
        reason = f"superseded by CAP update {alert.identifier}"
        self._cancel_open(previous_id, reason)
        if published:
            outcome = self.new_notice(alert, info, signature, UPDATE_PREFIX, previous_id, row)
            follow_up_published(self.engine, self.clock, previous_id, "correct", self.actor, reason)
        else:
            outcome = self.new_notice(alert, info, signature, "", previous_id, row)
        self._audit_supersede(previous_id, outcome.notice_id, reason)
        return Outcome("updated", outcome.reason, outcome.notice_id, previous_id)

    def cancel(self, alert: Alert, references: Sequence[CapAlert]) -> Outcome:
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
        return Outcome("cancelled", "; ".join(notes) or None, None, ids[-1])

    def _published(self, notice_id: int) -> bool:
        with Session(self.engine) as session:
            return (
                session.exec(
                    select(Delivery.id).where(
                        Delivery.notice_id == notice_id,
                        col(Delivery.state).in_(
                            (
                                DeliveryState.PUBLISHED,
                                DeliveryState.UNCERTAIN,
                                DeliveryState.IN_FLIGHT,
                            )
                        ),
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
