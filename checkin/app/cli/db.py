"""``checkin db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from checkin.app.cli.context import App, fail_cleanly, pass_app


@click.group()
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


COMMANDS = [db]
