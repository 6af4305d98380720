"""Fixtures for the channel tests: the recording Twilio fake, the Prism mock of Twilio's
OpenAPI spec, and an aiosmtpd relay on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.channels.channels_support import free_port
from tests.channels.fake_twilio_server import FakeTwilio
from tests.shared_data import shared_file, unavailable


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def _unavailable(why: str) -> NoReturn:
    # Locally a missing node/npm or shared folder skips; in CI the spec check must run.
    unavailable("the Twilio OpenAPI mock", why)


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    """Base URL of a Prism mock of Twilio's own OpenAPI spec, started by the launcher in the
    shared folder beside the checkout ($MOCK_TWILIO_SCRIPT overrides). The first run installs
    Prism with npm into the launcher's cache folder (~10-20 s)."""
    script = shared_file(
        "twilio/mock-twilio.sh", what="the Twilio OpenAPI mock", override_env="MOCK_TWILIO_SCRIPT"
    )
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} not on PATH")
    port = free_port()
    try:
        started = subprocess.run(
            [str(script), "--port", str(port), "--background", "--quiet"],
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable("mock-twilio.sh did not start within 400 s")
    if started.returncode != 0:
        _unavailable(f"mock-twilio.sh failed: {started.stderr[-1500:]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(
            [str(script), "--port", str(port), "--stop"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        _kill_prism_on(port)


def _kill_prism_on(port: int) -> None:
    """The launcher's --stop ends the process it recorded, but the node process serving the
    port can outlive it; end any prism still serving ``port`` so a test run leaves nothing."""
    import signal

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"prism" in a for a in argv) and str(port).encode() in argv:
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGTERM)
