"""The shipped schedules as a patient gets them: welcome first, no day over the daily limit,
no-reply wording, a check every month of the first year, real visit dates; and validation
measured with this site's clinic name."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from checkin.config import Settings
from checkin.content.catalog import load_schedules, preview, validate_paths
from checkin.content.lint import Site, lint_lines
from checkin.content.render import Renderer
from checkin.core.schedule.burden import limit_for
from checkin.core.schedule.model import Appointment

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(schedules_dir=ROOT / "schedules", templates_dir=ROOT / "templates")
RENDERER = Renderer(ROOT / "templates")
SCHEDULES = load_schedules(ROOT / "schedules", RENDERER)
SURGERY = date(2027, 3, 1)
NO_REPLY = {"en": "No need to reply", "es": "No necesita responder"}
CASES = [
    (schedule_id, smoker, language)
    for schedule_id in ("lumbar-fusion", "cervical-fusion")
    for smoker in (False, True)
    for language in ("en", "es")
]


def rows(schedule_id: str, smoker: bool, language: str, **kw: Any) -> list[dict[str, Any]]:
    return preview(
        SETTINGS,
        RENDERER,
        SCHEDULES,
        schedule_id,
        SURGERY,
        "America/New_York",
        smoker=smoker,
        language=language,
        **kw,
    )


def day(row: dict[str, Any]) -> int:
    return (date.fromisoformat(row["due_local"][:10]) - SURGERY).days


@pytest.mark.parametrize(("schedule_id", "smoker", "language"), CASES)
def test_the_welcome_comes_first_and_says_how_to_stop(schedule_id: str, smoker: bool, language: str) -> None:
    first = rows(schedule_id, smoker, language)[0]
    assert first["step"] == "welcome"
    assert "STOP" in first["text"] and "HELP" in first["text"]
    if language == "es":
        assert "ALTO" in first["text"] and "AYUDA" in first["text"]


@pytest.mark.parametrize(("schedule_id", "smoker", "language"), CASES)
def test_no_day_has_more_texts_than_the_daily_limit(schedule_id: str, smoker: bool, language: str) -> None:
    limit = SCHEDULES[schedule_id].daily_limit
    per_day = Counter(day(r) for r in rows(schedule_id, smoker, language))
    over = {d: n for d, n in per_day.items() if n > (limit_for(d, limit) or n)}
    assert over == {}
    assert max(per_day[d] for d in range(15)) <= 2


@pytest.mark.parametrize(("schedule_id", "smoker", "language"), CASES)
def test_every_text_that_asks_nothing_says_no_reply_is_needed(
    schedule_id: str, smoker: bool, language: str
) -> None:
    silent = [r["step"] for r in rows(schedule_id, smoker, language) if r["ask"] is None]
    missing = [
        r["step"]
        for r in rows(schedule_id, smoker, language)
        if r["ask"] is None and NO_REPLY[language] not in r["text"]
    ]
    assert silent and missing == []


@pytest.mark.parametrize(("schedule_id", "smoker", "language"), CASES)
def test_there_is_a_check_in_every_month_of_the_first_year(
    schedule_id: str, smoker: bool, language: str
) -> None:
    asked = sorted(day(r) for r in rows(schedule_id, smoker, language) if r["ask"] is not None)
    months_without = [m for m in range(12) if not any(m * 365 / 12 < d <= (m + 1) * 365 / 12 for d in asked)]
    assert months_without == []


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_visit_reminder_names_the_booked_date_and_goes_the_day_before(language: str) -> None:
    booked = Appointment("six_week_visit", datetime(2027, 4, 13, 9, 30), "Clinic B")
    (reminder,) = [
        r
        for r in rows("lumbar-fusion", False, language, appointments=(booked,))
        if r["step"] == "visit-6-weeks"
    ]
    assert reminder["due_local"].startswith("2027-04-12")
    assert (
        "April 13 at 9:30 AM (Clinic B)" if language == "en" else "13 de abril a las 9:30 (Clinic B)"
    ) in reminder["text"]
    (unbooked,) = [r for r in rows("lumbar-fusion", False, language) if r["step"] == "visit-6-weeks"]
    assert "April" not in unbooked["text"] and "abril" not in unbooked["text"]


def test_discharge_moves_the_daily_checks() -> None:
    late = [day(r) for r in rows("lumbar-fusion", False, "en") if r["step"] == "daily-check"]
    early = [
        day(r)
        for r in rows("lumbar-fusion", False, "en", discharge_date=SURGERY + timedelta(days=2))
        if r["step"] == "daily-check"
    ]
    assert late[0] == 5 and early[0] == 3 and len(late) == len(early) == 14


def test_lint_finds_no_day_over_the_limit_and_nothing_dropped() -> None:
    for schedule in SCHEDULES.values():
        lines, bad = lint_lines(schedule)
        assert not bad, "\n".join(lines)


def paths() -> list[Path]:
    return [ROOT / "schedules" / "lumbar-fusion.yaml", ROOT / "schedules" / "cervical-fusion.yaml"]


def test_validation_measures_texts_with_the_configured_clinic_name() -> None:
    short = validate_paths(paths(), RENDERER, (), site=Site("Riverside", "(703) 555-2040"))
    long_name = "Riverside Orthopaedic and Neurosurgical Associates of Northern Virginia"
    long = validate_paths(paths(), RENDERER, (), site=Site(long_name, "(703) 555-2040"))
    over = [w for w in long.warnings if "segments" in w]
    assert not [w for w in short.warnings if "segments" in w]
    assert over and any("sms/en/" in w for w in over) and any("sms/es/" in w for w in over)


def test_an_unsigned_schedule_and_placeholder_contacts_warn_in_development_and_fail_in_production() -> None:
    dev = validate_paths(paths(), RENDERER, (), site=Site(SETTINGS.clinic_name, SETTINGS.clinic_phone))
    assert any("clinical_sign_off" in w for w in dev.warnings)
    assert any("CHECKIN_CLINIC_PHONE" in w for w in dev.warnings)
    assert not any("clinical_sign_off" in e for e in dev.errors)
    prod = validate_paths(
        paths(), RENDERER, (), site=Site(SETTINGS.clinic_name, SETTINGS.clinic_phone, production=True)
    )
    assert any("clinical_sign_off" in e for e in prod.errors)
    assert any("CHECKIN_CLINIC_PHONE" in e for e in prod.errors)
