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
    from sqlalchemy.exc import OperationalError

    from checkin.store.db import current_revision, head_revision, unreachable, upgrade

    try:
        before = current_revision(app.engine)
        upgrade(app.settings.database_url)
    except OperationalError as exc:
        raise unreachable(app.engine, exc) from None
    click.echo(f"database at revision {head_revision()} (was {before or 'empty'})")


@db.command("current")
@pass_app
@fail_cleanly
def db_current(app: App) -> None:
    """Show the database's schema revision and the one this version needs."""
    from sqlalchemy.exc import OperationalError

    from checkin.store.db import current_revision, head_revision, require_exists, unreachable

    require_exists(app.engine)  # reading must not create an empty SQLite file
    try:
        current = current_revision(app.engine)
    except OperationalError as exc:
        raise unreachable(app.engine, exc) from None
    click.echo(f"current: {current or 'none'}  needed: {head_revision()}")


COMMANDS = [db]
