"""`checkin hl7 errors` and `checkin hl7 replay` on a SQLite file."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from checkin.app.bootstrap import build_schedules
from checkin.clock import ManualClock
from checkin.store.db import make_engine
from tests.integrations.support import feed, siu
from tests.support import ROOT, make_settings


def test_a_refused_message_is_listed_then_replayed_once_the_mapping_is_fixed(tmp_path: Path) -> None:
    from checkin.app.cli.main import cli

    schedules_dir = tmp_path / "schedules"
    shutil.copytree(ROOT / "schedules", schedules_dir)
    db = tmp_path / "cli.db"
    env = {
        "CHECKIN_DATABASE_URL": f"sqlite:///{db}",
        "CHECKIN_SCHEDULES_DIR": str(schedules_dir),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--env-file", str(tmp_path / "none.env"), *args], env=env)

    assert run("db", "upgrade").exit_code == 0
    soon = (date.today() + timedelta(days=30)).strftime("%Y%m%d") + "0730"
    engine = make_engine(f"sqlite:///{db}")
    schedules = build_schedules(make_settings(CHECKIN_SCHEDULES_DIR=str(schedules_dir)))
    out = feed(engine, schedules, ManualClock(datetime.now(UTC))).handle(
        siu(control="Q1", code="22614^Fusion, each extra level^CPT", start=soon)
    )
    engine.dispose()
    assert out.code == "AE"

    listed = run("hl7", "errors")
    assert listed.exit_code == 0, listed.output
    assert f"{out.message_id:>6}" in listed.output and "AE  SIU^S12" in listed.output
    assert "AIS-3: code '22614' is not a procedure or appointment type" in listed.output
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        viewed = (
            conn.execute(text("SELECT actor FROM audit_log WHERE action = 'hl7.errors_viewed'"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert viewed == ["cli"]  # the problems quote patients' data: looking at them is audited

    still = run("hl7", "replay", str(out.message_id))
    assert still.exit_code == 1 and "refused again (AE): AIS-3" in still.output

    mapping = schedules_dir / "hl7.yaml"
    mapping.write_text(
        mapping.read_text().replace(
            '  "22612": lumbar-fusion\n', '  "22612": lumbar-fusion\n  "22614": lumbar-fusion\n'
        )
    )
    replayed = run("hl7", "replay", str(out.message_id))
    assert replayed.exit_code == 0, replayed.output
    assert f"message {out.message_id}: accepted" in replayed.output
    assert "0 refused message(s)" in run("hl7", "errors").output
    assert run("patients", "list").output.count("lumbar-fusion") == 1

    again = run("hl7", "replay", str(out.message_id))
    assert again.exit_code == 1 and "was accepted already" in again.output


@pytest.mark.slow
def test_checkin_hl7_listen_acks_over_tcp_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The deployed command, as a process: an S12 over MLLP gets AA; SIGTERM ends it cleanly."""
    import os
    import signal
    import subprocess
    import sys

    from tests.integrations.support import send
    from tests.support import free_port

    db = tmp_path / "listen.db"
    env = {
        **os.environ,
        "CHECKIN_DATABASE_URL": f"sqlite:///{db}",
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    run = [
        sys.executable,
        "-c",
        "from checkin.app.cli.main import main; main()",
        "--env-file",
        "/nonexistent",
    ]
    assert subprocess.run([*run, "db", "upgrade"], env=env, capture_output=True, check=False).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [*run, "hl7", "listen", "--port", str(port)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and "listening for HL7" in proc.stdout.readline()
        soon = (date.today() + timedelta(days=30)).strftime("%Y%m%d")
        (ack,) = send(port, siu(control="L1", start=soon))
        assert "MSA|AA|L1" in ack
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
