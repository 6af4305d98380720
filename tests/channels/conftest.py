"""Fixtures for the channel tests: the recording Twilio fake, the Prism mock of Twilio's
OpenAPI spec, and an aiosmtpd relay on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.channels_support import free_port
from tests.channels.fake_twilio_server import FakeTwilio

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def _unavailable(why: str) -> None:
    # Locally a missing node/npm or shared folder skips; in CI the spec check must run.
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the Twilio OpenAPI mock is unavailable: {why}")
    pytest.skip(f"Twilio OpenAPI mock unavailable: {why}")


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    """Base URL of a Prism mock of Twilio's own OpenAPI spec (see shared/twilio/README.md).
    The first run installs Prism with npm into the script's cache folder (~10-20 s)."""
    script = Path(os.environ.get("MOCK_TWILIO_SCRIPT", REPO.parent / "shared" / "twilio" / "mock-twilio.sh"))
    if not script.is_file():
        _unavailable(f"{script} not found")
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
