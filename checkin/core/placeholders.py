"""Contacts that are placeholders, not people: fiction-reserved names and numbers. Pure.

A deployment that still carries one sends an emergency alert to nobody, so production refuses
them (``checkin.app.safety``) and ``schedules validate`` flags them.

- Email domains ``example.org``, ``example.com``, ``example.net`` and their subdomains (RFC 2606
  reserves them for documentation).
- North American numbers with area code 555, or 555-0100 to 555-0199 in any area code (reserved
  for fiction). Only +1 numbers are judged: ``+55 51 ...`` is a real number in Brazil.
"""

from __future__ import annotations

import re

PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net")


def placeholder_email(address: str) -> bool:
    """Whether ``address`` is at a documentation domain (or one of its subdomains)."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".>")
    return any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS)


def placeholder_phone(phone: str) -> bool:
    """Whether ``phone`` (any punctuation) is a North American number reserved for fiction."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits.startswith("1"):
        national = digits[1:]
    elif len(digits) == 10 and not phone.strip().startswith("+"):
        national = digits
    else:
        return False
    return national.startswith("555") or national[3:8] == "55501"
