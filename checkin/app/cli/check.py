"""``checkin check``: the pre-flight an operator runs before going live.

It prints the verdicts production start-up would refuse on (``checkin.app.safety``), one line
each, reading the same settings and files the processes read; exit status 1 if there is any,
or if CHECKIN_ENV is not ``production``. README's "Going live" checklist is this list.
"""

from __future__ import annotations

import sys

import click

from checkin.app.cli.context import App, pass_app
from checkin.errors import CheckinError


@click.command("check")
@pass_app
def check(app: App) -> None:
    """Check the settings and content against production's rules; exit 1 on any problem."""
    from checkin.app import safety
    from checkin.app.bootstrap import build_schedules, check_deployment
    from checkin.config import load_settings
    from checkin.content.care_teams import CareTeamsFile

    try:
        settings = load_settings(app.env_file)  # not app.settings: it stops at a weak key
    except CheckinError as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(1)
    problems: list[str] = []
    if settings.env != "production":
        problems.append(f"CHECKIN_ENV: {settings.env}; set production (it refuses what follows)")
    try:
        schedules = build_schedules(settings)
    except CheckinError as e:
        problems.extend(str(e).splitlines())
        found = safety.settings_verdicts(settings)
    else:
        found = check_deployment(
            settings, CareTeamsFile(settings.schedules_dir, settings.alert_emails), schedules
        )
    problems.extend(str(v) for v in found)
    for line in problems:
        click.echo(f"refused: {line}")
    if problems:
        click.echo(f"{len(problems)} problem(s): production would not start", err=True)
        sys.exit(1)
    click.echo("ok: production would start with these settings")


COMMANDS: list[click.Command] = [check]
