"""``checkin demo --serve``: the app stays up with a demo nurse who can sign in."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import httpx

from checkin.demo import nurse
from checkin.demo.mailcatcher import free_port
from tests.alerts.support import make_services


def test_it_serves_the_console_and_prints_how_to_sign_in(db_url: str, tmp_path: Path) -> None:
    port, out, stop = free_port(), io.StringIO(), threading.Event()
    services = make_services(db_url, tmp_path, CHECKIN_PUBLIC_URL=f"http://127.0.0.1:{port}")  # as the demo's
    nurse.add_account(services)
    nurse.add_account(services)  # idempotent
    thread = threading.Thread(target=nurse.serve, args=(services, port, out, stop), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while "Ctrl-C" not in out.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        printed = out.getvalue()
        assert (
            f"http://127.0.0.1:{port}/console" in printed
            and nurse.EMAIL in printed
            and nurse.PASSWORD in printed
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=10) as browser:
            login = browser.get("/console")
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert login.url.path == "/login" and csrf
            page = browser.post(
                "/login",
                data={
                    "csrf": csrf.group(1),
                    "next": "/console",
                    "email": nurse.EMAIL,
                    "password": nurse.PASSWORD,
                },
            )
            assert page.url.path == "/console" and "Worklist" in page.text
    finally:
        stop.set()
        thread.join(10)
        services.engine.dispose()
