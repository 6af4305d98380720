"""A template cannot spend unbounded time or build unbounded output: each runaway is a
TemplateError naming the template and line, and ordinary templates render as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkin.content.render import Renderer, sample_context
from checkin.errors import TemplateError


def renderer(tmp_path: Path, source: str, **limits: float) -> Renderer:
    (tmp_path / "sms" / "en").mkdir(parents=True, exist_ok=True)
    (tmp_path / "sms" / "en" / "t.txt.j2").write_text(source)
    return Renderer(tmp_path, **limits)  # type: ignore[arg-type]


def render(r: Renderer) -> str:
    return r.render_sms("t", "en", sample_context("en")).text


@pytest.mark.parametrize(
    "source",
    [
        "Hi\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "Hi\n{% for i in range(100000) %}{% for c in 'abcdefghij' * 10000 %}{% endfor %}{% endfor %}",
        "Hi\n{% macro f(n) %}{% for i in range(100000) %}{{ '' }}{% endfor %}{% endmacro %}"
        "{% for i in range(100000) %}{{ f(i) }}{% endfor %}",
    ],
)
def test_a_template_that_runs_too_long_is_stopped(tmp_path: Path, source: str) -> None:
    r = renderer(tmp_path, source, time_limit=0.2)
    with pytest.raises(TemplateError) as info:
        render(r)
    assert info.value.template == "sms/en/t.txt.j2"
    assert info.value.line == 2
    assert "more than the 0.2 s CPU limit" in info.value.problem


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("{{ 'x' * 100000000 }}", "repeating a value 100,000,000 times"),
        ("{{ 100000000 * 'x' }}", "repeating a value"),
        ("{{ 'x'|center(100000000) }}", "the center filter"),
        ("{{ 'x'|indent(100000000, true) }}", "the indent filter"),
        ("{{ '%0100000000d' % 1 }}", "a format width"),
        ("{{ '%0100000000d'|format(1) }}", "a format width"),
        ("{{ '{:>100000000}'.format(1) }}", "a format width"),
        ("{{ 'x'.ljust(100000000) }}", "a call with 100,000,000"),
        ("{{ ('x' * 1000)|replace('x', 'y' * 1000) }}", "the replace filter"),
        ("{{ 10 ** 100000000 }}", "raising to the power"),
        ("{% set a = 'x' * 150000 %}{{ a ~ a }}", "the output exceeded"),
        ("{% for i in range(100000) %}{{ 'abc' }}{% endfor %}", "the output exceeded"),
    ],
)
def test_a_template_cannot_build_a_huge_output(tmp_path: Path, source: str, what: str) -> None:
    r = renderer(tmp_path, source)
    with pytest.raises(TemplateError) as info:
        render(r)
    assert info.value.template == "sms/en/t.txt.j2"
    assert what in info.value.problem
    assert "200,000" in info.value.problem or "power" in info.value.problem


def test_ordinary_templates_still_render(tmp_path: Path) -> None:
    r = renderer(
        tmp_path,
        "Hi {{ first_name }}, {{ 'day' ~ ' ' ~ day }}: {{ '%s-%02d' % ('a', 3) }} "
        "{{ '{}!'.format(clinic_name) }} {{ 'x'|center(5) }}{{ '-' * 3 }} {{ 2 ** 10 }}"
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ 'aXb'|replace('X', '+') }}",
    )
    assert render(r) == "Hi Alex, day 1: a-03 Riverside Medical Group!   x  --- 1024012 a+b"


def test_the_limits_are_per_renderer(tmp_path: Path) -> None:
    r = renderer(tmp_path, "{{ 'x' * 500 }}", max_output=100)
    with pytest.raises(TemplateError, match="100-character"):
        render(r)
    assert len(render(renderer(tmp_path, "{{ 'x' * 500 }}"))) == 500


LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    ("source", "other"),
    [
        ("Hi\n{% include 'sms/en/loop.txt.j2' %}", LOOP),
        (
            "Hi\n{% import 'sms/en/loop.txt.j2' as l %}{{ l.f() }}",
            "{% macro f() %}" + LOOP + "{% endmacro %}",
        ),
        (
            "Hi\n{% from 'sms/en/loop.txt.j2' import f %}{{ f() }}",
            "{% macro f() %}" + LOOP + "{% endmacro %}",
        ),
    ],
)
def test_a_loop_in_another_template_is_stopped_too(tmp_path: Path, source: str, other: str) -> None:
    # The including template has no loop of its own; what it brings in has.
    r = renderer(tmp_path, source, time_limit=0.2)
    (tmp_path / "sms" / "en" / "loop.txt.j2").write_text(other)
    with pytest.raises(TemplateError, match=r"more than the 0\.2 s CPU limit"):
        render(r)


def test_only_straight_line_templates_render_untraced(tmp_path: Path) -> None:
    r = renderer(tmp_path, "Hi {{ first_name }}, {{ clinic_name|upper }}")
    assert render(r) == "Hi Alex, RIVERSIDE MEDICAL GROUP"
    assert r.env._straight == {"sms/en/t.txt.j2": True}
    for source in (LOOP, "{% block b %}x{% endblock %}", "{% macro m() %}{% endmacro %}x"):
        other = renderer(tmp_path, source)
        other.env.get_template("sms/en/t.txt.j2")  # parsed, not rendered
        assert other.env._straight == {"sms/en/t.txt.j2": False}, source


def test_a_template_once_seen_with_a_loop_stays_traced(tmp_path: Path) -> None:
    # An old template object may still be rendering after its file lost the loop.
    r = renderer(tmp_path, "{% for i in range(2) %}{{ i }}{% endfor %}")
    assert render(r) == "01"
    (tmp_path / "sms" / "en" / "t.txt.j2").write_text("plain")
    r.env.cache.clear()
    assert render(r) == "plain"
    assert r.env._straight == {"sms/en/t.txt.j2": False}


def test_garbage_collection_during_a_render_does_not_count_against_its_limit(
    tmp_path: Path,
) -> None:
    # A full collection runs in whichever thread allocated last, rendering included; in a large
    # process it can take longer than the limit. Here the template itself triggers one over a
    # heap big enough that the pass alone takes longer than the 0.05 s limit.
    import gc
    import time

    heap = [[i] for i in range(1_000_000)]
    spent = time.thread_time()
    gc.collect()
    spent = time.thread_time() - spent
    assert spent > 0.05, f"a full collection took only {spent:.3f} s; the heap is too small to test"

    (tmp_path / "sms" / "en").mkdir(parents=True)
    (tmp_path / "sms" / "en" / "t.txt.j2").write_text(
        "{% for i in range(200) %}{% if i == 0 %}{{ collect() }}{% endif %}.{% endfor %}"
    )
    r = Renderer(tmp_path, time_limit=0.05)  # type: ignore[arg-type]
    context = dict(sample_context("en"), collect=lambda: (gc.collect(), "")[1])
    assert r.render_sms("t", "en", context).text == "." * 200
    del heap
