"""``checkin enroll | import | reschedule | withdraw``: put patients on a schedule and take them off."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.app.cli.display import clean

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from checkin.enrollment.replan import RescheduleResult


@click.command()
@click.option("--mrn", required=True, help="Medical record number (never shown in messages or logs).")
@click.option("--first-name", required=True)
@click.option("--phone", default=None, help="Mobile number; normalized to E.164.")
@click.option("--email", default=None)
@click.option("--procedure", required=True, help="Schedule id, e.g. lumbar-fusion.")
@click.option("--surgery-date", required=True, help="YYYY-MM-DD")
@click.option("--timezone", "tz", default=None, help="IANA zone (default: CHECKIN_DEFAULT_TIMEZONE)")
@click.option("--language", default="en", show_default=True, help="en or es")
@click.option("--smoker", is_flag=True)
@click.option("--attribute", "attributes", multiple=True, help="brace, collar, diabetic, ...; repeatable.")
@click.option("--channel", default="sms", show_default=True, help="sms, email or both")
@click.option(
    "--force", is_flag=True, help="Enroll even with a surgery date in the past or over a year ahead."
)
@pass_app
@fail_cleanly
def enroll(
    app: App,
    mrn: str,
    first_name: str,
    phone: str | None,
    email: str | None,
    procedure: str,
    surgery_date: str,
    tz: str | None,
    language: str,
    smoker: bool,
    attributes: tuple[str, ...],
    channel: str,
    force: bool,
) -> None:
    """Enroll one patient and plan their timeline.

    A surgery date in the past or more than a year ahead is refused unless --force; either way
    the message says what would and would not be sent."""
    from checkin.enrollment.enroll import enroll as do_enroll
    from checkin.enrollment.enroll import parse_request
    from checkin.enrollment.phones import region_problem, region_refused
    from checkin.enrollment.sanity import shared_phone, surgery_date_problem
    from checkin.errors import EnrollmentError
    from checkin.store.consents import Provenance

    req = parse_request(
        {
            "mrn": mrn,
            "first_name": first_name,
            "phone": phone,
            "email": email,
            "procedure": procedure,
            "surgery_date": surgery_date,
            "timezone": tz,
            "language": language,
            "smoker": smoker,
            "channel": channel,
            "attributes": list(attributes),
        },
        schedules=app.schedules,
        default_region=app.settings.default_region,
        default_timezone=app.settings.default_timezone,
    )
    settings = app.settings
    refused = region_refused(req.phone, settings.emergency_regions) if req.phone else None
    if refused is not None:
        raise EnrollmentError(
            "phone", f"{req.phone} {region_problem(refused, settings.emergency_number, settings.crisis_line)}"
        )
    now = app.clock.now()
    odd_date = surgery_date_problem(app.schedules[req.procedure], req, now=now)
    if odd_date and not force:
        raise click.ClickException(f"{odd_date}. Check the date, or add --force to enroll anyway.")
    with app.session() as session:
        sharing = shared_phone(session, req.phone, req.mrn)
        result = do_enroll(
            session, req, schedules=app.schedules, now=now, actor="cli", consent=Provenance("cli", "cli")
        )
    if odd_date:
        click.echo(f"warning: {odd_date}", err=True)
    if sharing:
        click.echo(
            f"warning: {req.phone} is also the phone of enrolled patient(s) {', '.join(sharing)}; "
            "texts from it cannot be matched to one patient and go to the care team to sort out",
            err=True,
        )
    click.echo(f"enrolled on {req.procedure}: {result.planned} message(s) planned")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad-rows", is_flag=True, help="Enroll the good rows even if some are bad.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write every bad row, with its line and problem, to this CSV file.",
)
@click.option("--encoding", default=None, help="The file's encoding (default: detected; e.g. cp1252).")
@click.option(
    "--force", is_flag=True, help="Enroll rows with a surgery date in the past or over a year ahead."
)
@pass_app
@fail_cleanly
def import_(
    app: App, file: Path, skip_bad_rows: bool, rejects: Path | None, encoding: str | None, force: bool
) -> None:
    """Enroll every patient in a CSV file (header: mrn, first_name, phone, email, procedure,
    surgery_date, timezone, language, smoker, channel, attributes).

    With any bad row nothing is written, unless --skip-bad-rows. Problems print as
    file:row:column: what is wrong. A surgery date in the past or over a year ahead is a bad row
    (saying what would and would not be sent) unless --force; a phone another patient has is a
    warning.
    """
    from checkin.enrollment.csvfile import count_lines
    from checkin.enrollment.importer import EmergencyNumbers, import_csv

    schedules_ = app.schedules
    with (
        app.session() as session,
        click.progressbar(length=max(count_lines(file) - 1, 0), label="validating", file=sys.stderr) as bar,
    ):
        report = import_csv(
            session,
            file,
            schedules=schedules_,
            default_region=app.settings.default_region,
            default_timezone=app.settings.default_timezone,
            now=app.clock.now(),
            skip_bad_rows=skip_bad_rows,
            actor="cli",
            progress=bar.update,
            rejects=rejects,
            encoding=encoding,
            numbers=EmergencyNumbers.of(app.settings),
            force=force,
        )
    if report.format is not None and report.format.note:
        click.echo(f"{file}: {report.format.note}", err=True)
    for err in report.errors:
        click.echo(f"{file}:{err}", err=True)
    for warning in report.warnings:
        click.echo(f"{file}:{warning} (warning)", err=True)
    if rejects is not None:
        click.echo(f"{report.rejects} bad row(s) written to {rejects}", err=True)
    if report.file_errors:
        click.echo("the file cannot be imported as it is; nothing was written", err=True)
        sys.exit(1)
    if not report.written:
        click.echo(
            f"{len(report.errors)} bad row(s); nothing was written (fix them, or use --skip-bad-rows)",
            err=True,
        )
        sys.exit(1)
    assert report.enrolled is not None
    click.echo(
        f"enrolled {report.enrolled.enrollments} patient(s), {report.enrolled.planned} message(s) planned"
        + (f", skipped {len(report.errors)} bad row(s)" if report.errors else "")
    )


@click.command()
@click.argument("mrn")
@click.option("--surgery-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
@click.option("--procedure", default=None, help="Needed only if the patient is on several schedules.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (scripts).")
@pass_app
@fail_cleanly
def reschedule(app: App, mrn: str, surgery_date: datetime, procedure: str | None, yes: bool) -> None:
    """Move the surgery date; every unsent message is recomputed, sent ones stay history.

    Prints what would move, be added and be cancelled, and asks before applying unless --yes."""
    from checkin.enrollment.enroll import reschedule as do_reschedule

    def apply(session: Session) -> RescheduleResult:
        return do_reschedule(
            session,
            mrn,
            surgery_date.date(),
            schedules=app.schedules,
            now=app.clock.now(),
            procedure=procedure,
            actor="cli",
        )

    if not yes:
        with app.preview_session() as session:
            planned = apply(session)
        click.echo(_reschedule_plan(mrn, surgery_date.date(), planned))
        click.confirm("Apply?", abort=True, err=True)
    with app.session() as session:
        r = apply(session)
    click.echo(
        f"rescheduled: {r.updated} moved, {r.added} added, {r.cancelled} cancelled, "
        f"{r.kept_history} already sent"
    )


def _reschedule_plan(mrn: str, new_date: date, r: RescheduleResult) -> str:
    lines = [
        f"MRN {clean(mrn)} on {r.procedure}: surgery {r.old_date} -> {new_date}",
        f"  {r.updated} unsent message(s) move to new times, {r.added} added",
        f"  {r.kept_history} already sent stay as history",
    ]
    if r.cancelled:
        shown = ", ".join(r.cancelled_steps[:6]) + (", ..." if len(r.cancelled_steps) > 6 else "")
        lines.append(f"  {r.cancelled} would be cancelled, their time now past ({shown})")
    return "\n".join(lines)


@click.command()
@click.argument("mrn")
@click.option("--procedure", default=None, help="Needed only if the patient is on several schedules.")
@click.option("--reason", default="withdrawn", show_default=True)
@pass_app
@fail_cleanly
def withdraw(app: App, mrn: str, procedure: str | None, reason: str) -> None:
    """End an enrollment; every pending message is cancelled."""
    from checkin.enrollment.enroll import withdraw as do_withdraw

    with app.session() as session:
        n = do_withdraw(session, mrn, now=app.clock.now(), procedure=procedure, actor="cli", reason=reason)
    click.echo(f"withdrawn: {n} pending message(s) cancelled")


COMMANDS = [enroll, import_, reschedule, withdraw]
