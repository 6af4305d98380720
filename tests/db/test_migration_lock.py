"""Several processes run `checkin db upgrade` at once (web and worker units, compose's migrate):
on PostgreSQL an advisory lock makes them take turns, so all succeed on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from checkin.store.db import current_revision, head_revision, make_engine
from tests.conftest import PG_ADMIN_URL
from tests.shared_data import unavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as e:
        admin.dispose()
        unavailable("PostgreSQL", f"unreachable at {PG_ADMIN_URL}: {e}")
    name = f"checkin_lock_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_concurrent_upgrades_take_turns(fresh_pg: str, tmp_path: Path) -> None:
    # Separate processes, as in production: alembic's context is per process, not per thread.
    exe = str(Path(sys.executable).with_name("checkin"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    env["CHECKIN_DATABASE_URL"] = fresh_pg
    procs = [
        subprocess.Popen(
            [exe, "--env-file", str(tmp_path / "none.env"), "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    engine = make_engine(fresh_pg)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
