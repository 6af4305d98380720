"""``checkin mail receive``: read patients' email replies (an SMTP server the site relays to)."""

from __future__ import annotations

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.errors import ConfigError


@click.group()
def mail() -> None:
    """Inbound email: patients' replies to check-in emails."""


@mail.command("receive")
@pass_app
@fail_cleanly
def mail_receive(app: App) -> None:
    """Receive replies relayed for CHECKIN_EMAIL_REPLY_TO's plus-addresses on CHECKIN_MAIL_LISTEN
    (SMTP), triage and answer them, until SIGTERM or Ctrl-C. Answers are sent by the worker."""
    from checkin.app.bootstrap import build_services
    from checkin.app.mail_receiver import run

    if app.settings.email_reply_to is None:
        raise ConfigError("CHECKIN_EMAIL_REPLY_TO", "is not set: there is no reply address to receive for")
    from checkin.app.cli.processes import start_logging

    start_logging(app)
    services = build_services(app.settings)
    host, port = app.settings.mail_listen
    click.echo(f"receiving replies for {app.settings.email_reply_to} on {host}:{port}")
    run(services)


COMMANDS: list[click.Command] = [mail]
