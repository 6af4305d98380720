"""The demo's nurse: an account on the console, a browser-like client that signs in, follows
an emailed alert link to the patient's page and acknowledges the alert there, as a nurse would
(cookies, the sign-in form's token, the page's CSRF value), and ``checkin demo --serve``: the
app left running on the demo's data for a newcomer to click through.

The served app keeps the simulation's clock, stopped at its last instant: ages on the worklist
are as of then, and a session does not time out while the demo runs."""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TextIO

EMAIL = "nurse@riverside.example.org"
PASSWORD = "demo-nurse-password"  # noqa: S105 - a demo account on a throwaway database


def add_account(services: Any) -> None:
    """Create the demo nurse on the care-team file's default team (idempotent)."""
    from checkin.staff import accounts

    with services.sessions.begin() as s:
        try:
            accounts.find(s, EMAIL)
            return
        except accounts.AccountError:
            pass
        accounts.add(
            s,
            email=EMAIL,
            name="Demo Nurse",
            role="nurse",
            team=services.care_teams.current().default,
            now=services.clock.now(),
            secret_key=services.settings.secret_key,
            actor="demo",
            password=PASSWORD,
        )


def _hidden(html: str, name: str) -> str | None:
    m = re.search(rf'name="{name}" value="([^"]+)"', html)
    return m.group(1) if m else None


def acknowledge(link: str) -> tuple[str, int] | None:
    """Open ``link``, sign in, acknowledge the alert the link is about (else the page's first
    open alert): (alert id, HTTP status), or None if the page offered nothing to acknowledge."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(link, timeout=30) as page:  # -> /login?next=/console/patients/...
        html, url = page.read().decode(), page.geturl()
    base = url.split("/login", 1)[0]
    form = {"csrf": _hidden(html, "csrf") or "", "next": _hidden(html, "next") or "/console", "code": ""}
    form |= {"email": EMAIL, "password": PASSWORD}
    data = urllib.parse.urlencode(form).encode()
    with opener.open(urllib.request.Request(base + "/login", data=data), timeout=30) as page:  # noqa: S310
        html, url = page.read().decode(), page.geturl()
    forms = re.finditer(
        r'/ack"><input type="hidden" name="csrf" value="([^"]+)"><input type="hidden" name="alert" value="(\d+)"',
        html,
    )
    # The alert the email was about (the link lands on #alert-<id>), else the first open one.
    wanted = url.rsplit("#alert-", 1)[1] if "#alert-" in url else None
    found = list(forms)
    alert = next((m for m in found if m.group(2) == wanted), found[0] if found else None)
    if not alert or "/console/patients/" not in url:
        return None
    action = url.split("#", 1)[0].split("?", 1)[0] + "/ack"
    data = urllib.parse.urlencode({"csrf": alert.group(1), "alert": alert.group(2)}).encode()
    try:
        with opener.open(urllib.request.Request(action, data=data), timeout=30) as r:  # noqa: S310
            return alert.group(2), r.status
    except urllib.error.HTTPError as e:
        return alert.group(2), e.code


def serve(services: Any, port: int, out: TextIO, stop: threading.Event | None = None) -> None:
    """Run the web app on 127.0.0.1:``port`` until Ctrl-C (or ``stop`` is set), after saying
    where it is and how to sign in."""
    from checkin.demo.site import WebApp

    base = f"http://127.0.0.1:{port}"
    stop = stop or threading.Event()
    with WebApp(services, port):
        out.write(
            f"\nThe nurse console is running at {base}/console\n"
            f"  sign in as {EMAIL} with the password {PASSWORD}\n"
            "  (Ctrl-C stops it)\n"
        )
        out.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            out.write("stopped\n")
