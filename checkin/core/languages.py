"""The languages checkin has templates, keywords and triage lexicons for.

One list for the whole code base: adding a language means adding it here and then its
templates, keyword sets and lexicon, which the content checks will ask for.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "es"]

LANGUAGES: tuple[Language, ...] = ("en", "es")
DEFAULT_LANGUAGE: Language = "en"


def supported_language(code: str | None) -> Language:
    """``code`` if checkin speaks it, else the default language (a patient record may carry a
    language there are no templates for; they get English rather than nothing)."""
    return code if code in LANGUAGES else DEFAULT_LANGUAGE
