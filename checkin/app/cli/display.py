"""Text from patients and CSV files, made safe to print on a staff terminal.

A name or reply can hold terminal escape sequences (``\\x1b[2J`` clears the screen, OSC 8 makes
a link, OSC 52 writes the clipboard) or bidirectional overrides that reorder what is shown.
``clean`` removes escape sequences, control characters and bidi controls and folds line breaks
into ``⏎``, so one value is always one line of what was stored.
"""

from __future__ import annotations

import re
import unicodedata

# CSI (ESC [ … final), OSC (ESC ] … BEL or ST) and other two-character ESC sequences.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"))


def clean(value: object) -> str:
    """``value`` as one printable line: escapes and control characters removed."""
    text = _ESCAPES.sub("", str(value)).translate(_BIDI)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ⏎ ").replace("\t", " ")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")
