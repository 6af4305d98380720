"""Families of wording the unseen authors used, each stated in words none of the corpora use.

A rule that fixes one sentence is a smell (issue 16): every row here is a variant of a
family (urinary retention, saddle numbness, passive or conditional suicidal ideation, chest
metaphors, fever that is over, ratings that are not pain, the weather's temperature...), so
a rule written for the corpus sentence alone fails it.  The learned layer is off (rules
only), so the rows state what the rules read.
"""

from __future__ import annotations

import pytest

from checkin.core.triage.assess import assess_with

E, U, W, N = "emergency", "urgent", "watch", "none"


def check(text: str, context: str | None, flags: set[str], severity: str) -> None:
    a = assess_with(text, context, None)
    got = ({f.value for f in a.flags}, a.severity.value)
    assert got == (flags, severity), a.to_dict()


def check_benign(text: str, context: str | None) -> None:
    """No flag that alarms: at most watch (a person may still read it)."""
    a = assess_with(text, context, None)
    assert a.severity.rank <= 1, a.to_dict()


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("he hasn't passed any water since lunch", None),
        ("she can only get a trickle out", "bladder_check"),
        ("tried to pee four times, just a few drops", "bladder_check"),
        ("my butt feels asleep on the toilet", None),
        ("it's numb where I sit", None),
        ("the skin between my legs feels dead", None),
        ("lady parts feel kinda numb", None),
        ("found my sheets wet and never felt the urge", None),
    ],
)
def test_retention_saddle_numbness_and_unfelt_leaks_are_emergencies(text, context) -> None:
    check(text, context, {"bowel_bladder"}, E)


@pytest.mark.parametrize(
    "text",
    [
        "she wishes she had died in surgery",
        "he keeps praying for God to take him home",
        "my kids would be better without me",
        "I'm not planning on being around much longer",
        "if the pain keeps up like this I'll end it myself",
        "been stockpiling my oxycodone in case it never gets better",
        "i'm tired of living like this",
        "i keep thinking about not waking up",
    ],
)
def test_passive_and_conditional_suicidal_ideation_is_an_emergency(text) -> None:
    check(text, "mood_check", {"self_harm"}, E)


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("feels like an elephant is standing on my chest", None),
        ("there's a weight on my chest", None),
        ("sucking wind just getting to the kitchen", None),
        ("puffing after two steps", "breathing_check"),
    ],
)
def test_chest_metaphors_and_breathlessness_are_emergencies(text, context) -> None:
    check(text, context, {"chest_breathing"}, E)


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("fever free since Sunday", None),
        ("my fever broke last night", None),
        ("no thoughts of killing myself, just sad", "mood_check"),
        ("the tingling in my toes is not worse", "numbness_check"),
        ("the numb spot is still there but not spreading", "numbness_check"),
        ("my cane fell over", "fall_check"),
        ("the dog fell off the bed", "fall_check"),
        ("this humidity is killing me", None),
        ("going a bit stir crazy, cabin fever", "mood_check"),
        ("some bruising by the incision, purple going yellow", "wound_check"),
        ("a spot of old dried blood on the gauze", "wound_check"),
        ("breathing like a champ", "breathing_check"),
        ("had some tingling in my hand last night but fine today", "numbness_check"),
        ("pills are hard to swallow but they always were", "swallow_check"),
        ("no problem to swallow", "swallow_check"),
        ("weak all over, haven't been eating", "weakness_check"),
        ("peeing every hour but I have control", "bladder_check"),
        ("tuve hormigueo en la mano el lunes, hoy nada", "numbness_check"),
        ("my hand tingled, went away after I shook it out", "numbness_check"),
        ("my brother in law had a fever all week", None),
        ("el que se cayó fue mi hermano", "fall_check"),
        ("la patoja tiene calentura", "fever_check"),
    ],
)
def test_what_only_looks_like_a_red_flag_is_not_urgent(text, context) -> None:
    a = assess_with(text, context, None)
    assert a.severity.value in (N, W), a.to_dict()


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("it was 102 degrees outside today", None, set(), N),
        ("thermostat says 101 in the house", None, set(), N),
        ("10/10 would recommend this surgeon", "pain_scale", set(), N),
        ("ten out of ten for the nurses", "pain_scale", set(), N),
        ("a 9 yesterday but a 4 today", "pain_scale", set(), N),
        ("a 9 last night", "pain_scale", {"severe_pain"}, U),  # nothing current: the 9 stands
        ("the pain in my back is about a nine tonight", None, {"severe_pain"}, U),  # <= 6 words apart
        ("tengo 38,6", None, {"fever"}, U),
        ("37,2 esta manana", None, set(), N),
        ("la temperatura esta en 38.9", None, {"fever"}, U),
    ],
)
def test_numbers_are_read_in_their_context(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        ("me fui al piso en el baño", "fall_check", {"fall"}, U),
        ("no puedo pasar ni el agua", "swallow_check", {"swallowing"}, U),
        ("sí tengo", "fever_check", {"fever"}, U),
        ("le pido a Dios que me recoja", "mood_check", {"self_harm"}, E),
        ("estarian mejor sin mi", "mood_check", {"self_harm"}, E),
        ("tosí con sangre", None, {"chest_breathing"}, E),
        ("se cayó la lámpara", "fall_check", set(), N),
        ("la herida se ve coloradita", None, {"wound_redness"}, U),
        ("la pantorrilla izquierda está más gorda y me duele", None, {"calf_clot"}, U),
        ("se me cierra la garganta cuando como", "swallow_check", {"swallowing"}, U),
    ],
)
def test_spanish_families(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    "text", ["fell in the garden yesterday but I'm ok now", "me caí anoche pero ya estoy bien"]
)
def test_a_fall_is_still_a_fall_when_the_patient_is_fine_now(text) -> None:
    check(text, None, {"fall"}, U)


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("Not me, my daughter twisted her ankle and fell on the ice", "fall_check"),
        ("my son has a fever of 103, I'm taking my own pills on time", None),
        ("I feel fine myself, my mom is the one with chills and a temp of 101.8", None),
        ("my dad's back is a 9 today, mine is a 3", "pain_scale"),
        ("mi esposo tiene mucha fiebre, yo estoy bien", None),
    ],
)
def test_a_relatives_symptom_is_someone_elses_when_the_writer_speaks_as_the_patient(text, context) -> None:
    check_benign(text, context)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        # no word of the writer's own: the caregiver writes about the patient
        ("my husband has a fever of 102 and chills", None, {"fever"}, U),
        ("my wife fell in the shower this morning", "fall_check", {"fall"}, U),
        ("mi papa tiene fiebre de 39", None, {"fever"}, U),
        # the writer speaks as the patient AND reports a symptom of their own
        ("not me but my wife is sick, and my incision is leaking pus", None, {"wound_drainage"}, U),
    ],
)
def test_a_caregivers_relative_is_still_the_patient(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("my legs feel weak from using the walker all day", "weakness_check"),
        ("hands are weak, I think it's from the exercises they gave me", "weakness_check"),
        ("my pinky goes numb when I sleep on that arm", "numbness_check"),
        ("las manos se me duermen cuando duermo encima de ellas", "numbness_check"),
        ("tiene las piernas débiles, es porque casi no come", "weakness_check"),
    ],
)
def test_a_deficit_explained_by_an_everyday_cause_is_not_new(text, context) -> None:
    check_benign(text, context)


