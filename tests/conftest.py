"""Shared fixtures: a migrated database on SQLite and PostgreSQL and the default schedules
(the cast and the builders are in ``tests.support``).

PostgreSQL tests use a throwaway database created for this run on CHECKIN_TEST_POSTGRES_URL
(default: the local server at 127.0.0.1:5432). Where it is unreachable they are skipped,
except under CI=true, where they must run.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.shared_data import unavailable

# ROOT and make_settings live in tests.support; importing them from here still works for
# modules written before the move, but new code should import tests.support.
from tests.support import ROOT, make_settings  # noqa: F401


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """A test that runs a command in-process (``checkin.logs.configure``) replaces the root
    logger's handlers; without this, the redacting handler it installs stays for every later
    test in the process and rewrites records before ``caplog`` sees them (tests then pass or
    fail by the order they run in)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


PG_ADMIN_URL = os.environ.get(
    "CHECKIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def throwaway_database(prefix: str = "checkin_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on PG_ADMIN_URL's server, dropped afterwards (skipped,
    or failed under CI, where the server is unreachable)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as e:
        admin.dispose()
        unavailable("PostgreSQL", f"unreachable at {PG_ADMIN_URL}: {e}")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    with throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_migrated(pg_server_url: str) -> str:
    from checkin.store.db import upgrade

    upgrade(pg_server_url)
    return pg_server_url


def _truncate_all(engine: Engine) -> None:
    from checkin.store.models import Base

    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL on each backend."""
    from checkin.store.db import make_engine, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'checkin.store.db'}"
        upgrade(url)
        yield url
        return
    url = request.getfixturevalue("pg_migrated")
    engine = make_engine(url)
    _truncate_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def pg_url(pg_migrated: str) -> str:
    """A migrated, empty PostgreSQL database URL, for tests that only make sense there
    (several workers racing): they run on PostgreSQL alone instead of skipping on SQLite."""
    from checkin.store.db import make_engine

    engine = make_engine(pg_migrated)
    _truncate_all(engine)
    engine.dispose()
    return pg_migrated


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from checkin.store.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    from checkin.store.db import session_factory

    with session_factory(engine)() as s:
        yield s


@pytest.fixture(scope="session")
def default_schedules() -> dict:
    from checkin.app.bootstrap import build_schedules

    return build_schedules(make_settings())
