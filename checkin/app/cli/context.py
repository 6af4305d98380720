"""What every ``checkin`` command shares: the per-invocation ``App`` and the error wrapper."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checkin.clock import Clock, SystemClock
from checkin.config import Settings, load_settings
from checkin.core.schedule import Schedule
from checkin.errors import CheckinError

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """What one CLI invocation needs, built lazily through the composition root
    (``checkin.app.bootstrap``): a command that only reads schedule files never opens the
    database, and one that runs the worker gets the same engine the other commands use."""

    def __init__(self, env_file: str | None, clock: Clock | None = None) -> None:
        self.env_file = env_file
        self.clock: Clock = clock or SystemClock()

    @cached_property
    def settings(self) -> Settings:
        """The settings; in production, refused (``UnsafeSettings``'s lines) while the key is
        weak or published, so no command signs a forgeable link (``staff add`` prints one).
        ``checkin check`` reads them with ``load_settings`` to report everything instead."""
        settings = load_settings(self.env_file)
        if settings.env == "production":
            from checkin.app.safety import UnsafeSettings, key_verdicts

            weak = key_verdicts(settings)
            if weak:  # a ClickException: every command prints it as one error, wrapped or not
                raise click.ClickException(str(UnsafeSettings(weak)))
        return settings

    @cached_property
    def engine(self) -> Engine:
        from checkin.app.bootstrap import build_engine

        return build_engine(self.settings)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error; raises
        DatabaseNotReady first unless the database is migrated."""
        from checkin.app.bootstrap import build_sessions

        with build_sessions(self.engine)() as session, session.begin():
            yield session

    @contextmanager
    def preview_session(self) -> Iterator[Session]:
        """A session whose changes are always rolled back: shows what a command would do."""
        from checkin.app.bootstrap import build_sessions

        with build_sessions(self.engine)() as session:
            transaction = session.begin()
            try:
                yield session
            finally:
                transaction.rollback()

    @cached_property
    def schedules(self) -> dict[str, Schedule]:
        from checkin.app.bootstrap import build_schedules

        return build_schedules(self.settings)


def fail_cleanly(fn: F) -> F:
    """Turn checkin's own errors, and a database that cannot be reached or opened, into a
    one-line message (no class names, no traceback) and exit status 1."""
    from sqlalchemy.exc import DBAPIError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CheckinError as e:
            raise click.ClickException(str(e)) from None
        except DBAPIError as e:
            raise click.ClickException(database_problem(e)) from None

    return wrapper  # type: ignore[return-value]


def database_problem(exc: BaseException) -> str:
    """The first line of what the database driver said, without the statement or parameters."""
    orig = getattr(exc, "orig", None) or exc
    reason = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    return f"database error: {reason[:200]}"


pass_app = click.make_pass_decorator(App)
