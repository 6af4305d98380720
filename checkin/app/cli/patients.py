"""``checkin patients``: look at enrolled patients and their timelines."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from checkin.app.cli.context import App, fail_cleanly, pass_app


@click.group()
def patients() -> None:
    """Look at enrolled patients."""


@patients.command("list")
@click.option("--limit", default=100, show_default=True)
@pass_app
@fail_cleanly
def patients_list(app: App, limit: int) -> None:
    """One line per enrollment: reference, MRN, procedure, surgery date, status, pending count."""
    from checkin.store.models import OUTBOX_PENDING, Enrollment, OutboxMessage, Patient

    with app.session() as session:
        pending = (
            select(OutboxMessage.enrollment_id, func.count().label("n"))
            .where(OutboxMessage.status == OUTBOX_PENDING)
            .group_by(OutboxMessage.enrollment_id)
            .subquery()
        )
        rows = session.execute(
            select(
                Patient.reference,
                Patient.mrn,
                Enrollment.procedure,
                Enrollment.surgery_date,
                Enrollment.status,
                func.coalesce(pending.c.n, 0),
            )
            .join(Enrollment, Enrollment.patient_id == Patient.id)
            .outerjoin(pending, pending.c.enrollment_id == Enrollment.id)
            .order_by(Enrollment.surgery_date, Patient.mrn)
            .limit(limit)
        ).all()
    for ref, mrn, proc, day, status, n in rows:
        click.echo(f"{ref:<10} {mrn:<16} {proc:<20} {day}  {status:<10} {n:>4} pending")
    click.echo(f"{len(rows)} enrollment(s)")


@patients.command("show")
@click.argument("mrn")
@pass_app
@fail_cleanly
def patients_show(app: App, mrn: str) -> None:
    """A patient's details and timeline with the status of every message."""
    from zoneinfo import ZoneInfo

    from checkin.store.models import Enrollment, OutboxMessage, Patient

    with app.session() as session:
        patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
        if patient is None:
            raise click.ClickException(f"no patient with MRN {mrn!r}")
        tz = ZoneInfo(patient.timezone)
        click.echo(
            f"{patient.reference}  {patient.first_name}  phone {patient.phone or '-'}  "
            f"email {patient.email or '-'}  {patient.language}  {patient.timezone}"
            + ("  SMS OPTED OUT" if patient.sms_opted_out else "")
        )
        for e in session.scalars(select(Enrollment).where(Enrollment.patient_id == patient.id)):
            click.echo(
                f"\n{e.procedure} (surgery {e.surgery_date}, {e.status}, schedule {e.schedule_version})"
            )
            for m in session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.enrollment_id == e.id)
                .order_by(OutboxMessage.due_at, OutboxMessage.step_id)
            ):
                local = m.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
                extra = f" ({m.status_reason})" if m.status_reason else ""
                click.echo(f"  {local:<22} {m.channel:<5} {m.step_id:<24} {m.status}{extra}")


COMMANDS = [patients]
