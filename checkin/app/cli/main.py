"""The `checkin` command: admin tools, enrollment, and the long-running processes.

Every command reads settings once (environment plus ``.env``), reports bad input as a
one-line error naming what is wrong, and exits non-zero. Commands that touch the database
refuse to run on one that is not migrated, and say how to fix it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checkin.clock import Clock, SystemClock
from checkin.config import Settings, load_settings
from checkin.core.schedule import Schedule
from checkin.errors import CheckinError

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """Lazily built services for one CLI invocation (the CLI's composition root)."""

    def __init__(self, env_file: str | None, clock: Clock | None = None) -> None:
        self.env_file = env_file
        self.clock: Clock = clock or SystemClock()

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.env_file)

    @cached_property
    def engine(self) -> Engine:
        from checkin.store.db import make_engine

        return make_engine(self.settings.database_url)

    def migrated_engine(self) -> Engine:
        from checkin.store.db import require_migrated

        require_migrated(self.engine)
        return self.engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        from checkin.store.db import session_factory

        with session_factory(self.migrated_engine())() as session, session.begin():
            yield session

    @cached_property
    def schedules(self) -> dict[str, Schedule]:
        from checkin.content.catalog import load_schedules

        return load_schedules(self.settings)


def fail_cleanly(fn: F) -> F:
    """Turn checkin's own errors into a one-line message and exit status 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CheckinError as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from None

    return wrapper  # type: ignore[return-value]


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file", default=".env", show_default=True, help="Settings file read before the environment."
)
@click.version_option(package_name="checkin")
@click.pass_context
def cli(ctx: click.Context, env_file: str) -> None:
    """checkin: recovery messages and red-flag triage for spine-surgery patients."""
    if ctx.obj is None:
        ctx.obj = App(env_file)


# ---- database ---------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@pass_app
@fail_cleanly
def db_upgrade(app: App) -> None:
    """Create or migrate the database to the latest schema."""
    from checkin.store.db import current_revision, head_revision, upgrade

    before = current_revision(app.engine)
    upgrade(app.settings.database_url)
    click.echo(f"database at revision {head_revision()} (was {before or 'empty'})")


@db.command("current")
@pass_app
@fail_cleanly
def db_current(app: App) -> None:
    """Show the database's schema revision and the one this version needs."""
    from checkin.store.db import current_revision, head_revision

    click.echo(f"current: {current_revision(app.engine) or 'none'}  needed: {head_revision()}")


# ---- schedules --------------------------------------------------------------------------


@cli.group()
def schedules() -> None:
    """Validate and preview schedule files."""


@schedules.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print errors only.")
@pass_app
def schedules_validate(app: App, paths: tuple[Path, ...], quiet: bool) -> None:
    """Check schedule files and render every template they use.

    Exit status 0 when every file is valid, 1 otherwise; each problem is printed as
    file:line: key: what is wrong.
    """
    from checkin.content.catalog import validate_paths

    try:
        settings = app.settings
    except CheckinError as e:
        raise click.ClickException(str(e)) from None
    targets = list(paths) or sorted(settings.schedules_dir.glob("*.yaml"))  # care-teams.yaml too
    if not targets:
        raise click.ClickException(f"no schedule files in {settings.schedules_dir}")
    report = validate_paths(targets, settings)
    for line in report.errors:
        click.echo(line, err=True)
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
    if not quiet:
        for line in report.info:
            click.echo(line)
    if report.errors:
        click.echo(f"{len(report.errors)} error(s) in {len(targets)} file(s)", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(targets)} file(s) valid")


