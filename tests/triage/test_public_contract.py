"""``checkin.triage.assess`` is the documented entry point that outside scorers import."""

import checkin.core.triage as core
import checkin.triage as public


def test_it_exposes_the_core_assess_under_the_documented_name() -> None:
    assert public.assess is core.assess
    result = public.assess("I can't feel my legs and I wet myself", None)
    assert result.severity == public.Severity.EMERGENCY
