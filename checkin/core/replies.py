"""Which question a reply answers, and which safety reply it gets. Pure: no I/O, no clock.

Matching: a reply answers the patient's most recent *open* check-in
question: an outbox row with an ``ask`` that was sent, is not answered yet, and went out within
``QUESTION_WINDOW``. Its ``ask`` is the triage context (under ``fever_check`` a bare "101" is a
temperature). Known trade-off: a reminder sent after the question does not close it, so "yes"
to a calcium reminder sent after the fever check still reads as "yes, fever". That errs towards
a nurse looking, never towards missing "101.5".

Reply choice, in order (first match wins; wording lives in ``templates/sms/<lang>/reply_*``):

    self_harm flag                   reply_self_harm   988 lifeline and 911
    emergency                        reply_emergency   call 911 now
    urgent, patient known            reply_urgent      a nurse will call you
    urgent, sender unknown           reply_unknown     call the clinic (we cannot tell who this is)
    low mood (a positive mood screen) reply_mood       supportive words and the crisis line
    ambiguous topic, follow-up ok    reply_followup_<topic> if that template exists, else reply_clarify
    sender unknown                   reply_unknown
    otherwise                        reply_thanks

Emergency replies go out whatever the hour: quiet hours are for reminders, not for "call 911".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checkin.core.triage import Assessment

QUESTION_WINDOW = timedelta(hours=48)
FOLLOWUP_STEP = "followup"  # outbox step_id of a follow-up question we asked in a reply

REPLY_EMERGENCY = "reply_emergency"
REPLY_SELF_HARM = "reply_self_harm"
REPLY_URGENT = "reply_urgent"
REPLY_THANKS = "reply_thanks"
REPLY_CLARIFY = "reply_clarify"
REPLY_HELP = "reply_help"
REPLY_UNKNOWN = "reply_unknown"
REPLY_STOPPED = "reply_stopped"
REPLY_STARTED = "reply_started"
REPLY_PAUSED = "reply_paused"
REPLY_MOOD = "reply_mood"
REPLY_TEMPLATES = (
    REPLY_EMERGENCY,
    REPLY_SELF_HARM,
    REPLY_URGENT,
    REPLY_THANKS,
    REPLY_CLARIFY,
    REPLY_HELP,
    REPLY_UNKNOWN,
    REPLY_STOPPED,
    REPLY_STARTED,
    REPLY_PAUSED,
    REPLY_MOOD,
)

# If a reply template is missing or broken (admins edit them), these still go out: a patient
# who wrote "I can't breathe" must never get nothing back.
# {emergency} and {crisis} are the site's numbers (CHECKIN_EMERGENCY_NUMBER, CHECKIN_CRISIS_LINE).
FALLBACK = {
    "en": {
        REPLY_EMERGENCY: "This may be an emergency. Call {emergency} now. Do not wait for a call back.",
        REPLY_SELF_HARM: "Please call or text {crisis} (crisis line) now. If you are in danger, call {emergency}.",
        REPLY_URGENT: "Thank you. A nurse will call you soon. If it gets worse, call {emergency}.",
        REPLY_MOOD: "Thank you for telling us. Your care team will be in touch. To talk to someone now, call or text {crisis}.",
    },
    "es": {
        REPLY_EMERGENCY: "Esto puede ser una emergencia. Llame al {emergency} ahora. No espere una llamada.",
        REPLY_SELF_HARM: "Por favor llame o envie un texto al {crisis} (Linea de Crisis) ahora. Si esta en peligro, llame al {emergency}.",
        REPLY_URGENT: "Gracias. Una enfermera le llamara pronto. Si empeora, llame al {emergency}.",
        REPLY_MOOD: "Gracias por decirnos. Su equipo de salud se comunicara con usted. Para hablar con alguien ahora, llame o envie un texto al {crisis}.",
    },
}
GENERIC_FALLBACK = {
    "en": "Thank you. For questions call the clinic. For an emergency call {emergency}.",
    "es": "Gracias. Si tiene preguntas llame a la clinica. En una emergencia llame al {emergency}.",
}


@dataclass(frozen=True)
class OpenQuestion:
    """A sent, unanswered check-in question (an outbox row)."""

    outbox_id: int
    ask: str
    sent_at: datetime
    followup: bool = False  # a follow-up we asked ourselves; never followed up again


def pick_question(
    questions: Iterable[OpenQuestion], *, now: datetime, window: timedelta = QUESTION_WINDOW
) -> OpenQuestion | None:
    """The most recently sent question within ``window`` before ``now`` (ties: higher id)."""
    live = [q for q in questions if now - window <= q.sent_at <= now]
    if not live:
        return None
    return max(live, key=lambda q: (q.sent_at, q.outbox_id))


# A reply that is nothing but yes or no (English and Spanish, texting spellings, emoji aside).
_BARE_YES_NO = re.compile(
    r"^[\W_]*(?:yes|yeah|yep|yup|ya|y|yes+|si|sí|no|nope|nah|n|nop)[\W_]*$", re.IGNORECASE
)


def is_bare_yes_no(text: str) -> bool:
    """The reply says only yes or no."""
    return bool(_BARE_YES_NO.match(text.strip()))


def answer_context(question: OpenQuestion | None, text: str, last_reminder_at: datetime | None) -> str:
    """The triage context of a reply: the open question's ``ask``; but ``reminder`` for a bare
    YES/NO when a message that asked nothing went out after that question (the patient is
    answering the reminder), and ``general`` when no question is open."""
    if question is None:
        return "reminder" if last_reminder_at is not None and is_bare_yes_no(text) else "general"
    if last_reminder_at is not None and last_reminder_at > question.sent_at and is_bare_yes_no(text):
        return "reminder"
    return question.ask


def severity_name(assessment: Assessment) -> str:
    return str(assessment.severity)


def followup_template(topics: Iterable[str], exists: Callable[[str], bool]) -> str:
    """``reply_followup_<topic>`` for the first topic (sorted) that has one, else reply_clarify."""
    for topic in sorted(topics):
        # Topics may read "numbness/weakness"; template names are [a-z0-9_-] only.
        name = "reply_followup_" + re.sub(r"[^a-z0-9]+", "_", topic.lower()).strip("_")
        if exists(name):
            return name
    return REPLY_CLARIFY


@dataclass(frozen=True)
class ReplyChoice:
    template: str
    follow_up: bool = False  # the reply asks a question: record it as an open question


def choose_reply(
    assessment: Assessment,
    *,
    known: bool,
    may_follow_up: bool,
    template_exists: Callable[[str], bool] = lambda _name: False,
) -> ReplyChoice:
    """The safety reply for an assessed text (table in the module docstring). ``known``: the
    sender is one enrolled patient. ``may_follow_up``: the text does not itself answer one of
    our follow-ups (so we never loop)."""
    flags = {str(f) for f in assessment.flags}
    severity = severity_name(assessment)
    if "self_harm" in flags:
        return ReplyChoice(REPLY_SELF_HARM)
    if severity == "emergency":
        return ReplyChoice(REPLY_EMERGENCY)
    if severity == "urgent":
        return ReplyChoice(REPLY_URGENT if known else REPLY_UNKNOWN)
    if "low_mood" in assessment.watch:
        # A positive mood screen (or "I feel hopeless") is not an emergency, but "thank you"
        # alone is the wrong answer: the crisis line goes to whoever wrote it.
        return ReplyChoice(REPLY_MOOD)
    if assessment.ambiguous and known and may_follow_up:
        return ReplyChoice(followup_template(assessment.ambiguous, template_exists), follow_up=True)
    if not known:
        return ReplyChoice(REPLY_UNKNOWN)
    return ReplyChoice(REPLY_THANKS)


def fallback_text(template: str, language: str, *, emergency: str, crisis: str) -> str:
    """Hard-coded text for ``template`` when its file cannot be rendered, with the site's
    emergency number and crisis line."""
    lang = language if language in FALLBACK else "en"
    return FALLBACK[lang].get(template, GENERIC_FALLBACK[lang]).format(emergency=emergency, crisis=crisis)


def generic_fallback(language: str, *, emergency: str) -> str:
    """The reply when nothing else can be said: call the clinic, or the emergency number."""
    return GENERIC_FALLBACK[language if language in GENERIC_FALLBACK else "en"].format(emergency=emergency)
