"""Engine and sessions from Settings, and the migration gate. Nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from checkin.errors import DatabaseNotReady

MIGRATIONS = Path(__file__).with_name("migrations")


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (``Session.execute`` is typed as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine with the settings each backend needs for a queue-like workload.

    ``hide_parameters``: a database error's text would otherwise quote the statement's
    parameters (phone numbers, names, message text) into logs and tracebacks.
    """
    kw.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # The web app and the worker share the file: WAL lets readers run beside the one
        # writer, and busy_timeout makes a second writer wait instead of failing at once.
        engine = create_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own BEGIN handling would defer locks; we issue BEGIN IMMEDIATE
            # ourselves for claims (see ``begin`` below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Take the write lock at the start: two "deferred" transactions that both read
            # and then write would deadlock (SQLITE_BUSY) instead of queueing.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # pre_ping: a PostgreSQL restart must not leave the worker with dead pooled connections.
    return create_engine(url, pool_pre_ping=True, **kw)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_migrated(engine: Engine) -> None:
    """Raise DatabaseNotReady (with the fix) unless the database is at the latest revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        if inspect(engine).get_table_names():
            problem = f"the database at {where} has tables but no migration record"
        else:
            problem = f"the database at {where} is empty"
    else:
        problem = f"the database at {where} is at revision {current}, this version needs {head}"
    raise DatabaseNotReady(f"{problem}. Run `checkin db upgrade` first.")
