"""Phone numbers to E.164 with Google's libphonenumber rules (``phonenumbers``)."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_KIND_PROBLEMS = {
    PhoneNumberType.FIXED_LINE: "is a landline and cannot receive texts",
    PhoneNumberType.PREMIUM_RATE: "is a premium-rate number",
    PhoneNumberType.TOLL_FREE: "is a toll-free number",
}


def normalize_phone(raw: str, region: str) -> str:
    """Return ``raw`` as E.164; raise ValueError with a reason a clerk can act on."""
    text = raw.strip()
    if not text:
        raise ValueError("is empty")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as e:
        raise ValueError(f"{raw!r} is not a phone number ({_parse_reason(e)})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"{raw!r} has the wrong number of digits")
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not an assigned phone number")
    problem = _KIND_PROBLEMS.get(phonenumbers.number_type(number))
    if problem:
        raise ValueError(f"{raw!r} {problem}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_reason(e: NumberParseException) -> str:
    return {
        NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        NumberParseException.NOT_A_NUMBER: "not a number",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        NumberParseException.TOO_LONG: "too long",
    }.get(e.error_type, "unreadable")
