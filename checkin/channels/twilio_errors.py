"""Twilio's answers in provider-neutral terms: HTTP statuses, Twilio error codes and transport
failures become ``ChannelError`` with a ``checkin.errors.Refusal``; delivery callbacks' error
codes become a ``Refusal`` or nothing. Only this module and ``checkin.channels.sms`` read Twilio
codes.

=====================================  =========  =========  ======================
outcome                                permanent  ambiguous  notes
=====================================  =========  =========  ======================
HTTP 429 / Twilio code 20429           no         no         "never processed"; ``retry_after`` from ``Retry-After``
21610 unsubscribed, 21211 invalid To,  yes        no         ``code`` = Twilio code; refusal opted_out,
21614 not SMS-capable, 21408, 21612,                         bad_address, not_mobile, else rejected
any other 4xx
HTTP 401 (20003: bad credentials)      no         no         account problem, not this message's:
                                                             retrying after the operator fixes it can work
5xx                                    no         yes        create is not idempotent: reconcile, never resend blindly
connect failure (refused, DNS,         no         no         the request never left
connect timeout, TLS handshake)
read timeout, connection dropped       no         yes        the request may have reached Twilio
after sending, unreadable 2xx body
=====================================  =========  =========  ======================

"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import requests

from checkin.errors import ChannelError, Refusal

# Human names for the codes dispatch is most likely to act on (reason text only; the
# classification is by HTTP status, see module docstring).
_KNOWN_CODES = {
    20003: "authentication failed",
    20429: "too many requests",
    21211: "invalid To number",
    21408: "sending to this region is not enabled",
    21610: "recipient unsubscribed (replied STOP)",
    21612: "cannot route to this number",
    21614: "To number cannot receive SMS",
}

# What a refusal code says, in provider-neutral terms (``checkin.errors.Refusal``). Codes not
# listed here are refusals of this message only (``REJECTED``). Twilio's error dictionary:
# https://www.twilio.com/docs/api/errors
_SEND_REFUSALS = {
    21610: Refusal.OPTED_OUT,
    21211: Refusal.BAD_ADDRESS,
    21614: Refusal.NOT_MOBILE,
}
# Delivery status callbacks (``ErrorCode`` of ``failed``/``undelivered``) that mean the number
# itself does not work: unreachable handset, unknown destination, landline or unreachable
# carrier. A nurse should confirm the patient's number.
_DELIVERY_REFUSALS = {
    "30003": Refusal.UNREACHABLE,
    "30005": Refusal.UNREACHABLE,
    "30006": Refusal.UNREACHABLE,
}


def send_refusal(code: int | None) -> Refusal:
    """What a Twilio error code on a send request says about the recipient."""
    return _SEND_REFUSALS.get(code or 0, Refusal.REJECTED)


def delivery_refusal(error_code: str | None) -> Refusal | None:
    """What the ``ErrorCode`` of a failed delivery callback says about the recipient, or
    None when it says nothing about them (a carrier hiccup, a content filter)."""
    return _DELIVERY_REFUSALS.get((error_code or "").strip())


def classify_twilio_error(status: int, code: int | None, retry_after: float | None = None) -> ChannelError:
    """Map an HTTP status and Twilio error code to a ``ChannelError`` (see module table)."""
    code_text = str(code) if code else str(status)
    name = _KNOWN_CODES.get(code or 0, "")
    what = f"Twilio HTTP {status}, code {code_text}" + (f" ({name})" if name else "")
    if status == 429 or code == 20429:
        return ChannelError(
            f"{what}: rate limited, not processed",
            permanent=False,
            code=code_text,
            retry_after=retry_after,
            refusal=Refusal.RATE_LIMITED,
        )
    if status == 401:
        return ChannelError(
            f"{what}: check the account SID and auth token",
            permanent=False,
            code=code_text,
            refusal=Refusal.ACCOUNT_PROBLEM,
        )
    if 400 <= status < 500:
        return ChannelError(what, permanent=True, code=code_text, refusal=send_refusal(code))
    # 5xx (and anything unexpected): the create may have happened.
    return ChannelError(
        f"{what}: the message may have been accepted", permanent=False, code=code_text, ambiguous=True
    )


def classify_transport_error(exc: requests.RequestException, timeout: float) -> ChannelError:
    """Map a ``requests`` failure: did the request leave this machine?"""
    if isinstance(exc, requests.ConnectTimeout):
        return ChannelError(f"connect timeout after {timeout}s", permanent=False)
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        # Raised while setting up the connection, before the request is written.
        return ChannelError(f"could not connect ({type(exc).__name__})", permanent=False)
    if isinstance(exc, requests.ReadTimeout):
        return ChannelError(
            f"no answer within {timeout}s; the message may have been accepted",
            permanent=False,
            ambiguous=True,
        )
    if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
        return ChannelError("could not connect (refused, unreachable or DNS failure)", permanent=False)
    return ChannelError(
        f"connection failed after the request was sent ({type(exc).__name__}); "
        "the message may have been accepted",
        permanent=False,
        ambiguous=True,
    )


def _never_connected(exc: requests.ConnectionError) -> bool:
    # requests wraps urllib3's MaxRetryError, whose ``reason`` says what failed. A
    # NewConnectionError (refused, DNS, unreachable) or connect timeout means no byte of the
    # request left; a ProtocolError (peer closed mid-exchange) arrives unwrapped and may not.
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

    for arg in exc.args:
        if isinstance(arg, (NewConnectionError, ConnectTimeoutError)):
            return True
        if isinstance(arg, MaxRetryError) and isinstance(
            arg.reason, (NewConnectionError, ConnectTimeoutError)
        ):
            return True
    return False


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds, or an HTTP date taken
    relative to the response's own ``Date`` header (so no local clock is read)."""
    value = _header(headers, "Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    date = _header(headers, "Date")
    if date is None:
        return None
    try:
        delta = parsedate_to_datetime(value) - parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return max(0.0, delta.total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, item in headers.items():
            if key.lower() == name.lower():
                return item
    return value


__all__ = [
    "classify_transport_error",
    "classify_twilio_error",
    "delivery_refusal",
    "parse_retry_after",
    "send_refusal",
]
