"""The message a reply arrives as and what processing it made of it; no I/O here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from checkin.states import supported_language

if TYPE_CHECKING:
    from checkin.core.triage import Assessment

Assess = Callable[[str, "str | None"], "Assessment"]
MAX_BODY_CHARS = 1600  # Twilio's own cap on one message; longer input is cut, never rejected


@dataclass(frozen=True)
class InboundSms:
    """A verified inbound message. ``from_phone`` is E.164 as Twilio sends it (None for the web
    form). ``outbox_id`` is set by the web form: the question is known from its signed token."""

    message_sid: str
    from_phone: str | None
    body: str
    to_phone: str | None = None
    channel: str = "sms"
    outbox_id: int | None = None

    def __repr__(self) -> str:  # no phone, no text: this object ends up in tracebacks
        return f"InboundSms(message_sid={self.message_sid!r}, channel={self.channel!r})"


@dataclass(frozen=True)
class InboundResult:
    """What happened. ``reply_text`` is None when nothing should be said (a replay)."""

    reply_text: str | None
    reply_template: str | None = None
    language: str = "en"
    inbound_id: int | None = None
    duplicate: bool = False
    patient_ref: str | None = None
    keyword: str | None = None
    severity: str | None = None
    flags: tuple[str, ...] = ()
    alert_id: int | None = None
    alert_opened: bool = False
    renotify: bool = False
    outbox_id: int | None = None  # the question answered
    followup_outbox_id: int | None = None  # the follow-up question asked, if any
    matched: str = "none"  # patient | unknown | shared | none


def default_assess() -> Assess:
    from checkin.core.triage import assess

    return assess


def storable(body: str) -> str:
    """The body as stored: verbatim except NUL, which PostgreSQL text cannot hold (replaced by
    U+FFFD so the nurse still sees something was there), and cut at MAX_BODY_CHARS."""
    return body[:MAX_BODY_CHARS].replace("\x00", "\ufffd")


class Speaker(Protocol):
    """Anything with a patient's language (an ORM patient, a ``lookup.Sender``)."""

    @property
    def language(self) -> str: ...


def reply_language(patients: Sequence[Speaker], *, fallback: str = "en") -> str:
    """The language to answer in: the patients' one language, else ``fallback``."""
    langs = {p.language for p in patients}
    if len(langs) == 1:
        (lang,) = langs
        return supported_language(lang)
    return fallback


def match_kind(patients: Sequence[object]) -> str:
    return {0: "unknown", 1: "patient"}.get(len(patients), "shared")
