"""The steps of processing one inbound message (see ``checkin.inbound.process`` for the
contract): who sent it, keywords, triage, alerts, the safety reply and the audit rows."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from checkin.alerts import lifecycle as alerts
from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.core import keywords, replies
from checkin.errors import TemplateError
from checkin.inbound import lookup
from checkin.inbound.lookup import EnrollmentRef, Sender
from checkin.inbound.message import Assess, InboundResult, InboundSms, match_kind, reply_language
from checkin.inbound.statements import BY_ID, BY_PHONE, Question, save_outcome
from checkin.states import ChannelName, OutboxStatus, supported_language
from checkin.store import audit, consents, outbox
from checkin.store.models import InboundMessage, OutboxMessage, Patient

if TYPE_CHECKING:
    from checkin.core.triage import Assessment

# The records keep the name of the module that used to hold all of this, so log filters hold.
log = logging.getLogger("checkin.inbound.process")


class Handling:
    """One message's processing; methods share the session and the row."""

    def __init__(
        self,
        session: Session,
        inbound: InboundMessage,
        msg: InboundSms,
        now: datetime,
        settings: Settings,
        renderer: Renderer,
        assess: Assess,
    ) -> None:
        self.session, self.inbound, self.msg, self.now = session, inbound, msg, now
        self.settings, self.renderer, self.assess = settings, renderer, assess
        self._audit: list[dict[str, Any]] = []
        self._found = lookup.Found()
        self._answered: int | None = None

    def audit(self, *, actor: str, action: str, patient_ref: str | None, **detail: Any) -> None:
        """Queue an audit row; ``_reply`` writes the queue with the outcome (``save_outcome``)."""
        self._audit.append(
            audit.row(
                at=self.now,
                actor=actor,
                action=action,
                patient_ref=patient_ref,
                subject=self._subject,
                detail=detail,
            )
        )

    # ---- entry points --------------------------------------------------------------------
    def sms(self, found: lookup.Found | None = None) -> InboundResult:
        """An SMS; ``found``: its sender, when ``lookup.receive`` found it with the insert."""
        self._found = found if found is not None else self._find(BY_PHONE, phone=self.msg.from_phone)
        senders = self._found.patients
        patients = [p for p, _ in senders]
        opted_out = bool(patients) and all(p.sms_opted_out for p in patients)
        kind = keywords.classify(self.msg.body, opted_out=opted_out)
        if kind.keyword is not None:
            return self._keyword(kind, patients)
        enrolled = [(p, e) for p, e in senders if e is not None]
        if len(enrolled) == 1:
            patient, enrollment = enrolled[0]
            return self._content(patient, enrollment, question=None, optout_candidate=kind.optout_candidate)
        return self._unmatched([p for p, _ in enrolled], optout_candidate=kind.optout_candidate)

    def web_answer(self, outbox_id: int) -> InboundResult:
        row = self.session.get(OutboxMessage, outbox_id)
        if row is not None and row.patient_id:
            self._found = self._find(BY_ID, patient_id=row.patient_id)
        found = self._found.patients
        if row is None or not found:
            # The token was valid but its row is gone: store the text, tell the team nothing
            # useful can be matched. The caller checks rows before calling, so this is rare.
            return self._unmatched([], optout_candidate=False)
        patient, enrollment = found[0]
        if row.enrollment_id is not None:
            enrollment = EnrollmentRef(row.enrollment_id)
        kind = keywords.classify(self.msg.body)
        question = (
            Question(row.id, row.ask, row.step_id, row.enrollment_id)
            if row.ask and row.answered_at is None
            else None
        )
        return self._content(
            patient,
            enrollment,
            question=question,
            question_fixed=True,
            optout_candidate=kind.optout_candidate or kind.keyword == keywords.Keyword.STOP,
            pause_sms=False,
        )

    # ---- lookups -------------------------------------------------------------------------
    def _find(self, stmt: Any, **params: Any) -> lookup.Found:
        """``lookup.find`` (nobody for a message without a sender)."""
        if not all(params.values()):
            return lookup.Found()
        return lookup.find(self.session, stmt, params, self.now)

    def _open_question(self, patient: Sender) -> Question | None:
        rows = self._found.questions.get(patient.id, [])
        return lookup.open_question(self.session, rows, patient.id, self.msg.body, self.now)

    # ---- keywords ------------------------------------------------------------------------
    def _keyword(self, kind: keywords.Classification, patients: list[Sender]) -> InboundResult:
        assert kind.keyword is not None
        kw = kind.keyword
        self.inbound.keyword = kw.value
        self.inbound.processed_at = self.now
        if patients:
            self.inbound.patient_id = patients[0].id if len(patients) == 1 else None
        changed = 0
        for p in patients:
            if kw == keywords.Keyword.STOP:
                changed += self._opt_out(p, reason="STOP")
                self._consent(p, consents.REVOKED, kw)
            elif kw == keywords.Keyword.START:
                changed += self._opt_in(p)
                self._consent(p, consents.GRANTED, kw)
        # A Spanish keyword gets a Spanish answer; otherwise the patient's language.
        language = "es" if kind.language == "es" else reply_language(patients, fallback="en")
        template = {
            keywords.Keyword.STOP: replies.REPLY_STOPPED,
            keywords.Keyword.START: replies.REPLY_STARTED,
            keywords.Keyword.HELP: replies.REPLY_HELP,
        }[kw]
        ref = patients[0].reference if len(patients) == 1 else None
        self._audit_in(ref, keyword=kw.value, matched=match_kind(patients), rows_changed=changed)
        return self._reply(
            template, language, ref, first_name=None, keyword=kw.value, matched=match_kind(patients)
        )

    def _opt_out(self, patient: Sender, *, reason: str) -> int:
        """SMS off now; pending SMS rows held (kept, so START can release them)."""
        return outbox.hold_sms_for_opt_out(
            self.session,
            self._record(patient),
            now=self.now,
            actor="patient",
            source=reason,
            subject=self._subject,
        )

    def _opt_in(self, patient: Sender) -> int:
        """SMS back on; held rows that can still go out become pending, expired ones skipped."""
        return outbox.release_sms_hold(
            self.session, self._record(patient), now=self.now, actor="patient", subject=self._subject
        )

    def _record(self, patient: Sender) -> Patient:
        """The patient's ORM object, for the steps that change it (on PostgreSQL its row is
        already locked by the lookup)."""
        record = self.session.get(Patient, patient.id)
        assert record is not None  # found by the lookup in this transaction
        return record

    def _consent(self, patient: Sender, decision: str, kw: keywords.Keyword) -> None:
        """Every STOP and START into the consent history, repeats too: what they said, when."""
        why = consents.Provenance("patient-keyword", "patient", f"{kw.value.upper()} ({self._subject})")
        consents.record(self.session, patient.id, "sms", decision, why, at=self.now)

    @property
    def _subject(self) -> str:
        return f"inbound:{self.inbound.id}"

    # ---- content -------------------------------------------------------------------------
    def _content(
        self,
        patient: Sender,
        enrollment: EnrollmentRef | None,
        *,
        question: Question | None,
        question_fixed: bool = False,
        optout_candidate: bool,
        pause_sms: bool = True,
    ) -> InboundResult:
        if not question_fixed:
            question = self._open_question(patient)
        enrollment = self._enrollment_of(question, enrollment)
        context = question.ask if question else None
        assessment = self.assess(self.msg.body, context)
        inbound = self._store_assessment(patient, enrollment, question, assessment)
        # Marked answered with the outcome, in one statement (``save_outcome``).
        self._answered = question.id if question is not None else None
        # An alert opened (or raised) here is saved with ladder step 0 due now; the worker's next
        # dispatch tick composes and sends the care team's messages (``checkin.app.worker``), so the
        # patient's webhook never renders an email and a broken staff template cannot fail it.
        change = alerts.raise_for_assessment(
            self.session,
            patient=patient,
            enrollment=enrollment,
            inbound=inbound,
            assessment=assessment,
            now=self.now,
            audit_rows=self._audit,  # written with the outcome, in one statement
        )
        if optout_candidate:
            if pause_sms:
                self._opt_out(patient, reason="opt-out candidate")
            alerts.open_contact_problem(
                self.session, patient=patient, reason="optout_candidate", now=self.now, inbound=inbound
            )
        choice = self._choose_reply(patient, assessment, question, paused=optout_candidate and pause_sms)
        template = choice.template
        followup_id = None
        if choice.follow_up:
            followup_id = self._record_followup(patient, enrollment, template, context or "general")
        self._audit_in(
            patient.reference,
            matched="patient",
            severity=inbound.severity,
            flags=inbound.flags,
            ambiguous=sorted(assessment.ambiguous),
            question=question.id if question else None,
            optout_candidate=optout_candidate,
        )
        return self._reply(
            template,
            reply_language([patient]),
            patient.reference,
            first_name=patient.first_name,
            severity=inbound.severity,
            flags=tuple(inbound.flags),
            change=change,
            outbox_id=question.id if question else None,
            followup_outbox_id=followup_id,
            matched="patient",
        )

    def _enrollment_of(
        self, question: Question | None, enrollment: EnrollmentRef | None
    ) -> EnrollmentRef | None:
        """The enrollment the answered question belongs to (it may be another of the patient's)."""
        if question is not None and question.enrollment_id is not None:
            return EnrollmentRef(question.enrollment_id)
        return enrollment

    def _store_assessment(
        self,
        patient: Sender,
        enrollment: EnrollmentRef | None,
        question: Question | None,
        assessment: Assessment,
    ) -> InboundMessage:
        """Record on the inbound row whose reply this is and what triage made of it."""
        inbound = self.inbound
        inbound.patient_id, inbound.enrollment_id = patient.id, enrollment.id if enrollment else None
        inbound.outbox_id = question.id if question else inbound.outbox_id
        inbound.severity = str(assessment.severity)
        inbound.flags = sorted(str(f) for f in assessment.flags)
        inbound.assessment = assessment.to_dict()
        inbound.processed_at = self.now
        return inbound

    def _choose_reply(
        self, patient: Sender, assessment: Assessment, question: Question | None, *, paused: bool
    ) -> replies.ReplyChoice:
        choice = replies.choose_reply(
            assessment,
            known=True,
            may_follow_up=not (question is not None and question.step_id == replies.FOLLOWUP_STEP),
            template_exists=lambda name: self.renderer.exists(name, supported_language(patient.language)),
        )
        if paused and (choice.template == replies.REPLY_THANKS or choice.follow_up):
            # Not an alarming text: confirm the pause (the one confirmation the FCC allows).
            return replies.ReplyChoice(replies.REPLY_PAUSED)
        return choice

    def _record_followup(
        self, patient: Sender, enrollment: EnrollmentRef | None, template: str, ask: str
    ) -> int:
        return outbox.record_reply(
            self.session,
            {
                "key": f"followup:{self.inbound.id}",
                "enrollment_id": enrollment.id if enrollment else None,
                "patient_id": patient.id,
                "step_id": replies.FOLLOWUP_STEP,
                "occurrence": 0,
                "channel": ChannelName.SMS
                if self.msg.channel == ChannelName.SMS
                else ChannelName.EMAIL,  # web form and email replies
                "message": template,
                "ask": ask,
                "urgent": True,
                "due_at": self.now,
                "expires_at": self.now,
                "status": OutboxStatus.SENT,
                "status_reason": "sent as the webhook reply",
                "attempts": 1,
                "sent_at": self.now,
                "created_at": self.now,
                "updated_at": self.now,
            },
        )

    def _unmatched(self, enrolled: list[Sender], *, optout_candidate: bool) -> InboundResult:
        """No single enrolled patient: triage anyway (an emergency still gets 911), store, and
        for a shared phone ask the care team, at the severity the text calls for."""
        assessment = self.assess(self.msg.body, None)
        inbound = self.inbound
        inbound.severity = str(assessment.severity)
        inbound.flags = sorted(str(f) for f in assessment.flags)
        inbound.assessment = assessment.to_dict()
        inbound.processed_at = self.now
        matched = match_kind(enrolled)
        severity = alerts.alert_severity(assessment) or "watch"
        last: alerts.AlertChange | None = None
        for p in enrolled:
            last = alerts.open_contact_problem(
                self.session,
                patient=p,
                reason="shared_phone",
                now=self.now,
                inbound=inbound,
                severity=severity,
            )
            if optout_candidate:
                self._opt_out(p, reason="opt-out candidate")
        choice = replies.choose_reply(assessment, known=False, may_follow_up=False)
        # Language: the text's own, so "no puedo respirar" from an unknown number gets Spanish.
        language = supported_language(assessment.language)
        self._audit_in(
            None, matched=matched, severity=inbound.severity, flags=inbound.flags, candidates=len(enrolled)
        )
        return self._reply(
            choice.template,
            language,
            None,
            first_name=None,
            severity=inbound.severity,
            flags=tuple(inbound.flags),
            change=last,
            matched=matched,
        )

    # ---- replies and audit ---------------------------------------------------------------
    def _render(self, template: str, language: str, first_name: str | None) -> str:
        from checkin.content.catalog import message_context

        ctx = message_context(self.settings, first_name=first_name or "", language=language, day=0)
        try:
            return self.renderer.render_sms(template, language, ctx).text
        except TemplateError as exc:
            log.error(
                "reply template failed; sent the built-in text",
                extra={"template": template, "problem": exc.problem},
            )
            return replies.fallback_text(
                template, language, emergency=self.settings.emergency_number, crisis=self.settings.crisis_line
            )

    def _reply(
        self,
        template: str,
        language: str,
        patient_ref: str | None,
        *,
        first_name: str | None,
        change: alerts.AlertChange | None = None,
        **fields: Any,
    ) -> InboundResult:
        text = self._render(template, language, first_name)
        self.audit(
            actor="system",
            action="reply.sent",
            patient_ref=patient_ref,
            template=template,
            language=language,
            channel=self.msg.channel,
        )
        save_outcome(self.session, self.inbound, self._audit, answered=self._answered)
        self._audit = []
        log.info(
            "inbound processed",
            extra={
                "patient_ref": patient_ref,
                "inbound_id": self.inbound.id,
                "template": template,
                "severity": fields.get("severity"),
                "alert_id": change.alert.id if change else None,
            },
        )
        return InboundResult(
            reply_text=text,
            reply_template=template,
            language=language,
            inbound_id=self.inbound.id,
            patient_ref=patient_ref,
            alert_id=change.alert.id if change else None,
            alert_opened=change.opened if change else False,
            renotify=change.renotify if change else False,
            **fields,
        )

    def _audit_in(self, patient_ref: str | None, **detail: Any) -> None:
        self.audit(
            actor="patient" if patient_ref else "unknown",
            action="inbound.received",
            patient_ref=patient_ref,
            channel=self.msg.channel,
            message_sid=self.msg.message_sid,
            **detail,
        )
