from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from checkin.content.render import CONTEXT_VARIABLES, Renderer, sample_context
from checkin.content.validate import validate_schedule_templates
from checkin.core.schedule.model import Schedule, Step
from checkin.errors import TemplateError


def write(root: Path, files: dict[str, str]) -> Renderer:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Renderer(root)


EMAIL_EN = {
    "email/en/base.html.j2": "<html><body>{% block content %}{% endblock %}</body></html>",
    "email/en/hi.subject.j2": "Hello\n{{ first_name }}\n",
    "email/en/hi.txt.j2": "Hi {{ first_name }} <3\n",
    "email/en/hi.html.j2": '{% extends "email/en/base.html.j2" %}'
    "{% block content %}<p>Hi {{ first_name }}</p>{% endblock %}",
}


def schedule_of(*messages: str, asks: bool = False, in_sms: bool = False) -> Schedule:
    steps = tuple(
        Step(id=f"s{i}", day=1, time=time(10), message=m, ask="pain_scale" if asks else None)
        for i, m in enumerate(messages)
    )
    return Schedule("demo", "Demo", "v", (time(9), time(20)), steps, procedure_name_in_sms=in_sms)


def both_languages(name: str, en: str, es: str) -> dict[str, str]:
    files = {f"sms/en/{name}.txt.j2": en, f"sms/es/{name}.txt.j2": es}
    for lang in ("en", "es"):
        files[f"email/{lang}/{name}.subject.j2"] = "S"
        files[f"email/{lang}/{name}.txt.j2"] = "T"
        files[f"email/{lang}/{name}.html.j2"] = "<p>H</p>"
    return files


def test_it_renders_and_normalizes_an_sms(tmp_path: Path) -> None:
    r = write(
        tmp_path,
        {"sms/en/hi.txt.j2": "  Hi {{ first_name }} \u2013 it\u2019s {{ clinic_name }}\u2026\n"},
    )
    sms = r.render_sms("hi", "en", sample_context("en"))
    assert sms.text == "Hi Alex - it's Riverside Medical Group..."
    assert (sms.info.encoding, sms.info.segments) == ("GSM-7", 1)


def test_it_does_not_escape_sms_text(tmp_path: Path) -> None:
    r = write(tmp_path, {"sms/en/hi.txt.j2": "Hi {{ first_name }}"})
    assert r.render_sms("hi", "en", {"first_name": "<b>&"}).text == "Hi <b>&"


def test_it_raises_template_error_naming_the_template_for_an_undefined_variable(
    tmp_path: Path,
) -> None:
    r = write(tmp_path, {"sms/en/hi.txt.j2": "Hi {{ frist_name }}"})
    with pytest.raises(TemplateError) as info:
        r.render_sms("hi", "en", sample_context("en"))
    assert info.value.template == "sms/en/hi.txt.j2"
    assert "frist_name" in info.value.problem


def test_it_reports_a_syntax_error_with_its_line(tmp_path: Path) -> None:
    r = write(tmp_path, {"sms/en/hi.txt.j2": "Hi\n{{ first_name }\n"})
    with pytest.raises(TemplateError) as info:
        r.render_sms("hi", "en", sample_context("en"))
    assert info.value.template == "sms/en/hi.txt.j2"
    assert info.value.line == 2 and str(info.value).startswith("sms/en/hi.txt.j2:2: syntax error")


def test_it_reports_a_missing_template(tmp_path: Path) -> None:
    r = write(tmp_path, {})
    with pytest.raises(TemplateError) as info:
        r.render_sms("nope", "en", sample_context("en"))
    assert info.value.template == "sms/en/nope.txt.j2"
    assert "not found" in info.value.problem


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ first_name.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_it_blocks_sandbox_escapes(tmp_path: Path, source: str) -> None:
    r = write(tmp_path, {"sms/en/evil.txt.j2": source})
    with pytest.raises(TemplateError) as info:
        r.render_sms("evil", "en", sample_context("en"))
    assert info.value.template == "sms/en/evil.txt.j2"
    assert "sandbox" in info.value.problem


def test_it_blocks_mutating_the_context(tmp_path: Path) -> None:
    r = write(tmp_path, {"sms/en/m.txt.j2": "{{ items.append(1) }}"})
    with pytest.raises(TemplateError) as info:
        r.render_sms("m", "en", {"items": []})
    assert "sandbox" in info.value.problem


def test_it_autoescapes_html_email(tmp_path: Path) -> None:
    r = write(tmp_path, EMAIL_EN)
    context = sample_context("en") | {"first_name": "<script>alert(1)</script>"}
    email = r.render_email("hi", "en", context)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html


def test_it_leaves_plain_text_email_unescaped(tmp_path: Path) -> None:
    r = write(tmp_path, EMAIL_EN)
    email = r.render_email("hi", "en", sample_context("en") | {"first_name": "A&B"})
    assert email.text == "Hi A&B <3\n"


