"""``checkin alerts``: list, acknowledge and resolve care-team alerts (every action audited)."""

from __future__ import annotations

import click
from sqlalchemy import select

from checkin.app.cli.context import App, fail_cleanly, pass_app
from checkin.states import AlertStatus


@click.group()
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
            query = query.where(Alert.status != AlertStatus.RESOLVED)
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


COMMANDS = [alerts]
