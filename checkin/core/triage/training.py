"""Training the learned triage layer (a development tool: needs the ``dev`` extra).

Contract: ``fit(rows, ...)`` takes labelled replies (dicts with ``text``, ``flags`` and
``acceptable``, as in the labelled corpora) and returns an artefact document for
``learned.from_dict``: one L2-regularized logistic regression per flag over the feature counts of
``features.counts`` divided by the square root of the reply's feature total (all features, so
dropping a vocabulary entry never rescales the others), class-balanced, weights pruned below
``min_weight`` and rounded (the artefact stays small; pruning is measured by the folds like
any other choice).  A flag listed as *acceptable* for a reply is neither a positive nor a
negative example of that flag.  scikit-learn is imported inside ``fit`` only, so the product
never needs it at run time.  Deterministic: liblinear with a fixed seed on sorted features.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from .features import counts, words_of
from .learned import FORMAT
from .model import FLAG_SEVERITY, Flag, Severity
from .normalize import fold

LABELS: tuple[str, ...] = tuple(f.value for f in Flag)
_EMERGENCY = frozenset(f.value for f, s in FLAG_SEVERITY.items() if s is Severity.EMERGENCY)
# The parameters chosen by the folds (see tests/benchmarks/triage_folds.py).
DEFAULTS: dict[str, float] = {
    "c": 4.0,
    "min_weight": 0.1,
    "flag_at": 0.8,
    "flag_at_emergency": 0.6,
    "review_at": 0.3,
    "lexicon": 1.0,
}
# Per-label thresholds that differ from their severity's, chosen on the folds' out-of-fold
# predictions: the self-harm model fires on unrelated replies ("ninety nine point one") between
# 0.6 and 0.7, and at 0.7 the worst fold keeps emergency recall >= 0.98.  The bowel/bladder
# model, left without the Spanish author, fires on everyday Spanish ("me siento", "encima",
# "la medicina") between 0.6 and 0.7; at 0.7 (those go to review) the Spanish fold's false
# alarms fall 0.068 -> 0.049 and every fold keeps emergency recall 1.0 (0.8 loses emergencies).
FLAG_AT_LABEL: dict[str, float] = {"self_harm": 0.7, "bowel_bladder": 0.7}


def fingerprint(rows: Iterable[dict[str, Any]]) -> str:
    """sha256 over the training replies' text and labels, in order (what the model learned
    from), bare yes/no/number replies excluded as ``fit`` excludes them."""
    h = hashlib.sha256()
    for r in rows:
        if _bare_answer(r["text"]):
            continue
        key = [r["text"], sorted(r["flags"]), sorted(r.get("acceptable", []))]
        h.update(json.dumps(key, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def lexicon_rows() -> list[dict[str, Any]]:
    """The lexicons' flag phrases as one-phrase training examples (English and Spanish): the
    learned layer starts from the clinicians' vocabulary, so an author's wording it has never
    seen in a reply can still share character grams with a phrase it knows."""
    from importlib import resources

    import yaml

    rows: list[dict[str, Any]] = []
    for name in ("en.yaml", "es.yaml"):
        doc = yaml.safe_load(resources.files(__package__).joinpath("lexicon", name).read_text("utf-8"))
        for flag, entry in sorted(doc.get("flags", {}).items()):
            for key in ("phrases", "reading_governed"):
                for phrase in entry.get(key, []):
                    rows.append({"text": phrase, "flags": [flag], "acceptable": []})
    return rows


_BARE = frozenset({"#", "yes", "y", "yeah", "yep", "yup", "ya", "si", "no", "nope", "nah", "n", "ok", "okay"})


def _bare_answer(text: str) -> bool:
    """A reply that is only yes/no/a number: its meaning is the question's, which the learned
    layer never sees, so it must not learn "yes" means a symptom (the rules read these)."""
    return set(words_of(fold(text)).words) <= _BARE


def fit(
    rows: Sequence[dict[str, Any]],
    *,
    c: float = 4.0,
    min_df: int = 2,
    min_weight: float = 0.1,
    flag_at: float = 0.95,
    flag_at_emergency: float = 0.6,
    review_at: float = 0.3,
    labels: Sequence[str] = LABELS,
    lexicon: float = 1.0,
    flag_at_label: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Train one classifier per label; returns the artefact document (see module docstring).
    ``lexicon`` > 0 adds the lexicons' phrases as examples (see ``lexicon_rows``).  A label's
    threshold is ``flag_at_label[label]`` if given (default ``FLAG_AT_LABEL``), else
    ``flag_at_emergency`` or ``flag_at`` by its severity."""
    thresholds = FLAG_AT_LABEL if flag_at_label is None else flag_at_label
    rows = [r for r in rows if not _bare_answer(r["text"])]
    replies, sha = len(rows), fingerprint(rows)
    if lexicon > 0:
        rows = [*rows, *lexicon_rows()]
    x, names = _matrix(rows, min_df)
    bias, per_label = _train(x, rows, labels, c)
    weights = _export(names, per_label, min_weight)
    return {
        "format": FORMAT,
        "labels": list(labels),
        "bias": bias,
        "flag_at": [
            thresholds.get(lab, flag_at_emergency if lab in _EMERGENCY else flag_at) for lab in labels
        ],
        "review_at": [review_at] * len(labels),
        "weights": weights,
        "meta": {
            # the labelled replies (not the lexicon phrases, which clinicians may extend)
            "trained_on": {"replies": replies, "rows": len(rows), "sha256": sha},
            "params": {
                "c": c,
                "min_df": min_df,
                "min_weight": min_weight,
                "lexicon": lexicon,
                "flag_at": flag_at,
                "flag_at_emergency": flag_at_emergency,
                "review_at": review_at,
                "flag_at_label": dict(sorted(thresholds.items())),
            },
            "features": len(weights),
        },
    }