def test_it_keeps_the_subject_on_one_line(tmp_path: Path) -> None:
    r = write(tmp_path, EMAIL_EN)
    assert r.render_email("hi", "en", sample_context("en")).subject == "Hello Alex"


def test_it_says_whether_a_template_exists_per_language_and_channel(tmp_path: Path) -> None:
    r = write(tmp_path, {"sms/en/hi.txt.j2": "Hi", **EMAIL_EN})
    assert r.exists("hi", "en")
    assert not r.exists("hi", "es")
    assert r.exists("hi", "en", "email")
    assert not r.exists("../hi", "en")
    assert r.has_message("hi") and not r.has_message("bye")


def test_it_gives_a_sample_context_with_every_contract_variable() -> None:
    for language in ("en", "es"):
        assert set(sample_context(language)) == set(CONTEXT_VARIABLES)


def test_it_finds_no_problem_in_good_templates(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("hi", "Hi {{ first_name }}", "Hola {{ first_name }}"))
    errors, warnings, report = validate_schedule_templates(schedule_of("hi"), r)
    assert (errors, warnings) == ([], [])
    assert {(row["language"], row["channel"]) for row in report} == {
        ("en", "sms"),
        ("es", "sms"),
        ("en", "email"),
        ("es", "email"),
    }


def test_it_reports_a_missing_spanish_template(tmp_path: Path) -> None:
    files = both_languages("hi", "Hi", "Hola")
    del files["sms/es/hi.txt.j2"]
    errors, _, _ = validate_schedule_templates(schedule_of("hi"), write(tmp_path, files))
    assert len(errors) == 1 and "sms/es/hi.txt.j2" in errors[0]


def test_it_reports_an_sms_naming_the_procedure(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("hi", "After your spinal fusion", "Tras su cirugía de columna"))
    errors, _, _ = validate_schedule_templates(schedule_of("hi"), r)
    assert len(errors) == 2
    assert "fusion" in errors[0] and "spinal" in errors[0]
    assert "columna" in errors[1]


def test_it_allows_the_procedure_name_when_the_schedule_opts_in(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("hi", "After your spinal fusion", "Tras su fusión"))
    errors, _, _ = validate_schedule_templates(schedule_of("hi", in_sms=True), r)
    assert errors == []


def test_it_warns_about_an_accidental_ucs2_character_and_names_it(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("hi", "Hi \u2022 there", "Hola"))
    _, warnings, report = validate_schedule_templates(schedule_of("hi"), r)
    assert len(warnings) == 1
    assert "'\u2022' (U+2022) at position 3" in warnings[0]
    assert "sms/en/hi.txt.j2" in warnings[0]
    (en_sms,) = [row for row in report if row["language"] == "en" and row["channel"] == "sms"]
    assert en_sms["encoding"] == "UCS-2"


def test_it_does_not_warn_about_spanish_accents(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("hi", "Hi", "Hola, ¿cómo está? Envíe SÍ."))
    _, warnings, report = validate_schedule_templates(schedule_of("hi"), r)
    assert warnings == []
    (es_sms,) = [row for row in report if row["language"] == "es" and row["channel"] == "sms"]
    assert es_sms["encoding"] == "UCS-2"


def test_it_warns_when_an_english_sms_is_over_two_segments(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("hi", "a" * 307, "Hola"))
    _, warnings, _ = validate_schedule_templates(schedule_of("hi"), r)
    assert len(warnings) == 1 and "3 segments" in warnings[0]


def test_it_allows_four_ucs2_segments_in_spanish_but_not_five(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("a", "Hi", "á" * 268) | both_languages("b", "Hi", "á" * 269))
    _, warnings, _ = validate_schedule_templates(schedule_of("a", "b"), r)
    assert len(warnings) == 1 and "sms/es/b.txt.j2: 5 segments" in warnings[0]


def test_it_warns_when_a_check_in_does_not_say_how_to_reply(tmp_path: Path) -> None:
    r = write(tmp_path, both_languages("q", "How is your pain?", "¿Cuánto dolor? Responda 0-10."))
    _, warnings, _ = validate_schedule_templates(schedule_of("q", asks=True), r)
    assert len(warnings) == 1 and "sms/en/q.txt.j2" in warnings[0] and "reply" in warnings[0]


def test_it_only_checks_the_channel_a_step_is_pinned_to(tmp_path: Path) -> None:
    r = write(tmp_path, {"sms/en/hi.txt.j2": "Hi", "sms/es/hi.txt.j2": "Hola"})
    step = Step(id="s", day=1, time=time(10), message="hi", channel="sms")
    schedule = Schedule("demo", "Demo", "v", (time(9), time(20)), (step,))
    errors, _, report = validate_schedule_templates(schedule, r)
    assert errors == [] and {row["channel"] for row in report} == {"sms"}
