"""The `checkin` command: admin tools, enrollment, and the long-running processes.

Every command reads settings once (environment plus ``.env``), reports bad input as a
one-line error naming what is wrong, and exits non-zero. Commands that touch the database
refuse to run on one that is not migrated, and say how to fix it.

Commands live in one module per group under ``checkin.app.cli``; each module ends with
``COMMANDS = [...]`` and is registered by one line in ``COMMAND_MODULES`` below.
"""

from __future__ import annotations

import importlib

import click

from checkin.app.cli.context import App

# One line per command module (each defines ``COMMANDS``); ``checkin --help`` sorts them by name.
COMMAND_MODULES = (
    "checkin.app.cli.db",
    "checkin.app.cli.schedules",
    "checkin.app.cli.enrollment",
    "checkin.app.cli.anchors",
    "checkin.app.cli.patients",
    "checkin.app.cli.alerts",
    "checkin.app.cli.processes",
    "checkin.app.cli.triage",
    "checkin.app.cli.mail",
    "checkin.app.cli.staff",
    "checkin.app.cli.hl7",
    "checkin.app.cli.fhir",
    "checkin.app.cli.check",
    "checkin.app.cli.retention",
)


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


for _module in COMMAND_MODULES:
    for _command in importlib.import_module(_module).COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="checkin")
