"""Several processes run `checkin db upgrade` at once (web and worker units, compose's migrate):
on PostgreSQL an advisory lock makes them take turns, so all succeed on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkin.store.db import current_revision, head_revision, make_engine
from tests.conftest import throwaway_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    with throwaway_database("checkin_lock") as url:
        yield url


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
