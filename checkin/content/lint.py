"""Checks a schedule needs beyond its file format: texts measured as patients will get them,
clinical sign-off and placeholder contacts, and the message load per day (``schedules lint``).

Texts are measured with this site's clinic name and phone, the longest first name enrollment
accepts and the longest visit phrase, so a long real name cannot push a text over budget
unnoticed (validation with a short sample name did exactly that).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from checkin.content.render import QUITLINES
from checkin.core.care_teams import CareTeams
from checkin.core.placeholders import placeholder_email, placeholder_phone
from checkin.core.schedule import PlanInput, Schedule
from checkin.core.schedule.anchors import followup_phrase
from checkin.core.schedule.burden import limit_for
from checkin.core.schedule.model import FIRST_NAME_MAX
from checkin.core.timeline import plan_with_drops

_LONGEST_NAME = {
    "en": "Maximiliana-Josefina Alexandra"[:FIRST_NAME_MAX],
    "es": "María-Fernanda Guadalupe Sofía",
}
# The visit phrase at its longest: the longest weekday and month, a two-digit day and hour, and
# a location of the longest length appointments accept.
_LONGEST_WHERE = "Riverside Medical Plaza, 2nd floor, B12"
_LONGEST_VISIT = datetime(2026, 9, 30, 12, 30)


_DEFAULT_CLINIC_NAME = "Spine Center"


def measuring_contexts(
    clinic_name: str, clinic_phone: str, emergency_number: str = "911", crisis_line: str = "988"
) -> dict[str, dict[str, Any]]:
    """Per language, the template context that makes every text as long as it can get here."""
    return {
        language: {
            "first_name": _LONGEST_NAME[language][:FIRST_NAME_MAX],
            "clinic_name": clinic_name,
            "clinic_phone": clinic_phone,
            "care_team": clinic_name,
            "quitline": QUITLINES[language],
            "day": 1,
            "followup": followup_phrase(_LONGEST_VISIT, _LONGEST_WHERE, language),
            "checkin_link": "https://checkin.example.org/c/Xq7Lm2Pa9RtXq7Lm2Pa9Rt",
            "email_replies": False,  # the longer wording
            "emergency_number": emergency_number,
            "crisis_line": crisis_line,
            "language": language,
        }
        for language in ("en", "es")
    }


@dataclass(frozen=True)
class Site:
    """What validation needs to know about the site running checkin (from its settings)."""

    clinic_name: str
    clinic_phone: str
    production: bool = False
    emergency_number: str = "911"
    crisis_line: str = "988"


def site_problems(schedule: Schedule, site: Site) -> tuple[list[str], list[str]]:
    """``(errors, warnings)``: an unsigned schedule and placeholder contacts are warnings in
    development and errors in production (fail closed: nothing unreviewed reaches patients)."""
    clinic_name, clinic_phone = site.clinic_name, site.clinic_phone
    problems = []
    if not schedule.signed_off:
        problems.append(
            "clinical_sign_off: no clinician has signed off this schedule (by and date are not both set)"
        )
    if placeholder_phone(clinic_phone):
        problems.append(
            f"CHECKIN_CLINIC_PHONE {clinic_phone!r} is a placeholder (555-01xx); patients would call it"
        )
    if clinic_name == _DEFAULT_CLINIC_NAME:
        problems.append(f"CHECKIN_CLINIC_NAME is the default {clinic_name!r}; set this clinic's name")
    return (problems, []) if site.production else ([], problems)


def care_team_problems(teams: CareTeams, site: Site) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` for placeholder contacts in a care-team file (alerts to nobody):
    warnings in development, errors in production, like ``site_problems``."""
    problems = []
    for team in teams.teams.values():
        for c in (*team.nurses, *([team.on_call] if team.on_call else [])):
            if c.email and placeholder_email(c.email):
                problems.append(f"team {team.id}: {c.name}: {c.email} is a placeholder address")
            if c.phone and placeholder_phone(c.phone):
                problems.append(f"team {team.id}: {c.name}: {c.phone} is a placeholder number (555)")
    return (problems, []) if site.production else ([], problems)


