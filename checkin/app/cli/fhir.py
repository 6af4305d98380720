"""``checkin fhir export``: send readings and alerts to the EHR's FHIR R4 server."""

from __future__ import annotations

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.errors import ConfigError


@click.group()
def fhir() -> None:
    """FHIR R4 out: pain scores and temperatures as Observations, alerts as Flags."""


@fhir.command("export")
@click.option("--once", is_flag=True, help="One pass, then exit (cron, or a check).")
@click.option(
    "--interval",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds between passes.",
)
@pass_app
@fail_cleanly
def export(app: App, once: bool, interval: float) -> None:
    """Queue what is new and write what is due, every --interval seconds until SIGTERM or Ctrl-C.

    Each resource is written once (conditional create/update by identifier); 5xx answers and
    timeouts are retried with backoff. Run several on PostgreSQL if you like: they share the queue."""
    import signal
    import threading

    import httpx

    from checkin.app.bootstrap import build_sessions
    from checkin.integrations.fhir.client import FhirClient
    from checkin.integrations.fhir.export import run_pass
    from checkin.integrations.fhir.queue import Systems

    settings = app.settings
    if settings.fhir is None:
        raise ConfigError("CHECKIN_FHIR_BASE_URL", "is not set: there is no FHIR server to export to")
    id_system = f"{settings.public_url}/fhir/id" if settings.public_url else "urn:checkin:id"
    systems = Systems(ids=id_system, mrn=settings.fhir.mrn_system)
    sessions = build_sessions(app.engine)
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    with httpx.Client(timeout=10.0) as http:
        client = FhirClient(settings.fhir, id_system=id_system, http=http)
        while True:
            report = run_pass(sessions, client, systems=systems, clock=app.clock)
            click.echo(
                f"queued {report.queued}, written {report.written}, to retry {report.retried}, refused {report.refused}"
            )
            if once or stop.wait(interval):
                return


COMMANDS: list[click.Command] = [fhir]
