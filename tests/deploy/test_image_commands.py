"""deploy/Dockerfile's commands, run as a script (no Docker engine on this machine).

The test reads the Dockerfile and does what it says in a temporary folder: COPY into an
"image" directory, the pip RUN line into a fresh virtualenv (a real, non-editable install, so
a file missing from the package data fails here), then the compose services' commands with
the compose file's environment and file secrets: `db upgrade` (migrate), `web` probed with the
HEALTHCHECK command against /readyz, `status --check` (the workers' health check) and `worker`
stopped with SIGTERM. Only the user-creation RUN line is skipped: it would add a user to the
host.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import venv
from pathlib import Path

import pytest
import yaml

from tests.support import free_port
from tests.support.production import STRONG_KEY, TWILIO_TOKEN, production_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
pytestmark = pytest.mark.slow


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1]}" if line.endswith("\\") else f"{pending} {line}"
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def exec_form(args: str) -> list[str]:
    return list(json.loads(args))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    app.mkdir()
    env_vars: dict[str, str] = {}
    venv_dir = root / "python"
    venv.EnvBuilder(with_pip=True).create(venv_dir)
    bin_dir = venv_dir / "bin"
    entrypoint: list[str] = []
    cmd: list[str] = []
    health: list[str] = []
    for word, args in instructions():
        if word == "ENV":
            for part in shlex.split(args):
                key, _, value = part.partition("=")
                env_vars[key] = value.replace("/app", str(app))
        elif word == "COPY":
            *sources, dest = args.split()
            dest_path = app / dest
            for src in sources:
                path = ROOT / src
                target = dest_path / path.name if dest.endswith("/") else dest_path
                if path.is_dir():
                    shutil.copytree(
                        path,
                        target,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
        elif word == "RUN":
            if "useradd" in args or "groupadd" in args:
                continue  # image-only: would create a user on the host
            command = args.replace("pip install", f"{bin_dir / 'pip'} install -q")
            subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=app,
                check=True,
                timeout=600,
                env={**os.environ, **env_vars, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
        elif word == "ENTRYPOINT":
            entrypoint = exec_form(args)
        elif word == "CMD":
            cmd = exec_form(args)
        elif word == "HEALTHCHECK":
            health = exec_form(args.split("CMD", 1)[1].strip())
    assert entrypoint == ["checkin"] and cmd[0] == "web"
    # Run from outside the checkout, so only the installed package is importable.
    return {"app": app, "bin": bin_dir, "env": env_vars, "cmd": cmd, "health": health}


@pytest.fixture
def service_env(image: dict[str, object], pg_url: str, tmp_path: Path) -> dict[str, str]:
    """The compose file's environment for the checkin services, with its secrets as files."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    env = dict(compose["x-checkin"]["environment"])
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    # Secrets of the right shape: production refuses weak keys and malformed Twilio tokens.
    values = {
        "checkin_secret_key": STRONG_KEY,
        "twilio_auth_token": TWILIO_TOKEN,
        "database_url": pg_url,  # the compose file's "postgres" host is this server
        "metrics_token": "image-smoke-metrics-token-0123456789",
    }
    for key in [k for k in env if k.endswith("_FILE")]:
        name = Path(env[key]).name
        (secrets / name).write_text(values.get(name, "image-smoke-" + name) + "\n")
        env[key] = str(secrets / name)
    safe = production_env(tmp_path, pg_url)
    env.update(
        {
            k: safe[k]
            for k in (
                "TWILIO_ACCOUNT_SID",
                "TWILIO_FROM_NUMBER",
                "CHECKIN_PUBLIC_URL",
                "CHECKIN_CLINIC_NAME",
                "CHECKIN_CLINIC_PHONE",
                "CHECKIN_SMTP_HOST",
                "CHECKIN_SMTP_PORT",
                "CHECKIN_SMTP_TLS",
                "CHECKIN_SMTP_USER",
                "CHECKIN_EMAIL_FROM",
                "CHECKIN_ALERT_EMAILS",
                # The image's schedules are unsigned until a clinician reviews them: production
                # refuses them, so the site mounts its signed copy (as compose does).
                "CHECKIN_SCHEDULES_DIR",
            )
        }
    )
    env["CHECKIN_TWILIO_API_URL"] = "http://127.0.0.1:9"  # never the real Twilio
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    path = f"{image['bin']}:{base.get('PATH', '')}"
    return {**base, **image["env"], **env, "PATH": path}  # type: ignore[dict-item]


def run(
    image: dict[str, object], env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    exe = str(Path(str(image["bin"])) / "checkin")
    return subprocess.run(
        [exe, *args], cwd=image["app"], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_it_installs_migrates_serves_and_works_as_the_image_would(
    image: dict[str, object], service_env: dict[str, str]
) -> None:
    migrate = run(image, service_env, "db", "upgrade")
    assert migrate.returncode == 0, migrate.stderr
    check = run(image, service_env, "status", "--check")
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr

    port = free_port()
    web_cmd = [
        str(Path(str(image["bin"])) / "checkin"),
        *[a if a != "8000" else str(port) for a in image["cmd"]],
    ]  # type: ignore[union-attr]
    web = subprocess.Popen(
        web_cmd,
        cwd=image["app"],
        env=service_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = subprocess.Popen(
        [str(Path(str(image["bin"])) / "checkin"), "worker", "--id", "worker-1"],
        cwd=image["app"],
        env=service_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        probe = [a.replace("8000", str(port)) for a in image["health"]]  # type: ignore[union-attr]
        probe[0] = str(Path(str(image["bin"])) / "python")
        # Generous: an image compiles no bytecode, so start-up imports are slow on a busy host.
        deadline = time.monotonic() + 120
        while True:
            healthy = subprocess.run(
                probe, cwd=image["app"], env=service_env, capture_output=True, timeout=10, check=False
            )
            if healthy.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        web.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGTERM)
        web_out = web.communicate(timeout=30)[0]
        worker_out = worker.communicate(timeout=60)[0]
    assert healthy.returncode == 0, web_out[-3000:]
    assert worker.returncode == 0, worker_out[-2000:]
    stopped = [e for e in _json_lines(worker_out) if e.get("event") == "worker.stopped"]
    assert [e.get("worker_id") for e in stopped] == ["worker-1"], worker_out[-2000:]
    # A graceful stop on SIGTERM exits 0 (checkin.app.web.serve keeps uvicorn from re-raising it).
    assert web.returncode == 0, web_out[-2000:]
    assert "Application shutdown complete" in web_out


def test_it_packages_everything_the_service_reads(image: dict[str, object]) -> None:
    # A non-editable install must carry the migrations, lexicons, triage model and page templates.
    python = str(Path(str(image["bin"])) / "python")
    code = (
        "import checkin, pathlib; p = pathlib.Path(checkin.__file__).parent; "
        "print(len(list((p / 'store' / 'migrations' / 'versions').glob('*.py'))), "
        "len(list((p / 'core' / 'triage' / 'lexicon').glob('*.yaml'))), "
        "len(list((p / 'app' / 'web' / 'templates').glob('*.html'))), "
        "len(list((p / 'core' / 'triage' / 'model').glob('*.json'))))"
    )
    out = subprocess.run(
        [python, "-c", code], cwd="/", capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    versions, lexicons, pages, models = (int(x) for x in out)
    # en.yaml, es.yaml, escalations.yaml; the learned triage layer's artefact
    assert versions >= 5 and lexicons == 3 and pages >= 2 and models == 1


def _json_lines(output: str) -> list[dict[str, object]]:
    """The JSON log records in a process's output (other lines, e.g. uvicorn's, are skipped)."""
    records = []
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
