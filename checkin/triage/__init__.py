"""The public triage contract: ``checkin.triage.assess(text, context) -> Assessment``.

The implementation lives in the pure core (``checkin.core.triage``); this name is the stable,
documented entry point that outside scorers and integrations import, so it stays put when the
package layout changes.
"""

from checkin.core.triage import Assessment, Evidence, Flag, LexiconError, Severity, assess, normalize_context

__all__ = ["Assessment", "Evidence", "Flag", "LexiconError", "Severity", "assess", "normalize_context"]
