"""Render admin-written message templates safely, and check a schedule's templates before use.

Templates are untrusted: they render in Jinja2's sandbox (no attribute tricks such as
``''.__class__``, no mutating the context) with ``StrictUndefined`` (a misspelled variable is an
error, not an empty string). HTML email bodies are autoescaped; SMS and plain text are not.

Layout under the templates directory::

    sms/<lang>/<message>.txt.j2          the SMS body
    email/<lang>/<message>.subject.j2    the email subject (one line; newlines are collapsed)
    email/<lang>/<message>.txt.j2        the plain-text email body
    email/<lang>/<message>.html.j2       the HTML email body; may extend email/<lang>/base.html.j2

Template context contract: every template gets exactly these variables, all always present
(a template may use any of them and nothing else):

    first_name     str   the patient's first name
    clinic_name    str   who the message is from; SMS are signed with it
    clinic_phone   str   the number a patient should call with questions
    care_team      str   the schedule's care team, or the clinic name when it has none
    quitline       str   the tobacco quitline for the patient's language
    day            int   days since surgery for this message (negative: before surgery)
    followup       str   the next follow-up visit, as a phrase ("on Tuesday, March 4"), or ""
    checkin_link   str   a link where the patient can answer the check-in (email)
    email_replies  bool  replies to emails are read (CHECKIN_EMAIL_REPLY_TO is set); when
                         false an email must not invite a reply
    language       str   "en" or "es"
    emergency_number str the emergency number (CHECKIN_EMERGENCY_NUMBER, 911 by default)
    crisis_line    str   the suicide and crisis line (CHECKIN_CRISIS_LINE, 988 by default)

The context never holds the diagnosis, the procedure or the schedule name: SMS are not a private
channel (lock screens, shared phones), so texts carry only the minimum necessary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError

from checkin.content.sandbox import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_TIME_LIMIT_S,
    LimitedSandbox,
    RenderLimitExceeded,
)
from checkin.core.languages import LANGUAGES
from checkin.core.schedule.model import Schedule
from checkin.core.sms_encoding import SmsInfo, non_gsm_positions, normalize_sms, segments
from checkin.errors import ScheduleError, TemplateError

CONTEXT_VARIABLES: tuple[str, ...] = (
    "first_name",
    "clinic_name",
    "clinic_phone",
    "care_team",
    "quitline",
    "day",
    "followup",
    "checkin_link",
    "email_replies",
    "language",
    "emergency_number",
    "crisis_line",
)

_NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


@dataclass(frozen=True)
class RenderedSms:
    text: str  # normalized, ready to send
    info: SmsInfo


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def sms_template(message: str, language: str) -> str:
    return f"sms/{language}/{message}.txt.j2"


def email_templates(message: str, language: str) -> tuple[str, str, str]:
    base = f"email/{language}/{message}"
    return f"{base}.subject.j2", f"{base}.txt.j2", f"{base}.html.j2"


class Renderer:
    """Renders the templates under ``templates_dir``; every failure is a ``TemplateError``
    naming the template and, when known, the line at fault. A render is bounded in time and
    output size (``checkin.content.sandbox``)."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        self.templates_dir = Path(templates_dir)
        self.env = LimitedSandbox(
            time_limit=time_limit,
            max_output=max_output,
            loader=FileSystemLoader(str(self.templates_dir)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=False, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def _exists(self, name: str) -> bool:
        return (self.templates_dir / name).is_file()

    def exists(self, message: str, language: str, channel: str = "sms") -> bool:
        """Whether ``message`` has its template(s) for ``channel`` ("sms" or "email", all three
        parts) in ``language``."""
        if not _NAME.fullmatch(message) or language not in LANGUAGES:
            return False
        if channel == "sms":
            return self._exists(sms_template(message, language))
        if channel == "email":
            return all(self._exists(n) for n in email_templates(message, language))
        raise ValueError(f"unknown channel {channel!r}")

    def has_message(self, message: str) -> bool:
        """Whether any template of ``message`` exists: the schedule loader's typo check
        (``load_schedule(..., template_exists=renderer.has_message)``). Completeness per
        language and channel is ``validate_schedule_templates``'s job."""
        return any(self.exists(message, lang, channel) for lang in LANGUAGES for channel in ("sms", "email"))

    def _fault(self, exc: BaseException, name: str) -> tuple[str, int | None]:
        """The template and line a render error came from: the innermost frame of template code
        in the traceback, which Jinja rewrites to point at template source lines (an
        {% include %}d or {% extends %}d file can be the one at fault)."""
        where, line = name, None
        tb = exc.__traceback__
        while tb is not None:
            filename = Path(tb.tb_frame.f_code.co_filename)
            if filename.suffix == ".j2" and filename.is_relative_to(self.templates_dir):
                where, line = filename.relative_to(self.templates_dir).as_posix(), tb.tb_lineno
            tb = tb.tb_next
        return where, line

    def path_of(self, name: str) -> Path:
        """The file of template ``name`` (for messages an admin acts on)."""
        return self.templates_dir / name

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            template = self.env.get_template(name)
        except TemplateNotFound as exc:
            raise TemplateError(name, f"template not found: {exc.name}") from exc
        except TemplateSyntaxError as exc:
            # An {% include %}d or {% extends %}d file can be the one at fault.
            raise TemplateError(exc.name or name, f"syntax error: {exc.message}", exc.lineno) from exc
        try:
            return self.env.render(template, context)
        except TemplateNotFound as exc:
            raise TemplateError(name, f"template not found: {exc.name}") from exc
        except TemplateSyntaxError as exc:
            raise TemplateError(exc.name or name, f"syntax error: {exc.message}", exc.lineno) from exc
        except SecurityError as exc:
            where, line = self._fault(exc, name)
            raise TemplateError(where, f"not allowed in the sandbox: {exc}", line) from exc
        except UndefinedError as exc:
            where, line = self._fault(exc, name)
            raise TemplateError(where, f"undefined variable: {exc.message}", line) from exc
        except RenderLimitExceeded as exc:
            where, line = self._fault(exc, name)
            raise TemplateError(where, str(exc), line) from exc
        except Exception as exc:  # admin-written code: any failure is the template's fault
            where, line = self._fault(exc, name)
            raise TemplateError(where, f"{type(exc).__name__}: {exc}", line) from exc

    def render_sms(self, message: str, language: str, context: Mapping[str, Any]) -> RenderedSms:
        """The normalized SMS body and its encoding and segment count."""
        name = sms_template(message, language)
        if not _NAME.fullmatch(message):
            raise TemplateError(name, "not a valid message name")
        text = normalize_sms(self._render(name, context))
        if not text:
            raise TemplateError(name, "renders to an empty message", 1)
        return RenderedSms(text, segments(text))

    def render_email(self, message: str, language: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject_name, text_name, html_name = email_templates(message, language)
        if not _NAME.fullmatch(message):
            raise TemplateError(subject_name, "not a valid message name")
        # A newline in a subject would start a new mail header; keep it on one line.
        subject = " ".join(self._render(subject_name, context).split())
        if not subject:
            raise TemplateError(subject_name, "renders to an empty subject", 1)
        text = self._render(text_name, context).strip() + "\n"
        html = self._render(html_name, context).strip() + "\n"
        return RenderedEmail(subject, text, html)


# The tobacco quitlines, by language: what real messages carry, so validation measures the
# same text length (and encoding) that patients receive.
QUITLINES: dict[str, str] = {
    "en": "1-800-QUIT-NOW (1-800-784-8669)",
    "es": "1-855-DÉJELO-YA (1-855-335-3569)",
}

_SAMPLES: dict[str, dict[str, Any]] = {
    "en": {
        "first_name": "Alex",
        "followup": "on Tuesday, March 4",
        "quitline": QUITLINES["en"],
    },
    "es": {
        # An accented name on purpose: real Spanish names make texts UCS-2.
        "first_name": "Sofía",
        "followup": "el martes 4 de marzo",
        "quitline": QUITLINES["es"],
    },
}


def sample_context(language: str, *, day: int = 1) -> dict[str, Any]:
    """A synthetic patient for previews and validation: realistic lengths, no real person."""
    return {
        "clinic_name": "Riverside Medical Group",
        "clinic_phone": "(555) 010-0199",
        "care_team": "Riverside Medical Group",
        "day": day,
        "checkin_link": "https://checkin.example.org/c/Xq7Lm2Pa9Rt",
        "email_replies": True,
        "language": language,
        "emergency_number": "911",
        "crisis_line": "988",
        **_SAMPLES[language],
    }


# Words that name the diagnosis or the procedure; an SMS containing one (as a whole word) is an
# error unless the schedule sets procedure_name_in_sms.
DIAGNOSIS_WORDS: tuple[str, ...] = (
    "fusion",
    "fused",
    "spinal",
    "spine",
    "lumbar",
    "cervical",
    "thoracic",
    "sacral",
    "vertebra",
    "vertebrae",
    "vertebral",
    "laminectomy",
    "discectomy",
    "acdf",
    "stenosis",
    "herniated",
    "herniation",
    "scoliosis",
    "myelopathy",
    "radiculopathy",
    "disc",
    "disk",
    "fusión",
    "columna",
    "vértebra",
    "vértebras",
    "laminectomía",
    "discectomía",
    "estenosis",
    "hernia",
    "herniado",
    "escoliosis",
    "disco",
)
_DIAGNOSIS = re.compile(r"\b(" + "|".join(DIAGNOSIS_WORDS) + r")\b", re.IGNORECASE)

# Spanish letters GSM-7 lacks (it has é, ñ, ü, ¿, ¡ but not these). Spanish text needs them, so
# a Spanish SMS that is UCS-2 only because of them is expected, not a mistake.
SPANISH_NON_GSM = frozenset("áíóúÁÍÓÚ")

# Segment budgets. English: 2. Spanish GSM-7: 2. Spanish UCS-2 (accents): 4 (268 units), since
# UCS-2 segments hold 67 characters, Spanish runs about 20 % longer than English, and a Spanish
# text must also carry both keyword sets (ALTO/STOP) and "No necesita responder": cutting words
# to fit 3 segments dropped content and made texts harder to read.
MAX_SEGMENTS = {("en", "GSM-7"): 2, ("en", "UCS-2"): 2, ("es", "GSM-7"): 2, ("es", "UCS-2"): 4}

_ANSWERABLE = re.compile(r"\b(reply|responda|conteste)\b", re.IGNORECASE)


def _channels(preference: str | None) -> tuple[str, ...]:
    """Channels a step can go out on: its override, or either one (the patient's preference)."""
    if preference in ("sms", "email"):
        return (preference,)
    return ("sms", "email")


def _accidental(language: str, text: str) -> list[tuple[int, str]]:
    allowed = SPANISH_NON_GSM if language == "es" else frozenset()
    return [(i, c) for i, c in non_gsm_positions(text) if c not in allowed]


def _check_sms(
    template: str,
    language: str,
    text: str,
    info: SmsInfo,
    schedule: Schedule,
    asks: bool,
    clinic_name: str = "",
) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    if not schedule.procedure_name_in_sms:
        # The clinic's own name is the sender's identity, not content a template chose ("Spine
        # Center"): a site that minds it on lock screens changes CHECKIN_CLINIC_NAME.
        unsigned = text.replace(clinic_name, " ") if clinic_name else text
        found = sorted({m.group(1).lower() for m in _DIAGNOSIS.finditer(unsigned)})
        if found:
            errors.append(
                f"{template}: names the diagnosis or procedure ({', '.join(found)}); "
                "SMS must not, unless the schedule sets procedure_name_in_sms: true"
            )
    accidental = _accidental(language, text)
    if accidental:
        chars = ", ".join(f"{c!r} (U+{ord(c):04X}) at position {i}" for i, c in accidental[:5])
        warnings.append(f"{template}: UCS-2 because of {chars}; UCS-2 costs about twice as much")
    limit = MAX_SEGMENTS[(language, info.encoding)]
    if info.segments > limit:
        warnings.append(
            f"{template}: {info.segments} segments ({info.encoding}, {info.length} "
            f"{'septets' if info.encoding == 'GSM-7' else 'units'}); keep it to {limit}"
        )
    if asks and not _ANSWERABLE.search(text):
        warnings.append(f"{template}: asks a question but does not say how to reply")
    return errors, warnings


@dataclass
class _Use:
    """How a schedule uses one message: which steps, on which days and channels."""

    steps: list[str]
    line: int  # the first step's line in the schedule file
    days: set[int]
    channels: set[str]
    asks: bool = False


def _uses(schedule: Schedule) -> dict[str, _Use]:
    uses: dict[str, _Use] = {}
    for step in schedule.steps:
        use = uses.setdefault(step.message, _Use([], step.line, set(), set()))
        use.steps.append(step.id)
        use.days.update(step.days())
        use.channels.update(_channels(step.channel))
        use.asks = use.asks or step.ask is not None
    return uses


def template_problems(
    schedule: Schedule,
    renderer: Renderer,
    *,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[ScheduleError], list[tuple[_Use, str, str, RenderedSms]]]:
    """Render every template ``schedule`` uses; return the failures and, per SMS that rendered,
    its longest rendering (use, message, language, sms).

    Each failure reads ``file:line: what is wrong (step ...)``: the template's file and line
    for a template that does not render, or the schedule file and the step's line for a
    template that is missing in a language (every language a patient can have needs one).
    """
    problems: list[ScheduleError] = []
    rendered: list[tuple[_Use, str, str, RenderedSms]] = []
    for message, use in _uses(schedule).items():
        days = sorted(use.days)
        steps = f"(step {', '.join(use.steps)})"
        for language in LANGUAGES:
            for channel in ("sms", "email"):
                if channel not in use.channels:
                    continue
                if not renderer.exists(message, language, channel):
                    names = (
                        [sms_template(message, language)]
                        if channel == "sms"
                        else email_templates(message, language)
                    )
                    missing = [str(renderer.path_of(n)) for n in names if not renderer.path_of(n).is_file()]
                    problems.append(
                        ScheduleError(
                            schedule.source or schedule.id,
                            use.line or None,
                            None,
                            f"message {message!r} has no {language} {channel} template "
                            f"({', '.join(missing)} missing; patients can have any of "
                            f"{', '.join(LANGUAGES)}) {steps}",
                        )
                    )
                    continue
                worst: RenderedSms | None = None
                for day in dict.fromkeys((days[0], days[-1])):
                    context = dict(contexts[language]) if contexts else sample_context(language)
                    context["day"] = day
                    try:
                        if channel == "email":
                            renderer.render_email(message, language, context)
                            continue
                        sms = renderer.render_sms(message, language, context)
                    except TemplateError as exc:
                        problems.append(
                            ScheduleError(
                                str(renderer.path_of(exc.template)),
                                exc.line or 1,
                                None,
                                f"{exc.problem} {steps}",
                            )
                        )
                        break
                    if worst is None or sms.info.segments > worst.info.segments:
                        worst = sms
                if worst is not None:
                    rendered.append((use, message, language, worst))
    return problems, rendered


def validate_schedule_templates(
    schedule: Schedule,
    renderer: Renderer,
    *,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Render every template every step of ``schedule`` can use, in every language and on every
    channel the step can go out on, with the sample patient (or ``contexts[language]``).

    Returns ``(errors, warnings, report)``. Errors: a template missing or failing to render
    (see ``template_problems``), an SMS naming the diagnosis. Warnings: an SMS over its segment
    budget (``MAX_SEGMENTS``), UCS-2 caused by a character other than the Spanish accents GSM-7
    lacks (named, with its position), a check-in SMS that does not say how to reply. ``report``
    has one row per (message, language, channel): message, language, channel, encoding,
    segments, steps (encoding and segments are None for email, or when the SMS did not
    render). Each template is rendered for the first and last day its steps fall on, and the
    longer result is reported.
    """
    problems, rendered = template_problems(schedule, renderer, contexts=contexts)
    errors = [str(p) for p in problems]
    warnings: list[str] = []
    report: list[dict[str, Any]] = [
        {
            "message": message,
            "language": language,
            "channel": channel,
            "encoding": None,
            "segments": None,
            "steps": tuple(use.steps),
        }
        for message, use in _uses(schedule).items()
        for language in LANGUAGES
        for channel in ("sms", "email")
        if channel in use.channels
    ]
    rows = {(r["message"], r["language"], r["channel"]): r for r in report}
    where = f"{schedule.source}: " if schedule.source else ""
    for use, message, language, worst in rendered:
        rows[(message, language, "sms")].update(encoding=worst.info.encoding, segments=worst.info.segments)
        clinic = str(contexts[language].get("clinic_name", "")) if contexts else ""
        e, w = _check_sms(
            sms_template(message, language), language, worst.text, worst.info, schedule, use.asks, clinic
        )
        errors += [where + x for x in e]
        warnings += w
    return errors, warnings, report


__all__ = [
    "CONTEXT_VARIABLES",
    "DIAGNOSIS_WORDS",
    "RenderedEmail",
    "RenderedSms",
    "Renderer",
    "email_templates",
    "sample_context",
    "sms_template",
    "template_problems",
    "validate_schedule_templates",
]
