"""A small in-process counter registry (thread-safe), readable by tests and later exporters.

Why not ``prometheus-client`` yet: the web app is one process today and nothing scrapes it; a
dict of counters keeps the dependency list short. The names follow Prometheus conventions
(``*_total``, labels as keyword arguments), so an exporter can publish ``snapshot()`` as is.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

LabelKey = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, LabelKey], float] = {}

    @staticmethod
    def _key(name: str, labels: Mapping[str, object]) -> tuple[str, LabelKey]:
        return name, tuple(sorted((k, str(v)) for k, v in labels.items()))

    def inc(self, name: str, amount: float = 1, **labels: object) -> None:
        key = self._key(name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount

    def value(self, name: str, **labels: object) -> float:
        """The counter with exactly these labels; with no labels, the sum over all label sets."""
        with self._lock:
            if labels:
                return self._counters.get(self._key(name, labels), 0)
            return sum(v for (n, _), v in self._counters.items() if n == name)

    def snapshot(self) -> dict[str, float]:
        """``{'name{label="v"}': value}``: the Prometheus text format's left-hand sides."""
        with self._lock:
            items = list(self._counters.items())
        out = {}
        for (name, labels), v in sorted(items):
            inner = ",".join(f'{k}="{val}"' for k, val in labels)
            out[f"{name}{{{inner}}}" if inner else name] = v
        return out
