"""``checkin schedules``: validate, preview and list schedule files; check SMS capacity."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.errors import CheckinError
from checkin.states import DEFAULT_LANGUAGE, LANGUAGES


@click.group()
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
    from checkin.app.bootstrap import build_renderer
    from checkin.content.catalog import validate_paths
    from checkin.content.lint import Site

    try:
        settings = app.settings
    except CheckinError as e:
        raise click.ClickException(str(e)) from None
    targets = list(paths) or sorted(settings.schedules_dir.glob("*.yaml"))  # care-teams.yaml too
    if not targets:
        raise click.ClickException(f"no schedule files in {settings.schedules_dir}")
    site = Site(
        settings.clinic_name,
        settings.clinic_phone,
        production=settings.env == "production",
        emergency_number=settings.emergency_number,
        crisis_line=settings.crisis_line,
    )
    report = validate_paths(targets, build_renderer(settings), settings.alert_emails, site=site)
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
@click.option("--language", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True)
@click.option("--channel", type=click.Choice(["sms", "email", "both"]), default="sms", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--discharge-date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="YYYY-MM-DD")
@click.option(
    "--appointment",
    "appointments",
    multiple=True,
    help='A booked visit, "KIND=YYYY-MM-DD HH:MM" (e.g. six_week_visit=2026-04-25 09:30); repeatable.',
)
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
    discharge_date: datetime | None,
    appointments: tuple[str, ...],
) -> None:
    """Print every message a patient on SCHEDULE_ID would get, rendered, then the texts per
    day and per week."""
    from checkin.app.bootstrap import build_renderer
    from checkin.app.cli.anchors import parse_appointments
    from checkin.content.catalog import preview
    from checkin.content.lint import preview_load_lines

    rows = preview(
        app.settings,
        build_renderer(app.settings),
        app.schedules,
        schedule_id,
        surgery_date.date(),
        tz or app.settings.default_timezone,
        smoker=smoker,
        attributes=attributes,
        language=language,
        channel=channel,
        discharge_date=discharge_date.date() if discharge_date else None,
        appointments=parse_appointments(appointments),
    )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['due_local']:<26} {r['channel']:<5} {r['step']:<24} {r['text']}")
    click.echo(f"{len(rows)} message(s)")
    for line in preview_load_lines(rows, surgery_date.date()):
        click.echo(line)


@schedules.command("lint")
@pass_app
@fail_cleanly
def schedules_lint(app: App) -> None:
    """Texts per day and per week for each patient profile, days over the daily limit and
    messages the limit had to drop. Exit status 1 if any."""
    from checkin.content.lint import lint_lines

    bad = False
    for schedule in app.schedules.values():
        lines, over = lint_lines(schedule)
        bad = bad or over
        for line in lines:
            click.echo(line)
    if bad:
        raise click.ClickException("some days are over the daily limit or messages were dropped")
    click.echo("ok: no day over its limit, nothing dropped")


@schedules.command("list")
@pass_app
@fail_cleanly
def schedules_list(app: App) -> None:
    """List the loaded schedules."""
    for s in app.schedules.values():
        click.echo(f"{s.id:<24} {s.version}  {len(s.steps):>3} steps  {s.name}")


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


COMMANDS = [schedules]