@dataclass
class Load:
    """The messages one patient profile gets, by day and by week since surgery."""

    profile: str
    per_day: Counter[int] = field(default_factory=Counter)
    dropped: list[tuple[str, int]] = field(default_factory=list)
    over: list[tuple[int, int, int]] = field(default_factory=list)  # (day, count, limit)
    moved: int = 0
    first_step: str = ""

    @property
    def per_week(self) -> Counter[int]:
        weeks: Counter[int] = Counter()
        for day, n in self.per_day.items():
            weeks[day // 7] += n
        return weeks

    @property
    def total(self) -> int:
        return sum(self.per_day.values())


def profiles(schedule: Schedule) -> list[tuple[str, frozenset[str]]]:
    """No attributes, each attribute a step tests, and all of them together."""
    used = sorted({c.attribute for s in schedule.steps for c in s.when if c.attribute != "has_email"})
    out = [("no attributes", frozenset[str]())]
    out += [(name, frozenset({name})) for name in used]
    if len(used) > 1:
        out.append(("all: " + ", ".join(used), frozenset(used)))
    return out


def load_for(
    schedule: Schedule, attributes: frozenset[str], profile: str, surgery: date = date(2027, 3, 1)
) -> Load:
    """The load of a patient enrolled long before surgery, with no discharge or visit booked
    (fallback days) and one SMS per message."""
    enrollment = PlanInput(
        id="lint", surgery_date=surgery, timezone="America/New_York", attributes=attributes
    )
    now = datetime.combine(surgery - timedelta(days=400), time(0), UTC)
    planned, dropped = plan_with_drops(schedule, enrollment, now=now)
    load = Load(profile, dropped=dropped)
    for m in planned:
        load.per_day[(m.local_due.date() - surgery).days] += 1
        load.moved += m.moved_days > 0
    load.first_step = planned[0].step_id if planned else ""
    for day, n in sorted(load.per_day.items()):
        most = limit_for(day, schedule.daily_limit)
        if most is not None and n > most:
            load.over.append((day, n, most))
    return load


def lint_lines(schedule: Schedule) -> tuple[list[str], bool]:
    """Human-readable burden summary for every profile; the flag is True when a day is over
    its limit or a message was dropped."""
    lines: list[str] = []
    bad = False
    for profile, attributes in profiles(schedule):
        load = load_for(schedule, attributes, profile)
        weeks = load.per_week
        busiest = max(load.per_day.values(), default=0)
        first2 = [load.per_day.get(d, 0) for d in range(15)]
        lines.append(
            f"{schedule.id} [{profile}]: {load.total} messages, busiest day {busiest}, "
            f"days 0-14: {sum(first2)} ({' '.join(map(str, first2))}), "
            f"busiest week {max(weeks.values(), default=0)}, moved {load.moved}, first: {load.first_step}"
        )
        lines.append("  weeks: " + " ".join(f"{w}:{n}" for w, n in sorted(weeks.items())))
        for day, n, most in load.over:
            lines.append(f"  OVER: day {day} has {n} messages, limit {most}")
        for step_id, occurrence in load.dropped:
            lines.append(f"  DROPPED: {step_id} day {occurrence} (no room within 3 days)")
        bad = bad or bool(load.over or load.dropped)
    return lines, bad


def preview_load_lines(rows: list[dict[str, Any]], surgery: date) -> list[str]:
    """Texts per day and per week (days since surgery) of a preview, for the admin's eye."""
    per_day: Counter[int] = Counter()
    for r in rows:
        per_day[(date.fromisoformat(str(r["due_local"])[:10]) - surgery).days] += 1
    weeks: Counter[int] = Counter()
    for day, n in per_day.items():
        weeks[day // 7] += n
    return [
        "per day:  " + " ".join(f"{d}:{n}" for d, n in sorted(per_day.items())),
        "per week: " + " ".join(f"{w}:{n}" for w, n in sorted(weeks.items())),
        f"busiest day {max(per_day.values(), default=0)}, busiest week {max(weeks.values(), default=0)}, "
        f"moved by the daily limit {sum(1 for r in rows if r.get('moved_days'))}",
    ]
