"""Check a schedule's templates before use: every one renders in every language and on every
channel a step can go out on, and each SMS keeps to the rules texts to patients follow (no
diagnosis, a segment budget, no accidental UCS-2, a question says how to reply).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checkin.content.render import RenderedSms, Renderer, email_templates, sample_context, sms_template
from checkin.core.languages import LANGUAGES
from checkin.core.schedule.model import Schedule
from checkin.core.sms_encoding import SmsInfo, non_gsm_positions
from checkin.errors import ScheduleError, TemplateError

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
        steps = f"(step {', '.join(use.steps)})"
        for language in LANGUAGES:
            for channel in ("sms", "email"):
                if channel not in use.channels:
                    continue
                if not renderer.exists(message, language, channel):
                    problems.append(_missing(schedule, renderer, use, message, language, channel, steps))
                    continue
                worst, exc = _worst(renderer, use, message, language, channel, contexts)
                if exc is not None:
                    path = str(renderer.path_of(exc.template))
                    problems.append(ScheduleError(path, exc.line or 1, None, f"{exc.problem} {steps}"))
                if worst is not None:
                    rendered.append((use, message, language, worst))
    return problems, rendered


def _missing(
    schedule: Schedule, renderer: Renderer, use: _Use, message: str, language: str, channel: str, steps: str
) -> ScheduleError:
    """The problem of a message without its template(s) for ``channel`` in ``language``."""
    names = [sms_template(message, language)] if channel == "sms" else email_templates(message, language)
    missing = [str(renderer.path_of(n)) for n in names if not renderer.path_of(n).is_file()]
    return ScheduleError(
        schedule.source or schedule.id,
        use.line or None,
        None,
        f"message {message!r} has no {language} {channel} template "
        f"({', '.join(missing)} missing; patients can have any of "
        f"{', '.join(LANGUAGES)}) {steps}",
    )


def _worst(
    renderer: Renderer,
    use: _Use,
    message: str,
    language: str,
    channel: str,
    contexts: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[RenderedSms | None, TemplateError | None]:
    """Render for the first and last day the message's steps fall on, stopping at the first
    ``TemplateError``: the SMS with more segments so far (None for email) and that error."""
    days = sorted(use.days)
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
            return worst, exc
        if worst is None or sms.info.segments > worst.info.segments:
            worst = sms
    return worst, None


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
    "DIAGNOSIS_WORDS",
    "MAX_SEGMENTS",
    "template_problems",
    "validate_schedule_templates",
]
