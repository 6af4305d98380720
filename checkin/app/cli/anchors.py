"""``checkin discharge`` and ``checkin appointments``: the dates a timeline counts from.

Every change prints what moves; ``--dry-run`` prints it without writing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.core.schedule.model import Appointment
from checkin.enrollment.replan import RescheduleResult
from checkin.store.models import Patient

_PROCEDURE = click.option(
    "--procedure", default=None, help="Needed only if the patient is on several schedules."
)
_DRY_RUN = click.option("--dry-run", is_flag=True, help="Show what would move; change nothing.")


def _patient_zone(session: Session, mrn: str) -> ZoneInfo:
    return ZoneInfo(session.scalar(select(Patient.timezone).where(Patient.mrn == mrn)) or "UTC")


def _change(
    app: App,
    mrn: str,
    procedure: str | None,
    dry_run: bool,
    change: Callable[..., RescheduleResult],
    *args: Any,
    **kw: Any,
) -> None:
    """Run one anchor change of ``checkin.enrollment.anchors`` for ``mrn`` as the CLI (applied
    unless ``dry_run``) and print what moves."""
    with app.session() as session:
        result = change(
            session,
            mrn,
            *args,
            schedules=app.schedules,
            now=app.clock.now(),
            procedure=procedure,
            actor="cli",
            apply=not dry_run,
            **kw,
        )
        tz = _patient_zone(session, mrn)
    _report(tz, result, dry_run)


def _report(tz: ZoneInfo, result: RescheduleResult, dry_run: bool) -> None:
    """One line per message that moves (patient-local times), then a summary."""

    def when(instant: datetime | None) -> str:
        return f"{instant.astimezone(tz):%Y-%m-%d %H:%M}" if instant else "-"

    for m in result.moves:
        what = "cancel" if m.after is None else "add" if m.before is None else "move"
        click.echo(
            f"  {what:<6} {m.step_id:<24} day {m.occurrence:>4} {m.channel:<5} {when(m.before)} -> {when(m.after)}"
        )
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"{'dry run: ' if dry_run else ''}{len(result.moves)} message(s) {verb}: "
        f"{result.updated} kept (new times where they moved), {result.added} added, "
        f"{result.cancelled} cancelled, {result.kept_history} already sent"
    )


@click.command()
@click.argument("mrn")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
@_PROCEDURE
@_DRY_RUN
@pass_app
@fail_cleanly
def discharge(app: App, mrn: str, day: datetime, procedure: str | None, dry_run: bool) -> None:
    """Record the discharge date; post-op checks count from it."""
    from checkin.enrollment.anchors import set_discharge

    _change(app, mrn, procedure, dry_run, set_discharge, day.date())


@click.group()
def appointments() -> None:
    """Follow-up visits: reminders go the day before and name the date and time."""


@appointments.command("add")
@click.argument("mrn")
@click.option("--kind", required=True, help="first_visit, six_week_visit, ... (the schedule's anchors)")
@click.option(
    "--at",
    "at",
    required=True,
    type=click.DateTime(["%Y-%m-%d %H:%M"]),
    help='"YYYY-MM-DD HH:MM", patient-local',
)
@click.option("--where", default=None, help="Where the visit is, as the patient should read it.")
@_PROCEDURE
@_DRY_RUN
@pass_app
@fail_cleanly
def appointments_add(
    app: App, mrn: str, kind: str, at: datetime, where: str | None, procedure: str | None, dry_run: bool
) -> None:
    """Book a visit, or move it if one of that kind is booked; its reminders follow it."""
    from checkin.enrollment.anchors import book_appointment

    _change(app, mrn, procedure, dry_run, book_appointment, kind, at, where=where)


@appointments.command("remove")
@click.argument("mrn")
@click.option("--kind", required=True)
@_PROCEDURE
@_DRY_RUN
@pass_app
@fail_cleanly
def appointments_remove(app: App, mrn: str, kind: str, procedure: str | None, dry_run: bool) -> None:
    """Cancel a booked visit; its unsent reminders are cancelled."""
    from checkin.enrollment.anchors import cancel_appointment

    _change(app, mrn, procedure, dry_run, cancel_appointment, kind)


@appointments.command("list")
@click.argument("mrn")
@_PROCEDURE
@pass_app
@fail_cleanly
def appointments_list(app: App, mrn: str, procedure: str | None) -> None:
    """The patient's visits (patient-local times) and discharge date."""
    from checkin.enrollment.anchors import list_appointments
    from checkin.store import audit

    with app.session() as session:
        enrollment, rows = list_appointments(session, mrn, procedure=procedure)
        audit.record(
            session,
            at=app.clock.now(),
            actor="cli",
            action="appointments.viewed",
            patient_ref=enrollment.patient.reference,
            subject=f"enrollment:{enrollment.id}",
        )
        click.echo(
            f"surgery {enrollment.surgery_date}  discharge {enrollment.discharge_date or 'not recorded'}"
        )
        for r in rows:
            click.echo(
                f"{r.kind:<20} {r.at_local:%Y-%m-%d %H:%M}  {r.status:<9} {r.source:<4} {r.where or ''}"
            )
        if not rows:
            click.echo("no appointments")


def parse_appointments(values: tuple[str, ...]) -> tuple[Appointment, ...]:
    """``KIND=YYYY-MM-DD HH:MM`` options as appointments; a bad one is a usage error."""
    out = []
    for value in values:
        kind, _, when = value.partition("=")
        try:
            at = datetime.strptime(when.strip(), "%Y-%m-%d %H:%M")
        except ValueError:
            raise click.BadParameter(
                f'{value!r}: write KIND="YYYY-MM-DD HH:MM", e.g. six_week_visit=2026-04-25 09:30',
                param_hint="--appointment",
            ) from None
        out.append(Appointment(kind.strip(), at))
    return tuple(out)


COMMANDS = [discharge, appointments]
