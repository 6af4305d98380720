"""Test data and tools that live beside the checkout rather than in it.

CI lays a ``shared`` folder next to the checkout (the labelled triage corpus, the launcher of a
mock of Twilio's OpenAPI spec). A plain clone of the repository has no such folder, and its
test run must still pass: tests that need it skip with a reason naming the missing file.
Under ``CI=true`` a missing file is a failure instead, so CI can never go green by skipping.

Every test that needs something outside the repository asks here, so the rule lives in one
place. ``CHECKIN_SHARED`` points elsewhere for a machine that keeps the folder apart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_dir() -> Path:
    """Where the folder beside the checkout is expected ($CHECKIN_SHARED overrides)."""
    env = os.environ.get("CHECKIN_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


def unavailable(what: str, why: str) -> NoReturn:
    """Skip the current test (fail it under CI=true) because ``what`` cannot be had."""
    if IN_CI:
        pytest.fail(f"CI=true but {what} is unavailable: {why}", pytrace=False)
    pytest.skip(f"{what} unavailable: {why} (outside CI this skips; CI=true fails)")


def shared_path(relative: str, *, override_env: str | None = None) -> Path:
    """Where the file ``relative`` under the shared folder is expected (``$override_env`` wins
    when set); it may not exist. For scripts such as benchmarks, which report it themselves."""
    env = os.environ.get(override_env) if override_env else None
    return Path(env) if env else shared_dir() / relative


def shared_file(relative: str, *, what: str, override_env: str | None = None) -> Path:
    """The file ``relative`` under the shared folder (or at ``$override_env`` when set).

    Skips the calling test when the file is absent, or fails it under CI=true.
    """
    path = shared_path(relative, override_env=override_env)
    if not path.is_file():
        hint = f" (set {override_env} to use another file)" if override_env else ""
        unavailable(what, f"{path} not found{hint}")
    return path
