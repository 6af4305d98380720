from __future__ import annotations

from pathlib import Path

import pytest

from checkin.config import DEV_SECRET_KEY, SETTINGS, Settings, load_settings
from checkin.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_it_has_working_defaults_for_a_laptop() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///checkin.store.db"
    assert s.schedules_dir == Path("schedules")
    assert s.templates_dir == Path("templates")
    assert s.twilio is None and s.smtp is None
    assert any("TWILIO_ACCOUNT_SID" in w for w in s.warnings)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CHECKIN_DEFAULT_TIMEZONE": "Mars/Olympus"}, "CHECKIN_DEFAULT_TIMEZONE"),
        ({"CHECKIN_DATABASE_URL": "not a url"}, "CHECKIN_DATABASE_URL"),
        ({"CHECKIN_DATABASE_URL": "oracle://x/y"}, "CHECKIN_DATABASE_URL"),
        ({"CHECKIN_SMTP_PORT": "twenty-five"}, "CHECKIN_SMTP_PORT"),
        ({"CHECKIN_SMTP_PORT": "70000"}, "CHECKIN_SMTP_PORT"),
        ({"CHECKIN_SMS_RATE": "fast"}, "CHECKIN_SMS_RATE"),
        ({"CHECKIN_DB_MAX_CONNECTIONS": "3"}, "CHECKIN_DB_MAX_CONNECTIONS"),
        ({"CHECKIN_DB_MAX_CONNECTIONS": "501"}, "CHECKIN_DB_MAX_CONNECTIONS"),
        ({"CHECKIN_DB_MAX_CONNECTIONS": "lots"}, "CHECKIN_DB_MAX_CONNECTIONS"),
        ({"CHECKIN_SMTP_TLS": "maybe"}, "CHECKIN_SMTP_TLS"),
        ({"CHECKIN_PUBLIC_URL": "ftp://x"}, "CHECKIN_PUBLIC_URL"),
        ({"CHECKIN_DEFAULT_REGION": "ZZ"}, "CHECKIN_DEFAULT_REGION"),
        ({"CHECKIN_ENV": "staging"}, "CHECKIN_ENV"),
        ({"CHECKIN_SECRET_KEY": "short"}, "CHECKIN_SECRET_KEY"),
        ({"CHECKIN_ALERT_EMAILS": "nurse@example.org, nobody"}, "CHECKIN_ALERT_EMAILS"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM_NUMBER"),
        (
            {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": "555"},
            "TWILIO_FROM_NUMBER",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_it_names_the_variable_with_a_bad_value(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env(env)
    assert e.value.variable == variable
    assert str(e.value).startswith(variable)


def test_production_settings_load_so_that_every_verdict_can_be_reported() -> None:
    # The development key and a missing Twilio account are refused at start-up, all verdicts at
    # once (tests/safety); loading alone must not stop at the first.
    s = Settings.from_env({"CHECKIN_ENV": "production"})
    assert s.secret_key == DEV_SECRET_KEY and s.twilio is None


def test_it_reads_the_database_url_from_a_file(tmp_path: Path) -> None:
    url = tmp_path / "db-url"
    url.write_text("postgresql+psycopg://checkin:s3cret@db:5432/checkin\n")
    s = Settings.from_env({"CHECKIN_DATABASE_URL_FILE": str(url)})
    assert s.database_url == "postgresql+psycopg://checkin:s3cret@db:5432/checkin"


def test_it_caps_a_process_at_40_database_connections_unless_told_otherwise() -> None:
    assert Settings.from_env({}).db_max_connections == 40 == Settings().db_max_connections
    assert Settings.from_env({"CHECKIN_DB_MAX_CONNECTIONS": "25"}).db_max_connections == 25
    with pytest.raises(ConfigError, match=r"^CHECKIN_DB_MAX_CONNECTIONS.*outside 4\.\.500"):
        Settings.from_env({"CHECKIN_DB_MAX_CONNECTIONS": "2"})


def test_it_reads_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("a-very-long-secret-from-a-file\n")
    s = Settings.from_env({"CHECKIN_SECRET_KEY_FILE": str(secret)})
    assert s.secret_key == "a-very-long-secret-from-a-file"


def test_it_names_an_unreadable_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"CHECKIN_SECRET_KEY_FILE": str(tmp_path / "missing")})
    assert e.value.variable == "CHECKIN_SECRET_KEY_FILE"


def test_it_builds_twilio_and_smtp_settings() -> None:
    s = Settings.from_env(
        {
            "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
            "TWILIO_AUTH_TOKEN": "tok",
            "TWILIO_FROM_NUMBER": "+15005550006",
            "CHECKIN_TWILIO_API_URL": "http://127.0.0.1:4010/",
            "CHECKIN_SMTP_HOST": "mail.example.org",
            "CHECKIN_SMTP_TLS": "SSL",
            "CHECKIN_SMTP_PORT": "465",
            "CHECKIN_EMAIL_FROM": "care@example.org",
        }
    )
    assert s.twilio is not None and s.twilio.api_url == "http://127.0.0.1:4010"
    assert s.smtp is not None and s.smtp.tls == "ssl" and s.smtp.port == 465


def test_it_lets_the_environment_override_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CHECKIN_CLINIC_NAME=From File\nCHECKIN_DEFAULT_TIMEZONE=Europe/London\n")
    monkeypatch.setenv("CHECKIN_DEFAULT_TIMEZONE", "Asia/Tokyo")
    s = load_settings(env_file)
    assert s.clinic_name == "From File"
    assert s.default_timezone == "Asia/Tokyo"


def test_it_documents_every_setting_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert missing == []


def test_it_uses_the_development_key_only_with_a_warning() -> None:
    s = Settings.from_env({})
    assert s.secret_key == DEV_SECRET_KEY
    assert any("CHECKIN_SECRET_KEY" in w for w in s.warnings)
