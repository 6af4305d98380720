"""Engine and sessions from Settings, the migration gate, and insert-or-ignore."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from checkin.errors import DatabaseNotReady

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")
log = logging.getLogger(__name__)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (``Session.execute`` is typed as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


def make_engine(url: str, *, max_connections: int = 40, **kw: Any) -> Engine:
    """An engine with the settings each backend needs for a queue-like workload.

    ``hide_parameters``: a database error's text would otherwise quote the statement's
    parameters (phone numbers, names, message text) into logs and tracebacks.
    ``max_connections`` (CHECKIN_DB_MAX_CONNECTIONS): the most a PostgreSQL pool opens, unless
    ``pool_size`` or ``max_overflow`` are given; SQLite's pool ignores it.
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
    # pre_ping (one ``SELECT 1`` round trip per checkout): a PostgreSQL restart must not leave
    # the worker with dead pooled connections. The web processes turn it off and retry instead
    # (``checkin web``, ADR 0020). Room for a worker's sending threads (one kept connection
    # each, ADR 0021) and a few more: the dispatcher sizes its send pool to fit
    # (``inflight.pool_room``), so a worker opens at most ``max_connections`` (40: 10 + 30).
    for name, value in pool_limits(max_connections).items():
        kw.setdefault(name, value)
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, **kw)


def pool_limits(max_connections: int) -> dict[str, int]:
    """``pool_size`` and ``max_overflow`` for a PostgreSQL pool of at most ``max_connections``:
    up to 10 kept open while idle, the rest opened when needed and closed when returned."""
    size = min(10, max_connections)
    return {"pool_size": size, "max_overflow": max_connections - size}


def again_if_disconnected(transaction: Callable[[], T], **ids: Any) -> T:
    """Run ``transaction`` (which opens, and commits or rolls back, its own transaction); if it
    fails because its connection was found dead (SQLAlchemy then invalidates the connection and
    every other one the pool held before it), run it once more, on a fresh connection.

    For engines without ``pool_pre_ping`` (the web processes, ADR 0020), and only for work that
    may run twice: nothing of a failed attempt was committed, unless the connection died while
    COMMIT was being answered, so the work must be idempotent (the inbound insert and the
    status callback are). ``ids`` (no patient data) go into the warning logged on a retry."""
    try:
        return transaction()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning(
            "database connection found dead; transaction run again on a fresh one",
            extra={"event": "db.retried", "error": type(exc.orig).__name__, **ids},
        )
    return transaction()


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


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a file-backed SQLite engine, else None (PostgreSQL, ``:memory:``)."""
    name = engine.url.database
    if engine.dialect.name != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def require_exists(engine: Engine) -> None:
    """Raise DatabaseNotReady if ``engine`` is a SQLite file that does not exist: connecting
    would create an empty one, so a typo in CHECKIN_DATABASE_URL would read as "no patients"."""
    path = sqlite_file(engine)
    if path is not None and not path.exists():
        raise DatabaseNotReady(f"no database file at {path}. Run `checkin db upgrade` to create it.")


def unreachable(engine: Engine, exc: BaseException) -> DatabaseNotReady:
    """A one-line error for a database that refused or failed the connection."""
    where = engine.url.render_as_string(hide_password=True)
    orig = getattr(exc, "orig", None) or exc
    reason = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    return DatabaseNotReady(f"cannot reach the database at {where}: {reason[:200]}")


def require_migrated(engine: Engine) -> None:
    """Raise DatabaseNotReady (with the fix) unless the database exists, answers and is at the
    latest revision. Never creates a SQLite file."""
    from sqlalchemy.exc import OperationalError

    require_exists(engine)
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise unreachable(engine, exc) from None
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


def insert_ignore(session: Session, model: Any, values: Mapping[str, Any], conflict: Sequence[str]) -> bool:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` on SQLite and PostgreSQL; True if a row
    was inserted. Never check-then-insert: two workers (or two webhook deliveries) racing on
    the same key would both pass the check."""
    return insert_new(session, model, values, conflict) is not None


def insert_new(session: Session, model: Any, values: Mapping[str, Any], conflict: Sequence[str]) -> Any:
    """``insert_ignore`` that returns the new row's primary key (the first column of it), or
    None when a row with the same ``conflict`` columns exists."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(model).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    # RETURNING, not rowcount: SQLAlchemy 2.1 adds RETURNING <pk> to this insert on PostgreSQL
    # by itself, and then rowcount is -1 whether or not a row went in.
    returning = stmt.returning(*model.__table__.primary_key.columns)
    row = session.execute(returning).first()
    return None if row is None else row[0]
