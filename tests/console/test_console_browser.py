"""The console in Debian's headless Chromium (Playwright, no browser download), at phone and
desktop sizes: sign in, a new emergency appears within the refresh interval, the patient's
reply is shown verbatim and never runs, acknowledge, a reply reaches the (fake) Twilio API
exactly once, sign out; a second red flag after acknowledgement pages again and re-opens the
alert in the worklist; an expired session goes back to sign-in; keyboard-only use; axe-core
(npm, from the local node_modules) finds no serious or critical violation on any page.

Skipped without Chromium, Playwright or axe-core on a developer's machine; under CI=true
(.ci/run installs all three) each must be there. CHECKIN_SCREENSHOT_DIR keeps screenshots."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from checkin.demo.site import WebApp
from checkin.deps import Services
from checkin.outbound.dispatch import run_once
from checkin.store.models import AuditEvent
from tests.alerts.support import add_patient, make_services, reply, staff_rows
from tests.channels.fake_twilio_server import FakeTwilio
from tests.console.support import PASSWORD, add_staff
from tests.outbound.support import twilio_channel
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
IN_CI = os.environ.get("CI", "").lower() == "true"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="Chromium is not installed"),
]
NURSE = "dana@example.org"
NASTY = 'fever 102.5 <script>alert("x")</script> & <img src=x onerror=alert(2)> "quoted"'
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
REFRESH = 5


def sync_api() -> Any:
    assert CHROMIUM is not None, "CI must install Debian's chromium (.ci/run)"
    if IN_CI:
        from playwright import sync_api as api

        return api
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, str, FakeTwilio]]:
    from checkin.app.web.console import routes
    from checkin.store.db import upgrade

    monkeypatch.setattr(routes, "REFRESH_SECONDS", REFRESH)  # the page's poll, shortened for the test
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    upgrade(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeTwilio() as fake:
        services = make_services(url, tmp_path, CHECKIN_PUBLIC_URL=base, sms=twilio_channel(fake.url))
        with WebApp(services, port):
            yield services, base, fake
        services.engine.dispose()


class Watched:
    """A page with its dialogs (a script that ran) and CSP reports collected."""

    def __init__(self, browser: Any, size: str, shots: Path) -> None:
        self.context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")
        self.page = self.context.new_page()
        self.size, self.shots = size, shots
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on(
            "console", lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None
        )

    def axe(self, name: str) -> None:
        """No serious or critical axe-core violation on the current page (WCAG 2 A/AA rules)."""
        if not AXE.exists():
            if IN_CI:
                pytest.fail(f"axe-core is required in CI: {AXE} (npm install axe-core, see .ci/run)")
            return
        self.page.evaluate(AXE.read_text(encoding="utf-8"))
        found = self.page.evaluate(
            """async () => (await axe.run(document, {runOnly: ["wcag2a", "wcag2aa", "best-practice"]}))
                 .violations.filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" "))}))"""
        )
        assert found == [], f"{name} ({self.size}): {json.dumps(found, indent=1)}"
        self.page.screenshot(path=str(self.shots / f"console-{name}-{self.size}.png"), full_page=True)
        if self.size == "phone":
            assert self.page.evaluate("document.documentElement.scrollWidth") <= SIZES["phone"]["width"] + 1

    def sign_in(self, base: str, email: str = NURSE) -> None:
        self.page.goto(base + "/console")
        assert "/login" in self.page.url
        self.axe("sign-in")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r".*/console$"))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = Path(os.environ.get("CHECKIN_SCREENSHOT_DIR") or tmp_path / "shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_a_nurse_signs_in_sees_the_emergency_acknowledges_and_replies(
    served: tuple[Services, str, FakeTwilio], size: str, shots: Path
) -> None:
    services, base, fake = served
    add_staff(services, NURSE)
    _, ref, phone = add_patient(services, first_name="Zelda")
    with sync_api().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            w = Watched(browser, size, shots)
            page = w.page
            w.sign_in(base)
            assert page.get_by_text("No open alerts.").is_visible()
            w.axe("worklist-empty")
            reply(services, phone, NASTY)  # arrives while the worklist is open
            reply(services, phone, "now crushing chest pain, can't breathe")
            page.get_by_text(f"{ref} · Zelda").first.wait_for(timeout=(REFRESH + 5) * 1000)
            assert page.locator("#alerts tbody tr").first.inner_text().startswith("EMERGENCY")
            w.axe("worklist")
            page.get_by_text(f"{ref} · Zelda").first.click()
            page.wait_for_url(re.compile(rf".*/console/patients/{ref}.*"))
            texts = page.locator("#thread .in .text").all_inner_texts()
            assert NASTY in texts  # verbatim, as text
            w.axe("patient")
            page.get_by_role("button", name="Acknowledge").first.click()
            page.get_by_text("Acknowledged. Escalation stopped.").wait_for()
            page.get_by_label("Reply").fill("We are calling you now. <b>Stay</b> where you are.")
            page.get_by_role("button", name="Send").click()
            page.get_by_text("Reply queued").wait_for()
            page.go_back()  # the form again, as it was: sending it twice must not text twice
            if page.get_by_label("Reply").input_value():
                page.get_by_role("button", name="Send").click()
                page.wait_for_load_state()
            for _ in range(2):
                services.clock.advance(timedelta(seconds=2))  # type: ignore[attr-defined]
                run_once(services, services.clock.now(), worker_id="browser-test")
            to_patient = [
                c
                for c in fake.creates()
                if c.form.get("To") == phone and "calling you" in c.form.get("Body", "")
            ]
            assert [c.form["Body"] for c in to_patient] == [
                "We are calling you now. <b>Stay</b> where you are."
            ]
            page.reload()
            assert (
                "We are calling you now. <b>Stay</b> where you are." in page.locator("#thread").inner_text()
            )
            page.get_by_role("button", name="Sign out").click()
            page.get_by_text("Signed out.").wait_for()
            page.goto(base + f"/console/patients/{ref}")
            assert "/login" in page.url and "Zelda" not in page.content()
            assert w.dialogs == [] and w.csp == []  # no script of the patient's ran; our pages obey our CSP
        finally:
            browser.close()


def _status_of_first_alert(page: Any, status: str) -> None:
    """Wait (through the worklist's own refresh) until its first alert row shows ``status``."""
    page.wait_for_function(
        """s => { const c = document.querySelector('#alerts tbody tr td:last-child');
                  return c !== null && c.textContent.trim().startsWith(s); }""",
        arg=status,
        timeout=(REFRESH + 5) * 1000,
    )


def test_a_second_red_flag_after_acknowledgement_pages_again_and_reopens_the_alert(
    served: tuple[Services, str, FakeTwilio], shots: Path
) -> None:
    services, base, _ = served
    add_staff(services, NURSE)
    _, ref, phone = add_patient(services, first_name="Rosa")
    reply(services, phone, "I have a fever of 102 since last night")

    def pages_to_nurse() -> list[str]:
        return [r.key for r in staff_rows(services) if r.recipient == NURSE]

    assert len(pages_to_nurse()) == 1  # round 0
    with sync_api().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            w = Watched(browser, "desktop", shots)
            page = w.page
            w.sign_in(base)
            _status_of_first_alert(page, "open")
            page.get_by_text(f"{ref} · Rosa").first.click()
            page.wait_for_url(re.compile(rf".*/console/patients/{ref}.*"))
            page.get_by_role("button", name="Acknowledge").first.click()
            page.get_by_text("Acknowledged. Escalation stopped.").wait_for()
            assert page.get_by_role("button", name="Acknowledge").count() == 0
            page.goto(base + "/console")
            _status_of_first_alert(page, "acknowledged")
            # The patient writes again with a new red flag while the worklist is open.
            reply(services, phone, "I fell and can't get up", services.clock.now() + timedelta(minutes=1))
            _status_of_first_alert(page, "open")
            assert "fall" in page.locator("#alerts tbody tr").first.inner_text()
            keys = pages_to_nurse()
            assert len(keys) == 2 and len(set(keys)) == 2 and ":r1:" in keys[1]  # paged again, once
            # The same words again while it is open: no third page.
            reply(services, phone, "I fell and can't get up", services.clock.now() + timedelta(minutes=2))
            assert len(pages_to_nurse()) == 2
            page.get_by_text(f"{ref} · Rosa").first.click()
            page.wait_for_url(re.compile(rf".*/console/patients/{ref}.*"))
            w.axe("patient-repaged")
            page.get_by_role("button", name="Acknowledge").first.click()
            page.get_by_text("Acknowledged. Escalation stopped.").wait_for()
            assert w.dialogs == [] and w.csp == []
        finally:
            browser.close()
    with services.sessions() as s:
        acks = s.scalars(select(AuditEvent.actor).where(AuditEvent.action == "alert.acknowledged")).all()
    assert acks == [NURSE, NURSE]


def test_an_expired_session_goes_back_to_sign_in_by_itself(
    served: tuple[Services, str, FakeTwilio], shots: Path
) -> None:
    services, base, _ = served
    add_staff(services, NURSE)
    with sync_api().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            w = Watched(browser, "desktop", shots)
            w.sign_in(base)
            services.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
            w.page.wait_for_url(re.compile(r".*/login\?expired=1.*"), timeout=(REFRESH + 5) * 1000)
            assert w.page.get_by_text("Your session ended. Sign in again.").is_visible()
        finally:
            browser.close()


def test_keyboard_only_sign_in_open_the_patient_and_acknowledge(
    served: tuple[Services, str, FakeTwilio], shots: Path
) -> None:
    services, base, _ = served
    add_staff(services, NURSE)
    _, ref, phone = add_patient(services, first_name="Kay")
    reply(services, phone, "I fell and can't get up")
    with sync_api().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            w = Watched(browser, "desktop", shots)
            page, kb = w.page, w.page.keyboard
            page.goto(base + "/login")

            def tab_to(predicate: str, limit: int = 40) -> None:
                for _ in range(limit):
                    kb.press("Tab")
                    if page.evaluate(
                        f"(() => {{ const e = document.activeElement; return {predicate}; }})()"
                    ):
                        return
                raise AssertionError(f"never reached {predicate} with Tab")

            tab_to("e.id === 'email'")
            kb.type(NURSE)
            tab_to("e.id === 'password'")
            kb.type(PASSWORD)
            tab_to("e.id === 'sign-in'")
            kb.press("Enter")
            page.wait_for_url(re.compile(r".*/console$"))
            tab_to(f"(e.getAttribute('href') || '').startsWith('/console/patients/{ref}')")
            kb.press("Enter")
            page.wait_for_url(re.compile(rf".*/console/patients/{ref}.*"))
            tab_to("(e.id || '').startsWith('ack-')")
            kb.press("Enter")
            page.get_by_text("Acknowledged. Escalation stopped.").wait_for()
            assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") is not None
        finally:
            browser.close()
