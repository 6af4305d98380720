"""Emergency and crisis numbers come from settings, and a patient the defaults do not serve
(a phone outside the US and Canada) is refused until the site sets its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from checkin.app.cli.main import cli
from checkin.config import DEFAULT_EMERGENCY_REGIONS
from checkin.content.catalog import message_context
from checkin.content.render import Renderer
from checkin.core import replies
from checkin.errors import ConfigError
from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[2]
UK = {"CHECKIN_EMERGENCY_NUMBER": "999", "CHECKIN_CRISIS_LINE": "116 123"}


def test_the_defaults_are_the_us_numbers_and_serve_only_us_and_canada() -> None:
    s = make_settings()
    assert (s.emergency_number, s.crisis_line) == ("911", "988")
    assert s.emergency_regions == DEFAULT_EMERGENCY_REGIONS and {"US", "CA"} <= DEFAULT_EMERGENCY_REGIONS
    assert "GB" not in DEFAULT_EMERGENCY_REGIONS


def test_setting_both_numbers_lifts_the_region_limit_and_one_is_not_enough() -> None:
    s = make_settings(**UK)
    assert (s.emergency_number, s.crisis_line, s.emergency_regions) == ("999", "116 123", None)
    assert make_settings(CHECKIN_EMERGENCY_NUMBER="999").emergency_regions == DEFAULT_EMERGENCY_REGIONS


def test_a_malformed_number_names_its_setting() -> None:
    with pytest.raises(ConfigError, match="CHECKIN_CRISIS_LINE"):
        make_settings(CHECKIN_CRISIS_LINE="call mom")


@pytest.mark.parametrize(
    ("message", "language", "expected"),
    [
        ("reply_emergency", "en", "999"),
        ("reply_emergency", "es", "999"),
        ("reply_self_harm", "en", "116 123"),
        ("reply_self_harm", "es", "116 123"),
        ("fever_check", "en", "999"),
        ("wound_check", "es", "999"),
    ],
)
def test_messages_give_the_configured_numbers(message: str, language: str, expected: str) -> None:
    settings = make_settings(**UK)
    ctx = message_context(settings, first_name="Ann", language=language, day=3)
    text = Renderer(ROOT / "templates").render_sms(message, language, ctx).text
    assert expected in text and "911" not in text and "988" not in text


def test_emails_give_the_configured_numbers() -> None:
    settings = make_settings(**UK)
    ctx = message_context(settings, first_name="Ann", language="en", day=3)
    mail = Renderer(ROOT / "templates").render_email("wound_check", "en", ctx)
    assert "999" in mail.text and "999" in mail.html and "911" not in mail.text + mail.html


def test_no_template_hard_codes_911_or_988() -> None:
    offenders = [
        p.relative_to(ROOT)
        for p in (ROOT / "templates").rglob("*.j2")
        if any(n in p.read_text(encoding="utf-8") for n in ("911", "988"))
    ]
    assert offenders == []


def test_the_built_in_fallbacks_use_the_configured_numbers() -> None:
    text = replies.fallback_text(replies.REPLY_SELF_HARM, "en", emergency="999", crisis="116 123")
    assert "116 123" in text and "999" in text and "911" not in text
    assert "999" in replies.generic_fallback("es", emergency="999")


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    base = {
        "CHECKIN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
    }

    def invoke(*args: str, **env: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, ["--env-file", str(tmp_path / "none.env"), *args], env={**base, **env})

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


ENROLL = [
    "enroll",
    "--mrn",
    "1",
    "--first-name",
    "Ann",
    "--phone",
    "+447400123456",
    "--procedure",
    "lumbar-fusion",
    "--surgery-date",
    "2030-03-14",
    "--timezone",
    "Europe/London",
    "--force",  # a fixed date may be far off; the date checks are not what this tests
]


def test_a_uk_patient_is_refused_until_the_numbers_are_set(run) -> None:  # type: ignore[no-untyped-def]
    refused = run(*ENROLL)
    assert refused.exit_code == 1
    assert "is a GB number" in refused.output and "CHECKIN_EMERGENCY_NUMBER" in refused.output
    assert run(*ENROLL, **UK).exit_code == 0


def test_an_import_row_with_a_uk_phone_is_a_bad_row(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(
        "mrn,first_name,phone,procedure,surgery_date\n"
        "1,Ann,+447400123456,lumbar-fusion,2030-01-10\n"
        "2,Bo,6175550124,lumbar-fusion,2030-01-10\n"
    )
    result = run("import", str(path), "--force")  # a fixed date may be far off; not what this tests
    assert result.exit_code == 1 and f"{path}:2:phone: +447400123456 is a GB number" in result.output
    assert run("import", str(path), "--force", **UK).exit_code == 0
