"""`checkin demo` end to end, shortened to 20 days after surgery (the scripted events are all
inside that), on the same code paths as the README's first command."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from checkin.demo.run import run_demo


def test_it_runs_the_recovery_and_reports_what_happened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    out, progress = io.StringIO(), io.StringIO()
    # --fast (the highest SMS rate the settings accept) and progress to a pipe, not a terminal.
    result = run_demo(days=20, seed=7, fast=True, workdir=tmp_path, out=out, progress_to=progress)
    s = result.summary
    text = out.getvalue()
    # Every planned message is accounted for: sent, or still ahead (nothing lost, nothing doubled).
    assert s["messages_sent"] + s["messages_pending"] + s["messages_skipped"] == s["messages_planned"]
    assert s["messages_sent"] > 100 and s["messages_other"] == {}
    # Replies came in as signed webhooks, all accepted, and were triaged.
    assert s["replies"] > 50 and s["webhook_responses"] == {"200": s["replies"]}
    assert s["replies_by_severity"].get("emergency") == 1 and s["replies_by_severity"].get("urgent") == 2
    # The care team heard about it: one emergency alert acknowledged within minutes, and the
    # urgent ones escalated (email, email, on-call SMS, its repeats) until acknowledged two hours
    # in; after that nobody is paged about them again. Urgent: the two red flags and five
    # "waiting too long for a person" (questions and watch alerts the demo nurse never handles;
    # she acknowledges each from its email, and again when something new waits).
    assert s["alerts_by_severity"].get("emergency") == 1 and s["alerts_by_severity"].get("urgent") == 7
    assert s["nurse_acknowledgements"] == 14 and s["alert_emails"] >= 3 and s["ladder_steps"] > 6
    assert s["staff_notifications_sent"] < 120
    assert "call 911" in text.lower() and "tengo fiebre" in text
    assert json.loads((tmp_path / "summary.json").read_text())["messages_planned"] == s["messages_planned"]
    # Piped progress is line-based: a start line, then about one line per simulated week.
    # The demo's development settings are named in one line, not one warning each.
    first, *lines = progress.getvalue().splitlines()
    assert first.startswith("demo: development settings (") and "would be refused in production" in first
    assert not [r for r in caplog.records if getattr(r, "event", None) == "settings.unsafe"]
    assert lines[0].startswith("simulating recovery: Feb 16") and "\r" not in progress.getvalue()
    assert 4 <= len(lines) <= 8 and lines[-1].strip().startswith("100%")
    # Every captured email is kept as an .eml file beside the SMS log.
    emls = sorted((tmp_path / "email").glob("*.eml"))
    assert (tmp_path / "sms-console.log").is_file() and len(emls) == s["emails_captured"] > 0
    first = emls[0].read_bytes()
    assert b"Subject: " in first and b"From: checkin@riverside.example.org" in first
