"""The safety verdicts, as a pure function of settings, care teams and schedules."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from checkin.app import safety
from checkin.app.bootstrap import build_schedules
from checkin.config import DEMO_SECRET_KEY, DEV_SECRET_KEY, Settings
from checkin.core.care_teams import default_care_teams, parse_care_teams
from checkin.core.placeholders import placeholder_email, placeholder_phone
from tests.support import ROOT
from tests.support.production import production_env


def settings_of(tmp_path: Path, **changes: str | None) -> Settings:
    env = production_env(tmp_path)
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return Settings.from_env(env)


def all_verdicts(settings: Settings) -> list[safety.Verdict]:
    return safety.verdicts(
        settings,
        default_care_teams(settings.alert_emails),
        build_schedules(settings),
        care_teams_file="CHECKIN_ALERT_EMAILS",
    )


def test_the_production_fixture_is_safe(tmp_path: Path) -> None:
    assert all_verdicts(settings_of(tmp_path)) == []


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"CHECKIN_SECRET_KEY": None}, "CHECKIN_SECRET_KEY"),
        ({"CHECKIN_SECRET_KEY": DEV_SECRET_KEY}, "CHECKIN_SECRET_KEY"),
        ({"CHECKIN_SECRET_KEY": DEMO_SECRET_KEY}, "CHECKIN_SECRET_KEY"),
        ({"CHECKIN_SECRET_KEY": "0123456789abcdef"}, "CHECKIN_SECRET_KEY"),  # 16 characters
        ({"CHECKIN_SECRET_KEY": "x" * 80}, "CHECKIN_SECRET_KEY"),
        # 16 random bytes; a fixed id, so parallel test workers collect the same tests
        pytest.param(
            {"CHECKIN_SECRET_KEY": secrets.token_hex(16)},
            "CHECKIN_SECRET_KEY",
            id="CHECKIN_SECRET_KEY=16-random-bytes",
        ),
        ({"CHECKIN_SMTP_HOST": None}, "CHECKIN_SMTP_HOST"),
        ({"CHECKIN_SMTP_HOST": "smtp.riverside-hospital.test"}, "CHECKIN_SMTP_TLS"),
        ({"CHECKIN_PUBLIC_URL": None}, "CHECKIN_PUBLIC_URL"),
        ({"CHECKIN_PUBLIC_URL": "http://checkin.riverside-hospital.test"}, "CHECKIN_PUBLIC_URL"),
        ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC" + "Z" * 32}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_AUTH_TOKEN": "not-a-twilio-token"}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "MS123"}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_FROM_NUMBER": "+15555550100"}, "TWILIO_FROM_NUMBER"),
        ({"CHECKIN_ALERT_EMAILS": ""}, "CHECKIN_ALERT_EMAILS"),
        ({"CHECKIN_ALERT_EMAILS": "spine-nurses@example.org"}, "CHECKIN_ALERT_EMAILS"),
        ({"CHECKIN_CLINIC_PHONE": "+1 555 010 0100"}, "CHECKIN_CLINIC_PHONE"),
        ({"CHECKIN_CLINIC_NAME": "Spine Center"}, "CHECKIN_CLINIC_NAME"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={str(x)[:12]}" for k, x in v.items()),
)
def test_each_unsafe_setting_is_named(tmp_path: Path, changes: dict[str, str | None], setting: str) -> None:
    found = all_verdicts(settings_of(tmp_path, **changes))
    assert found and {v.setting for v in found} == {setting}, found


def test_smtp_without_tls_is_fine_on_loopback_only(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        assert all_verdicts(settings_of(tmp_path, CHECKIN_SMTP_HOST=host)) == []


@pytest.mark.parametrize(
    "key",
    [secrets.token_urlsafe(48), secrets.token_hex(32), secrets.token_urlsafe(40)],
    ids=["urlsafe-48", "hex-32", "urlsafe-40"],
)
def test_random_keys_of_32_bytes_or_more_pass(key: str) -> None:
    assert safety.key_bits(key) >= safety.MIN_KEY_BITS


def test_placeholder_contacts_in_a_care_team_file_are_named(tmp_path: Path) -> None:
    example = (ROOT / "schedules" / "care-teams.yaml.example").read_text()
    teams = parse_care_teams(example, "care-teams.yaml")
    settings = settings_of(tmp_path)
    found = safety.verdicts(settings, teams, build_schedules(settings), care_teams_file="care-teams.yaml")
    lines = [str(v) for v in found]
    assert any("spine-nurses@example.org is a placeholder" in line for line in lines), lines
    assert any("phone is a placeholder" in line for line in lines), lines
    assert any("no reachable nurse email" in line for line in lines), lines
    assert all(line.startswith("care-teams.yaml: team spine") for line in lines), lines


def test_an_unsigned_schedule_is_named(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, CHECKIN_SCHEDULES_DIR=str(ROOT / "schedules"))
    lines = [str(v) for v in all_verdicts(settings)]
    assert lines == [
        "schedules/cervical-fusion.yaml: clinical_sign_off: by and date are not both set",
        "schedules/lumbar-fusion.yaml: clinical_sign_off: by and date are not both set",
    ]


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("nurse@example.org", True),
        ("nurse@wards.example.com", True),
        ("nurse@EXAMPLE.NET", True),
        ("nurse@example-hospital.org", False),
        ("nurse@notexample.org", False),
    ],
)
def test_placeholder_email(value: str, placeholder: bool) -> None:
    assert placeholder_email(value) is placeholder


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("+15555550199", True),
        ("+1 312 555 0142", True),
        ("(555) 010-0199", True),
        ("+13125554821", False),
        ("+555198765432", False),  # Brazil, not North America
    ],
)
def test_placeholder_phone(value: str, placeholder: bool) -> None:
    assert placeholder_phone(value) is placeholder


def test_production_never_builds_a_console_channel(tmp_path: Path) -> None:
    from checkin.app.bootstrap import email_channel, sms_channel
    from checkin.errors import ConfigError

    settings = settings_of(tmp_path)
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        sms_channel(settings.replace(twilio=None))
    with pytest.raises(ConfigError, match="CHECKIN_SMTP_HOST"):
        email_channel(settings.replace(smtp=None))
    assert "console" in sms_channel(settings.replace(twilio=None, env="development"))[1]


def test_a_malformed_twilio_value_says_the_shape_it_needs(tmp_path: Path) -> None:
    found = all_verdicts(settings_of(tmp_path, TWILIO_AUTH_TOKEN="tok", TWILIO_MESSAGING_SERVICE_SID="MS1"))
    assert [str(v) for v in found] == [
        "TWILIO_AUTH_TOKEN: is not of Twilio's shape: 32 lower-case hex digits",
        "TWILIO_MESSAGING_SERVICE_SID: is not of Twilio's shape: MG followed by 32 lower-case hex digits",
    ]
