"""The emailed alert link in headless Chromium (Debian ``chromium`` + Playwright): open it,
sign in, land on the patient's page, click Acknowledge, see it recorded; a phone-sized viewport. Skipped on a developer's
machine without Chromium or Playwright; under CI=true (.ci/run installs both) it must run.
CHECKIN_SCREENSHOT_DIR keeps the screenshots for a human look."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkin.demo.site import WebApp
from checkin.deps import Services
from tests.alerts.support import NURSES, add_patient, alerts, make_services, reply, staff_rows
from tests.console.support import PASSWORD, add_staff
from tests.support import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() == "true"
pytestmark = pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="Chromium is not installed")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Services, str]]:
    from checkin.store.db import upgrade

    url = f"sqlite:///{tmp_path / 'browser.db'}"
    upgrade(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    services = make_services(url, tmp_path, CHECKIN_PUBLIC_URL=base)
    with WebApp(services, port):
        yield services, base
    services.engine.dispose()


def test_it_acknowledges_from_the_emailed_link_in_a_phone_browser(
    served: tuple[Services, str], tmp_path: Path
) -> None:
    assert CHROMIUM is not None, "CI must install Debian's chromium (.ci/run)"
    if IN_CI:
        from playwright import sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    services, base = served
    _, ref, phone = add_patient(services, first_name="Zelda")
    add_staff(services, NURSES[0])
    reply(services, phone, "fever 103 and <script>alert(1)</script> pus from the incision")
    row = next(r for r in staff_rows(services) if r.recipient == NURSES[0])
    match = re.search(re.escape(base) + r"/a/[\w.\-]+", row.body or "")
    assert match
    shots = Path(os.environ.get("CHECKIN_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(match.group(0))
            assert page.title().startswith("Sign in")
            assert "Zelda" not in page.content()  # the link alone shows nothing
            assert alerts(services)[0].status == "open"  # opening the link changed nothing
            page.get_by_label("Email").fill(NURSES[0])
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r".*/console/patients/" + re.escape(ref) + r".*"))
            assert "Zelda" in page.content()
            page.screenshot(path=str(shots / "nurse-before.png"), full_page=True)
            page.click(f"#ack-{alerts(services)[0].id}")
            page.wait_for_selector("text=Acknowledged. Escalation stopped.")
            page.screenshot(path=str(shots / "nurse-after.png"), full_page=True)
            assert dialogs == []  # the patient's <script> never ran
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        finally:
            browser.close()
    (alert,) = alerts(services)
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", NURSES[0])
