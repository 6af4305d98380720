"""Render admin-written message templates safely (``checkin.content.validate`` checks a
schedule's templates before use).

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
from checkin.core.sms_encoding import SmsInfo, normalize_sms, segments
from checkin.errors import TemplateError

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
        language and channel is ``checkin.content.validate``'s job."""
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


__all__ = [
    "CONTEXT_VARIABLES",
    "QUITLINES",
    "RenderedEmail",
    "RenderedSms",
    "Renderer",
    "email_templates",
    "sample_context",
    "sms_template",
]
