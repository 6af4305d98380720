"""What the benchmarks share: a fresh, migrated database on either backend."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG = os.environ.get("CHECKIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def database(backend: str, *, migrate: bool = True) -> Iterator[str]:
    """A new SQLite file or a throwaway PostgreSQL database (dropped afterwards); its URL."""
    from sqlalchemy import create_engine, text

    from checkin.store.db import upgrade

    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            if migrate:
                upgrade(url)
            yield url
        return
    name = f"checkin_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.rsplit("/", 1)[0] + "/" + name
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