@pytest.mark.parametrize(
    ("text", "context", "flags"),
    [
        ("my legs are numb from the hips down", None, {"new_numbness"}),
        ("my right leg got weak out of nowhere this morning", None, {"new_weakness"}),
    ],
)
def test_a_deficit_without_an_everyday_cause_stays_urgent(text, context, flags) -> None:
    check(text, context, flags, U)


@pytest.mark.parametrize(
    ("text", "context", "flags", "severity"),
    [
        (
            "I'm short of breath on hills, but I've had emphysema for twenty years, nothing different",
            None,
            set(),
            W,
        ),
        ("a little leaking when I sneeze, been like that for decades, no change", "bladder_check", set(), W),
        ("me falta el aire al subir, así he estado desde hace años, nada diferente", None, set(), W),
        # old but worse now, or old without "unchanged": still the alarm
        (
            "I've had a bad heart for years, no change, but now I can't catch my breath",
            None,
            {"chest_breathing"},
            E,
        ),
        ("short of breath, had asthma for twenty years and it's getting worse", None, {"chest_breathing"}, E),
        ("can't breathe since this morning, same as always they say", None, {"chest_breathing"}, E),
    ],
)
def test_a_baseline_is_watch_only_when_both_old_and_unchanged(text, context, flags, severity) -> None:
    check(text, context, flags, severity)


@pytest.mark.parametrize(
    "text",
    [
        "amaneció mojada la cama y ella no se dio cuenta",
        "se hizo en el sillón sin sentirlo",
        "me mojé los pantalones y no sentí nada",
    ],
)
def test_a_spanish_leak_the_patient_did_not_feel_is_an_emergency(text) -> None:
    check(text, None, {"bowel_bladder"}, E)
