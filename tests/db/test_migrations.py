from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from checkin.errors import DatabaseNotReady
from checkin.store.db import current_revision, head_revision, make_engine, require_migrated
from checkin.store.models import AppendOnlyError, AuditEvent, Base

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_it_migrates_to_the_head_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    require_migrated(engine)  # does not raise


def test_it_creates_every_table_the_models_declare(engine: Engine) -> None:
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_it_matches_the_models_exactly(engine: Engine) -> None:
    # A model change without a migration would pass on a fresh create_all() and break
    # every existing hospital database; alembic's comparison catches it.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_it_refuses_an_empty_database_and_says_how_to_fix_it(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseNotReady, match="checkin db upgrade"):
        require_migrated(eng)
    eng.dispose()


def test_it_refuses_a_database_at_an_older_revision(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
    with pytest.raises(DatabaseNotReady, match="revision 0000"):
        require_migrated(eng)
    eng.dispose()


def test_it_refuses_to_change_the_audit_log_through_the_orm(session: Session) -> None:
    session.add(AuditEvent(at=NOW, actor="test", action="a", detail={}))
    session.commit()
    event = session.scalar(select(AuditEvent))
    assert event is not None
    event.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        session.commit()


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"])
def test_it_refuses_to_change_the_audit_log_in_sql(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_log (at, actor, action, detail) VALUES (:at, 't', 'a', '{}')"),
            {"at": NOW.replace(tzinfo=None)},
        )
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT action FROM audit_log")).scalar_one() == "a"


def test_it_returns_aware_utc_datetimes(session: Session) -> None:
    session.add(AuditEvent(at=NOW, actor="test", action="a", detail={}))
    session.commit()
    session.expunge_all()
    got = session.scalar(select(AuditEvent.at))
    assert got == NOW and got.tzinfo is not None