@schedules.command("preview")
@click.argument("schedule_id")
@click.option("--surgery-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
@click.option("--timezone", "tz", default=None, help="IANA zone (default: CHECKIN_DEFAULT_TIMEZONE)")
@click.option("--smoker", is_flag=True)
@click.option(
    "--attribute", "attributes", multiple=True, help="Other attribute (brace, collar, ...); repeatable."
)
@click.option("--language", type=click.Choice(["en", "es"]), default="en", show_default=True)
@click.option("--channel", type=click.Choice(["sms", "email", "both"]), default="sms", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_app
@fail_cleanly
def schedules_preview(
    app: App,
    schedule_id: str,
    surgery_date: datetime,
    tz: str | None,
    smoker: bool,
    attributes: tuple[str, ...],
    language: str,
    channel: str,
    fmt: str,
) -> None:
    """Print every message a patient on SCHEDULE_ID would get, rendered."""
    from checkin.content.catalog import preview

    rows = preview(
        app.settings,
        app.schedules,
        schedule_id,
        surgery_date.date(),
        tz or app.settings.default_timezone,
        smoker=smoker,
        attributes=attributes,
        language=language,
        channel=channel,
    )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['due_local']:<26} {r['channel']:<5} {r['step']:<24} {r['text']}")
    click.echo(f"{len(rows)} message(s)")


@schedules.command("list")
@pass_app
@fail_cleanly
def schedules_list(app: App) -> None:
    """List the loaded schedules."""
    for s in app.schedules.values():
        click.echo(f"{s.id:<24} {s.version}  {len(s.steps):>3} steps  {s.name}")


# ---- enrollment -------------------------------------------------------------------------


@cli.command()
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
) -> None:
    """Enroll one patient and plan their timeline."""
    from checkin.enrollment.enroll import enroll as do_enroll
    from checkin.enrollment.enroll import parse_request

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
    with app.session() as session:
        result = do_enroll(session, req, schedules=app.schedules, now=app.clock.now(), actor="cli")
    click.echo(f"enrolled on {procedure}: {result.planned} message(s) planned")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad-rows", is_flag=True, help="Enroll the good rows even if some are bad.")
@pass_app
@fail_cleanly
def import_(app: App, file: Path, skip_bad_rows: bool) -> None:
    """Enroll every patient in a CSV file (header: mrn, first_name, phone, email, procedure,
    surgery_date, timezone, language, smoker, channel, attributes).

    With any bad row nothing is written, unless --skip-bad-rows.
    """
    from checkin.enrollment.importer import import_csv, read_rows

    schedules_ = app.schedules
    try:
        _, rows = read_rows(file)
        total = len(rows)
    except CheckinError:
        total = 0
    with (
        app.session() as session,
        click.progressbar(length=total, label="validating", file=sys.stderr) as bar,
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
        )
    for err in report.errors:
        click.echo(f"{file}: {err}", err=True)
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


