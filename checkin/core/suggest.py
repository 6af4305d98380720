""" "Did you mean …?" for a mistyped name, shared by every place that refuses one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``word`` (case-insensitive), or None when none is close."""
    options = sorted(choices)
    by_lower = {c.lower(): c for c in options}
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    if not close:  # "wound" for "wound_check": a prefix is as good a hint as a near miss
        close = [c for c in by_lower if c.startswith(word.lower()) or word.lower().startswith(c)][:1]
    return by_lower[close[0]] if close and word else None


def unknown(what: str, word: str, choices: Iterable[str]) -> str:
    """``'bracee' is not a known attribute; did you mean brace? (known: …)``."""
    options = sorted(choices)
    hint = closest(word, options)
    return (
        f"{word!r} is not a known {what}"
        + (f"; did you mean {hint}?" if hint else "")
        + f" (known: {', '.join(options)})"
    )
