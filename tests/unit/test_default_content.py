"""The shipped schedules and templates: they load, render, and stay within the SMS rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checkin.content.render import Renderer, sample_context
from checkin.content.validate import validate_schedule_templates
from checkin.core.languages import LANGUAGES
from checkin.core.schedule.load import load_schedules
from checkin.core.schedule.model import QUESTIONS, Schedule

ROOT = Path(__file__).resolve().parents[2]
RENDERER = Renderer(ROOT / "templates")
SCHEDULES = load_schedules(ROOT / "schedules", template_exists=RENDERER.has_message)
IDS = ["lumbar-fusion", "cervical-fusion"]


def schedule(schedule_id: str) -> Schedule:
    return SCHEDULES[schedule_id]


def sms_rows(schedule_id: str, language: str) -> list[dict[str, Any]]:
    _, _, report = validate_schedule_templates(schedule(schedule_id), RENDERER)
    return [r for r in report if r["channel"] == "sms" and r["language"] == language]


def test_it_loads_both_default_schedules() -> None:
    assert set(IDS) <= set(SCHEDULES)


@pytest.mark.parametrize("schedule_id", IDS)
def test_it_renders_every_template_without_errors(schedule_id: str) -> None:
    errors, _, _ = validate_schedule_templates(schedule(schedule_id), RENDERER)
    assert errors == []


@pytest.mark.parametrize("schedule_id", IDS)
def test_it_has_no_template_warnings(schedule_id: str) -> None:
    _, warnings, _ = validate_schedule_templates(schedule(schedule_id), RENDERER)
    assert warnings == []


@pytest.mark.parametrize("schedule_id", IDS)
def test_it_keeps_english_sms_within_two_segments(schedule_id: str) -> None:
    over = [(r["message"], r["segments"]) for r in sms_rows(schedule_id, "en") if r["segments"] > 2]
    assert over == []


@pytest.mark.parametrize("schedule_id", IDS)
def test_it_keeps_english_sms_gsm7(schedule_id: str) -> None:
    ucs2 = [r["message"] for r in sms_rows(schedule_id, "en") if r["encoding"] != "GSM-7"]
    assert ucs2 == []


@pytest.mark.parametrize("schedule_id", IDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_it_has_every_step_in_both_languages_and_channels(schedule_id: str, language: str) -> None:
    missing = [
        (step.message, channel)
        for step in schedule(schedule_id).steps
        for channel in ("sms", "email")
        if not RENDERER.exists(step.message, language, channel)
    ]
    assert missing == []


@pytest.mark.parametrize("schedule_id", IDS)
def test_it_makes_every_check_in_sms_answerable(schedule_id: str) -> None:
    for step in schedule(schedule_id).steps:
        if step.ask is None:
            continue
        en = RENDERER.render_sms(step.message, "en", sample_context("en")).text
        es = RENDERER.render_sms(step.message, "es", sample_context("es")).text
        assert "reply" in en.lower(), step.id
        assert "responda" in es.lower(), step.id


@pytest.mark.parametrize("schedule_id", IDS)
def test_it_signs_every_sms_with_the_clinic_name(schedule_id: str) -> None:
    for step in schedule(schedule_id).steps:
        for language in LANGUAGES:
            text = RENDERER.render_sms(step.message, language, sample_context(language)).text
            assert "Riverside Medical Group" in text, (step.id, language)


def test_it_sends_smoking_messages_only_to_smokers() -> None:
    for schedule_id in IDS:
        smoking = [s for s in schedule(schedule_id).steps if "smoking" in s.message]
        assert smoking and all(s.applies_to(frozenset({"smoker"})) for s in smoking)
        assert not any(s.applies_to(frozenset()) for s in smoking)


def test_it_mentions_the_quitline_in_every_smoking_message() -> None:
    for message in ("smoking_preop", "smoking_postop"):
        assert "1-800-QUIT-NOW" in RENDERER.render_sms(message, "en", sample_context("en")).text


def test_it_uses_only_known_questions_and_one_daily_check_for_two_weeks_after_discharge() -> None:
    for schedule_id in IDS:
        steps = {s.id: s for s in schedule(schedule_id).steps}
        assert all(s.ask in QUESTIONS for s in steps.values() if s.ask)
        daily = steps["daily-check"]
        assert (daily.anchor, daily.days(), daily.ask, daily.priority) == (
            "discharge",
            list(range(1, 15)),
            "symptom_check",
            "high",
        )


def test_it_asks_about_swallowing_only_after_cervical_surgery() -> None:
    daily = {sid: next(s.message for s in schedule(sid).steps if s.id == "daily-check") for sid in IDS}
    assert "swallow" in RENDERER.render_sms(daily["cervical-fusion"], "en", sample_context("en")).text
    assert "swallow" not in RENDERER.render_sms(daily["lumbar-fusion"], "en", sample_context("en")).text


def test_it_reminds_the_day_before_each_booked_follow_up_visit() -> None:
    visits = [s for s in schedule("lumbar-fusion").steps if s.message.startswith("visit_")]
    assert {(s.anchor, s.day) for s in visits} == {
        (kind, -1)
        for kind in (
            "first_visit",
            "six_week_visit",
            "three_month_visit",
            "six_month_visit",
            "one_year_visit",
        )
    }
    # until a visit is booked, its reminder goes the day before the usual visit day
    assert sorted(s.fallback_day or 0 for s in visits) == [14 - 1, 42 - 1, 90 - 1, 180 - 1, 365 - 1]
