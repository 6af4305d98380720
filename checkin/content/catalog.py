"""Schedules and templates as content: load a folder, validate files, preview a timeline.

Plain functions over what they are given (a folder, a ``Renderer``); building the renderer and
choosing the folders is the composition root's job (``checkin.app.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from checkin.config import Settings
from checkin.content.hl7_mapping import HL7_FILE, check_hl7_mapping
from checkin.content.lint import Site, care_team_problems, measuring_contexts, site_problems
from checkin.content.render import QUITLINES, Renderer, sample_context
from checkin.content.validate import template_problems, validate_schedule_templates
from checkin.core.care_teams import FILE_NAME as CARE_TEAMS_FILE
from checkin.core.care_teams import parse_care_teams
from checkin.core.schedule import KNOWN_ATTRIBUTES, PlanInput, Schedule
from checkin.core.schedule.anchors import followup_for
from checkin.core.schedule.load import NOT_SCHEDULES, load_schedule
from checkin.core.schedule.load import load_schedules as _load_schedules
from checkin.core.schedule.model import Appointment
from checkin.core.suggest import unknown
from checkin.core.timeline import plan
from checkin.core.zones import zone_problem
from checkin.errors import ConfigError, EnrollmentError, ScheduleErrors
from checkin.states import ChannelName


def schedule_files(directory: Path) -> list[Path]:
    """The schedule files of a directory: every ``*.yaml`` except the care-team and HL7 files."""
    return sorted(p for p in directory.glob("*.yaml") if p.name not in NOT_SCHEDULES)


def load_schedules(directory: Path, renderer: Renderer) -> dict[str, Schedule]:
    """Every schedule in ``directory`` (CHECKIN_SCHEDULES_DIR), each step's templates checked
    against ``renderer``; raises ConfigError if it is not a folder, ScheduleErrors if any file
    is invalid or any template a schedule uses is missing in a language or does not render."""
    if not directory.is_dir():
        raise ConfigError("CHECKIN_SCHEDULES_DIR", f"{directory} is not a directory")
    schedules = _load_schedules(schedule_files(directory), template_exists=renderer.has_message)
    # A template that cannot render would turn every message using it `dead` at send time
    # while enrollment went on succeeding: refuse to start instead, naming each problem.
    problems = [p for s in schedules.values() for p in template_problems(s, renderer)[0]]
    if problems:
        raise ScheduleErrors(problems)
    return schedules


@dataclass
class ValidationReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)


def validate_paths(
    paths: Sequence[Path], renderer: Renderer, alert_emails: Sequence[str], *, site: Site | None = None
) -> ValidationReport:
    """Validate each file and render every template it uses; collects every problem.
    ``alert_emails`` (CHECKIN_ALERT_EMAILS) complete a care-team file's default team. With
    ``site``, texts are measured with its clinic name and phone, and its sign-off and contact
    rules apply (``checkin.content.lint``); without, with the sample patient."""
    report = ValidationReport()
    seen: dict[str, Path] = {}
    loaded: list[Schedule] = []
    for path in paths:
        if path.name == HL7_FILE:
            continue  # after the schedules: it must name theirs
        if path.name == CARE_TEAMS_FILE:
            _check_care_teams(path, alert_emails, site, report)
            continue
        try:
            schedule = load_schedule(path, template_exists=renderer.has_message)
        except ScheduleErrors as e:
            report.errors.extend(str(x) for x in e.errors)
            continue
        if schedule.id in seen:
            report.errors.append(f"{path}: id: {schedule.id!r} is also the id of {seen[schedule.id]}")
            continue
        seen[schedule.id] = path
        loaded.append(schedule)
        _check_schedule(path, schedule, renderer, site, report)
    for path in paths:
        if path.name == HL7_FILE:
            check_hl7_mapping(path, loaded or None, report.errors, report.info)
    return report


def _check_care_teams(
    path: Path, alert_emails: Sequence[str], site: Site | None, report: ValidationReport
) -> None:
    try:
        teams = parse_care_teams(path.read_text(encoding="utf-8"), str(path), alert_emails)
        report.info.append(f"{path}: {len(teams.teams)} care team(s), default {teams.default}")
        errors, warnings = care_team_problems(teams, site) if site else ([], [])
        report.errors.extend(f"{path}: {e}" for e in errors)
        report.warnings.extend(f"{path}: {w}" for w in warnings)
    except ScheduleErrors as e:
        report.errors.extend(str(x) for x in e.errors)


def _check_schedule(
    path: Path, schedule: Schedule, renderer: Renderer, site: Site | None, report: ValidationReport
) -> None:
    """Render every template of a loaded schedule; with ``site``, its own rules too."""
    # Measured as this site's patients will get them (see checkin.content.lint).
    contexts = (
        measuring_contexts(site.clinic_name, site.clinic_phone, site.emergency_number, site.crisis_line)
        if site
        else None
    )
    errors, warnings, rows = validate_schedule_templates(schedule, renderer, contexts=contexts)
    site_errors, site_warnings = site_problems(schedule, site) if site else ([], [])
    report.errors.extend(errors)  # each names its own file and line
    report.errors.extend(f"{path}: {e}" for e in site_errors)
    report.warnings.extend(f"{path}: {w}" for w in [*warnings, *site_warnings])
    report.info.append(f"{path}: {schedule.id} v{schedule.version}, {len(schedule.steps)} steps")
    for r in rows:
        if r["channel"] == ChannelName.SMS:
            report.info.append(
                f"  sms {r['language']} {r['message']:<28} {r['encoding'] or '-':<5} "
                f"{r['segments'] if r['segments'] is not None else '-'} segment(s)"
            )


def message_context(
    settings: Settings,
    *,
    first_name: str,
    language: str,
    day: int,
    care_team: str | None = None,
    followup: str = "",
    checkin_link: str = "",
) -> dict[str, Any]:
    """The template context for a real patient (the contract is in ``checkin.content.render``)."""
    return {
        "first_name": first_name,
        "clinic_name": settings.clinic_name,
        "clinic_phone": settings.clinic_phone,
        "care_team": care_team or settings.clinic_name,
        "quitline": QUITLINES.get(language, QUITLINES["en"]),
        "day": day,
        "followup": followup,
        "checkin_link": checkin_link,
        "email_replies": settings.email_reply_to is not None,
        "language": language,
        "emergency_number": settings.emergency_number,
        "crisis_line": settings.crisis_line,
    }


def preview(
    settings: Settings,
    renderer: Renderer,
    schedules: Mapping[str, Schedule],
    schedule_id: str,
    surgery_date: date,
    tz: str,
    *,
    smoker: bool = False,
    attributes: Iterable[str] = (),
    language: str = "en",
    channel: str = "sms",
    now: datetime | None = None,
    discharge_date: date | None = None,
    appointments: tuple[Appointment, ...] = (),
) -> list[dict[str, Any]]:
    """Every message a patient enrolled long before surgery would get, rendered with the sample
    patient. Rows: step, due_local, due_utc, expires_utc, channel, message, ask, text (and
    subject for email). ``settings`` give the clinic's name and phone."""
    schedule = schedules.get(schedule_id)
    if schedule is None:
        raise EnrollmentError(
            "procedure", f"{schedule_id!r} is not a schedule (known: {', '.join(sorted(schedules))})"
        )
    zone = zone_problem(tz)
    if zone:
        raise EnrollmentError("timezone", zone)
    allowed = KNOWN_ATTRIBUTES - {"has_email"}
    for name in attributes:
        if name not in allowed:
            raise EnrollmentError("attribute", unknown("attribute", name, allowed))
    attrs = set(attributes) | ({"smoker"} if smoker else set())
    enrollment = PlanInput(
        id="preview",
        surgery_date=surgery_date,
        timezone=tz,
        language=language,  # type: ignore[arg-type]
        channel=channel,  # type: ignore[arg-type]
        attributes=frozenset(attrs),
        has_email=channel != ChannelName.SMS,
        has_phone=channel != ChannelName.EMAIL,
        discharge_date=discharge_date,
        appointments=appointments,
    )
    start = now or datetime.combine(surgery_date - timedelta(days=400), time(0), UTC)
    rows = []
    for m in plan(schedule, enrollment, now=start):
        sample = sample_context(language, day=m.occurrence)
        ctx = message_context(
            settings,
            first_name=sample["first_name"],
            language=language,
            day=m.occurrence,
            care_team=schedule.care_team,
            followup=followup_for(m.followup_at, m.followup_where, tz, language),
            checkin_link=sample["checkin_link"],
        )
        row: dict[str, Any] = {
            "step": m.step_id,
            "due_local": m.local_due.isoformat(),
            "due_utc": m.due_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "expires_utc": m.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "channel": m.channel,
            "message": m.message,
            "ask": m.ask,
            "moved_days": m.moved_days,
        }
        if m.channel == "sms":
            sms = renderer.render_sms(m.message, language, ctx)
            row.update(text=sms.text, segments=sms.info.segments, encoding=sms.info.encoding)
        else:
            mail = renderer.render_email(m.message, language, ctx)
            row.update(subject=mail.subject, text=mail.text)
        rows.append(row)
    return rows
