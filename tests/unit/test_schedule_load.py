from __future__ import annotations

import hashlib
from datetime import time, timedelta
from pathlib import Path

import pytest

from checkin.core.schedule.load import (
    ScheduleRegistry,
    load_schedule,
    load_schedules,
    parse_duration,
    parse_schedule_text,
)
from checkin.core.schedule.model import Condition
from checkin.errors import ScheduleError, ScheduleErrors

FIXTURES = Path(__file__).parent.parent / "fixtures" / "schedules"

# Line numbers the table below relies on:
# 1 id, 2 name, 3 send_window, 4 steps, 5 "- id", 6 day, 7 time, 8 message, 9+ extra step keys.
BASE = """\
id: demo
name: Demo schedule
send_window: ["09:00", "20:00"]
steps:
  - id: first
    day: 1
    time: "10:00"
    message: hello
"""


def errors_of(text: str, filename: str = "demo.yaml", **kwargs: object) -> list[ScheduleError]:
    with pytest.raises(ScheduleErrors) as info:
        parse_schedule_text(text, filename, **kwargs)  # type: ignore[arg-type]
    return info.value.errors


def with_step_keys(*lines: str) -> str:
    return BASE + "".join(f"    {line}\n" for line in lines)


def replaced(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


CASES: list[tuple[str, str, int, str | None, str]] = [
    ("empty file", "", 1, None, "empty"),
    ("only comments", "# nothing\n", 1, None, "empty"),
    ("tab indentation", replaced("    day: 1", "\tday: 1"), 6, "day", "tab"),
    (
        "yaml syntax",
        replaced("name: Demo schedule", "name: Demo: schedule"),
        2,
        "name",
        "YAML syntax",
    ),
    ("unclosed bracket", BASE + "care_team: [a\n", 9, "care_team", "YAML syntax"),
    ("not a mapping", "- a\n- b\n", 1, None, "mapping"),
    (
        "duplicate top key",
        BASE + "name: Again\n",
        9,
        "name",
        "duplicate key (already set at line 2)",
    ),
    ("duplicate step key", with_step_keys("day: 2"), 9, "day", "duplicate key"),
    ("unknown top key", BASE + "stepz: []\n", 9, "stepz", "did you mean 'steps'"),
    ("unknown step key", with_step_keys("chanel: sms"), 9, "chanel", "did you mean 'channel'"),
    ("day is text", replaced("day: 1", 'day: "one"'), 6, "day", "whole number"),
    ("day is bool", replaced("day: 1", "day: yes"), 6, "day", "whole number"),
    ("every is float", with_step_keys("every: 1.5", "until: 4"), 9, "every", "whole number"),
    ("until is bool", with_step_keys("every: 1", "until: true"), 10, "until", "whole number"),
    ("missing id", BASE.replace("id: demo\n", ""), 1, "id", "missing required key"),
    ("missing name", replaced("name: Demo schedule\n", ""), 1, "name", "missing required key"),
    ("missing steps", BASE.split("steps:")[0], 1, "steps", "missing required key"),
    ("empty steps", BASE.split("steps:")[0] + "steps: []\n", 4, "steps", "non-empty list"),
    ("missing step id", replaced("  - id: first\n    day", "  - day"), 5, "id", "missing"),
    ("missing step day", replaced("    day: 1\n", ""), 5, "day", "missing"),
    ("missing step time", replaced('    time: "10:00"\n', ""), 5, "time", "missing"),
    ("missing step message", replaced("    message: hello\n", ""), 5, "message", "missing"),
    (
        "duplicate step id",
        BASE + '  - id: first\n    day: 2\n    time: "10:00"\n    message: hello\n',
        9,
        "id",
        "duplicate step id 'first' (first at line 5)",
    ),
    (
        "until before day",
        with_step_keys("every: 1", "until: 0"),
        10,
        "until",
        "before the first day",
    ),
    ("until without every", with_step_keys("until: 5"), 9, "until", "needs every"),
    ("every without until", with_step_keys("every: 2"), 9, "every", "needs until"),
    ("every zero", with_step_keys("every: 0", "until: 5"), 9, "every", "1 or more"),
    ("hour 25", replaced('"10:00"', '"25:00"'), 7, "time", "hour must be 00-23"),
    ("9am", replaced('"10:00"', '"9am"'), 7, "time", '"HH:MM"'),
    ("minute 60", replaced('"10:00"', '"10:60"'), 7, "time", "minutes must be 00-59"),
    (
        "unquoted time",
        replaced('"10:00"', "10:00"),
        7,
        "time",
        'time must be a quoted "HH:MM" string',
    ),
    ("time outside window", replaced('"10:00"', '"08:30"'), 7, "time", "outside the send window"),
    ("time at window end", replaced('"10:00"', '"20:00"'), 7, "time", "outside the send window"),
    (
        "window reversed",
        replaced('["09:00", "20:00"]', '["20:00", "09:00"]'),
        3,
        "send_window",
        "before the end",
    ),
    (
        "window equal",
        replaced('["09:00", "20:00"]', '["09:00", "09:00"]'),
        3,
        "send_window",
        "before the end",
    ),
    (
        "window not a list",
        replaced('["09:00", "20:00"]', '"09:00-20:00"'),
        3,
        "send_window",
        "list of two",
    ),
    (
        "window one item",
        replaced('["09:00", "20:00"]', '["09:00"]'),
        3,
        "send_window",
        "list of two",
    ),
    (
        "window bad time",
        replaced('["09:00", "20:00"]', '["9am", "20:00"]'),
        3,
        "send_window",
        '"9am"',
    ),
    ("unknown question", with_step_keys("ask: pain"), 9, "ask", "unknown question 'pain'"),
    ("question is bool", with_step_keys("ask: no"), 9, "ask", "unknown question"),
    ("unknown when", with_step_keys("when: smokr"), 9, "when", "did you mean 'smoker'"),
    (
        "unknown when in list",
        with_step_keys('when: [smoker, "not diabetc"]'),
        9,
        "when",
        "'diabetc'",
    ),
    ("malformed when", with_step_keys('when: "not"'), 9, "when", "not a condition"),
    ("when is a number", with_step_keys("when: 3"), 9, "when", "attribute"),
    (
        "duration with words",
        with_step_keys("ask: pain_scale", "remind_after: 4 hours"),
        10,
        "remind_after",
        "duration",
    ),
    (
        "negative duration",
        with_step_keys("ask: pain_scale", "missed_after: -4h"),
        10,
        "missed_after",
        "duration",
    ),
    ("unit only", with_step_keys("expires_after: h"), 9, "expires_after", "duration"),
    ("duration is a number", with_step_keys("expires_after: 30"), 9, "expires_after", "duration"),
    ("zero duration", with_step_keys("expires_after: 0h"), 9, "expires_after", "longer than zero"),
    (
        "remind without ask",
        with_step_keys("remind_after: 4h"),
        9,
        "remind_after",
        "asks a question",
    ),
    (
        "remind after missed",
        with_step_keys("ask: pain_scale", "remind_after: 5h", "missed_after: 4h"),
        10,
        "remind_after",
        "shorter than missed_after",
    ),
    ("bad channel", with_step_keys("channel: fax"), 9, "channel", "sms, email or both"),
    ("catch_up not bool", with_step_keys('catch_up: "yes"'), 9, "catch_up", "true or false"),
    (
        "in_sms not bool",
        BASE + 'procedure_name_in_sms: "no"\n',
        9,
        "procedure_name_in_sms",
        "true or false",
    ),
    (
        "id not the file name",
        replaced("id: demo", "id: other"),
        1,
        "id",
        "must match the file name 'demo'",
    ),
    ("step id not a slug", replaced("id: first", "id: First Step"), 5, "id", "step id"),
    (
        "message not a name",
        replaced("message: hello", "message: ../etc"),
        8,
        "message",
        "template name",
    ),
    (
        "sign-off unknown key",
        BASE + "clinical_sign_off:\n  by: Dr X\n  when: 2024-01-01\n",
        11,
        "when",
        "unknown key in clinical_sign_off",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_it_names_line_and_key_of_each_mistake(text: str, line: int, key: str | None, problem: str) -> None:
    errors = errors_of(text)
    matching = [e for e in errors if e.line == line and e.key == key and problem in e.problem]
    assert matching, "\n".join(str(e) for e in errors)


def test_it_rejects_an_id_that_is_not_a_slug() -> None:
    text = replaced("id: demo", "id: Demo_X")
    errors = errors_of(text, "Demo_X.yaml")
    assert [(e.line, e.key) for e in errors] == [(1, "id")]
    assert "slug" in errors[0].problem


def test_it_reports_an_unknown_template() -> None:
    errors = errors_of(BASE, template_exists=lambda name: name != "hello")
    assert [(e.line, e.key, e.problem) for e in errors] == [(8, "message", "unknown template 'hello'")]


def test_it_reports_every_problem_in_a_file_in_line_order() -> None:
    text = BASE.replace('"10:00"', '"25:00"') + "stepz: 1\n" + "name: Again\n"
    errors = errors_of(text.replace("day: 1", 'day: "one"'))
    assert [(e.line, e.key) for e in errors] == [
        (6, "day"),
        (7, "time"),
        (9, "stepz"),
        (10, "name"),
    ]


def test_it_reports_every_tab_not_just_the_first() -> None:
    text = BASE.replace("    day: 1", "\tday: 1").replace("    message", "\tmessage")
    assert [(e.line, e.key) for e in errors_of(text)] == [(6, "day"), (8, "message")]


def test_it_formats_an_error_as_file_line_key_problem() -> None:
    (error,) = errors_of(replaced('"10:00"', '"25:00"'), "schedules/demo.yaml")
    assert str(error) == 'schedules/demo.yaml:7: time: "25:00" is not a time: the hour must be 00-23'


def test_it_hints_at_the_sexagesimal_reading_of_an_unquoted_time() -> None:
    (error,) = errors_of(replaced('"10:00"', "10:00"))
    assert "unquoted 10:00 as the number 600" in error.problem


def test_it_loads_a_valid_schedule() -> None:
    schedule = parse_schedule_text(BASE, "demo.yaml")
    assert schedule.id == "demo"
    assert schedule.name == "Demo schedule"
    assert schedule.send_window == (time(9), time(20))
    (step,) = schedule.steps
    assert (step.id, step.day, step.time, step.message, step.line) == (
        "first",
        1,
        time(10),
        "hello",
        5,
    )


def test_it_defaults_the_send_window_to_nine_to_eight() -> None:
    schedule = parse_schedule_text(BASE.replace('send_window: ["09:00", "20:00"]\n', ""), "demo.yaml")
    assert schedule.send_window == (time(9), time(20))


def test_it_maps_every_step_key_to_the_model() -> None:
    schedule = load_schedule(FIXTURES / "valid" / "demo.yaml")
    (step,) = schedule.steps
    assert (step.every, step.until, step.ask, step.channel) == (1, 3, "fever_check", "sms")
    assert step.remind_after == timedelta(hours=4)
    assert step.missed_after == timedelta(days=1)
    assert step.expires_after == timedelta(hours=1, minutes=30)
    assert step.when == (Condition("smoker", negate=True), Condition("brace"))
    assert schedule.care_team == "Spine nurses"
    assert schedule.procedure_name_in_sms is False


def test_it_accepts_description_and_clinical_sign_off() -> None:
    text = BASE + "description: For tests.\nclinical_sign_off:\n  by: Dr Ada\n  date: 2024-05-01\n"
    assert parse_schedule_text(text, "demo.yaml").id == "demo"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4h", timedelta(hours=4)), ("30m", timedelta(minutes=30)), ("2d", timedelta(days=2)),
     ("1h30m", timedelta(hours=1, minutes=30))],
)  # fmt: skip
def test_it_parses_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == (expected, None)


def test_it_versions_a_file_by_the_hash_of_its_bytes() -> None:
    path = FIXTURES / "valid" / "demo.yaml"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert load_schedule(path).version == expected


def test_it_changes_the_version_when_the_file_changes() -> None:
    a = parse_schedule_text(BASE, "demo.yaml").version
    b = parse_schedule_text(BASE + "# edited\n", "demo.yaml").version
    assert a != b


def test_it_records_the_source_path() -> None:
    path = FIXTURES / "valid" / "demo.yaml"
    assert load_schedule(path).source == str(path)


def test_it_loads_a_directory_keyed_by_id() -> None:
    assert list(load_schedules(FIXTURES / "valid")) == ["demo"]


def test_it_reports_problems_of_every_file_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(BASE.replace('"10:00"', '"25:00"'))
    (tmp_path / "other.yaml").write_text(BASE.replace("id: demo", "id: other") + "stepz: 1\n")
    with pytest.raises(ScheduleErrors) as info:
        load_schedules(tmp_path)
    assert [(Path(e.file).name, e.line, e.key) for e in info.value.errors] == [
        ("demo.yaml", 7, "time"),
        ("other.yaml", 9, "stepz"),
    ]


def test_it_reports_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_bytes(b"id: demo\nname: \xff\n")
    with pytest.raises(ScheduleErrors) as info:
        load_schedule(path)
    assert [(e.line, e.problem) for e in info.value.errors] == [(2, "is not UTF-8 text")]


def test_it_reports_the_fixture_errors_with_file_and_line() -> None:
    with pytest.raises(ScheduleErrors) as info:
        load_schedule(FIXTURES / "invalid" / "broken.yaml")
    assert [(e.line, e.key) for e in info.value.errors] == [(4, "stepz"), (8, "time")]


def test_it_keeps_the_previous_valid_version_when_a_reload_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE)
    registry = ScheduleRegistry(tmp_path)
    assert registry.reload() == []
    good = registry.get("demo")

    path.write_text(BASE.replace('"10:00"', '"25:00"'))
    errors = registry.reload()

    assert [(e.line, e.key) for e in errors] == [(7, "time")]
    assert registry.get("demo") is good


def test_it_serves_the_new_version_after_a_valid_reload(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE)
    registry = ScheduleRegistry(tmp_path)
    registry.reload()
    old = registry.get("demo")
    path.write_text(BASE.replace('"10:00"', '"11:00"'))

    assert registry.reload() == []
    assert registry.get("demo").steps[0].time == time(11)
    assert registry.get_version("demo", old.version) is old


def test_it_does_not_load_a_new_file_that_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("id: demo\n")
    registry = ScheduleRegistry(tmp_path)
    assert registry.reload()
    assert "demo" not in registry


def test_it_drops_a_schedule_whose_file_was_deleted(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE)
    registry = ScheduleRegistry(tmp_path)
    registry.reload()
    path.unlink()
    registry.reload()
    assert list(registry) == []
