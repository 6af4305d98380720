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
        return load_settings(self.env_file)

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

    @cached_property
    def schedules(self) -> dict[str, Schedule]:
        from checkin.app.bootstrap import build_schedules

        return build_schedules(self.settings)


def fail_cleanly(fn: F) -> F:
    """Turn checkin's own errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CheckinError as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from None

    return wrapper  # type: ignore[return-value]


pass_app = click.make_pass_decorator(App)