def _matrix(rows: Sequence[dict[str, Any]], min_df: int) -> tuple[Any, list[str]]:
    """(rows x features sparse matrix of normalized counts, feature name per column)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    feats = [counts(words_of(fold(r["text"]))) for r in rows]
    df = Counter(g for fs in feats for g in fs)
    vocab = {g: i for i, g in enumerate(sorted(g for g, n in df.items() if n >= min_df))}
    indptr: list[int] = [0]
    indices: list[int] = []
    data: list[float] = []
    for fs in feats:
        total = sum(fs.values())  # ALL the reply's features: dropping one never rescales the rest
        cols = sorted((vocab[g], k) for g, k in fs.items() if g in vocab)
        norm = 1.0 / total**0.5 if total else 0.0
        indices.extend(j for j, _k in cols)
        data.extend(k * norm for _j, k in cols)
        indptr.append(len(indices))
    x = csr_matrix((data, indices, indptr), shape=(len(rows), len(vocab)), dtype=np.float64)
    return x, sorted(vocab, key=vocab.__getitem__)


def _train(
    x: Any, rows: Sequence[dict[str, Any]], labels: Sequence[str], c: float
) -> tuple[list[float], list[Any]]:
    """(intercept, coefficient vector) per label; a label with no positives never fires."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    bias: list[float] = []
    per_label: list[Any] = []
    for lab in labels:
        y = np.array([lab in r["flags"] for r in rows], dtype=np.int8)
        keep = np.array([lab in r["flags"] or lab not in r.get("acceptable", []) for r in rows])
        if y[keep].sum() == 0:
            bias.append(-20.0)
            per_label.append(np.zeros(x.shape[1]))
            continue
        clf = LogisticRegression(
            C=c, solver="liblinear", class_weight="balanced", random_state=0, max_iter=1000
        )
        clf.fit(x[keep], y[keep])
        bias.append(round(float(clf.intercept_[0]), 4))
        per_label.append(clf.coef_[0])
    return bias, per_label


