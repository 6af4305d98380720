"""Red-flag triage of patient replies (contract: docs/adr/0005-triage-rules-and-data-files.md).

``assess(text, context=None) -> Assessment`` is pure, deterministic and does no I/O at call
time: the vocabulary (``lexicon/en.yaml``, ``lexicon/es.yaml``) is loaded and validated once,
at import, and a malformed lexicon fails the import with a ``LexiconError`` naming file and key.
"""

from __future__ import annotations

from .assess import assess, normalize_context
from .lexicon import LexiconError
from .model import Assessment, Evidence, Flag, Severity

__all__ = ["Assessment", "Evidence", "Flag", "LexiconError", "Severity", "assess", "normalize_context"]
