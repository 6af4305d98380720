"""``fusion_concern`` (watch): the surgeon's list of signs a fusion may be failing."""

from __future__ import annotations

import pytest

from checkin.core.triage import assess


@pytest.mark.parametrize(
    "text",
    [
        "the pain is back like before surgery",
        "my old pain came back this week, same pain as before the surgery",
        "new shooting pain down my left leg since Tuesday",
        "pain radiating down my right arm the last few days",
        "my hardware feels loose",
        "something clicks in my back when I twist, like the screws",
        "it's getting harder to bend and sit, four months out",
        "lifting is getting harder, not easier",
        "volvió el dolor como antes de la cirugía",
        "siento flojos los tornillos",
        "me cuesta más agacharme que el mes pasado",
        "me corre el dolor por la pierna otra vez",
    ],
)
def test_fusion_failure_signs_are_flagged_for_the_care_team(text: str) -> None:
    a = assess(text, "general")
    assert "fusion_concern" in {f.value for f in a.flags}, a.to_dict()
    assert a.severity.rank >= 1


@pytest.mark.parametrize(
    "text",
    [
        "no shooting pain down my leg anymore",
        "the pain I had before surgery is gone",
        "clicking the link in your text did not work",
        "bending is easier every week",
    ],
)
def test_resolved_or_unrelated_wordings_are_not_fusion_concerns(text: str) -> None:
    a = assess(text, "general")
    assert "fusion_concern" not in {f.value for f in a.flags}, a.to_dict()
