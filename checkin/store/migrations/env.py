"""Alembic environment: runs against the URL given by ``checkin.store.db.alembic_config``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from checkin.store.db import make_engine
from checkin.store.models import Base

config = context.config
target_metadata = Base.metadata
# pg_advisory_lock key for migrations: "checkin" as a number. Several units run `db upgrade` at
# start (web and worker ExecStartPre, compose's migrate, a second host): without the lock two of
# them raced on a fresh database and one failed half-way.
MIGRATION_LOCK = 0x636865636B696E


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            # Session-level: held across the migration transactions below, released on close.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()  # the current revision is read after the lock, not before
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `checkin db upgrade`")
run_migrations_online()
