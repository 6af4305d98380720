"""The README's landline claim matches what the phone check can know."""

from __future__ import annotations

import re

import phonenumbers
import pytest

from checkin.channels.twilio_errors import send_refusal
from checkin.enrollment.phones import normalize_phone
from checkin.errors import Refusal
from tests.support import ROOT


def test_a_us_landline_cannot_be_told_from_a_mobile_and_the_readme_says_so() -> None:
    number = phonenumbers.parse("+1 212 639 2000")  # a switchboard in New York
    assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
    assert normalize_phone("(212) 639-2000", "US") == "+12126392000"  # accepted
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "landlines are refused" not in readme.lower()
    assert re.search(r"US and Canada landlines and mobiles share number ranges", readme)
    assert "21614" in readme and send_refusal(21614) is Refusal.NOT_MOBILE


def test_a_landline_known_by_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match="landline"):
        normalize_phone("+44 20 7219 3000", "US")