def _export(names: list[str], per_label: list[Any], min_weight: float) -> dict[str, list[float | int]]:
    """feature -> [label index, weight, ...] for the weights at or above ``min_weight``."""
    weights: dict[str, list[float | int]] = {}
    for j, name in enumerate(names):
        flat: list[float | int] = []
        for i, coef in enumerate(per_label):
            wt = float(coef[j])
            if abs(wt) >= min_weight:
                flat.extend((i, round(wt, 3)))
        if flat:
            weights[name] = flat
    return weights


RANK = {"none": 0, "watch": 1, "urgent": 2, "emergency": 3}


def _reminder(context: str | None) -> str | None:
    """Labelled corpora name reminders ``<kind>_reminder``; the scorer passes ``reminder``."""
    return "reminder" if isinstance(context, str) and context.endswith("_reminder") else context


def evaluate(rows: Sequence[dict[str, Any]], model_doc: dict[str, Any] | None) -> dict[str, Any]:
    """Score ``assess`` (rules + the given learned artefact, or rules only for None) on
    labelled rows with the metrics of the project's corpus scorer: emergency recall,
    required-flag recall, flag precision, false-alarm rate (true none/watch assessed
    urgent/emergency), how many replies go to review, and how many of the replies with a
    missed required flag a person still reads (``misses_to_review``: the review band's worth)."""
    from .assess import assess_with
    from .learned import from_dict

    model = from_dict(model_doc) if model_doc is not None else None
    em = em_hit = req = req_hit = found = found_ok = benign = fa = review = missed = missed_seen = 0
    for r in rows:
        a = assess_with(r["text"], _reminder(r["context"]), model)
        got = {f.value for f in a.flags}
        want, ok = set(r["flags"]), set(r["flags"]) | set(r.get("acceptable", []))
        req += len(want)
        req_hit += len(want & got)
        found += len(got)
        found_ok += len(got & ok)
        if r["severity"] == "emergency":
            em += 1
            em_hit += a.severity.value == "emergency"
        if RANK[r["severity"]] <= 1:
            benign += 1
            fa += a.severity.rank >= 2
        review += a.needs_review
        if want - got:
            missed += 1
            missed_seen += a.needs_review
    return {
        "n": len(rows),
        "emergency_recall": round(em_hit / em, 4) if em else None,
        "flag_recall": round(req_hit / req, 4) if req else None,
        "flag_precision": round(found_ok / found, 4) if found else None,
        "false_alarm_rate": round(fa / benign, 4) if benign else None,
        "review_rate": round(review / len(rows), 4) if rows else None,
        "misses_to_review": round(missed_seen / missed, 4) if missed else None,
    }


def folds(
    authors: dict[str, Sequence[dict[str, Any]]],
    train_only: dict[str, Sequence[dict[str, Any]]] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Leave one author out: for each author, train on every other author's rows (plus
    ``train_only[other]``, rows the same author wrote that are never scored) and score the
    left-out one.  Returns per-fold figures and the worst of each figure."""
    extra = train_only or {}
    out: dict[str, Any] = {}
    for name, rows in authors.items():
        train = [r for other, rs in authors.items() if other != name for r in rs]
        train += [r for other, rs in extra.items() if other != name for r in rs]
        out[name] = evaluate(rows, fit(train, **params))
    return {"folds": out, "worst": worst(out)}


def worst(per_fold: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The worst fold's value of each figure (lowest recall/precision, highest false alarms)."""

    def pick(key: str, fn: Any) -> Any:
        vals = [f[key] for f in per_fold.values() if f[key] is not None]
        return fn(vals) if vals else None

    return {
        "emergency_recall": pick("emergency_recall", min),
        "flag_recall": pick("flag_recall", min),
        "flag_precision": pick("flag_precision", min),
        "false_alarm_rate": pick("false_alarm_rate", max),
        "review_rate": pick("review_rate", max),
        "misses_to_review": pick("misses_to_review", min),
    }
