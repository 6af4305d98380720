"""The HL7 v2 acknowledgement (original mode) an interface engine expects back. Pure.

``AA`` once the change is committed; ``AE`` with an ``ERR`` segment naming the field for a message
that is understood but wrong; ``AR`` for one that is not ours or not HL7. The problem text goes
in ERR-8 (user message) and, for engines that only read MSA, in MSA-3.
"""

from __future__ import annotations

from datetime import UTC, datetime

from checkin.core.hl7.fields import Hl7Problem
from checkin.core.hl7.message import Header

APPLICATION = "CHECKIN"
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


def escape(text: str) -> str:
    """``text`` safe inside one HL7 component (delimiters escaped, line breaks made spaces)."""
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return " ".join(text.split())


def _location(location: str | None) -> str:
    """``PID-13.4`` as an ERL: segment^sequence^field^repetition^component."""
    if not location:
        return ""
    segment, _, rest = location.partition("-")
    field, _, component = rest.partition(".")
    return "^".join(p for p in (segment, "1", field, "1" if component else "", component) if p)


def build_ack(
    header: Header | None, code: str, *, ack_id: str, now: datetime, problem: Hl7Problem | None = None
) -> str:
    """The ACK message text (segments ended by CR). ``header`` is None when the message could
    not be read at all; the ACK then says so without echoing anything."""
    h = header
    msh = [
        "MSH",
        "^~\\&",
        APPLICATION,
        escape(h.receiving_facility) if h else "",
        escape(h.sending_application) if h else "",
        escape(h.sending_facility) if h else "",
        now.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000"),
        "",
        f"ACK^{escape(h.trigger)}^ACK" if h and h.trigger else "ACK",
        ack_id,
        escape(h.processing_id) if h and h.processing_id else "P",
        escape(h.version) if h and h.version else "2.5.1",
    ]
    text = escape(str(problem)) if problem else ""
    msa = ["MSA", code, escape(h.control_id) if h else "", text]
    segments = ["|".join(msh), "|".join(msa)]
    if problem is not None:
        severity = "E"
        err = ["ERR", "", _location(problem.location), f"{problem.code}^^HL70357", severity, "", "", "", text]
        segments.append("|".join(err))
    return "\r".join(segments) + "\r"
