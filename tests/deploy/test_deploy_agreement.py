"""The deploy kit read as written: env.example, the compose file, the systemd units and the
Dockerfile agree, so no file silently overrides another (compose's `environment:` wins over its
`env_file:`; systemd's EnvironmentFile= wins over Environment=; NAME_FILE wins over NAME)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from checkin.app import safety
from checkin.config import Settings
from tests.support.production import STRONG_KEY, TWILIO_TOKEN

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ["checkin-web.service", "checkin-worker.service", "checkin-mail.service"]


def env_example() -> dict[str, str]:
    """The variables env.example sets (commented lines set nothing)."""
    out = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def unit_environment(unit: str) -> dict[str, str]:
    text = (DEPLOY / unit).read_text()
    return dict(m.groups() for m in re.finditer(r"^Environment=([A-Z0-9_]+)=(.*)$", text, re.M))


def unit_credentials(unit: str) -> set[str]:
    return set(re.findall(r"^LoadCredential=([a-z_]+):", (DEPLOY / unit).read_text(), re.M))


def compose_environment() -> dict[str, str]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return {k: str(v) for k, v in compose["x-checkin"]["environment"].items()}


def dockerfile_env() -> dict[str, str]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    return dict(re.findall(r"([A-Z][A-Z0-9_]+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", text, re.M))))


def overridden(example: dict[str, str], other: dict[str, str]) -> list[str]:
    """Variables env.example sets that ``other`` sets differently, or shadows with NAME_FILE."""
    clashes = [k for k in example if k in other and other[k] != example[k]]
    clashes += [k for k in example if f"{k}_FILE" in other or (k.endswith("_FILE") and k in other)]
    return clashes


@pytest.mark.parametrize("unit", UNITS)
def test_env_example_overrides_nothing_a_unit_sets(unit: str) -> None:
    assert overridden(env_example(), unit_environment(unit)) == []


def test_env_example_overrides_nothing_compose_or_the_image_sets() -> None:
    assert overridden(env_example(), compose_environment()) == []
    assert overridden(env_example(), dockerfile_env()) == []


@pytest.mark.parametrize("unit", UNITS)
def test_each_unit_loads_the_credentials_it_points_at(unit: str) -> None:
    env = unit_environment(unit)
    named = {v.removeprefix("%d/") for k, v in env.items() if k.endswith("_FILE")}
    assert all(v.startswith("%d/") for k, v in env.items() if k.endswith("_FILE"))
    assert named == unit_credentials(unit)
    # Every process builds both channels: CHECKIN_SMTP_USER without its password stops start-up.
    assert {"checkin_secret_key", "database_url", "twilio_auth_token", "smtp_password"} <= named


def test_compose_declares_every_secret_it_points_at() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    paths = {v for k, v in compose_environment().items() if k.endswith("_FILE")}
    names = {p.removeprefix("/run/secrets/") for p in paths}
    assert all(p.startswith("/run/secrets/") for p in paths)
    assert names == set(compose["x-checkin"]["secrets"])
    assert names <= set(compose["secrets"])


def test_everything_runs_in_production() -> None:
    assert dockerfile_env()["CHECKIN_ENV"] == "production"
    assert compose_environment()["CHECKIN_ENV"] == "production"
    for unit in UNITS:
        assert unit_environment(unit)["CHECKIN_ENV"] == "production", unit


def test_the_mail_unit_runs_mail_receive() -> None:
    assert (
        "ExecStart=/opt/checkin/.venv/bin/checkin mail receive"
        in (DEPLOY / "checkin-mail.service").read_text()
    )


def test_env_example_as_written_is_refused_only_for_its_placeholders(tmp_path: Path) -> None:
    """Copied unedited, with the compose file's secrets in place, production names exactly the
    example values an admin must replace, and nothing about how the files fit together."""
    env = {**env_example(), **compose_environment()}
    secrets = {
        "checkin_secret_key": STRONG_KEY,
        "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "twilio_auth_token": TWILIO_TOKEN,
        "smtp_password": "smtp-password",
        "metrics_token": "metrics-token-" + "x1y2z3" * 4,
    }
    for key, path in list(env.items()):
        if key.endswith("_FILE"):
            name = Path(path).name
            (tmp_path / name).write_text(secrets[name] + "\n")
            env[key] = str(tmp_path / name)
    settings = Settings.from_env(env)
    assert settings.env == "production" and settings.database_url == secrets["database_url"]
    named = sorted(v.setting for v in safety.settings_verdicts(settings))
    assert named == [
        "CHECKIN_CLINIC_NAME",
        "CHECKIN_CLINIC_PHONE",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_FROM_NUMBER",
    ]


def test_the_build_context_leaves_out_the_virtualenv_and_secrets_but_not_what_the_image_copies() -> None:
    ignored = {
        line.strip() for line in (DEPLOY.parent / ".dockerignore").read_text().splitlines() if line.strip()
    }
    ignored = {line for line in ignored if not line.startswith("#")}
    assert {".venv", ".git", ".env", "deploy/secrets", "deploy/env", "*.db"} <= ignored
    copied = re.findall(r"^COPY (.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M)
    sources = {src for line in copied for src in line.split()}
    assert sources and not sources & ignored
    assert not any(src.split("/")[0] in ignored for src in sources)


def test_env_example_points_at_no_secret_file() -> None:
    # A NAME_FILE here is read by every process that loads the file (web, workers, mail, CLI);
    # a path that exists for one unit only stops the others. The units and compose set them.
    assert [k for k in env_example() if k.endswith("_FILE")] == []
