"""``checkin staff add|list|disable``: accounts from the server's shell, audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from checkin.app.cli.main import cli
from checkin.store.models import AuditEvent, Staff
from tests.conftest import ROOT


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    from checkin.store.db import upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    env = {
        "CHECKIN_DATABASE_URL": url,
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_PUBLIC_URL": "https://checkin.example.org",
    }

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            cli, ["--env-file", str(tmp_path / "none.env"), *args], env=env, input=input
        )

    invoke.url = url  # type: ignore[attr-defined]
    return invoke


def test_add_prints_a_one_time_set_password_link(run) -> None:  # type: ignore[no-untyped-def]
    done = run("staff", "add", "Dana@Example.org", "--name", "Dana Reyes", "--role", "nurse")
    assert done.exit_code == 0, done.output
    assert "added nurse dana@example.org (team default)" in done.output
    assert re.search(r"https://checkin\.example\.org/set-password/[\w.\-]+", done.output)
    listed = run("staff", "list")
    assert "dana@example.org\tDana Reyes\tnurse\tdefault\tawaiting password" in listed.output


def test_add_with_password_stdin_sets_it_and_an_admin_gets_a_totp_secret(run) -> None:  # type: ignore[no-untyped-def]
    done = run(
        "staff",
        "add",
        "ada@example.org",
        "--name",
        "Ada",
        "--role",
        "admin",
        "--password-stdin",
        input="a long enough password\n",
    )
    assert done.exit_code == 0, done.output
    assert "set-password" not in done.output and "otpauth://totp/" in done.output
    engine = create_engine(run.url)
    with engine.connect() as c:
        hashed, secret = c.execute(select(Staff.password_hash, Staff.totp_secret)).one()
    engine.dispose()
    assert hashed.startswith("$argon2id$") and secret


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["nobody", "--name", "X"], None, "email: 'nobody' is not an email address"),
        (["a@example.org", "--name", "X", "--team", "nope"], None, "team: 'nope' is not one of"),
        (["a@example.org", "--name", "X", "--password-stdin"], "short\n", "password must be at least 12"),
    ],
)
def test_add_refuses_bad_input_naming_the_field(
    run, args: list[str], stdin: str | None, message: str
) -> None:  # type: ignore[no-untyped-def]
    done = run("staff", "add", *args, input=stdin)
    assert done.exit_code == 1 and message in done.output
    assert "no staff accounts" in run("staff", "list").output


def test_disable_marks_the_account_and_is_audited(run) -> None:  # type: ignore[no-untyped-def]
    run("staff", "add", "dana@example.org", "--name", "Dana")
    assert run("staff", "add", "dana@example.org", "--name", "Dana").exit_code == 1  # already there
    done = run("staff", "disable", "DANA@example.org")
    assert done.exit_code == 0 and "disabled dana@example.org" in done.output
    assert "\tdisabled" in run("staff", "list").output
    assert run("staff", "disable", "ghost@example.org").exit_code == 1
    engine = create_engine(run.url)
    with engine.connect() as c:
        actions = [a for (a,) in c.execute(select(AuditEvent.action).order_by(AuditEvent.id))]
    engine.dispose()
    assert actions == ["staff.added", "staff.disabled"]
