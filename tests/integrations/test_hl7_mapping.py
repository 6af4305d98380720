"""schedules/hl7.yaml: the shipped file is valid; every mistake is reported as file:line: key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from checkin.app.cli.main import cli
from checkin.content.catalog import load_schedules, schedule_files
from checkin.content.hl7_mapping import read_hl7_mapping
from checkin.core.hl7.mapping import FieldPath, parse_mapping
from checkin.errors import ScheduleErrors
from tests.support import ROOT, make_settings

SHIPPED = ROOT / "schedules" / "hl7.yaml"

GOOD = """\
facilities: [RIVERSIDE-SPINE]
timezone: America/Chicago
procedures:
  22612: lumbar-fusion
  "22551": cervical-fusion
appointment_types:
  POSTOP-6W: six_week_visit
"""


def _schedules() -> list:  # type: ignore[type-arg]
    from checkin.app.bootstrap import build_renderer

    settings = make_settings()
    return list(load_schedules(settings.schedules_dir, build_renderer(settings)).values())


def test_the_shipped_mapping_names_the_issue_codes() -> None:
    mapping = read_hl7_mapping(SHIPPED, _schedules())
    assert {c: mapping.procedures[c] for c in ("22612", "22630", "22633")} == dict.fromkeys(
        ("22612", "22630", "22633"), "lumbar-fusion"
    )
    assert mapping.procedures["22551"] == "cervical-fusion"
    assert mapping.timezone == "America/Chicago"
    assert mapping.phone == FieldPath("PID", 13, 1) and str(mapping.email) == "PID-13.4"
    assert mapping.languages["SPA"] == "es" and mapping.smoker_observation == "72166-2"


def test_the_mapping_file_is_not_read_as_a_schedule() -> None:
    assert SHIPPED not in schedule_files(SHIPPED.parent)


def test_numeric_codes_are_text() -> None:
    mapping = parse_mapping(GOOD, "hl7.yaml")
    assert mapping.procedures == {"22612": "lumbar-fusion", "22551": "cervical-fusion"}
    assert mapping.facilities == frozenset({"RIVERSIDE-SPINE"})


@pytest.mark.parametrize(
    ("text", "line", "key", "why"),
    [
        (GOOD + "notes: x\n", 8, "notes", "not a known key"),
        (GOOD.replace("America/Chicago", "EST"), 2, "timezone", "abbreviation"),
        (GOOD.replace("[RIVERSIDE-SPINE]", "[A|B]"), 1, "facilities", "HL7 delimiters"),
        (
            GOOD.replace("  22612: lumbar-fusion", "  22612: lumber-fusion"),
            4,
            "22612",
            "did you mean lumbar-fusion",
        ),
        (GOOD.replace("six_week_visit", "six_weak_visit"), 7, "POSTOP-6W", "did you mean six_week_visit"),
        (GOOD + "fields:\n  phone: PID13\n", 9, "phone", "not a field like PID-13.1"),
        (GOOD + "fields:\n  fax: PID-14\n", 9, "fax", "not a known field"),
        (GOOD + "languages:\n  SPA: fr\n", 9, "SPA", "not one of en, es"),
        (GOOD + "smoker:\n  observation: 72166-2\n", 8, "smoker", "OBX-5 codes"),
        (GOOD + "appointment_types:\n  X: first_visit\n", 8, "appointment_types", "duplicate key"),
        (GOOD.replace("POSTOP-6W", "22612"), 6, "appointment_types", "also a procedure code"),
        ("procedures: {}\n", 1, None, "timezone"),
    ],
)
def test_each_mistake_names_file_line_and_key(text: str, line: int, key: str | None, why: str) -> None:
    with pytest.raises(ScheduleErrors) as caught:
        parse_mapping(
            text,
            "hl7.yaml",
            schedule_ids={"lumbar-fusion", "cervical-fusion"},
            appointment_kinds={"first_visit", "six_week_visit"},
        )
    found = [str(e) for e in caught.value.errors]
    prefix = f"hl7.yaml:{line}:" + (f" {key}:" if key else "")
    assert any(e.startswith(prefix) and why in e for e in found), found


def test_schedules_validate_reports_the_mapping_with_file_and_line(tmp_path: Path) -> None:
    for path in schedule_files(ROOT / "schedules"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "hl7.yaml").write_text(
        GOOD.replace("  22612: lumbar-fusion", "  22612: lumbar"), encoding="utf-8"
    )
    env = {"CHECKIN_SCHEDULES_DIR": str(tmp_path), "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates")}
    result = CliRunner().invoke(
        cli, ["--env-file", str(tmp_path / "none.env"), "schedules", "validate"], env=env
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'hl7.yaml'}:4: 22612: 'lumbar' is not a known schedule" in result.output
