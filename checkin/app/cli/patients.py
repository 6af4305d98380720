"""``checkin patients``: look at enrolled patients and their timelines."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click
from sqlalchemy import func, select

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.app.cli.display import clean
from checkin.states import OutboxStatus

if TYPE_CHECKING:
    from checkin.store.patient_record import PatientRecord


@click.group()
def patients() -> None:
    """Look at enrolled patients."""


@patients.command("list")
@click.option("--limit", default=100, show_default=True)
@pass_app
@fail_cleanly
def patients_list(app: App, limit: int) -> None:
    """One line per enrollment: reference, MRN, procedure, surgery date, status, pending count."""
    from checkin.store.models import Enrollment, OutboxMessage, Patient

    with app.session() as session:
        pending = (
            select(OutboxMessage.enrollment_id, func.count().label("n"))
            .where(OutboxMessage.status == OutboxStatus.PENDING)
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
        click.echo(f"{ref:<10} {clean(mrn):<16} {proc:<20} {day}  {status:<10} {n:>4} pending")
    click.echo(f"{len(rows)} enrollment(s)")


@patients.command("show")
@click.argument("key", metavar="MRN_OR_REFERENCE")
@click.option("--by", "by", default=None, help="Who is looking (audited; default: the login name).")
@pass_app
@fail_cleanly
def patients_show(app: App, key: str, by: str | None) -> None:
    """A patient found by MRN or reference (P-…): details, the conversation in and out, alerts,
    and each timeline with the status of every message. The look is audited."""
    import getpass

    from checkin.store.patient_record import find_patient, read_record

    with app.session() as session:
        patient = find_patient(session, key)
        if patient is None:
            raise click.ClickException(f"no patient with MRN or reference {clean(key)!r}")
        who = (by or getpass.getuser()).strip()
        record = read_record(session, patient, actor=f"cli:{who}", now=app.clock.now())
        for line in record_lines(record):
            click.echo(line)


def record_lines(record: PatientRecord) -> list[str]:
    """The printed record; every stored value passes through ``clean`` (one line, no escapes)."""
    from zoneinfo import ZoneInfo

    p = record.patient
    tz = ZoneInfo(p.timezone)

    def local(at: datetime) -> str:
        return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    lines = [
        f"{p.reference}  {clean(p.first_name)}  MRN {clean(p.mrn)}  phone {clean(p.phone or '-')}  "
        f"email {clean(p.email or '-')}  {p.language}  {p.timezone}"
        + ("  SMS OPTED OUT" if p.sms_opted_out else "")
        + (f"  phone {p.phone_status}" if p.phone_status != "ok" else "")
    ]
    lines.append(f"\nConversation ({len(record.conversation)})")
    for t in record.conversation:
        arrow = "<-" if t.direction == "in" else "->"
        body = f'"{clean(t.text)}"' if t.text is not None else t.message
        lines.append(
            f"  {local(t.at):<22} {arrow} {t.channel:<5} {body}" + (f"  [{clean(t.note)}]" if t.note else "")
        )
    lines.append(f"\nAlerts ({len(record.alerts)})")
    for a in record.alerts:
        flags = ",".join(a.flags) or "-"
        lines.append(
            f"  #{a.id:<5} {a.severity.upper():<9} {a.kind:<16} {flags:<24} {a.status}"
            f"  opened {local(a.opened_at)}"
            + (f"  note: {clean(a.resolution_note)}" if a.resolution_note else "")
        )
    lines.append(f"\nConsent ({len(record.consents)})")
    for c in record.consents:
        lines.append(
            f"  {local(c.recorded_at):<22} {c.channel:<5} {c.decision:<7} {c.source:<15} "
            f"by {clean(c.recorded_by)}" + (f"  [{clean(c.evidence)}]" if c.evidence else "")
        )
    for e, rows in record.enrollments:
        lines.append(f"\n{e.procedure} (surgery {e.surgery_date}, {e.status}, schedule {e.schedule_version})")
        for m in rows:
            extra = f" ({clean(m.status_reason)})" if m.status_reason else ""
            lines.append(f"  {local(m.due_at):<22} {m.channel:<5} {m.step_id:<24} {m.status}{extra}")
    return lines


COMMANDS = [patients]
