"""Structured JSON logs that do not leak patient data (logs are copied to places PHI must not go).

The rule: logs carry the internal patient reference (``P-XXXXXXX``), ids and outcomes — never a
message text, a phone number, a name or a token. Code is written to that rule; this module is
the safety net behind it:

- ``RedactFilter`` (attached to handlers, so it sees every record that is written) replaces the
  values of fields whose *names* say they hold PHI (``body``, ``text``, ``phone``, ``from_``, …)
  with ``[redacted]``, masks any run of 7 or more digits (phone numbers, MRNs; separators such
  as spaces, dots, dashes and parentheses between the digits do not save them) and replaces
  CR/LF with a space so an inbound text cannot forge a log line (CWE-117).
- ``JsonFormatter`` writes one JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and
  every ``extra=`` field.

The convention in ``checkin/``: a constant message and the facts as ``extra=`` fields
(``event`` such as ``outbox.dead``, ``outbox_id``, ``patient_ref``, ``code`` …), never values
interpolated into the text. Whatever an operator must act on (a broken template, a message
to staff refused, a possible duplicate) goes to the ``checkin.ops`` logger, so it can be
routed to a pager by logger name.

``configure(level)`` installs both on the root logger; tests attach them to a handler of
their own.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# Field names whose values are never logged, whatever they hold.
SENSITIVE_FIELDS = frozenset(
    {
        "body",
        "text",
        "message_text",
        "phone",
        "from_phone",
        "to_phone",
        "from_",
        "to",
        "From",
        "To",
        "Body",
        "email",
        "name",
        "first_name",
        "token",
        "signature",
        "auth_token",
        "url",
    }
)
REDACTED = "[redacted]"

# 7+ digits, separated by at most two of space, dot, dash, parenthesis ("(617) 555-0123").
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:[\s.()\-]{0,2}\d){6,}")
_CRLF = re.compile(r"[\r\n\u2028\u2029\x85]+")

# Attributes every LogRecord has; anything else on a record came from ``extra=``. uvicorn adds
# ``color_message`` (the same text with terminal colour codes), which JSON lines do not want.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


# An ISO 8601 timestamp ("2026-03-01T15:00:00+00:00", or with a space as ``str(datetime)``
# writes it): its date is eight digits the run above would mask, so every time an operations
# record carries ("open since") read "########T15:00". Kept only when a time follows: a bare
# date may be a date of birth.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def scrub(value: str) -> str:
    """``value`` with CR/LF flattened and digit runs of 7 or more masked, except the date of an
    ISO 8601 timestamp."""
    value = _CRLF.sub(" ", value)

    def mask(m: re.Match[str]) -> str:
        stamp = _TIMESTAMP.match(value, m.start())
        if stamp is not None and m.end() <= stamp.end():
            return m.group()
        return "#" * sum(c.isdigit() for c in m.group())

    return _DIGIT_RUN.sub(mask, value)


def _clean(key: str, value: Any) -> Any:
    if key in SENSITIVE_FIELDS:
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return scrub(str(value))


class RedactFilter(logging.Filter):
    """Rewrites each record in place (message formatted once, args dropped); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        for key in list(vars(record)):
            if key not in _STANDARD:
                setattr(record, key, _clean(key, getattr(record, key)))
        if record.exc_info and record.exc_info[1] is not None:
            # Exception messages can quote input (e.g. a ValueError with the raw phone).
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def handler(stream: Any = None) -> logging.Handler:
    """A stream handler with the redaction filter and the JSON formatter."""
    h = logging.StreamHandler(stream)
    h.addFilter(RedactFilter())
    h.setFormatter(JsonFormatter())
    return h


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Route every log record through ``handler()``; replaces handlers already on the root."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler(stream))
    root.setLevel(level.upper())
