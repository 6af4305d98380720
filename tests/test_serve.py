"""`checkin serve`: the web app and the worker in one process, as a small site runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, select

from checkin.store.db import upgrade
from checkin.store.models import Worker
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_it_serves_web_and_worker_in_one_process_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    env.update(
        {
            "CHECKIN_DATABASE_URL": url,
            "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
            "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkin", "--env-file", str(tmp_path / "none"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and not ready:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                time.sleep(0.2)
        assert ready
        with engine.connect() as c:
            deadline = time.monotonic() + 10
            while not c.execute(select(Worker.id)).first() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert c.execute(select(Worker.stopped_at)).one() == (None,)  # the worker is running
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out[-2000:]
    with engine.connect() as c:
        assert c.execute(select(Worker.stopped_at)).scalar_one() is not None, out[-2000:]  # stopped cleanly
    engine.dispose()
