from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from checkin.core.care_teams import DEFAULT_LADDER, load_care_teams, parse_care_teams
from checkin.errors import ScheduleErrors

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
default_team: spine
teams:
  - id: spine
    name: Spine
    nurses:
      - {name: Dana, email: dana@example.org}
    on_call: {name: Night, phone: "+15555550199"}
    escalation:
      urgent:
        - {after: 0m, notify: [team_email]}
        - {after: 20m, notify: on_call_sms}
"""


def test_it_parses_the_shipped_example_and_ships_no_live_file() -> None:
    example = ROOT / "schedules" / "care-teams.yaml.example"
    teams = parse_care_teams(example.read_text(), str(example))
    assert teams.for_name(None).on_call is not None
    # One source of alert routing: without a real file, CHECKIN_ALERT_EMAILS.
    assert load_care_teams(ROOT / "schedules", ["nurse@hospital.test"]).for_name(None).emails == (
        "nurse@hospital.test",
    )


def test_it_falls_back_to_alert_emails_without_a_file(tmp_path: Path) -> None:
    teams = load_care_teams(tmp_path, ["a@example.org", "b@example.org"])
    assert teams.for_name("anything").emails == ("a@example.org", "b@example.org")
    assert teams.for_name(None).steps("urgent") == DEFAULT_LADDER["urgent"]


def test_it_reads_a_ladder_per_severity() -> None:
    team = parse_care_teams(GOOD, "care-teams.yaml").for_name("spine")
    assert [s.after for s in team.steps("urgent")] == [timedelta(0), timedelta(minutes=20)]
    assert team.steps("urgent")[1].notify == ("on_call_sms",)
    assert team.steps("emergency") == DEFAULT_LADDER["emergency"]  # not given: the default


@pytest.mark.parametrize(
    ("old", "new", "line", "key"),
    [
        ("default_team: spine", "default_team: ortho", 1, "default_team"),
        ("    name: Spine", "    nmae: Spine", 4, "nmae"),
        ("{name: Dana, email: dana@example.org}", "{name: Dana, email: dana}", 6, "email"),
        ('phone: "+15555550199"', "phone: 5555550199", 7, "phone"),
        ("      urgent:", "      severe:", 9, "severe"),
        ("{after: 20m, notify: on_call_sms}", "{after: 20 minutes, notify: on_call_sms}", 11, "after"),
        ("{after: 20m, notify: on_call_sms}", "{after: 20m, notify: pager}", 11, "notify"),
        ("{after: 20m, notify: on_call_sms}", "{after: 0m, notify: on_call_sms}", 11, "after"),
    ],
)
def test_it_names_line_and_key_of_a_mistake(old: str, new: str, line: int, key: str) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(ScheduleErrors) as e:
        parse_care_teams(text, "care-teams.yaml")
    assert [(x.line, x.key) for x in e.value.errors][:1] == [(line, key)]
    assert str(e.value.errors[0]).startswith(f"care-teams.yaml:{line}: {key}:")


def test_it_refuses_on_call_steps_without_an_on_call_contact() -> None:
    text = GOOD.replace('    on_call: {name: Night, phone: "+15555550199"}\n', "")
    with pytest.raises(ScheduleErrors, match="no on_call contact"):
        parse_care_teams(text, "care-teams.yaml")


def test_it_reports_duplicate_keys_like_schedules_do() -> None:
    with pytest.raises(ScheduleErrors, match="duplicate key"):
        parse_care_teams(GOOD + "default_team: spine\n", "care-teams.yaml")
