"""The learned triage layer at run time: a per-flag linear model over sparse text features.

The model is trained offline (``scripts/train_triage.py``, which needs scikit-learn from the
``dev`` extra) and shipped as ``model/learned.json``; scoring needs nothing but the standard
library.  Contract: ``LearnedModel.scores(words)`` returns one probability per label, the
logistic of ``bias + sum(weight x count of each of the reply's features) / sqrt(how many
features it has, with repeats)``: exactly what training fitted.  ``flag_at`` and
``review_at`` are the per-label thresholds tuned by leave-one-author-out folds: at or above
``flag_at`` the label is a candidate flag, between ``review_at`` and ``flag_at`` a person
should read the reply.  The rules' scopes (negation, hypotheticals, someone else...) are
applied to the candidates by ``assess``, not here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from operator import add
from typing import Any, ClassVar

from checkin.errors import CheckinError

from .features import Words, bigram, word_features

FORMAT = "checkin-triage-learned/1"
ARTEFACT = "learned.json"


class ModelError(CheckinError):
    """The learned-layer artefact is malformed: ``file: key: problem``."""


@dataclass(frozen=True, slots=True)
class LearnedModel:
    """``weights`` maps a feature to its weight for every label (a dense tuple).  A word's
    summed weights are memoized (``_memo``, bounded), so a reply costs one cached lookup per
    word plus one per adjacent pair, and the column sums run in C (``zip``/``sum``)."""

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]
    flag_at: tuple[float, ...]
    review_at: tuple[float, ...]
    meta: dict[str, Any]
    _memo: dict[str, tuple[tuple[float, ...], int]] = field(default_factory=dict, compare=False, repr=False)

    MEMO_MAX: ClassVar[int] = 50_000

    def _word(self, word: str) -> tuple[tuple[float, ...], int]:
        """(summed weights of the word's own features, how many features it has)."""
        hit = self._memo.get(word)
        if hit is None:
            feats = word_features(word)
            vectors = [v for v in map(self.weights.get, feats) if v is not None]
            total = tuple(map(sum, zip(*vectors, strict=True))) if vectors else self._zero()
            if len(self._memo) >= self.MEMO_MAX:
                self._memo.clear()
            hit = self._memo[word] = (total, len(feats))
        return hit

    def _zero(self) -> tuple[float, ...]:
        return (0.0,) * len(self.labels)

    def _per_word(self, w: Words) -> tuple[list[tuple[float, ...]], int]:
        """Each word's weights (its own features plus the pair it ends) and the feature count."""
        vectors: list[tuple[float, ...]] = []
        n = 0
        prev = ""
        get = self.weights.get
        for word in w.words:
            vec, k = self._word(word)
            n += k
            if prev:
                n += 1
                pair = get(bigram(prev, word))
                if pair is not None:
                    vec = tuple(map(add, vec, pair))
            vectors.append(vec)
            prev = word
        return vectors, n

    def margins(self, w: Words) -> list[float]:
        """Raw linear scores (log-odds) per label."""
        vectors, n = self._per_word(w)
        if not n:
            return list(self.bias)
        norm = 1.0 / math.sqrt(n)
        return [b + s * norm for b, s in zip(self.bias, map(sum, zip(*vectors, strict=True)), strict=True)]

    def scores(self, w: Words) -> list[float]:
        """Probability per label (same order as ``labels``)."""
        return [_logistic(m) for m in self.margins(w)]

    def strongest_word(self, w: Words, label: int) -> int:
        """Index of the word whose own features push ``label`` up the most (-1 if none)."""
        vectors, _n = self._per_word(w)
        best, best_i = 0.0, -1
        for i, vec in enumerate(vectors):
            if vec[label] > best:
                best, best_i = vec[label], i
        return best_i


def _logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def from_dict(doc: Any, file: str = ARTEFACT) -> LearnedModel:
    """Validate an artefact document into a model; errors name the file and key."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"{file}: format: expected {FORMAT!r}")
    labels = doc.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise ModelError(f"{file}: labels: expected a non-empty list of flag codes")
    n = len(labels)
    vectors = {key: _numbers(doc, key, n, file) for key in ("bias", "flag_at", "review_at")}
    weights = _weights(doc.get("weights"), n, file)
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelError(f"{file}: meta: expected a mapping")
    return LearnedModel(
        tuple(labels), vectors["bias"], weights, vectors["flag_at"], vectors["review_at"], meta
    )


def _numbers(doc: dict[str, Any], key: str, n: int, file: str) -> tuple[float, ...]:
    v = doc.get(key)
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int | float) for x in v):
        raise ModelError(f"{file}: {key}: expected {n} numbers")
    return tuple(float(x) for x in v)


def _weights(raw: Any, n: int, file: str) -> dict[str, tuple[float, ...]]:
    """feature -> dense weight tuple, from feature -> [label index, weight, ...]."""
    if not isinstance(raw, dict):
        raise ModelError(f"{file}: weights: expected a mapping feature -> [label, weight, ...]")
    weights: dict[str, tuple[float, ...]] = {}
    shared: dict[float, float] = {}  # one float object per distinct weight: a smaller heap
    for g, flat in raw.items():
        if not isinstance(flat, list) or len(flat) % 2 or not flat:
            raise ModelError(f"{file}: weights.{g!r}: expected [label index, weight, ...]")
        row = [0.0] * n
        for i in range(0, len(flat), 2):
            j, wt = flat[i], flat[i + 1]
            if not isinstance(j, int) or not 0 <= j < n or not isinstance(wt, int | float):
                raise ModelError(f"{file}: weights.{g!r}: bad pair {flat[i : i + 2]!r}")
            row[j] = shared.setdefault(float(wt), float(wt))
        weights[g] = tuple(row)
    return weights


def load_packaged() -> LearnedModel | None:
    """The model shipped in ``checkin/core/triage/model/`` (None if the package has none)."""
    ref = resources.files(__package__).joinpath("model", ARTEFACT)
    if not ref.is_file():
        return None
    try:
        doc = json.loads(ref.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{ARTEFACT}: line {exc.lineno}: not JSON: {exc.msg}") from exc
    return from_dict(doc)
