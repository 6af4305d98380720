"""Validate deploy/ as far as this machine can: compose against the Compose spec's schema,
systemd units with systemd-analyze, env.example against the settings the code reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from checkin.config import SETTINGS
from tests.shared_data import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_it_passes_the_compose_spec_schema() -> None:
    tool = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_postgres_web_and_two_workers() -> None:
    services = compose()["services"]
    assert {"postgres", "migrate", "web", "worker-1", "worker-2"} <= set(services)
    assert services["worker-1"]["command"][0] == "worker" and services["worker-2"]["command"][0] == "worker"


def test_it_checks_web_health_through_readyz() -> None:
    assert "/readyz" in " ".join(compose()["services"]["web"]["healthcheck"]["test"])
    assert "/readyz" in (DEPLOY / "Dockerfile").read_text()


def test_it_migrates_only_after_the_database_is_ready_and_starts_the_rest_after_that() -> None:
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker-1", "worker-2"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_it_keeps_secrets_out_of_the_compose_environment() -> None:
    for name, service in compose()["services"].items():
        env = service.get("environment", {})
        for key in env:
            if any(s.name == key and s.secret for s in SETTINGS) or key.endswith("PASSWORD"):
                pytest.fail(f"{name}: {key} is given inline; use {key}_FILE")


def test_it_runs_the_image_as_a_non_root_user() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and not users[-1].startswith(("root", "0"))
    assert any(line.startswith("ENTRYPOINT") and "checkin" in line for line in lines)


def test_it_lists_every_setting_in_env_example() -> None:
    text = (DEPLOY / "env.example").read_text()
    missing = [s.name for s in SETTINGS if f"{s.name}=" not in text and f"{s.name}_FILE=" not in text]
    assert missing == []


def test_it_gives_secrets_as_files_in_env_example() -> None:
    text = (DEPLOY / "env.example").read_text()
    for s in SETTINGS:
        if s.secret:
            assert f"{s.name}_FILE=" in text and f"\n{s.name}=" not in text


UNITS = [
    "checkin-web.service",
    "checkin-worker.service",
    "checkin-mail.service",
    "checkin-hl7.service",
    "checkin-fhir.service",
]


@pytest.mark.parametrize("unit", UNITS)
def test_it_writes_systemd_units_that_systemd_accepts(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze", "not installed")
    # verify checks that ExecStart exists; point it at this checkout's command.
    exe = Path(sys.executable).with_name("checkin")
    text = (DEPLOY / unit).read_text().replace("/opt/checkin/.venv/bin/checkin", str(exe))
    (tmp_path / unit).write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_it_hardens_the_systemd_units(unit: str) -> None:
    text = (DEPLOY / unit).read_text()
    for option in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "User=checkin",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ):
        assert option in text, option