@cli.command()
@click.argument("mrn")
@click.option("--surgery-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
@click.option("--procedure", default=None, help="Needed only if the patient is on several schedules.")
@pass_app
@fail_cleanly
def reschedule(app: App, mrn: str, surgery_date: datetime, procedure: str | None) -> None:
    """Move the surgery date; every unsent message is recomputed, sent ones stay history."""
    from checkin.enrollment.enroll import reschedule as do_reschedule

    with app.session() as session:
        r = do_reschedule(
            session,
            mrn,
            surgery_date.date(),
            schedules=app.schedules,
            now=app.clock.now(),
            procedure=procedure,
            actor="cli",
        )
    click.echo(
        f"rescheduled: {r.updated} moved, {r.added} added, {r.cancelled} cancelled, "
        f"{r.kept_history} already sent"
    )


@cli.command()
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


# ---- patients ---------------------------------------------------------------------------


@cli.group()
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


# ---- alerts -----------------------------------------------------------------------------


@cli.group()
def alerts() -> None:
    """Care-team alerts: list, acknowledge, resolve (every action is audited)."""


@alerts.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only alerts not yet resolved.")
@click.option("--limit", default=50, show_default=True)
@pass_app
@fail_cleanly
def alerts_list(app: App, only_open: bool, limit: int) -> None:
    """Newest first: id, severity, kind, patient reference, flags, status, escalation level."""
    from checkin.store.models import Alert, Patient

    with app.session() as session:
        query = (
            select(Alert, Patient.reference)
            .join(Patient, Patient.id == Alert.patient_id)
            .order_by(Alert.opened_at.desc())
            .limit(limit)
        )
        if only_open:
            query = query.where(Alert.status != "resolved")
        rows = session.execute(query).all()
    for alert, ref in rows:
        who = f" by {alert.acknowledged_by}" if alert.acknowledged_by else ""
        click.echo(
            f"#{alert.id:<5} {alert.severity.upper():<9} {alert.kind:<16} {ref:<10} "
            f"{','.join(alert.flags) or '-':<28} {alert.status}{who}  level {alert.escalation_level}  "
            f"opened {alert.opened_at:%Y-%m-%d %H:%M}Z"
        )
    click.echo(f"{len(rows)} alert(s)")


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", "by", required=True, help="Who is acknowledging (recorded in the audit log).")
@pass_app
@fail_cleanly
def alerts_ack(app: App, alert_id: int, by: str) -> None:
    """Acknowledge an alert: stops its escalation. Doing it twice is harmless."""
    from checkin.alerts.lifecycle import acknowledge

    if not by.strip():
        raise click.BadParameter("must name who acknowledges", param_hint="--by")
    with app.session() as session:
        action = acknowledge(session, alert_id, by=f"cli:{by.strip()}", now=app.clock.now())
    if action is None:
        raise click.ClickException(f"no alert #{alert_id}")
    click.echo(
        f"alert #{alert_id} {'acknowledged' if action.changed else 'was already ' + action.alert.status}"
    )


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--note", required=True, help="What was done (required).")
@click.option("--by", "by", default=None, help="Who resolves it (default: the login name).")
@pass_app
@fail_cleanly
def alerts_resolve(app: App, alert_id: int, note: str, by: str | None) -> None:
    """Resolve an alert with a short note."""
    import getpass

    from checkin.alerts.lifecycle import resolve

    who = (by or getpass.getuser()).strip()
    with app.session() as session:
        try:
            action = resolve(session, alert_id, by=f"cli:{who}", note=note, now=app.clock.now())
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--note") from None
    if action is None:
        raise click.ClickException(f"no alert #{alert_id}")
    click.echo(f"alert #{alert_id} {'resolved' if action.changed else 'was already resolved'}")


# ---- demo -------------------------------------------------------------------------------


@cli.command()
@click.option("--days", default=90, show_default=True, help="Days of recovery to simulate after surgery.")
@click.option("--seed", default=7, show_default=True, help="Seed for the synthetic patients' answers.")
@click.option("--fast", is_flag=True, help="A higher simulated SMS rate, for a quicker run.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the demo database and logs (default: a new temporary folder).",
)
def demo(days: int, seed: int, fast: bool, workdir: Path | None) -> None:
    """Walk synthetic patients through recovery on a simulated clock, through the real worker,
    web app, webhooks and SMTP, then show the conversations, alerts and a summary."""
    from checkin.demo.run import run_demo

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    run_demo(days=days, seed=seed, fast=fast, workdir=workdir)


# ---- processes --------------------------------------------------------------------------


@cli.command()
@click.option(
    "--id", "worker_id", default=None, help="Worker name in logs and heartbeats (default host:pid)."
)
@pass_app
@fail_cleanly
def worker(app: App, worker_id: str | None) -> None:
    """Run the dispatcher and sweeps (APScheduler ticks) until SIGTERM or Ctrl-C."""
    from checkin.app.bootstrap import build_services
    from checkin.app.worker import run

    run(build_services(app.settings), worker_id=worker_id)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_app
@fail_cleanly
def web(app: App, host: str, port: int) -> None:
    """Run the web app: Twilio webhooks, check-in forms, nurse pages, /healthz, /readyz."""
    from checkin.app.bootstrap import build_services
    from checkin.app.web import serve

    serve(build_services(app.settings), host=host, port=port)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_app
@fail_cleanly
def serve(app: App, host: str, port: int) -> None:
    """Run the web app and the worker in one process (small sites)."""
    import threading

    from checkin.app.bootstrap import build_services
    from checkin.app.web import serve as serve_web
    from checkin.app.worker import run

    services = build_services(app.settings)
    stop = threading.Event()
    thread = threading.Thread(
        target=run,
        args=(services,),
        kwargs={"stop": stop, "install_signal_handlers": False},
        name="checkin-worker",
        daemon=False,
    )
    thread.start()
    try:
        serve_web(services, host=host, port=port)
    finally:
        stop.set()
        thread.join()


@schedules.command("capacity")
@click.option("--days", default=30, show_default=True, help="How far ahead to look.")
@pass_app
@fail_cleanly
def schedules_capacity(app: App, days: int) -> None:
    """Busiest minutes ahead for the enrolled patients, and whether CHECKIN_SMS_RATE carries them."""
    from checkin.outbound.capacity import capacity_report

    with app.session() as session:
        for line in capacity_report(session, app.settings, now=app.clock.now(), days=days):
            click.echo(line)


@cli.command()
@click.option(
    "--check", is_flag=True, help="Exit 1 unless the database answers and is migrated (health checks)."
)
@pass_app
@fail_cleanly
def status(app: App, check: bool) -> None:
    """Messages by status, oldest due message, send latency, replies, open alerts, workers."""
    from checkin.store.status import collect, status_lines

    with app.session() as session:
        figures = collect(session, app.clock.now())
    if check:
        click.echo("ok")
        return
    for line in status_lines(figures):
        click.echo(line)


# ---- triage -----------------------------------------------------------------------------


@cli.command()
@click.argument("text")
@click.option("--context", default=None, help="What the reply answers: pain_scale, fever_check, ...")
def triage(text: str, context: str | None) -> None:
    """Assess one patient reply and print the assessment as JSON."""
    from checkin.app.cli.triage import assessment_json

    click.echo(assessment_json(text, context))


def main() -> None:
    cli(prog_name="checkin")
