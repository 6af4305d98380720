"""A database the processes cannot write or reach at start-up: one line on stderr naming
the problem, exit status 1, no traceback (``checkin worker`` and ``checkin serve``, as real
processes).

The SQLite file is opened read-only through its URI (``mode=ro``), which holds even for root,
for whom a ``chmod 444`` file is still writable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.outbound.support import settings_env
from tests.support import free_port

pytestmark = pytest.mark.slow


def run_checkin(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(db_url)}
    return subprocess.run(
        [sys.executable, "-c", "from checkin.app.cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def read_only_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ro") / "checkin.db"
    done = run_checkin(f"sqlite:///{path}", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the JSON log lines a process writes before it fails."""
    return [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("{")]


@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", "PORT"]], ids=["worker", "serve"])
def test_a_read_only_database_stops_the_process_with_one_line(read_only_url: str, command: list[str]) -> None:
    args = [str(free_port()) if a == "PORT" else a for a in command]
    done = run_checkin(read_only_url, *args)

    assert done.returncode == 1
    assert errors(done) == ["Error: database error: attempt to write a readonly database"]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "command",
    [["worker"], ["serve", "--port", "PORT"], ["web", "--port", "PORT"]],
    ids=["worker", "serve", "web"],
)
def test_an_unreachable_database_stops_the_process_with_one_line(command: list[str]) -> None:
    args = [str(free_port()) if a == "PORT" else a for a in command]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/checkin"  # nobody listens there
    done = run_checkin(url, *args)

    assert done.returncode == 1
    [line] = errors(done)
    assert line.startswith("Error: cannot reach the database at ") and "Connection refused" in line
    assert "Traceback" not in done.stderr + done.stdout


def test_the_read_only_file_really_refuses_writes(read_only_url: str) -> None:
    # The premise of the tests above, as root too: the URI, not the file mode, makes it so.
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(read_only_url)
    with pytest.raises(OperationalError, match="readonly"), engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    assert Path(read_only_url.split("file:")[1].split("?")[0]).exists()
