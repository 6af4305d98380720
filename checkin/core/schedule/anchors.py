"""What a step's day counts from, and the visit phrase templates get as ``followup``. Pure.

Anchors are data the caller passes in (``PlanInput.discharge_date``, ``.appointments``,
``.cancelled_appointments``), never looked up here:

* ``surgery``: the surgery date.
* ``discharge``: the discharge date; while none is recorded, ``surgery_date +
  schedule.discharge_fallback_day``, so post-op checks wait for the patient to be home but
  still start if nobody records the discharge.
* an appointment kind (``first_visit``, ...): the booked visit's local date. Not booked: the
  step's ``fallback_day`` from surgery (a reminder without a date), or nothing if it has none.
  Cancelled: nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from checkin.core.schedule.model import DISCHARGE, SURGERY, Appointment, PlanInput, Schedule, Step

_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
}


@dataclass(frozen=True)
class Anchored:
    """Where a step's occurrences land: ``base + day`` for each of its days."""

    base: date
    days: tuple[int, ...]  # the step's own day offsets (occurrence keys)
    appointment: Appointment | None = None


def anchor_step(step: Step, schedule: Schedule, enrollment: PlanInput) -> Anchored | None:
    """The dates ``step`` counts from for ``enrollment``, or None when it sends nothing."""
    days = tuple(step.days())
    if step.anchor == SURGERY:
        return Anchored(enrollment.surgery_date, days)
    if step.anchor == DISCHARGE:
        base = enrollment.discharge_date or (
            enrollment.surgery_date + timedelta(days=schedule.discharge_fallback_day)
        )
        return Anchored(base, days)
    if step.anchor in enrollment.cancelled_appointments:
        return None
    booked = enrollment.appointment(step.anchor)
    if booked is not None:
        return Anchored(booked.at.date(), days, booked)
    if step.fallback_day is None:
        return None
    # Not booked yet: the fallback day stands in for the step's first day (keys stay the
    # step's own offsets, so booking the visit later moves the same rows).
    return Anchored(enrollment.surgery_date + timedelta(days=step.fallback_day - step.day), days)


def followup_phrase(at: datetime, where: str | None, language: str) -> str:
    """``at`` (naive local wall time) as a phrase for ``{{ followup }}``.

    en: "on Tuesday, March 4 at 9:30 AM (Main clinic)"; es: "el martes 4 de marzo a las 9:30
    (Main clinic)". ``where`` is added in parentheses when given.
    """
    lang = language if language in _DAYS else "en"
    day, month = _DAYS[lang][at.weekday()], _MONTHS[lang][at.month - 1]
    if lang == "es":
        phrase = f"el {day} {at.day} de {month} a las {at.hour}:{at.minute:02d}"
    else:
        hour = at.hour % 12 or 12
        phrase = f"on {day}, {month} {at.day} at {hour}:{at.minute:02d} {'AM' if at.hour < 12 else 'PM'}"
    place = " ".join((where or "").split())
    return f"{phrase} ({place})" if place else phrase


def followup_for(at_utc: datetime | None, where: str | None, timezone: str, language: str) -> str:
    """``{{ followup }}`` for a planned visit stored as a UTC instant; "" when there is none."""
    if at_utc is None:
        return ""
    local = at_utc.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return followup_phrase(local, where, language)
