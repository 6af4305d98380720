"""Fixtures for the outbound tests: services on each database with a ManualClock and memory
channels, a Twilio fake, and worker subprocesses that are always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checkin.deps import Services
from tests.outbound.support import HoldingTwilio, WorkerProcess, make_services


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = make_services(db_url)
    yield s
    s.engine.dispose()


@pytest.fixture
def fake() -> Iterator[HoldingTwilio]:
    with HoldingTwilio() as f:
        yield f


@pytest.fixture
def procs() -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; killed (if still running) when it ends."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait(10)
