"""deploy/prometheus-alerts.yml covers what the issue asks, with metrics /metrics publishes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from checkin.store.status import SEVERITIES, STATUSES, Figures, prometheus_text

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus-alerts.yml"


def rules() -> list[dict]:  # type: ignore[type-arg]
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_every_rule_uses_a_metric_checkin_publishes() -> None:
    figures = Figures(messages=dict.fromkeys(STATUSES, 0), alerts_open=dict.fromkeys(SEVERITIES[:3], 0))
    published = {line.split("{")[0].split(" ")[0] for line in prometheus_text(figures, {}).splitlines()}
    published = {name for name in published if name and not name.startswith("#")}
    for rule in rules():
        used = set(re.findall(r"\bcheckin_[a-z_]+", rule["expr"]))
        assert used <= published, (rule["alert"], used - published)


def test_it_alerts_on_the_four_failures_that_hurt_patients() -> None:
    exprs = " ".join(r["expr"] for r in rules())
    assert "checkin_workers_alive" in exprs
    assert "checkin_oldest_due_message_age_seconds" in exprs
    assert 'checkin_messages{status="dead"}' in exprs
    assert 'checkin_alerts_open{severity="emergency"}' in exprs
