"""Broken templates: `schedules validate` reports each one as file:line: what (step ...), keeps
going through every file, and the service refuses to load schedules that use them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from checkin.app.cli.main import cli
from checkin.content.catalog import load_schedules
from checkin.content.render import Renderer
from checkin.errors import ScheduleErrors

ROOT = Path(__file__).resolve().parents[2]

# (template to break, what to write or None to delete it, what the report must say)
BREAKAGES = [
    ("sms/en/daily_check.txt.j2", "Hi {{ first_name }\n", "daily_check.txt.j2:1: syntax error"),
    (
        "sms/en/pain_check.txt.j2",
        "Hi {{ first_name }}\n{% if day > 3 %}\nmore\n",
        "pain_check.txt.j2:3: syntax error: Unexpected end of template",
    ),
    (
        "sms/en/shower.txt.j2",
        "Hi {{ first_name }}\nfrom {{ clinc_name }}\n",
        "shower.txt.j2:2: undefined variable: 'clinc_name' is undefined (step shower)",
    ),
    (
        "sms/es/driving.txt.j2",
        "Hola\n\n{{ first_name.__class__.__mro__ }}\n",
        "sms/es/driving.txt.j2:3: not allowed in the sandbox",
    ),
    ("sms/en/no_nsaids.txt.j2", "", "no_nsaids.txt.j2:1: renders to an empty message (step no-nsaids)"),
    ("sms/es/physical_therapy.txt.j2", None, "message 'physical_therapy' has no es sms template"),
    (
        "email/en/daily_check.txt.j2",
        "Hello\n{% for x in range(3) %}{{ x.nope() }}{% endfor %}",
        "email/en/daily_check.txt.j2:2: undefined variable",
    ),
]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "schedules", tmp_path / "schedules")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    for name, text, _ in BREAKAGES:
        path = tmp_path / "templates" / name
        if text is None:
            path.unlink()
        else:
            path.write_text(text)
    return tmp_path


def _validate(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--env-file", str(root / "none.env"), "schedules", "validate"],
        env={
            "CHECKIN_SCHEDULES_DIR": str(root / "schedules"),
            "CHECKIN_TEMPLATES_DIR": str(root / "templates"),
        },
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_validate_reports_every_template_problem_with_file_line_and_step(broken: Path) -> None:
    code, output = _validate(broken)
    assert code == 1
    assert "Traceback" not in output
    for _, _, expected in BREAKAGES:
        assert expected in output, f"{expected!r} not reported:\n{output}"
    # Located in the template file (or, for a missing one, at the step in the schedule file).
    assert f"{broken}/templates/sms/en/daily_check.txt.j2:1: " in output
    assert f"{broken}/schedules/lumbar-fusion.yaml:" in output
    # It went on to the other schedule file after the first one's problems.
    assert f"{broken}/schedules/cervical-fusion.yaml:" in output


def test_validate_still_lists_the_sms_that_rendered(broken: Path) -> None:
    _, output = _validate(broken)
    assert "sms es daily_check" in output  # the Spanish one is fine
    assert re.search(r"sms en daily_check +- +- segment\(s\)", output), output


def test_every_line_of_the_report_reads_file_line_what(broken: Path) -> None:
    _, output = _validate(broken)
    errors = [x for x in output.splitlines() if x.startswith(str(broken)) and "(step " in x]
    assert len(errors) >= len(BREAKAGES)
    for line in errors:
        path, lineno, what = line.split(":", 2)
        assert Path(path).is_file() and lineno.isdigit() and what.strip(), line


def test_the_service_refuses_to_load_schedules_whose_templates_do_not_render(broken: Path) -> None:
    with pytest.raises(ScheduleErrors) as info:
        load_schedules(broken / "schedules", Renderer(broken / "templates"))
    text = str(info.value)
    assert "daily_check.txt.j2:1: syntax error" in text
    assert "message 'physical_therapy' has no es sms template" in text


def test_the_default_content_loads() -> None:
    loaded = load_schedules(ROOT / "schedules", Renderer(ROOT / "templates"))
    assert {"lumbar-fusion", "cervical-fusion"} <= set(loaded)
