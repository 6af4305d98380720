"""The real ``checkin web --workers N`` as a child process, for tests that need its processes
(several on one port, connections PostgreSQL drops under them)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def start_web(
    url: str,
    port: int,
    workers: int,
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    output: int | IO[str] | None = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """``checkin web`` on ``url`` at 127.0.0.1:``port``, with this repository's schedules and
    templates, no CHECKIN_/TWILIO_ setting from the caller's environment but ``env``, and its
    output to ``output`` (a pipe by default)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    full.update(
        {
            "CHECKIN_DATABASE_URL": url,
            "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
            "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
            **(env or {}),
        }
    )
    command = [sys.executable, "-m", "checkin", "--env-file", str(tmp_path / "none"), "web"]
    return subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        cwd=tmp_path,
        env=full,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(port: int, timeout: float = 30) -> None:
    """Until ``/readyz`` answers 200; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            ready = conn.getresponse().status == 200
            conn.close()
            if ready:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("checkin web did not become ready")
