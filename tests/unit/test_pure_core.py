"""The pure core does no I/O: importing it pulls in no database, provider, web or scheduler
library, and its source never reads the clock (``now`` is always an argument)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "checkin.core.schedule",
    "checkin.core.timeline",
    "checkin.core.window",
    "checkin.core.triage",
    "checkin.core.keywords",
    "checkin.core.sms_encoding",
    "checkin.core.care_teams",
    "checkin.core.replies",
]
FORBIDDEN = [
    "sqlalchemy",
    "twilio",
    "smtplib",
    "fastapi",
    "starlette",
    "uvicorn",
    "apscheduler",
    "psycopg",
    "requests",
    "httpx",
    "aiosmtpd",
]
CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\(")


@pytest.mark.parametrize("module", PURE)
def test_it_imports_no_outside_world_library(module: str) -> None:
    code = (
        f"import sys, {module}; bad = sorted(m for m in {FORBIDDEN!r} if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "", f"{module} imports {out}"


@pytest.mark.parametrize("module", PURE)
def test_it_never_reads_the_clock(module: str) -> None:
    base = ROOT / Path(*module.split("."))
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    offenders = [
        f"{f.relative_to(ROOT)}:{n}"
        for f in files
        for n, line in enumerate(f.read_text().splitlines(), 1)
        if CLOCK.search(line)
    ]
    assert offenders == []
