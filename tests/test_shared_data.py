"""A clone without the shared folder beside it: tests that need it skip, or fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import ROOT


def _run_corpus_tests(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CHECKIN_TRIAGE_CORPUS")}
    env["CHECKIN_SHARED"] = str(tmp_path / "no-shared-here")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "tests/triage/test_corpus.py",
            "-k",
            "dev",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_missing_shared_folder_skips_with_the_reason_outside_ci(tmp_path: Path) -> None:
    run = _run_corpus_tests(tmp_path, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " skipped" in run.stdout and " passed" not in run.stdout, run.stdout
    assert "error" not in run.stdout.lower(), run.stdout
    assert "the dev triage corpus unavailable" in run.stdout
    assert "no-shared-here/triage-dev.jsonl not found" in run.stdout


def test_a_missing_shared_folder_fails_under_ci(tmp_path: Path) -> None:
    run = _run_corpus_tests(tmp_path, ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "skipped" not in run.stdout
    assert "CI=true but the dev triage corpus is unavailable" in run.stdout


@pytest.mark.parametrize("relative", ["triage-dev.jsonl", "twilio/mock-twilio.sh"])
def test_the_helper_names_the_file_it_looked_for(
    relative: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import shared_data

    monkeypatch.setenv("CHECKIN_SHARED", str(tmp_path))
    monkeypatch.setattr(shared_data, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=str(tmp_path / relative)):
        shared_data.shared_file(relative, what="x")
    monkeypatch.setattr(shared_data, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        shared_data.shared_file(relative, what="x")
    (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / relative).write_text("{}\n")
    assert shared_data.shared_file(relative, what="x") == tmp_path / relative
