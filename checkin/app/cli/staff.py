"""``checkin staff add|list|disable|reset``: console accounts, from the server's shell.

Whoever can run this can read the database anyway; the commands are audited as
``cli:<os user>``. ``add`` prints a one-time set-password link (valid three days) unless
``--password-stdin`` reads the password from standard input for scripts; an account that
needs a second factor also gets its TOTP secret then (the link's page shows it otherwise).
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

import click

from checkin.staff import accounts, passwords

if TYPE_CHECKING:
    from checkin.app.cli.context import App


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli:unknown"


def setup_link(public_url: str | None, token: str) -> str:
    return f"{(public_url or 'http://localhost:8000').rstrip('/')}/set-password/{token}"


@click.group()
def staff() -> None:
    """Console accounts for nurses and admins."""


@staff.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Shown to colleagues on the console.")
@click.option("--role", type=click.Choice(accounts.ROLES), default="nurse", show_default=True)
@click.option("--team", default=None, help="Care team id (default: the care-team file's default team).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_obj
def add(app: App, email: str, name: str, role: str, team: str | None, password_stdin: bool) -> None:
    """Add an account and print its one-time set-password link."""
    from pathlib import Path

    from checkin.core.care_teams import load_care_teams

    settings = app.settings
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    teams = load_care_teams(Path(settings.schedules_dir), settings.alert_emails)
    team = team or teams.default
    if team not in teams.teams:
        raise click.ClickException(f"team: {team!r} is not one of {', '.join(teams.teams)}")
    try:
        with app.session() as session:
            added = accounts.add(
                session,
                email=email,
                name=name,
                role=role,
                team=team,
                now=app.clock.now(),
                secret_key=settings.secret_key,
                actor=_actor(),
                nurses_need_totp=settings.nurse_totp,
                password=password,
            )
            secret = accounts.find(session, added.email).totp_secret
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {role} {added.email} (team {team})")
    if added.setup_token is not None:
        click.echo(
            f"set-password link (works once, for 3 days): {setup_link(settings.public_url, added.setup_token)}"
        )
    elif secret is not None:
        click.echo(
            f"TOTP (add to an authenticator app): {passwords.totp_uri(secret, added.email, settings.clinic_name)}"
        )


@staff.command("reset")
@click.argument("email")
@click.pass_obj
def reset(app: App, email: str) -> None:
    """Print a new one-time set-password link (the old password keeps working until it is used)."""
    try:
        with app.session() as session:
            token = accounts.new_setup_link(
                session, email, secret_key=app.settings.secret_key, now=app.clock.now(), actor=_actor()
            )
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"set-password link (works once, for 3 days): {setup_link(app.settings.public_url, token)}")


@staff.command("list")
@click.pass_obj
def list_(app: App) -> None:
    """Every account: email, name, role, team, state."""
    with app.session() as session:
        rows = accounts.all_staff(session)
        for s in rows:
            state = "active" if s.active else "disabled"
            if s.active and s.password_hash is None:
                state = "awaiting password"
            click.echo(f"{s.email}\t{s.name}\t{s.role}\t{s.team}\t{state}")
    if not rows:
        click.echo("no staff accounts; add one with `checkin staff add`")


@staff.command("disable")
@click.argument("email")
@click.pass_obj
def disable(app: App, email: str) -> None:
    """Disable an account and sign it out everywhere at once."""
    try:
        with app.session() as session:
            revoked = accounts.disable(session, email, now=app.clock.now(), actor=_actor())
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"disabled {email.strip().lower()}; {revoked} session(s) signed out")


COMMANDS = [staff]
