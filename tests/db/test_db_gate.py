"""The migration gate never creates a database and says in one line what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkin.errors import DatabaseNotReady
from checkin.store.db import make_engine, require_migrated


def test_a_missing_sqlite_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    engine = make_engine(f"sqlite:///{path}")
    with pytest.raises(DatabaseNotReady) as err:
        require_migrated(engine)
    engine.dispose()
    assert not path.exists()
    assert str(path) in str(err.value) and "checkin db upgrade" in str(err.value)


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    # Port 9 on loopback (discard) is closed: the connection is refused at once.
    engine = make_engine(
        "postgresql+psycopg://nurse:s3cret@127.0.0.1:9/checkin", connect_args={"connect_timeout": 3}
    )
    with pytest.raises(DatabaseNotReady) as err:
        require_migrated(engine)
    engine.dispose()
    message = str(err.value)
    assert message.startswith(
        "cannot reach the database at postgresql+psycopg://nurse:***@127.0.0.1:9/checkin"
    )
    assert "\n" not in message and "s3cret" not in message
