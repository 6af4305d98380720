"""Phone numbers to E.164 with Google's libphonenumber rules (``phonenumbers``)."""

from __future__ import annotations

from collections.abc import Collection

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


def region_refused(phone_e164: str, allowed: Collection[str] | None) -> str | None:
    """The phone's region when patients there cannot be enrolled yet, else None.

    ``allowed`` is ``Settings.emergency_regions``: the regions the emergency number and crisis
    line that messages give actually serve (None: the site set its own numbers, any region).
    """
    if allowed is None:
        return None
    region = phonenumbers.region_code_for_number(phonenumbers.parse(phone_e164)) or "unknown"
    return None if region in allowed else region


def region_problem(region: str, emergency: str, crisis: str) -> str:
    """What to tell the clerk about a refused region (the EnrollmentError text, field phone)."""
    return (
        f"is a {region} number, but messages tell patients to call {emergency} (emergency) and "
        f"{crisis} (crisis line), which serve only the US and Canada; set CHECKIN_EMERGENCY_NUMBER "
        "and CHECKIN_CRISIS_LINE to this site's numbers first"
    )
