"""Typed, frozen models of a schedule file. Pure: no I/O.

A ``Schedule`` is what ``checkin.core.schedule.load`` builds from ``schedules/<id>.yaml`` after
validation; ``checkin.core.timeline.plan`` turns one plus a ``PlanInput`` into planned messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from checkin.core.languages import Language

# The values of ``checkin.states.ChannelName``, which the pure core cannot import.
ChannelName = Literal["sms", "email"]
ChannelPreference = Literal["sms", "email", "both"]

# The longest first name enrollment accepts; schedule validation measures every text with a
# name this long, so no accepted name can push a text over its segment budget.
FIRST_NAME_MAX = 30
CHANNEL_PREFERENCES: tuple[str, ...] = ("sms", "email", "both")

# Attributes a step's ``when`` may test. An enrollment carries a subset of these; a
# condition on anything else is a typo that would silently drop a step, so it is an error.
KNOWN_ATTRIBUTES: frozenset[str] = frozenset(
    {"smoker", "diabetic", "brace", "collar", "osteoporosis", "has_email"}
)

# Check-in questions a step may ``ask``; each is also the triage context for the reply
# (docs/adr/0005-triage-rules-and-data-files.md, "The contract").
QUESTIONS: frozenset[str] = frozenset(
    {
        "pain_scale",
        "fever_check",
        "wound_check",
        "numbness_check",
        "weakness_check",
        "bladder_check",
        "breathing_check",
        "swallow_check",
        "fall_check",
        "mood_check",
        # A combined check-in (several symptoms in one question: the daily check of the first
        # weeks, the monthly check after), so a patient gets one question instead of four.
        # Triage reads a bare YES under it as "something, but which?" and asks.
        "symptom_check",
        # 0-10: how much the back or neck limits daily activities. Triage has no number rule
        # for it, so it is read like a general reply; the score stays with the reply.
        "function_scale",
    }
)

# What a step's day counts from. Any other anchor names an appointment kind (``first_visit``,
# ``six_week_visit``, ...): lowercase letters, digits and ``_``.
SURGERY = "surgery"
DISCHARGE = "discharge"

# Burden priorities, most important first. ``high`` never moves; ``normal`` and ``low`` move to
# a later day (up to ``MAX_SHIFT_DAYS``) when a day is over its limit, ``low`` first.
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
MAX_SHIFT_DAYS = 3


@dataclass(frozen=True)
class LimitBand:
    """At most ``max`` messages a day on days ``start``..``end`` (inclusive; None = open)."""

    max: int
    start: int | None = None
    end: int | None = None
    line: int = 0

    def covers(self, day: int) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Appointment:
    """A booked visit an appointment-anchored step counts from. ``at`` is naive patient-local
    wall time (as the clinic booked it); ``where`` is free text for the patient."""

    kind: str
    at: datetime
    where: str | None = None


@dataclass(frozen=True)
class Condition:
    """``attribute`` must be set (or, with ``negate``, unset) on the enrollment."""

    attribute: str
    negate: bool = False

    def holds(self, attributes: frozenset[str]) -> bool:
        return (self.attribute in attributes) != self.negate


@dataclass(frozen=True)
class Step:
    id: str
    day: int  # calendar days from the surgery date in the patient's zone; negative = before
    time: time  # patient-local wall-clock time
    message: str  # template name: templates/sms/<lang>/<message>.txt.j2 etc.
    ask: str | None = None  # a check-in question (one of QUESTIONS); the reply's triage context
    every: int | None = None  # repeat every N days ...
    until: int | None = None  # ... up to and including this day
    when: tuple[Condition, ...] = ()  # all must hold
    channel: ChannelPreference | None = None  # overrides the patient's preference
    remind_after: timedelta | None = None
    missed_after: timedelta | None = None
    expires_after: timedelta | None = None  # None: the end of that day's send window
    catch_up: bool = False  # still send once if its time passed before enrollment
    # What ``day`` counts from: SURGERY, DISCHARGE, or an appointment kind.
    anchor: str = SURGERY
    # Appointment anchor only: day from surgery to use while no appointment of that kind is
    # booked (None: nothing is sent until one is).
    fallback_day: int | None = None
    priority: str = "normal"  # one of PRIORITIES; see checkin.core.schedule.burden
    line: int = 0  # line in the source file, for messages about this step

    @property
    def anchor_is_appointment(self) -> bool:
        return self.anchor not in (SURGERY, DISCHARGE)

    def applies_to(self, attributes: frozenset[str]) -> bool:
        return all(c.holds(attributes) for c in self.when)

    def days(self) -> list[int]:
        """Every day offset this step falls on, in order."""
        if self.every is None:
            return [self.day]
        last = self.until if self.until is not None else self.day
        return list(range(self.day, last + 1, self.every))


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    version: str  # content hash of the file, so an enrollment can be pinned to what it got
    send_window: tuple[time, time]  # patient-local; routine messages never go out outside it
    steps: tuple[Step, ...]
    care_team: str | None = None
    # SMS must not name the diagnosis or procedure unless the schedule opts in.
    procedure_name_in_sms: bool = False
    source: str = ""  # file path it was loaded from
    # Discharge-anchored steps count from surgery_date + this while no discharge is recorded.
    discharge_fallback_day: int = 0
    # First band covering a day wins; no band (the empty default) means no limit. The loader
    # fills in DEFAULT_DAILY_LIMIT (checkin.core.schedule.burden) when a file sets none.
    daily_limit: tuple[LimitBand, ...] = ()
    signed_off: bool = True  # False when clinical_sign_off is missing or leaves by or date null


@dataclass(frozen=True)
class PlanInput:
    """What the timeline needs to know about one patient on one schedule."""

    id: int | str
    surgery_date: date
    timezone: str  # IANA name
    language: Language = "en"
    channel: ChannelPreference = "sms"
    attributes: frozenset[str] = field(default_factory=frozenset)
    has_email: bool = False
    has_phone: bool = True
    # Anchors other than surgery, as data: None while not known.
    discharge_date: date | None = None
    appointments: tuple[Appointment, ...] = ()
    # Kinds whose appointment was cancelled: their steps send nothing, not even the fallback.
    cancelled_appointments: frozenset[str] = field(default_factory=frozenset)

    def appointment(self, kind: str) -> Appointment | None:
        return next((a for a in self.appointments if a.kind == kind), None)


@dataclass(frozen=True)
class PlannedMessage:
    """One message the timeline plans. ``key`` is stable across re-planning: the same step,
    occurrence and channel of the same enrollment always get the same key, so rescheduling
    updates rows instead of duplicating them."""

    enrollment_id: int | str
    step_id: str
    occurrence: int  # the step's day offset for this occurrence (stable when dates move)
    channel: ChannelName
    message: str  # template name
    ask: str | None
    due_at: datetime  # UTC, aware
    expires_at: datetime  # UTC, aware; never sent after this
    local_due: datetime  # the same instant in the patient's zone, for previews
    remind_after: timedelta | None = None
    missed_after: timedelta | None = None
    # The booked appointment an appointment-anchored step points at (UTC), and where it is:
    # templates get them as ``followup``.
    followup_at: datetime | None = None
    followup_where: str | None = None
    moved_days: int = 0  # days the daily limit moved it later (0: on its own day)

    @property
    def key(self) -> str:
        return f"{self.enrollment_id}:{self.step_id}:{self.occurrence}:{self.channel}"
