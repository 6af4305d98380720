"""``checkin retention purge --days N``: clear message bodies older than N days, keep the audit
trail (``checkin.store.retention``). Run it from cron or a systemd timer (docs/operations.md)."""

from __future__ import annotations

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app


@click.group()
def retention() -> None:
    """Keep message texts only as long as the site's policy says."""


@retention.command("purge")
@click.option("--days", type=int, required=True, help="Keep bodies of the last N days (at least 30).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@fail_cleanly
def purge(app: App, days: int, yes: bool) -> None:
    """Clear the texts of replies and sent messages older than N days; severities, flags, times,
    alerts and the audit log stay."""
    from checkin.app.cli.staff import _actor
    from checkin.store.retention import MIN_DAYS
    from checkin.store.retention import purge as run_purge

    if days < MIN_DAYS:
        raise click.BadParameter(f"keep at least {MIN_DAYS} days", param_hint="--days")
    with app.preview_session() as session:
        preview = run_purge(session, now=app.clock.now(), days=days, actor=_actor())
    click.echo(
        f"{preview.replies} reply text(s) and {preview.sent} message text(s) from before "
        f"{preview.before:%Y-%m-%d %H:%M} UTC would be cleared"
    )
    if not (preview.replies or preview.sent):
        return
    if not yes and not click.confirm("clear them?", default=False):
        click.echo("nothing cleared")
        return
    with app.session() as session:
        done = run_purge(session, now=app.clock.now(), days=days, actor=_actor())
    click.echo(f"cleared {done.replies} reply text(s) and {done.sent} message text(s); audit log kept")


COMMANDS: list[click.Command] = [retention]
